/* tokenizer_internal.h — the inside of an armo_tokenizer, internal to host/text/.
 *
 * Only tokenizer.c (encoding, lookups) and tokenizer_load.c (building and
 * freeing) include it.  It holds the definition of struct armo_tokenizer, the
 * table entry types, and the small hash / UTF-8 / table-lookup helpers both
 * files use.  The helpers are static inline so the encoder's hot loops inline
 * them exactly as when everything lived in one file.  It names the tokenizer
 * as `struct armo_tokenizer` and does not include tokenizer.h, so the two
 * modules do not include each other. */
#ifndef ARMO_TOKENIZER_INTERNAL_H
#define ARMO_TOKENIZER_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- UTF-8 -------------------------------------------------------------- */

/* Decodes one code point of valid UTF-8 at s (len > 0); returns its length. */
static inline size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80 || len < 2) {
        *cp = c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        return 2;
    }
    if (c < 0xF0 || len < 4) {
        *cp = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        return 3;
    }
    *cp = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) |
          (s[3] & 0x3Fu);
    return 4;
}

/* ---- hashing ------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

static inline uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix64(w)) * 0x9fb21c651e98df25ull;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ mix64(w ^ ((uint64_t)n << 59))) * 0x9fb21c651e98df25ull;
    }
    return mix64(h);
}

/* ---- the tokenizer ------------------------------------------------------ */

#define MERGE_EMPTY UINT64_MAX /* never a key: ids are < 2^31 */

typedef struct {
    uint64_t key; /* (left id << 32) | right id, or MERGE_EMPTY */
    uint32_t rank;
    int32_t new_id;
} merge_slot; /* 16 bytes: the table is probed at random, keep it dense */

typedef struct {
    int32_t id;
    int special;
    uint32_t len;
    const char *content; /* points into the token byte arena */
} added_token;

/* Per-call encode state (the pool's objects); defined in tokenizer.c. */
typedef struct scratch scratch;

struct armo_tokenizer {
    /* id → bytes for every id (vocab and added) */
    int n_ids;
    char *arena;
    size_t arena_len;
    uint32_t *tok_off, *tok_len;
    unsigned char *is_added, *is_special;
    /* vocab (BPE model entries only): open addressing, slot = id + 1, 0 empty */
    uint32_t *vocab_slots;
    uint64_t vocab_mask;
    int32_t byte_id[256];
    /* merges */
    merge_slot *merges;
    uint64_t merge_mask;
    int ignore_merges;
    /* added tokens, sorted by length descending; hash set over contents */
    added_token *added;
    int n_added;
    uint32_t *added_slots;
    uint64_t added_mask;
    unsigned char added_first[256]; /* 1: some added token starts with this byte */
    int n_nonspecial;               /* added tokens not marked special */
    uint32_t added_lens[64];
    int n_added_lens;
    /* regex */
    pcre2_code *re;
    int jit;
    /* config */
    int32_t bos_id, eos_id;
    char *chat_template;
    char *chat_template_path; /* the file it was read from; NULL with no template */
    char *dir;                /* the directory of tokenizer.json */
    int chat_kind;            /* armo_chat_kind (chat_template.h), identified at load */
    /* scratch pool */
    pthread_mutex_t pool_lock;
    scratch *pool;
};

/* ---- table lookups ------------------------------------------------------ */

/* Id of the vocabulary entry whose raw bytes are p[0..n), or -1. */
static inline int32_t vocab_find(const struct armo_tokenizer *t, const unsigned char *p,
                                 size_t n) {
    uint64_t h = hash_bytes(p, n) & t->vocab_mask;
    for (;;) {
        uint32_t s = t->vocab_slots[h];
        if (!s) return -1;
        int32_t id = (int32_t)s - 1;
        if (t->tok_len[id] == n && memcmp(t->arena + t->tok_off[id], p, n) == 0) return id;
        h = (h + 1) & t->vocab_mask;
    }
}

/* Index into t->added of the added token whose content is p[0..n), or -1. */
static inline int32_t added_find(const struct armo_tokenizer *t, const char *p, size_t n) {
    if (!t->n_added) return -1;
    uint64_t h = hash_bytes((const unsigned char *)p, n) & t->added_mask;
    for (;;) {
        uint32_t s = t->added_slots[h];
        if (!s) return -1;
        const added_token *a = &t->added[s - 1];
        if (a->len == n && memcmp(a->content, p, n) == 0) return (int32_t)(s - 1);
        h = (h + 1) & t->added_mask;
    }
}

/* ---- scratch pool (tokenizer.c) ----------------------------------------- */

/* Frees every scratch object in t's pool (for armo_tokenizer_free: no encode
 * may be running).  Leaves the pool empty; the mutex is the caller's. */
void armo_tok_pool_free(struct armo_tokenizer *t);

#endif
