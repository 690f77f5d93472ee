/* tokenizer_load.c — builds an armo_tokenizer from tokenizer.json and
 * tokenizer_config.json, and frees it.
 *
 * Shape: armo_tokenizer_load_files runs one static function per part of the
 * files, in order, over a load_ctx (the parsed tokenizer.json, the GPT-2
 * byte-level alphabet, a conversion buffer): what kind of tokenizer it is
 * (byte-level BPE only, no normalizer, a Llama-3 or GPT-2 pre-tokenizer),
 * the ids and the size of the tables, the vocab (the byte-level alphabet
 * undone, so keys are raw bytes), the merges, the added tokens, the regex;
 * then tokenizer_config.json (bos / eos, chat template) and a
 * chat_template.jinja beside tokenizer.json.  A failing step sets a message
 * naming the file and the key and returns -1; the partly built tokenizer is
 * then freed by armo_tokenizer_free, which copes with whatever was not built
 * yet.  Nothing built here is written again after load (see tokenizer.c). */
#include "host/text/tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/text/chat_template.h"
#include "host/text/tokenizer_internal.h"

/* ---- freeing ------------------------------------------------------------ */

void armo_tokenizer_free(armo_tokenizer *t) {
    if (!t) return;
    armo_tok_pool_free(t);
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
    free(t->chat_template_path);
    free(t->dir);
    free(t);
}

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
        int printable =
            (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
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

static void vocab_insert(armo_tokenizer *t, int32_t id) {
    const unsigned char *p = (const unsigned char *)t->arena + t->tok_off[id];
    uint64_t h = hash_bytes(p, t->tok_len[id]) & t->vocab_mask;
    while (t->vocab_slots[h]) h = (h + 1) & t->vocab_mask;
    t->vocab_slots[h] = (uint32_t)id + 1;
}

static void merge_put(armo_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t new_id) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = mix64(key) & t->merge_mask;
    for (;;) {
        merge_slot *s = &t->merges[h];
        /* a later duplicate overwrites, as HF's HashMap collect */
        if (s->key == MERGE_EMPTY || s->key == key) {
            s->key = key;
            s->rank = rank;
            s->new_id = new_id;
            return;
        }
        h = (h + 1) & t->merge_mask;
    }
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

/* ---- tokenizer.json ----------------------------------------------------- */

typedef struct {
    const char *path;               /* tokenizer.json, named in every message */
    json_t *root;                   /* the parsed file; everything below points into it */
    json_t *vocab, *merges, *added; /* model.vocab, model.merges, added_tokens */
    size_t n_added;
    const char *rx;     /* the pre-tokenizer regex */
    unsigned char *tmp; /* 4096 bytes: vocab / merge strings converted to raw bytes */
    int u2b[324];       /* GPT-2 byte-level alphabet: code point → byte, or -1 */
} load_ctx;

/* Parses tokenizer.json and checks it is a tokenizer armo runs: a BPE model
 * without the options armo lacks, no normalizer, and a supported
 * pre-tokenizer (its regex goes to c->rx). */
static int check_kind(armo_tokenizer *t, load_ctx *c, armo_err *e) {
    json_error_t je;
    c->root = json_load_file(c->path, 0, &je);
    if (!c->root)
        return armo_err_set(e, "%s:%d:%d: cannot parse tokenizer.json: %s", c->path, je.line,
                            je.column, je.text);
    json_t *model = json_object_get(c->root, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    c->vocab = json_object_get(model, "vocab");
    c->merges = json_object_get(model, "merges");
    if (!mtype || strcmp(mtype, "BPE") || !json_is_object(c->vocab) || !json_is_array(c->merges))
        return armo_err_set(e, "%s: model is not a BPE model with vocab and merges (armo "
                               "supports Llama-3 byte-level BPE tokenizers)", c->path);
    if (json_is_true(json_object_get(model, "byte_fallback")) ||
        json_is_string(json_object_get(model, "continuing_subword_prefix")) ||
        json_is_string(json_object_get(model, "end_of_word_suffix")) ||
        (json_is_number(json_object_get(model, "dropout")) &&
         json_number_value(json_object_get(model, "dropout")) > 0))
        return armo_err_set(e, "%s: BPE options byte_fallback / continuing_subword_prefix / "
                               "end_of_word_suffix / dropout are not supported", c->path);
    json_t *norm = json_object_get(c->root, "normalizer");
    if (norm && !json_is_null(norm))
        return armo_err_set(e, "%s: a normalizer is set; armo supports tokenizers without one "
                               "(Llama-3)", c->path);
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    c->rx = pretokenizer_regex(json_object_get(c->root, "pre_tokenizer"), c->path, e);
    if (!c->rx) return -1;
    c->added = json_object_get(c->root, "added_tokens");
    c->n_added = json_is_array(c->added) ? json_array_size(c->added) : 0;
    return 0;
}

/* Checks the id of every vocab entry and added token, and the added tokens'
 * options; sets t->n_ids (one more than the largest id) and *text_bytes (the
 * arena's size: all vocab keys and added-token contents). */
static int count_ids(armo_tokenizer *t, const load_ctx *c, size_t *text_bytes, armo_err *e) {
    int64_t max_id = -1;
    size_t bytes = 0;
    const char *key;
    json_t *val;
    json_object_foreach(c->vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) > 100000000)
            return armo_err_set(e, "%s: vocab entry \"%s\" has a bad id", c->path, key);
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
        bytes += strlen(key);
    }
    for (size_t i = 0; i < c->n_added; i++) {
        json_t *a = json_array_get(c->added, i);
        json_t *id = json_object_get(a, "id");
        const char *content = json_string_value(json_object_get(a, "content"));
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) > 100000000 || !content)
            return armo_err_set(e, "%s: added_tokens[%zu] lacks an id or content", c->path, i);
        if (json_is_true(json_object_get(a, "lstrip")) ||
            json_is_true(json_object_get(a, "rstrip")) ||
            json_is_true(json_object_get(a, "single_word")))
            return armo_err_set(e, "%s: added token \"%s\" uses lstrip/rstrip/single_word, which "
                                   "armo does not support", c->path, content);
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
        bytes += json_string_length(json_object_get(a, "content"));
    }
    t->n_ids = (int)(max_id + 1);
    *text_bytes = bytes;
    return 0;
}

/* Allocates the id → bytes tables, the vocab hash table and c->tmp. */
static int alloc_tables(armo_tokenizer *t, load_ctx *c, size_t text_bytes, armo_err *e) {
    t->arena = malloc(text_bytes + 1);
    t->tok_off = malloc((size_t)t->n_ids * sizeof *t->tok_off);
    t->tok_len = calloc((size_t)t->n_ids, sizeof *t->tok_len);
    t->is_added = calloc((size_t)t->n_ids, 1);
    t->is_special = calloc((size_t)t->n_ids, 1);
    t->vocab_mask = table_size_for(json_object_size(c->vocab)) - 1;
    t->vocab_slots = calloc(t->vocab_mask + 1, sizeof *t->vocab_slots);
    c->tmp = malloc(4096);
    if (!t->arena || !t->tok_off || !t->tok_len || !t->is_added || !t->is_special ||
        !t->vocab_slots || !c->tmp)
        return armo_err_set(e, "out of memory loading %s", c->path);
    memset(t->tok_off, 0xff, (size_t)t->n_ids * sizeof *t->tok_off);
    return 0;
}

/* model.vocab: each entry's raw bytes into the arena and the vocab table;
 * single bytes also into t->byte_id. */
static int read_vocab(armo_tokenizer *t, load_ctx *c, armo_err *e) {
    const char *key;
    json_t *val;
    json_object_foreach(c->vocab, key, val) {
        int32_t id = (int32_t)json_integer_value(val);
        size_t klen = strlen(key);
        if (klen > 4096)
            return armo_err_set(e, "%s: vocab entry of %zu bytes is too long", c->path, klen);
        long nb = bytelevel_to_bytes(c->u2b, key, klen, c->tmp);
        if (nb < 0)
            return armo_err_set(e, "%s: vocab entry \"%s\" is not in the byte-level alphabet "
                                   "(not a byte-level BPE vocabulary)", c->path, key);
        if (t->tok_off[id] != UINT32_MAX)
            return armo_err_set(e, "%s: id %d appears twice in the vocab", c->path, id);
        t->tok_off[id] = (uint32_t)t->arena_len;
        t->tok_len[id] = (uint32_t)nb;
        memcpy(t->arena + t->arena_len, c->tmp, (size_t)nb);
        t->arena_len += (size_t)nb;
        if (vocab_find(t, c->tmp, (size_t)nb) >= 0)
            return armo_err_set(e, "%s: vocab entry \"%s\" appears twice", c->path, key);
        vocab_insert(t, id);
        if (nb == 1) t->byte_id[c->tmp[0]] = id;
    }
    return 0;
}

/* The two sides of merges[i], written "left right" or [left, right]. */
static int merge_sides(const load_ctx *c, size_t i, const char **a, size_t *alen,
                       const char **b, size_t *blen, armo_err *e) {
    json_t *m = json_array_get(c->merges, i);
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        const char *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return armo_err_set(e, "%s: merges[%zu] \"%s\" is not \"left right\"", c->path, i,
                                s);
        *a = s;
        *alen = (size_t)(sp - s);
        *b = sp + 1;
        *blen = strlen(*b);
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        *alen = strlen(*a);
        *blen = strlen(*b);
        return 0;
    }
    return armo_err_set(e, "%s: merges[%zu] is neither \"left right\" nor [left, right]",
                        c->path, i);
}

/* model.merges: the merge table, rank = position in the list; every side and
 * every result must be a vocab entry. */
static int read_merges(armo_tokenizer *t, load_ctx *c, armo_err *e) {
    size_t n_merges = json_array_size(c->merges);
    t->merge_mask = table_size_for(n_merges) - 1;
    t->merges = malloc((t->merge_mask + 1) * sizeof *t->merges);
    if (!t->merges) return armo_err_set(e, "out of memory loading %s", c->path);
    for (uint64_t i = 0; i <= t->merge_mask; i++) t->merges[i].key = MERGE_EMPTY;
    unsigned char *tmp = c->tmp;
    for (size_t i = 0; i < n_merges; i++) {
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        if (merge_sides(c, i, &a, &alen, &b, &blen, e)) return -1;
        long na = alen < 1024 ? bytelevel_to_bytes(c->u2b, a, alen, tmp) : -1;
        long nb = na >= 0 && blen < 1024 ? bytelevel_to_bytes(c->u2b, b, blen, tmp + na) : -1;
        int32_t ia = na >= 0 ? vocab_find(t, tmp, (size_t)na) : -1;
        int32_t ib = nb >= 0 ? vocab_find(t, tmp + na, (size_t)nb) : -1;
        int32_t inew = nb >= 0 ? vocab_find(t, tmp, (size_t)(na + nb)) : -1;
        if (ia < 0 || ib < 0 || inew < 0)
            return armo_err_set(e, "%s: merges[%zu] (%.*s + %.*s) refers to a token missing "
                                   "from the vocab", c->path, i, (int)alen, a, (int)blen, b);
        merge_put(t, ia, ib, (uint32_t)i, inew);
    }
    return 0;
}

/* added_tokens: contents into the arena (an id that is also a vocab entry
 * keeps the vocab's bytes for id → bytes) and into t->added. */
static int read_added_tokens(armo_tokenizer *t, load_ctx *c, armo_err *e) {
    t->added = calloc(c->n_added ? c->n_added : 1, sizeof *t->added);
    t->added_mask = table_size_for(c->n_added) - 1;
    t->added_slots = calloc(t->added_mask + 1, sizeof *t->added_slots);
    if (!t->added || !t->added_slots) return armo_err_set(e, "out of memory loading %s", c->path);
    for (size_t i = 0; i < c->n_added; i++) {
        json_t *a = json_array_get(c->added, i);
        int32_t id = (int32_t)json_integer_value(json_object_get(a, "id"));
        json_t *cj = json_object_get(a, "content");
        size_t clen = json_string_length(cj);
        if (clen == 0) return armo_err_set(e, "%s: added token %d has empty content", c->path, id);
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
    return 0;
}

/* Sorts t->added longest first and builds what the added-token split reads:
 * the hash set over contents (of equal contents the first wins), the first
 * bytes, the distinct lengths (descending) and the non-special count. */
static int index_added_tokens(armo_tokenizer *t, const load_ctx *c, armo_err *e) {
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
            if (t->n_added_lens == 64)
                return armo_err_set(e, "%s: too many distinct added-token lengths", c->path);
            t->added_lens[t->n_added_lens++] = at->len; /* descending, as added is sorted */
        }
    }
    return 0;
}

/* The pre-tokenizer regex, UTF + UCP, JIT-compiled when PCRE2 can. */
static int compile_regex(armo_tokenizer *t, const load_ctx *c, armo_err *e) {
    int errcode;
    PCRE2_SIZE erroff;
    t->re = pcre2_compile((PCRE2_SPTR)c->rx, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                          &errcode, &erroff, NULL);
    if (!t->re) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(errcode, buf, sizeof buf);
        return armo_err_set(e, "%s: pre-tokenizer regex does not compile at offset %zu: %s",
                            c->path, (size_t)erroff, (char *)buf);
    }
    t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

/* ---- tokenizer_config.json and the chat template ------------------------ */

/* tokenizer_config.json's chat_template: a string, or the entry named
 * "default" of a list of {name, template} (the last such); NULL if none. */
static const char *config_chat_template(json_t *cfg) {
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
    return tmpl;
}

/* Reads tokenizer_config.json (cfg_path; NULL: none) for bos_token,
 * eos_token and the chat template, and looks bos and eos up (bos defaults to
 * "<|begin_of_text|>"; a bos_token that is neither a string nor {content}
 * means none). */
static int read_config(armo_tokenizer *t, const char *cfg_path, armo_err *e) {
    const char *bos = "<|begin_of_text|>", *eos = NULL;
    json_t *cfg = NULL;
    if (cfg_path) {
        json_error_t je;
        cfg = json_load_file(cfg_path, 0, &je);
        if (!cfg)
            return armo_err_set(e, "%s:%d:%d: cannot parse tokenizer_config.json: %s", cfg_path,
                                je.line, je.column, je.text);
        json_t *b = json_object_get(cfg, "bos_token");
        if (b) bos = json_str_or_content(b);
        eos = json_str_or_content(json_object_get(cfg, "eos_token"));
        const char *tmpl = config_chat_template(cfg);
        if (tmpl && (!(t->chat_template = strdup(tmpl)) ||
                     !(t->chat_template_path = strdup(cfg_path)))) {
            json_decref(cfg);
            return armo_err_set(e, "out of memory");
        }
    }
    if (bos) t->bos_id = armo_tokenizer_token_id(t, bos, strlen(bos));
    if (eos) t->eos_id = armo_tokenizer_token_id(t, eos, strlen(eos));
    json_decref(cfg);
    return 0;
}

/* Newer transformers save the template beside tokenizer.json, as
 * chat_template.jinja; when that file exists it wins over the config's. */
static int read_chat_template_jinja(armo_tokenizer *t, const char *tj_path, armo_err *e) {
    char jpath[4096];
    const char *slash = strrchr(tj_path, '/');
    int dl = slash ? (int)(slash - tj_path) : 0;
    snprintf(jpath, sizeof jpath, "%.*s%schat_template.jinja", dl, tj_path, slash ? "/" : "");
    FILE *probe = fopen(jpath, "rb");
    if (!probe) return 0;
    fclose(probe);
    size_t jl;
    char *jt = read_file(jpath, &jl, e);
    if (!jt) return -1;
    free(t->chat_template);
    t->chat_template = jt;
    free(t->chat_template_path);
    if (!(t->chat_template_path = strdup(jpath))) return armo_err_set(e, "out of memory");
    return 0;
}

/* ---- loading ------------------------------------------------------------ */

/* The directory of tokenizer.json, for messages. */
static int set_dir(armo_tokenizer *t, const char *tj_path, armo_err *e) {
    const char *slash = strrchr(tj_path, '/');
    size_t n = slash ? (size_t)(slash - tj_path) : 1;
    if (!(t->dir = malloc(n + 1))) return armo_err_set(e, "out of memory");
    memcpy(t->dir, slash ? tj_path : ".", n);
    t->dir[n] = 0;
    return 0;
}

armo_tokenizer *armo_tokenizer_load_files(const char *tj_path, const char *cfg_path, armo_err *e) {
    armo_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        armo_err_set(e, "out of memory loading %s", tj_path);
        return NULL;
    }
    pthread_mutex_init(&t->pool_lock, NULL);
    t->bos_id = t->eos_id = -1;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    load_ctx c = {.path = tj_path};
    build_unicode_to_byte(c.u2b, 324);
    size_t text_bytes = 0;
    int rc = check_kind(t, &c, e) || count_ids(t, &c, &text_bytes, e) ||
             alloc_tables(t, &c, text_bytes, e) || read_vocab(t, &c, e) ||
             read_merges(t, &c, e) || read_added_tokens(t, &c, e) ||
             index_added_tokens(t, &c, e) || compile_regex(t, &c, e) ||
             read_config(t, cfg_path, e) || read_chat_template_jinja(t, tj_path, e) ||
             set_dir(t, tj_path, e);
    if (!rc) t->chat_kind = armo_chat_template_identify(t->chat_template);
    free(c.tmp);
    json_decref(c.root);
    if (rc) {
        armo_tokenizer_free(t);
        return NULL;
    }
    return t;
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
