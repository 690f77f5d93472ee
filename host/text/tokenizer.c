/* tokenizer.c — Llama-3 byte-level BPE, exact to Hugging Face `tokenizers`:
 * encoding and lookups.
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
 * the same test) so ties and odd cases come out identical.  Building those
 * tables from tokenizer.json is tokenizer_load.c's job; the struct and the
 * lookups both files need are in tokenizer_internal.h. */
#include "host/text/tokenizer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/tokenizer_internal.h"

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

/* ---- merge table -------------------------------------------------------- */

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

void armo_tok_pool_free(armo_tokenizer *t) {
    while (t->pool) {
        scratch *s = t->pool;
        t->pool = s->next_free;
        scratch_free(s);
    }
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
    if (!c || !pv || !nx || !al || !hp)
        return armo_err_set(e, "out of memory for a %zu-byte piece", n);
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
            if (m2 && heap_push(s, &hn, (heap_item){m2->rank, (uint32_t)pp, m2->new_id}, e))
                return -1;
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
const char *armo_tokenizer_chat_template_path(const armo_tokenizer *t) {
    return t->chat_template_path;
}
const char *armo_tokenizer_dir(const armo_tokenizer *t) { return t->dir ? t->dir : "."; }
int armo_tokenizer_chat_kind(const armo_tokenizer *t) { return t->chat_kind; }
