/* test_api.c — the C API of libarmo (host/api/armo_api.h), linked against
 * libarmo.so as a caller would: the results of armo_api_score are the lines
 * `armo score` writes for the same records, byte for byte (an array of them
 * for an array, the one object for one object), bad records keep their
 * per-record error, a text that is not records fails the call with a
 * message, concurrent calls on one handle agree, and every text and handle
 * is freed (the sanitized suite runs this with leak detection). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "host/api/armo_api.h"
#include "tests/util/test_util.h"

#define MODEL ARMO_MODELS_DIR "/tiny-armorm"
#define BIG (1 << 20)

/* The records of the test: the examples plus bad ones, one per line. */
static const char *k_extra[] = {
    "{\"id\": 1.0, \"prompt\": \"say \\\"hi\\\" [{\", \"response\": \"ok\"}",
    "{\"id\":\"no-assistant\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
    "[1, 2]",
};

/* `armo score` on path -> its output in buf. */
static size_t cli_score(const char *path, char *buf, size_t len) {
    char cmd[2048], out[512];
    snprintf(out, sizeof out, "%s/test_api.cli.jsonl", ARMO_BINARY_DIR);
    snprintf(cmd, sizeof cmd, "'%s' score --model '%s' --device cpu --threads 2 --quiet "
             "--input '%s' --output '%s'", ARMO_EXE, MODEL, path, out);
    int st = system(cmd);
    CHECK(st != -1 && WEXITSTATUS(st) == 1, "armo score exit status %d (1: some records fail)",
          st);
    return test_read_file(out, buf, len);
}

/* The records file and the same records as one JSON array; the CLI's lines
 * joined as the API should answer. */
static void build_inputs(char *array, char *want, char *lines_buf) {
    char path[512];
    snprintf(path, sizeof path, "%s/test_api.records.jsonl", ARMO_BINARY_DIR);
    size_t n = test_read_file(ARMO_SOURCE_DIR "/examples/conversations.jsonl", lines_buf, BIG);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fwrite(lines_buf, 1, n, f);
    for (size_t i = 0; i < sizeof k_extra / sizeof *k_extra; i++) fprintf(f, "%s\n", k_extra[i]);
    fclose(f);
    /* the array: the file's lines, comma-separated, as written */
    test_read_file(path, lines_buf, BIG);
    strcpy(array, "[\n");
    for (char *l = strtok(lines_buf, "\n"), *sep = ""; l; l = strtok(NULL, "\n"), sep = ",\n") {
        strcat(array, sep);
        strcat(array, l);
    }
    strcat(array, "\n]");
    size_t m = cli_score(path, lines_buf, BIG);
    size_t k = 0;
    want[k++] = '[';
    for (size_t i = 0; i < m; i++) /* the lines, '\n' -> ',' but for the last */
        want[k++] = lines_buf[i] != '\n' ? lines_buf[i] : i + 1 < m ? ',' : ']';
    want[k] = 0;
}

typedef struct {
    armo_handle *h;
    const char *in, *want;
    int same;
} job;

static void *score_thread(void *arg) {
    job *j = arg;
    char *out = armo_api_score(j->h, j->in, strlen(j->in));
    j->same = out && !strcmp(out, j->want);
    armo_api_free(out);
    return NULL;
}

int main(void) {
    CHECK(armo_api_version() == ARMO_API_VERSION, "version %d", armo_api_version());
    CHECK(!armo_api_open(ARMO_MODELS_DIR "/no-such-model", "cpu", 1, 0), "opened a missing dir");
    CHECK(test_contains(armo_api_last_error(), "no-such-model"), "message: %s",
          armo_api_last_error());
    CHECK(!armo_api_open(MODEL, "tpu", 1, 0), "opened device tpu");
    CHECK(test_contains(armo_api_last_error(), "auto, cuda or cpu"), "message: %s",
          armo_api_last_error());

    armo_handle *h = armo_api_open(MODEL, "cpu", 2, 0);
    CHECK(h != NULL, "open: %s", armo_api_last_error());
    if (!h) return test_finish("test_api");
    char *array = malloc(BIG), *want = malloc(BIG), *tmp = malloc(BIG);
    if (!array || !want || !tmp) return 1;
    build_inputs(array, want, tmp);

    char *out = armo_api_score(h, array, strlen(array));
    CHECK(out && !strcmp(out, want), "array results differ from armo score's lines:\n%s\nvs\n%s",
          out ? out : armo_api_last_error(), want);
    armo_api_free(out);

    /* one object in, one object out: the first CLI line */
    const char *nl = strstr(array + 2, ",\n");
    size_t first_len = nl ? (size_t)(nl - (array + 2)) : 0;
    out = armo_api_score(h, array + 2, first_len);
    const char *w_end = strstr(want, "},{\"id\":\"tutor\"");
    CHECK(out && w_end && strlen(out) == (size_t)(w_end + 1 - (want + 1)) &&
          !strncmp(out, want + 1, strlen(out)), "one object: %s", out ? out : armo_api_last_error());
    armo_api_free(out);

    out = armo_api_score(h, " [ ] ", 5);
    CHECK(out && !strcmp(out, "[]"), "empty array: %s", out ? out : armo_api_last_error());
    armo_api_free(out);
    CHECK(!armo_api_score(h, "[{\"prompt\":", 11), "a truncated text scored");
    CHECK(test_contains(armo_api_last_error(), "not valid JSON"), "message: %s",
          armo_api_last_error());
    CHECK(!armo_api_score(h, "\"text\"", 6), "a string scored");
    CHECK(test_contains(armo_api_last_error(), "object or an array"), "message: %s",
          armo_api_last_error());

    /* four threads on one handle: each gets the same text */
    pthread_t t[4];
    job j[4];
    for (int i = 0; i < 4; i++) {
        j[i] = (job){.h = h, .in = array, .want = want};
        pthread_create(&t[i], NULL, score_thread, &j[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(j[i].same, "thread %d got other results", i);
    }

    char *info = armo_api_info(h);
    CHECK(test_contains(info, "\"objectives\":[\"helpsteer-helpfulness\"") &&
          test_contains(info, "\"device\":\"cpu\""), "info: %s", info ? info : "NULL");
    armo_api_free(info);
    armo_api_close(h);
    armo_api_close(NULL);
    free(array);
    free(want);
    free(tmp);
    return test_finish("test_api");
}
