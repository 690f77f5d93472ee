/* tokenizer.c — Llama-3 byte-level BPE, exact to Hugging Face `tokenizers`.
 *
 * Shape: everything the encoder reads is built once at load and never
 * written again (vocab and merge hash tables, id → bytes, added tokens, the
 * compiled regex), so concurrent encodes need no locks.  Per-call state
 * (PCRE2 match data + JIT stack, BPE symbol/heap buffers, a piece → ids
 * cache) lives in scratch objects taken from a mutex-guarded pool.  Vocab
 * keys are raw bytes: the GPT-2 byte↔unicode alphabet of tokenizer.json is
 * undone at load, so encode works on the UTF-8 text directly (the ByteLevel
 * pre-tokenizer is then the identity).  The BPE merge loop mirrors HF's
 * Word::merge_all (min-heap on (rank, position), stale entries skipped by
 * the same test) so ties and odd cases come out identical. */
#include "host/text/tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- ids vector ------------------------------------------------------- */

void armo_ids_free(armo_ids *v) {
    if (!v) return;
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

static int ids_reserve(armo_ids *v, size_t extra, armo_err *e) {
    if (v->n + extra <= v->cap) return 0;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < v->n + extra) cap *= 2;
    int32_t *p = realloc(v->ids, cap * sizeof *p);
    if (!p) return armo_err_set(e, "out of memory growing an id array to %zu ids", cap);
    v->ids = p;
    v->cap = cap;
    return 0;
}

int armo_ids_push(armo_ids *v, int32_t id, armo_err *e) {
    if (v->n == v->cap && ids_reserve(v, 1, e)) return -1;
    v->ids[v->n++] = id;
    return 0;
}

int armo_ids_append(armo_ids *v, const int32_t *ids, size_t n, armo_err *e) {
    if (ids_reserve(v, n, e)) return -1;
    if (n) memcpy(v->ids + v->n, ids, n * sizeof *ids);
    v->n += n;
    return 0;
}

/* ---- UTF-8 ------------------------------------------------------------- */

long armo_utf8_invalid_at(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= len) break;
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return (long)i;
        }
        if (i + n > len) return (long)i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return (long)i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return (long)i;
        i += n;
    }
    return -1;
}

/* Decodes one code point of valid UTF-8 at s (len > 0); returns its length. */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp) {
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
    *cp = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
    return 4;
}

/* ---- hashing ----------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

static uint64_t hash_bytes(const unsigned char *p, size_t n) {
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

/* ---- the tokenizer ----------------------------------------------------- */

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
    int n_nonspecial; /* added tokens not marked special */
    uint32_t added_lens[64];
    int n_added_lens;
    /* regex */
    pcre2_code *re;
    int jit;
    /* config */
    int32_t bos_id, eos_id;
    char *chat_template;
    /* scratch pool */
    pthread_mutex_t pool_lock;
    scratch *pool;
};

/* ---- file helpers ------------------------------------------------------ */

static char *read_file(const char *path, size_t *len, armo_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        armo_err_set(e, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        armo_err_set(e, "out of memory reading %s", path);
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                armo_err_set(e, "out of memory reading %s", path);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        armo_err_set(e, "error reading %s: %s", path, strerror(errno));
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ---- GPT-2 byte <-> unicode ------------------------------------------- */

/* unicode code point (< 324) → byte, or -1 */
static void build_unicode_to_byte(int *u2b, int n) {
    for (int i = 0; i < n; i++) u2b[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int cp = printable ? b : 256 + extra++;
        u2b[cp] = b;
    }
}

/* Converts a byte-level vocabulary string to raw bytes in out (capacity at
 * least strlen(s)); returns the byte count or -1 if a character is outside
 * the byte-level alphabet. */
static long bytelevel_to_bytes(const int *u2b, const char *s, size_t slen, unsigned char *out) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = 0;
    while (i < slen) {
        uint32_t cp;
        i += utf8_next(p + i, slen - i, &cp);
        if (cp >= 324 || u2b[cp] < 0) return -1;
        out[n++] = (unsigned char)u2b[cp];
    }
    return (long)n;
}

/* ---- tables ------------------------------------------------------------ */

static uint64_t table_size_for(size_t n) {
    uint64_t s = 16;
    while (s < n * 2 + 16) s *= 2;
    return s;
}

static int32_t vocab_find(const armo_tokenizer *t, const unsigned char *p, size_t n) {
    uint64_t h = hash_bytes(p, n) & t->vocab_mask;
    for (;;) {
        uint32_t s = t->vocab_slots[h];
        if (!s) return -1;
        int32_t id = (int32_t)s - 1;
        if (t->tok_len[id] == n && memcmp(t->arena + t->tok_off[id], p, n) == 0) return id;
        h = (h + 1) & t->vocab_mask;
    }
}

static void vocab_insert(armo_tokenizer *t, int32_t id) {
    const unsigned char *p = (const unsigned char *)t->arena + t->tok_off[id];
    uint64_t h = hash_bytes(p, t->tok_len[id]) & t->vocab_mask;
    while (t->vocab_slots[h]) h = (h + 1) & t->vocab_mask;
    t->vocab_slots[h] = (uint32_t)id + 1;
}

static inline const merge_slot *merge_find(const armo_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = mix64(key) & t->merge_mask;
    for (;;) {
        const merge_slot *s = &t->merges[h];
        if (s->key == key) return s;
        if (s->key == MERGE_EMPTY) return NULL;
        h = (h + 1) & t->merge_mask;
    }
}

static void merge_put(armo_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t new_id) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = mix64(key) & t->merge_mask;
    for (;;) {
        merge_slot *s = &t->merges[h];
        if (s->key == MERGE_EMPTY || s->key == key) { /* a later duplicate overwrites, as HF's HashMap collect */
            s->key = key;
            s->rank = rank;
            s->new_id = new_id;
            return;
        }
        h = (h + 1) & t->merge_mask;
    }
}

static int32_t added_find(const armo_tokenizer *t, const char *p, size_t n) {
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

/* ---- scratch ------------------------------------------------------------ */

typedef struct {
    uint32_t rank, pos;
    int32_t new_id;
} heap_item;

#define CACHE_SLOTS 32768u    /* power of two */
#define CACHE_MAX_PIECE 64u   /* pieces longer than this are not cached */
#define CACHE_ARENA (1u << 20) /* bytes of keys (and of ids) before the cache is reset */

typedef struct {
    uint64_t hash;
    uint32_t key_off, key_len; /* in cache_bytes */
    uint32_t ids_off, n_ids;   /* in cache_ids */
} cache_slot;

struct scratch {
    scratch *next_free;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    /* BPE symbols */
    int32_t *sym_c;
    int32_t *sym_prev, *sym_next;
    unsigned char *sym_alive;
    size_t sym_cap;
    heap_item *heap;
    size_t heap_cap;
    /* cache */
    cache_slot *cache;
    uint32_t cache_used;
    unsigned char *cache_bytes;
    uint32_t cache_bytes_used;
    int32_t *cache_ids;
    uint32_t cache_ids_used;
};

static void scratch_free(scratch *s) {
    if (!s) return;
    if (s->md) pcre2_match_data_free(s->md);
    if (s->mctx) pcre2_match_context_free(s->mctx);
    if (s->jstack) pcre2_jit_stack_free(s->jstack);
    free(s->sym_c);
    free(s->sym_prev);
    free(s->sym_next);
    free(s->sym_alive);
    free(s->heap);
    free(s->cache);
    free(s->cache_bytes);
    free(s->cache_ids);
    free(s);
}

static scratch *scratch_new(const armo_tokenizer *t, armo_err *e) {
    scratch *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    if (!s->md || !s->mctx) goto oom;
    if (t->jit) {
        s->jstack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
        if (!s->jstack) goto oom;
        pcre2_jit_stack_assign(s->mctx, NULL, s->jstack);
    }
    s->cache = calloc(CACHE_SLOTS, sizeof *s->cache);
    s->cache_bytes = malloc(CACHE_ARENA);
    s->cache_ids = malloc(CACHE_ARENA); /* CACHE_ARENA / 4 ids */
    if (!s->cache || !s->cache_bytes || !s->cache_ids) goto oom;
    return s;
oom:
    scratch_free(s);
    armo_err_set(e, "out of memory creating tokenizer scratch");
    return NULL;
}

static scratch *scratch_take(const armo_tokenizer *tc, armo_err *e) {
    armo_tokenizer *t = (armo_tokenizer *)tc; /* only the pool is touched, under its lock */
    pthread_mutex_lock(&t->pool_lock);
    scratch *s = t->pool;
    if (s) t->pool = s->next_free;
    pthread_mutex_unlock(&t->pool_lock);
    if (s) return s;
    return scratch_new(t, e);
}

static void scratch_give(const armo_tokenizer *tc, scratch *s) {
    armo_tokenizer *t = (armo_tokenizer *)tc;
    pthread_mutex_lock(&t->pool_lock);
    s->next_free = t->pool;
    t->pool = s;
    pthread_mutex_unlock(&t->pool_lock);
}

static int sym_reserve(scratch *s, size_t n, armo_err *e) {
    if (n <= s->sym_cap) return 0;
    size_t cap = s->sym_cap ? s->sym_cap : 256;
    while (cap < n) cap *= 2;
    int32_t *c = realloc(s->sym_c, cap * sizeof *c);
    if (c) s->sym_c = c;
    int32_t *pv = realloc(s->sym_prev, cap * sizeof *pv);
    if (pv) s->sym_prev = pv;
    int32_t *nx = realloc(s->sym_next, cap * sizeof *nx);
    if (nx) s->sym_next = nx;
    unsigned char *al = realloc(s->sym_alive, cap);
    if (al) s->sym_alive = al;
    heap_item *hp = realloc(s->heap, 2 * cap * sizeof *hp);
    if (hp) s->heap = hp;
    if (!c || !pv || !nx || !al || !hp) return armo_err_set(e, "out of memory for a %zu-byte piece", n);
    s->sym_cap = cap;
    s->heap_cap = 2 * cap;
    return 0;
}

/* ---- BPE ---------------------------------------------------------------- */

static inline int heap_less(const heap_item *a, const heap_item *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static int heap_push(scratch *s, size_t *n, heap_item it, armo_err *e) {
    if (*n == s->heap_cap) {
        size_t cap = s->heap_cap * 2;
        heap_item *hp = realloc(s->heap, cap * sizeof *hp);
        if (!hp) return armo_err_set(e, "out of memory in BPE heap");
        s->heap = hp;
        s->heap_cap = cap;
    }
    heap_item *h = s->heap;
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&it, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
    return 0;
}

static heap_item heap_pop(scratch *s, size_t *n) {
    heap_item *h = s->heap;
    heap_item top = h[0];
    heap_item last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= m) break;
        size_t c = (l + 1 < m && heap_less(&h[l + 1], &h[l])) ? l + 1 : l;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

/* BPE of one piece of n >= 1 bytes, appending ids to out.  Mirrors HF's
 * Word::merge_all. */
static int bpe_piece(const armo_tokenizer *t, scratch *s, const unsigned char *p, size_t n,
                     armo_ids *out, armo_err *e) {
    if (sym_reserve(s, n, e)) return -1;
    int32_t *c = s->sym_c, *prev = s->sym_prev, *next = s->sym_next;
    unsigned char *alive = s->sym_alive;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[p[i]];
        if (id < 0) return armo_err_set(e, "byte 0x%02x has no token in this vocabulary", p[i]);
        c[i] = id;
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        alive[i] = 1;
    }
    size_t hn = 0; /* initial pairs, then Floyd's O(n) heapify */
    for (size_t i = 0; i + 1 < n; i++) {
        const merge_slot *m = merge_find(t, c[i], c[i + 1]);
        if (m) s->heap[hn++] = (heap_item){m->rank, (uint32_t)i, m->new_id};
    }
    for (size_t k = hn / 2; k-- > 0;) {
        heap_item it = s->heap[k];
        size_t i = k;
        for (;;) {
            size_t l = 2 * i + 1;
            if (l >= hn) break;
            size_t ch = (l + 1 < hn && heap_less(&s->heap[l + 1], &s->heap[l])) ? l + 1 : l;
            if (!heap_less(&s->heap[ch], &it)) break;
            s->heap[i] = s->heap[ch];
            i = ch;
        }
        s->heap[i] = it;
    }
    while (hn) {
        heap_item top = heap_pop(s, &hn);
        uint32_t pos = top.pos;
        if (!alive[pos] || next[pos] < 0) continue;
        int32_t np = next[pos];
        const merge_slot *m = merge_find(t, c[pos], c[np]);
        if (!m || m->new_id != top.new_id) continue;
        c[pos] = top.new_id;
        alive[np] = 0;
        next[pos] = next[np];
        if (next[np] >= 0) prev[next[np]] = (int32_t)pos;
        if (prev[pos] >= 0) {
            int32_t pp = prev[pos];
            const merge_slot *m2 = merge_find(t, c[pp], c[pos]);
            if (m2 && heap_push(s, &hn, (heap_item){m2->rank, (uint32_t)pp, m2->new_id}, e)) return -1;
        }
        if (next[pos] >= 0) {
            const merge_slot *m3 = merge_find(t, c[pos], c[next[pos]]);
            if (m3 && heap_push(s, &hn, (heap_item){m3->rank, pos, m3->new_id}, e)) return -1;
        }
    }
    size_t cnt = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) cnt++;
    if (ids_reserve(out, cnt, e)) return -1;
    for (int32_t i = 0; i >= 0; i = next[i]) out->ids[out->n++] = c[i];
    return 0;
}

/* BPE of a short piece (n <= BPE_SMALL bytes) by repeated scans: merge the
 * leftmost lowest-ranked adjacent pair until none is left.  This is the same
 * result as the heap loop above: a stale heap entry can only pass HF's check
 * when its pair is unchanged (symbols only grow, so no other split of the
 * same bytes can appear at that position), so HF merges exactly the leftmost
 * minimum-rank pair each time.  No heap, no linked list: faster when short. */
#define BPE_SMALL 48

static int bpe_small(const armo_tokenizer *t, const unsigned char *p, size_t n, armo_ids *out,
                     armo_err *e) {
    int32_t c[BPE_SMALL], nid[BPE_SMALL];
    uint32_t rank[BPE_SMALL];
    size_t m = n;
    for (size_t i = 0; i < n; i++) {
        c[i] = t->byte_id[p[i]];
        if (c[i] < 0) return armo_err_set(e, "byte 0x%02x has no token in this vocabulary", p[i]);
    }
    for (size_t i = 0; i + 1 < m; i++) {
        const merge_slot *ms = merge_find(t, c[i], c[i + 1]);
        rank[i] = ms ? ms->rank : UINT32_MAX;
        nid[i] = ms ? ms->new_id : -1;
    }
    while (m > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < m; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == UINT32_MAX) break;
        c[best] = nid[best];
        for (size_t i = best + 1; i + 1 < m; i++) c[i] = c[i + 1];
        for (size_t i = best + 1; i + 2 < m; i++) {
            rank[i] = rank[i + 1];
            nid[i] = nid[i + 1];
        }
        m--;
        if (best + 1 < m) {
            const merge_slot *ms = merge_find(t, c[best], c[best + 1]);
            rank[best] = ms ? ms->rank : UINT32_MAX;
            nid[best] = ms ? ms->new_id : -1;
        }
        if (best > 0) {
            const merge_slot *ms = merge_find(t, c[best - 1], c[best]);
            rank[best - 1] = ms ? ms->rank : UINT32_MAX;
            nid[best - 1] = ms ? ms->new_id : -1;
        }
    }
    return armo_ids_append(out, c, m, e);
}

static void cache_reset(scratch *s) {
    memset(s->cache, 0, CACHE_SLOTS * sizeof *s->cache);
    s->cache_used = s->cache_bytes_used = s->cache_ids_used = 0;
}

/* One pre-token. */
static int encode_piece(const armo_tokenizer *t, scratch *s, const unsigned char *p, size_t n,
                        armo_ids *out, armo_err *e) {
    if (n == 0) return 0;
    if (t->ignore_merges || n == 1) {
        int32_t id = vocab_find(t, p, n);
        if (id >= 0) return armo_ids_push(out, id, e);
    }
    if (n > CACHE_MAX_PIECE) return bpe_piece(t, s, p, n, out, e);
    uint64_t h = hash_bytes(p, n);
    uint32_t slot = (uint32_t)h & (CACHE_SLOTS - 1);
    for (;;) {
        cache_slot *cs = &s->cache[slot];
        if (!cs->key_len) break;
        if (cs->hash == h && cs->key_len == n && memcmp(s->cache_bytes + cs->key_off, p, n) == 0)
            return armo_ids_append(out, s->cache_ids + cs->ids_off, cs->n_ids, e);
        slot = (slot + 1) & (CACHE_SLOTS - 1);
    }
    size_t start = out->n;
    if ((n <= BPE_SMALL ? bpe_small(t, p, n, out, e) : bpe_piece(t, s, p, n, out, e))) return -1;
    size_t nid = out->n - start;
    if (s->cache_used >= CACHE_SLOTS / 2 || s->cache_bytes_used + n > CACHE_ARENA ||
        s->cache_ids_used + nid > CACHE_ARENA / 4) {
        cache_reset(s);
        slot = (uint32_t)h & (CACHE_SLOTS - 1);
    }
    cache_slot *cs = &s->cache[slot];
    cs->hash = h;
    cs->key_off = s->cache_bytes_used;
    cs->key_len = (uint32_t)n;
    cs->ids_off = s->cache_ids_used;
    cs->n_ids = (uint32_t)nid;
    memcpy(s->cache_bytes + s->cache_bytes_used, p, n);
    memcpy(s->cache_ids + s->cache_ids_used, out->ids + start, nid * sizeof(int32_t));
    s->cache_bytes_used += (uint32_t)n;
    s->cache_ids_used += (uint32_t)nid;
    s->cache_used++;
    return 0;
}

/* A segment free of added tokens: regex split ("Isolated": matches and the
 * gaps between them are pieces), then BPE per piece. */
static int encode_segment(const armo_tokenizer *t, scratch *s, const char *seg, size_t n,
                          armo_ids *out, armo_err *e) {
    const unsigned char *p = (const unsigned char *)seg;
    size_t off = 0;
    while (off < n) {
        int rc = t->jit ? pcre2_jit_match(t->re, p, n, off, 0, s->md, s->mctx)
                        : pcre2_match(t->re, p, n, off, PCRE2_NO_UTF_CHECK, s->md, s->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR buf[256];
            pcre2_get_error_message(rc, buf, sizeof buf);
            return armo_err_set(e, "pre-tokenizer regex failed at byte %zu: %s", off, (char *)buf);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > off && encode_piece(t, s, p + off, ms - off, out, e)) return -1;
        if (me == ms) { /* empty match (not possible with the Llama-3 pattern): skip one char */
            uint32_t cp;
            size_t adv = ms < n ? utf8_next(p + ms, n - ms, &cp) : 1;
            if (ms < n && encode_piece(t, s, p + ms, adv, out, e)) return -1;
            off = ms + adv;
            continue;
        }
        if (encode_piece(t, s, p + ms, me - ms, out, e)) return -1;
        off = me;
    }
    if (off < n && encode_piece(t, s, p + off, n - off, out, e)) return -1;
    return 0;
}

int armo_tokenizer_encode(const armo_tokenizer *t, const char *text, size_t len, unsigned flags,
                          armo_ids *out, armo_err *e) {
    long bad = armo_utf8_invalid_at(text, len);
    if (bad >= 0)
        return armo_err_set(e, "text is not valid UTF-8 (bad byte 0x%02x at offset %ld); "
                               "fix the input encoding",
                            (unsigned char)text[bad], bad);
    scratch *s = scratch_take(t, e);
    if (!s) return -1;
    /* Added-token split as HF's AddedVocabulary: non-overlapping leftmost-longest matches over
     * all added tokens; with SPECIAL_AS_TEXT a match of a special token is skipped whole (its
     * text stays in the segment), as HF's encode_special_tokens does. */
    int as_text = (flags & ARMO_TOK_SPECIAL_AS_TEXT) != 0;
    int scan = t->n_added && !(as_text && !t->n_nonspecial);
    size_t seg = 0, i = 0;
    int rc = 0;
    while (scan && i < len) {
        if (!t->added_first[(unsigned char)text[i]]) {
            i++;
            continue;
        }
        int32_t hit = -1;
        for (int k = 0; k < t->n_added_lens && hit < 0; k++) { /* longest first */
            size_t L = t->added_lens[k];
            if (L <= len - i) hit = added_find(t, text + i, L);
        }
        if (hit < 0) {
            i++;
            continue;
        }
        if (as_text && t->added[hit].special) {
            i += t->added[hit].len;
            continue;
        }
        if (i > seg && (rc = encode_segment(t, s, text + seg, i - seg, out, e))) break;
        if ((rc = armo_ids_push(out, t->added[hit].id, e))) break;
        i += t->added[hit].len;
        seg = i;
    }
    if (!rc && seg < len) rc = encode_segment(t, s, text + seg, len - seg, out, e);
    scratch_give(t, s);
    return rc;
}

/* ---- lookups ------------------------------------------------------------ */

int armo_tokenizer_vocab_size(const armo_tokenizer *t) { return t->n_ids; }

const char *armo_tokenizer_id_bytes(const armo_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_ids || t->tok_off[id] == UINT32_MAX) return NULL;
    if (len) *len = t->tok_len[id];
    return t->arena + t->tok_off[id];
}

int armo_tokenizer_is_special(const armo_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_ids && t->is_special[id];
}

int32_t armo_tokenizer_token_id(const armo_tokenizer *t, const char *s, size_t len) {
    int32_t a = added_find(t, s, len);
    if (a >= 0) return t->added[a].id;
    return vocab_find(t, (const unsigned char *)s, len);
}

int32_t armo_tokenizer_bos_id(const armo_tokenizer *t) { return t->bos_id; }
int32_t armo_tokenizer_eos_id(const armo_tokenizer *t) { return t->eos_id; }
const char *armo_tokenizer_chat_template(const armo_tokenizer *t) { return t->chat_template; }

/* ---- loading ------------------------------------------------------------ */

void armo_tokenizer_free(armo_tokenizer *t) {
    if (!t) return;
    while (t->pool) {
        scratch *s = t->pool;
        t->pool = s->next_free;
        scratch_free(s);
    }
    pthread_mutex_destroy(&t->pool_lock);
    if (t->re) pcre2_code_free(t->re);
    free(t->arena);
    free(t->tok_off);
    free(t->tok_len);
    free(t->is_added);
    free(t->is_special);
    free(t->vocab_slots);
    free(t->merges);
    free(t->added);
    free(t->added_slots);
    free(t->chat_template);
    free(t);
}

static const char *json_str_or_content(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) {
        json_t *c = json_object_get(v, "content");
        if (json_is_string(c)) return json_string_value(c);
    }
    return NULL;
}

/* Checks the pre-tokenizer is Split(regex, Isolated) + ByteLevel(no regex)
 * (Llama-3) and returns the regex; or ByteLevel with use_regex (GPT-2). */
static const char *pretokenizer_regex(json_t *pre, const char *path, armo_err *e) {
    static const char *gpt2 =
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    const char *type = json_string_value(json_object_get(pre, "type"));
    if (type && !strcmp(type, "ByteLevel")) {
        if (json_is_true(json_object_get(pre, "add_prefix_space"))) {
            armo_err_set(e, "%s: ByteLevel add_prefix_space=true is not supported", path);
            return NULL;
        }
        return gpt2;
    }
    json_t *list = json_object_get(pre, "pretokenizers");
    if (!type || strcmp(type, "Sequence") || !json_is_array(list) || json_array_size(list) != 2) {
        armo_err_set(e, "%s: unsupported pre_tokenizer (expected Sequence[Split, ByteLevel] as "
                        "in Llama-3)", path);
        return NULL;
    }
    json_t *split = json_array_get(list, 0), *bl = json_array_get(list, 1);
    const char *st = json_string_value(json_object_get(split, "type"));
    const char *bt = json_string_value(json_object_get(bl, "type"));
    const char *beh = json_string_value(json_object_get(split, "behavior"));
    const char *rx = json_string_value(json_object_get(json_object_get(split, "pattern"), "Regex"));
    if (!st || strcmp(st, "Split") || !bt || strcmp(bt, "ByteLevel") || !beh ||
        strcmp(beh, "Isolated") || !rx || json_is_true(json_object_get(split, "invert")) ||
        json_is_true(json_object_get(bl, "use_regex")) ||
        json_is_true(json_object_get(bl, "add_prefix_space"))) {
        armo_err_set(e, "%s: unsupported pre_tokenizer (expected Split(Regex, Isolated) + "
                        "ByteLevel(use_regex=false) as in Llama-3)", path);
        return NULL;
    }
    return rx;
}

static int cmp_added_len_desc(const void *a, const void *b) {
    const added_token *x = a, *y = b;
    return x->len != y->len ? (x->len > y->len ? -1 : 1) : (x->id - y->id);
}

armo_tokenizer *armo_tokenizer_load_files(const char *tj_path, const char *cfg_path, armo_err *e) {
    armo_tokenizer *t = calloc(1, sizeof *t);
    json_t *root = NULL, *cfg = NULL;
    unsigned char *tmp = NULL;
    if (!t) {
        armo_err_set(e, "out of memory loading %s", tj_path);
        return NULL;
    }
    pthread_mutex_init(&t->pool_lock, NULL);
    t->bos_id = t->eos_id = -1;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;

    json_error_t je;
    root = json_load_file(tj_path, 0, &je);
    if (!root) {
        armo_err_set(e, "%s:%d:%d: cannot parse tokenizer.json: %s", tj_path, je.line, je.column,
                     je.text);
        goto fail;
    }
    json_t *model = json_object_get(root, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    if (!mtype || strcmp(mtype, "BPE") || !json_is_object(vocab) || !json_is_array(merges)) {
        armo_err_set(e, "%s: model is not a BPE model with vocab and merges (armo supports "
                        "Llama-3 byte-level BPE tokenizers)", tj_path);
        goto fail;
    }
    if (json_is_true(json_object_get(model, "byte_fallback")) ||
        json_is_string(json_object_get(model, "continuing_subword_prefix")) ||
        json_is_string(json_object_get(model, "end_of_word_suffix")) ||
        (json_is_number(json_object_get(model, "dropout")) &&
         json_number_value(json_object_get(model, "dropout")) > 0)) {
        armo_err_set(e, "%s: BPE options byte_fallback / continuing_subword_prefix / "
                        "end_of_word_suffix / dropout are not supported", tj_path);
        goto fail;
    }
    json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        armo_err_set(e, "%s: a normalizer is set; armo supports tokenizers without one (Llama-3)",
                     tj_path);
        goto fail;
    }
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    const char *rx = pretokenizer_regex(json_object_get(root, "pre_tokenizer"), tj_path, e);
    if (!rx) goto fail;

    /* ids: vocab + added tokens */
    json_t *added = json_object_get(root, "added_tokens");
    size_t n_added = json_is_array(added) ? json_array_size(added) : 0;
    int64_t max_id = -1;
    size_t text_bytes = 0;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) > 100000000) {
            armo_err_set(e, "%s: vocab entry \"%s\" has a bad id", tj_path, key);
            goto fail;
        }
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
        text_bytes += strlen(key);
    }
    for (size_t i = 0; i < n_added; i++) {
        json_t *a = json_array_get(added, i);
        json_t *id = json_object_get(a, "id");
        const char *content = json_string_value(json_object_get(a, "content"));
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) > 100000000 || !content) {
            armo_err_set(e, "%s: added_tokens[%zu] lacks an id or content", tj_path, i);
            goto fail;
        }
        if (json_is_true(json_object_get(a, "lstrip")) || json_is_true(json_object_get(a, "rstrip")) ||
            json_is_true(json_object_get(a, "single_word"))) {
            armo_err_set(e, "%s: added token \"%s\" uses lstrip/rstrip/single_word, which armo "
                            "does not support", tj_path, content);
            goto fail;
        }
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
        text_bytes += json_string_length(json_object_get(a, "content"));
    }
    t->n_ids = (int)(max_id + 1);
    t->arena = malloc(text_bytes + 1);
    t->tok_off = malloc((size_t)t->n_ids * sizeof *t->tok_off);
    t->tok_len = calloc((size_t)t->n_ids, sizeof *t->tok_len);
    t->is_added = calloc((size_t)t->n_ids, 1);
    t->is_special = calloc((size_t)t->n_ids, 1);
    t->vocab_mask = table_size_for(json_object_size(vocab)) - 1;
    t->vocab_slots = calloc(t->vocab_mask + 1, sizeof *t->vocab_slots);
    tmp = malloc(4096);
    if (!t->arena || !t->tok_off || !t->tok_len || !t->is_added || !t->is_special ||
        !t->vocab_slots || !tmp) {
        armo_err_set(e, "out of memory loading %s", tj_path);
        goto fail;
    }
    memset(t->tok_off, 0xff, (size_t)t->n_ids * sizeof *t->tok_off);
    int u2b[324];
    build_unicode_to_byte(u2b, 324);
    json_object_foreach(vocab, key, val) {
        int32_t id = (int32_t)json_integer_value(val);
        size_t klen = strlen(key);
        if (klen > 4096) {
            armo_err_set(e, "%s: vocab entry of %zu bytes is too long", tj_path, klen);
            goto fail;
        }
        long nb = bytelevel_to_bytes(u2b, key, klen, tmp);
        if (nb < 0) {
            armo_err_set(e, "%s: vocab entry \"%s\" is not in the byte-level alphabet (not a "
                            "byte-level BPE vocabulary)", tj_path, key);
            goto fail;
        }
        if (t->tok_off[id] != UINT32_MAX) {
            armo_err_set(e, "%s: id %d appears twice in the vocab", tj_path, id);
            goto fail;
        }
        t->tok_off[id] = (uint32_t)t->arena_len;
        t->tok_len[id] = (uint32_t)nb;
        memcpy(t->arena + t->arena_len, tmp, (size_t)nb);
        t->arena_len += (size_t)nb;
        if (vocab_find(t, tmp, (size_t)nb) >= 0) {
            armo_err_set(e, "%s: vocab entry \"%s\" appears twice", tj_path, key);
            goto fail;
        }
        vocab_insert(t, id);
        if (nb == 1) t->byte_id[tmp[0]] = id;
    }

    /* merges */
    size_t n_merges = json_array_size(merges);
    t->merge_mask = table_size_for(n_merges) - 1;
    t->merges = malloc((t->merge_mask + 1) * sizeof *t->merges);
    if (!t->merges) {
        armo_err_set(e, "out of memory loading %s", tj_path);
        goto fail;
    }
    for (uint64_t i = 0; i <= t->merge_mask; i++) t->merges[i].key = MERGE_EMPTY;
    for (size_t i = 0; i < n_merges; i++) {
        json_t *m = json_array_get(merges, i);
        const char *a, *b;
        size_t alen, blen;
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                armo_err_set(e, "%s: merges[%zu] \"%s\" is not \"left right\"", tj_path, i, s);
                goto fail;
            }
            a = s;
            alen = (size_t)(sp - s);
            b = sp + 1;
            blen = strlen(b);
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            alen = strlen(a);
            blen = strlen(b);
        } else {
            armo_err_set(e, "%s: merges[%zu] is neither \"left right\" nor [left, right]", tj_path, i);
            goto fail;
        }
        long na = alen < 1024 ? bytelevel_to_bytes(u2b, a, alen, tmp) : -1;
        long nb = na >= 0 && blen < 1024 ? bytelevel_to_bytes(u2b, b, blen, tmp + na) : -1;
        int32_t ia = na >= 0 ? vocab_find(t, tmp, (size_t)na) : -1;
        int32_t ib = nb >= 0 ? vocab_find(t, tmp + na, (size_t)nb) : -1;
        int32_t inew = nb >= 0 ? vocab_find(t, tmp, (size_t)(na + nb)) : -1;
        if (ia < 0 || ib < 0 || inew < 0) {
            armo_err_set(e, "%s: merges[%zu] (%.*s + %.*s) refers to a token missing from the vocab",
                         tj_path, i, (int)alen, a, (int)blen, b);
            goto fail;
        }
        merge_put(t, ia, ib, (uint32_t)i, inew);
    }

    /* added tokens */
    t->added = calloc(n_added ? n_added : 1, sizeof *t->added);
    t->added_mask = table_size_for(n_added) - 1;
    t->added_slots = calloc(t->added_mask + 1, sizeof *t->added_slots);
    if (!t->added || !t->added_slots) {
        armo_err_set(e, "out of memory loading %s", tj_path);
        goto fail;
    }
    for (size_t i = 0; i < n_added; i++) {
        json_t *a = json_array_get(added, i);
        int32_t id = (int32_t)json_integer_value(json_object_get(a, "id"));
        json_t *cj = json_object_get(a, "content");
        size_t clen = json_string_length(cj);
        if (clen == 0) {
            armo_err_set(e, "%s: added token %d has empty content", tj_path, id);
            goto fail;
        }
        char *copy = t->arena + t->arena_len; /* the matcher's copy */
        memcpy(copy, json_string_value(cj), clen);
        t->arena_len += clen;
        if (t->tok_off[id] == UINT32_MAX || t->is_added[id]) {
            t->tok_off[id] = (uint32_t)(copy - t->arena);
            t->tok_len[id] = (uint32_t)clen;
        } /* else: an added token that is also a vocab entry keeps the vocab's bytes */
        t->is_added[id] = 1;
        t->is_special[id] = json_is_true(json_object_get(a, "special"));
        added_token *at = &t->added[t->n_added++];
        at->id = id;
        at->special = t->is_special[id];
        at->len = (uint32_t)clen;
        at->content = copy;
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added_len_desc);
    for (int i = 0; i < t->n_added; i++) {
        added_token *at = &t->added[i];
        if (added_find(t, at->content, at->len) >= 0) continue; /* duplicate content: first wins */
        uint64_t h = hash_bytes((const unsigned char *)at->content, at->len) & t->added_mask;
        while (t->added_slots[h]) h = (h + 1) & t->added_mask;
        t->added_slots[h] = (uint32_t)i + 1;
        unsigned char f = (unsigned char)at->content[0];
        t->added_first[f] = 1;
        if (!at->special) t->n_nonspecial++;
        int have = 0;
        for (int k = 0; k < t->n_added_lens; k++) have |= t->added_lens[k] == at->len;
        if (!have) {
            if (t->n_added_lens == 64) {
                armo_err_set(e, "%s: too many distinct added-token lengths", tj_path);
                goto fail;
            }
            t->added_lens[t->n_added_lens++] = at->len; /* descending, as added is sorted */
        }
    }

    /* regex */
    int errcode;
    PCRE2_SIZE erroff;
    t->re = pcre2_compile((PCRE2_SPTR)rx, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &errcode,
                          &erroff, NULL);
    if (!t->re) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(errcode, buf, sizeof buf);
        armo_err_set(e, "%s: pre-tokenizer regex does not compile at offset %zu: %s", tj_path,
                     (size_t)erroff, (char *)buf);
        goto fail;
    }
    t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;

    /* tokenizer_config.json */
    const char *bos = "<|begin_of_text|>", *eos = NULL;
    if (cfg_path) {
        cfg = json_load_file(cfg_path, 0, &je);
        if (!cfg) {
            armo_err_set(e, "%s:%d:%d: cannot parse tokenizer_config.json: %s", cfg_path, je.line,
                         je.column, je.text);
            goto fail;
        }
        json_t *b = json_object_get(cfg, "bos_token");
        if (b) bos = json_str_or_content(b);
        eos = json_str_or_content(json_object_get(cfg, "eos_token"));
        json_t *ct = json_object_get(cfg, "chat_template");
        const char *tmpl = NULL;
        if (json_is_string(ct)) {
            tmpl = json_string_value(ct);
        } else if (json_is_array(ct)) {
            size_t i;
            json_t *it;
            json_array_foreach(ct, i, it) {
                const char *nm = json_string_value(json_object_get(it, "name"));
                if (nm && !strcmp(nm, "default"))
                    tmpl = json_string_value(json_object_get(it, "template"));
            }
        }
        if (tmpl && !(t->chat_template = strdup(tmpl))) {
            armo_err_set(e, "out of memory");
            goto fail;
        }
    }
    {
        /* newer transformers save the template beside, as chat_template.jinja (it wins) */
        char jpath[4096];
        const char *slash = strrchr(tj_path, '/');
        int dl = slash ? (int)(slash - tj_path) : 0;
        snprintf(jpath, sizeof jpath, "%.*s%schat_template.jinja", dl, tj_path, slash ? "/" : "");
        FILE *probe = fopen(jpath, "rb");
        if (probe) {
            fclose(probe);
            size_t jl;
            char *jt = read_file(jpath, &jl, e);
            if (!jt) goto fail;
            free(t->chat_template);
            t->chat_template = jt;
        }
    }
    if (bos) t->bos_id = armo_tokenizer_token_id(t, bos, strlen(bos));
    if (eos) t->eos_id = armo_tokenizer_token_id(t, eos, strlen(eos));

    free(tmp);
    json_decref(root);
    json_decref(cfg);
    return t;
fail:
    free(tmp);
    json_decref(root);
    json_decref(cfg);
    armo_tokenizer_free(t);
    return NULL;
}

armo_tokenizer *armo_tokenizer_load(const char *model_dir, armo_err *e) {
    char tj[4096], cfg[4096];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", model_dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", model_dir);
    FILE *f = fopen(tj, "rb");
    if (!f) {
        armo_err_set(e, "%s: no tokenizer.json (%s); pass pre-tokenized input_ids or a model "
                        "directory that has the tokenizer files", model_dir, strerror(errno));
        return NULL;
    }
    fclose(f);
    f = fopen(cfg, "rb");
    int have_cfg = f != NULL;
    if (f) fclose(f);
    armo_tokenizer *t = armo_tokenizer_load_files(tj, have_cfg ? cfg : NULL, e);
    if (!t) armo_err_prefix(e, "loading the tokenizer of %s", model_dir);
    return t;
}
