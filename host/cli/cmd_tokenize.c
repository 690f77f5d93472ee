/* cmd_tokenize.c — `armo tokenize`: the tokenizer, chat template and record
 * parser from the command line, for debugging input before scoring.
 * Text mode prints ids (or id + piece per line); JSONL mode prints one JSON
 * object per input record, in input order, with the ids of every sequence
 * the record would be scored as (errors as {"id":…, "error":…}). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cli/cli_args.h"
#include "host/cli/commands.h"
#include "host/cli/version.h"
#include "host/text/chat_template.h"
#include "host/text/records.h"
#include "host/text/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: armo tokenize --model DIR [options] [TEXT]\n"
            "       armo tokenize --model DIR --jsonl [options] [FILE]\n"
            "\n"
            "Tokenizes with the model directory's tokenizer.json (Llama-3 byte-level BPE,\n"
            "identical to Hugging Face tokenizers) for debugging.\n"
            "\n"
            "Text mode: TEXT, or all of standard input when TEXT is absent (a trailing\n"
            "newline read from stdin is part of the text). Prints the ids on one line,\n"
            "separated by spaces. No BOS is added unless --bos is given, and no chat\n"
            "template is applied.\n"
            "\n"
            "JSONL mode (--jsonl): reads records from FILE (or standard input), one JSON\n"
            "object per line: {\"messages\":[…]}, {\"prompt\",\"response\"}, {\"prompt\" or\n"
            "\"messages\",\"chosen\",\"rejected\"}, {\"prompt\" or \"messages\",\"responses\":[…]}\n"
            "or {\"input_ids\":[…]}, each with an optional \"id\". Applies the model's chat\n"
            "template (Llama-3 or Llama-3.1, BOS once) and prints, per record and in order,\n"
            "  {\"id\":…, \"kind\":…, \"input_ids\":[[…], …]}\n"
            "with one id list per sequence the record is scored as (a pair: chosen then\n"
            "rejected; best-of-N: one per response), or {\"id\":…, \"error\":\"…\"} for a bad\n"
            "record (the others still go on). A model whose chat_template is neither the\n"
            "Llama-3 nor the Llama-3.1 one is refused for text records; input_ids records\n"
            "still work.\n"
            "\n"
            "options:\n"
            "  --model DIR        model directory with tokenizer.json (required)\n"
            "  --jsonl            read JSONL records instead of plain text\n"
            "  --pieces           also print each token's bytes: text mode prints\n"
            "                     'id<TAB>piece' per line; JSONL adds \"pieces\"\n"
            "                     (bytes that are not valid UTF-8 on their own are shown\n"
            "                     as <0xNN>)\n"
            "  --special-as-text  encode special-token strings found in the text or in a\n"
            "  --no-special       message (e.g. a literal \"<|eot_id|>\") as plain text\n"
            "                     instead of as the special token. The default does what\n"
            "                     Hugging Face does: such strings become special tokens,\n"
            "                     even inside a user's message. The template's own special\n"
            "                     tokens stay special either way.\n"
            "  --bos              text mode: put the BOS id first\n"
            "  --render           JSONL mode: print the rendered template text of each\n"
            "                     sequence (\"text\":[…]) instead of ids\n"
            "  --gating           print the gating pattern ids (the tokenization of\n"
            "                     <|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n)\n"
            "                     and exit\n"
            "  --threads N        JSONL mode: tokenizer threads (default: all CPUs)\n"
            "  --version          armo's version and build flags\n"
            "  -h, --help         this help\n"
            "Options take their value as --opt VALUE or --opt=VALUE; after --, the next\n"
            "argument is the TEXT or FILE even if it starts with '-'.\n"
            "\n"
            "exit status: 0 success, 1 some record or the text failed, 2 usage or model error\n");
}

/* Writes token bytes for a person: valid UTF-8 as is, bytes that are not part
 * of valid UTF-8 as <0xNN>, control bytes escaped — JSON escapes (and
 * quotes) when json, else C-like escapes (\n, \t, \xNN). */
static void put_bytes(FILE *f, const char *s, size_t n, int json) {
    if (json) fputc('"', f);
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (c == '\\' || (json && c == '"')) fprintf(f, "\\%c", c);
            else if (c == '\n') fputs("\\n", f);
            else if (c == '\r') fputs("\\r", f);
            else if (c == '\t') fputs("\\t", f);
            else if (c < 0x20 || c == 0x7f) fprintf(f, json ? "\\u%04x" : "\\x%02x", c);
            else fputc(c, f);
            i++;
            continue;
        }
        size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (len > 1 && i + len <= n && armo_utf8_invalid_at(s + i, len) < 0) {
            fwrite(s + i, 1, len, f);
            i += len;
        } else {
            fprintf(f, "<0x%02X>", c);
            i++;
        }
    }
    if (json) fputc('"', f);
}

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (!got) break;
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

typedef struct {
    int pieces, render, threads;
    unsigned flags;
} opts;

static void print_id_field(const armo_record *r, const char *fallback_id) {
    if (r && r->id_json) printf("{\"id\":%s", r->id_json);
    else if (fallback_id) printf("{\"id\":%s", fallback_id);
    else printf("{\"id\":null");
}

/* Tokenizes and prints one chunk of parsed records; returns failures. */
static int flush_chunk(const armo_tokenizer *tok, armo_record *recs, char **errs, char **err_ids,
                       size_t n, const opts *o) {
    int failures = 0;
    armo_record_tokens *out = calloc(n ? n : 1, sizeof *out);
    armo_err e;
    /* records that failed to parse are placeholders (kind INPUT_IDS, no ids): skip them */
    armo_record *ok = calloc(n ? n : 1, sizeof *ok);
    size_t *map = calloc(n ? n : 1, sizeof *map);
    size_t nok = 0;
    if (!out || !ok || !map) {
        fprintf(stderr, "armo tokenize: out of memory\n");
        free(out);
        free(ok);
        free(map);
        return (int)n;
    }
    for (size_t i = 0; i < n; i++)
        if (!errs[i]) {
            ok[nok] = recs[i];
            map[nok++] = i;
        }
    if (!o->render && armo_encode_records(tok, ok, nok, o->threads, o->flags, out, &e)) {
        fprintf(stderr, "armo tokenize: %s\n", e.msg);
        nok = 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int has = k < nok && map[k] == i;
        armo_record *r = has ? &recs[i] : NULL;
        armo_record_tokens *t = has ? &out[k] : NULL;
        if (has) k++;
        const char *err = errs[i] ? errs[i] : (t && t->error ? t->error : NULL);
        if (!err && r && o->render && r->kind != ARMO_REC_INPUT_IDS && armo_chat_check(tok, &e)) {
            err = e.msg;
        }
        print_id_field(r, err_ids[i]);
        if (err) {
            failures++;
            printf(",\"error\":");
            put_bytes(stdout, err, strlen(err), 1);
            printf("}\n");
            continue;
        }
        printf(",\"kind\":\"%s\"", armo_record_kind_name(r->kind));
        if (o->render) {
            printf(",\"text\":[");
            for (size_t s = 0; s < r->n_convs; s++) {
                size_t len;
                char *txt = armo_chat_render_kind(armo_chat_kind_of(tok), r->convs[s].msgs,
                                                  r->convs[s].n, &len, &e);
                if (s) putchar(',');
                if (txt) put_bytes(stdout, txt, len, 1);
                free(txt);
            }
            printf("]}\n");
            continue;
        }
        printf(",\"input_ids\":[");
        for (size_t s = 0; s < t->n_seqs; s++) {
            printf(s ? ",[" : "[");
            for (size_t q = 0; q < t->seqs[s].n; q++) printf(q ? ",%d" : "%d", t->seqs[s].ids[q]);
            putchar(']');
        }
        putchar(']');
        if (o->pieces) {
            printf(",\"pieces\":[");
            for (size_t s = 0; s < t->n_seqs; s++) {
                printf(s ? ",[" : "[");
                for (size_t q = 0; q < t->seqs[s].n; q++) {
                    size_t bl = 0;
                    const char *b = armo_tokenizer_id_bytes(tok, t->seqs[s].ids[q], &bl);
                    if (q) putchar(',');
                    if (b) put_bytes(stdout, b, bl, 1);
                    else printf("null");
                }
                putchar(']');
            }
            putchar(']');
        }
        printf("}\n");
    }
    for (size_t i = 0; i < nok; i++) armo_record_tokens_free(&out[i]);
    free(out);
    free(ok);
    free(map);
    return failures;
}

static int run_jsonl(const armo_tokenizer *tok, FILE *in, const char *in_name, const opts *o) {
    enum { CHUNK = 4096 };
    armo_record *recs = calloc(CHUNK, sizeof *recs);
    char **errs = calloc(CHUNK, sizeof *errs), **err_ids = calloc(CHUNK, sizeof *err_ids);
    if (!recs || !errs || !err_ids) {
        fprintf(stderr, "armo tokenize: out of memory\n");
        return 2;
    }
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t got;
    long line_no = 0;
    int failures = 0;
    while ((got = getline(&line, &cap, in)) >= 0) {
        line_no++;
        armo_err e;
        armo_record *r = &recs[n];
        memset(r, 0, sizeof *r);
        int rc = armo_record_parse(line, (size_t)got, line_no, r, &e);
        if (rc == 1) continue;
        if (rc < 0) {
            errs[n] = strdup(e.msg);
            err_ids[n] = armo_record_raw_id(line, (size_t)got); /* best effort */
        }
        n++;
        if (n == CHUNK) {
            failures += flush_chunk(tok, recs, errs, err_ids, n, o);
            for (size_t i = 0; i < n; i++) {
                if (!errs[i]) armo_record_free(&recs[i]);
                free(errs[i]);
                free(err_ids[i]);
                errs[i] = err_ids[i] = NULL;
            }
            n = 0;
        }
    }
    int read_failed = ferror(in), read_errno = errno;
    if (n) failures += flush_chunk(tok, recs, errs, err_ids, n, o);
    for (size_t i = 0; i < n; i++) {
        if (!errs[i]) armo_record_free(&recs[i]);
        free(errs[i]);
        free(err_ids[i]);
    }
    free(line);
    free(recs);
    free(errs);
    free(err_ids);
    if (failures) fprintf(stderr, "armo tokenize: %d record(s) failed\n", failures);
    if (read_failed) {
        fprintf(stderr, "armo tokenize: reading %s failed at line %ld: %s\n", in_name,
                line_no + 1, strerror(read_errno));
        return 2;
    }
    return failures ? 1 : 0;
}

static const struct option k_opts[] = {
    {"model", required_argument, NULL, 'm'},
    {"jsonl", no_argument, NULL, 'j'},
    {"pieces", no_argument, NULL, 'p'},
    {"special-as-text", no_argument, NULL, 's'},
    {"no-special", no_argument, NULL, 's'},
    {"bos", no_argument, NULL, 'b'},
    {"render", no_argument, NULL, 'r'},
    {"gating", no_argument, NULL, 'g'},
    {"threads", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {0, 0, 0, 0},
};

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *arg = NULL;
    int jsonl = 0, bos = 0, gating = 0, c;
    long v;
    opts o = {0, 0, 0, 0};
    armo_getopt_begin();
    while ((c = armo_getopt(argc, argv, "tokenize", k_opts)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'V': armo_print_version(stdout); return 0;
        case 'm': model = optarg; break;
        case 'j': jsonl = 1; break;
        case 'p': o.pieces = 1; break;
        case 's': o.flags |= ARMO_TOK_SPECIAL_AS_TEXT; break;
        case 'b': bos = 1; break;
        case 'r': o.render = 1; break;
        case 'g': gating = 1; break;
        case 't':
            if (armo_parse_long("tokenize", "--threads", optarg, 1, 1024, &v)) return 2;
            o.threads = (int)v;
            break;
        case ARMO_OPT_ARG:
            if (arg) {
                fprintf(stderr, "armo tokenize: one TEXT or FILE argument at most (quote the "
                                "text)\n");
                return 2;
            }
            arg = optarg;
            break;
        default: return 2; /* ARMO_OPT_BAD: armo_getopt said why */
        }
    }
    /* after "--": the TEXT or FILE, even if it starts with '-' */
    if (optind < argc && !arg) arg = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "armo tokenize: one TEXT or FILE argument at most\n");
        return 2;
    }
    if (!model) {
        fprintf(stderr, "armo tokenize: --model DIR is required (see armo tokenize --help)\n");
        return 2;
    }
    armo_err e;
    armo_tokenizer *tok = armo_tokenizer_load(model, &e);
    if (!tok) {
        fprintf(stderr, "armo tokenize: %s\n", e.msg);
        return 2;
    }
    int rc = 0;
    if (gating) {
        armo_ids g = {0};
        if (armo_chat_gating_pattern(tok, &g, &e)) {
            fprintf(stderr, "armo tokenize: %s\n", e.msg);
            rc = 2;
        } else {
            for (size_t i = 0; i < g.n; i++) printf(i ? " %d" : "%d", g.ids[i]);
            putchar('\n');
        }
        armo_ids_free(&g);
    } else if (jsonl) {
        FILE *in = stdin;
        if (arg && strcmp(arg, "-")) {
            in = fopen(arg, "rb");
            if (!in) {
                fprintf(stderr, "armo tokenize: cannot open %s: %s\n", arg, strerror(errno));
                armo_tokenizer_free(tok);
                return 2;
            }
        }
        rc = run_jsonl(tok, in, in == stdin ? "the standard input" : arg, &o);
        if (in != stdin) fclose(in);
    } else {
        size_t len;
        char *text;
        if (arg) {
            text = strdup(arg);
            len = strlen(arg);
        } else {
            text = read_all(stdin, &len);
        }
        armo_ids ids = {0};
        if (!text) {
            fprintf(stderr, "armo tokenize: cannot read the text: %s\n", strerror(errno));
            rc = 2;
        } else if ((bos && armo_tokenizer_bos_id(tok) >= 0 &&
                    armo_ids_push(&ids, armo_tokenizer_bos_id(tok), &e)) ||
                   armo_tokenizer_encode(tok, text, len, o.flags, &ids, &e)) {
            fprintf(stderr, "armo tokenize: %s\n", e.msg);
            rc = 1;
        } else if (o.pieces) {
            for (size_t i = 0; i < ids.n; i++) {
                size_t bl = 0;
                const char *b = armo_tokenizer_id_bytes(tok, ids.ids[i], &bl);
                printf("%d\t", ids.ids[i]);
                put_bytes(stdout, b, bl, 0);
                putchar('\n');
            }
        } else {
            for (size_t i = 0; i < ids.n; i++) printf(i ? " %d" : "%d", ids.ids[i]);
            putchar('\n');
        }
        armo_ids_free(&ids);
        free(text);
    }
    armo_tokenizer_free(tok);
    return rc; /* main.c checks that the standard output was written */
}
