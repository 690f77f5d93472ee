/* shard.c — part file names (see shard.h). */
#include "host/dist/shard.h"

#include <stdio.h>
#include <string.h>

#include "host/dist/launch_env.h"

int armo_part_name(const char *out, int rank, int world, char *buf, size_t len, armo_err *e) {
    int n = snprintf(buf, len, "%s.part-%05d-of-%05d", out, rank, world);
    if (n < 0 || (size_t)n >= len)
        return armo_err_set(e, "the part file name of %s is too long", out);
    return 0;
}

/* 5 decimal digits at s: their value, or -1. */
static int five_digits(const char *s) {
    int v = 0;
    for (int i = 0; i < 5; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int armo_part_parse(const char *path, int *rank, int *world, size_t *base_len) {
    static const char tail[] = ".part-00000-of-00000";
    size_t n = strlen(path), t = sizeof tail - 1;
    if (n <= t) return 0;
    const char *s = path + n - t;
    if (strncmp(s, ".part-", 6) || strncmp(s + 11, "-of-", 4)) return 0;
    int r = five_digits(s + 6), w = five_digits(s + 15);
    if (r < 0 || w < 1 || r >= w || w > ARMO_DIST_MAX_WORLD) return 0;
    *rank = r;
    *world = w;
    *base_len = n - t;
    return 1;
}
