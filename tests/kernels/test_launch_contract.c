/* test_launch_contract.c — the argument contract of every launcher of
 * kernels/armo_kernels.h, none of which the numeric tests reach:
 *   (a) an empty problem (n, m or nseq 0) returns cudaSuccess and launches
 *       nothing: its poisoned (0xFF) outputs (and in-place operands, filled
 *       with finite values) are downloaded and compared byte for byte;
 *   (b) each bad argument the header or the launcher documents returns
 *       cudaErrorInvalidValue (the cuBLASLt layer: -1 and a message), again
 *       with the outputs untouched.  The refused calls get valid small device
 *       buffers and n >= 1 where that is possible, so that a check that went
 *       missing launches a kernel: its writes show in the poisoned outputs,
 *       its reads past the small buffers fault (AddressSanitizer under the
 *       emulator), and its bad configuration in cudaGetLastError at the end.
 * Runs in a second on the GPU and under the emulator alike (nothing is sized
 * by GPU_TEST_EMULATED: no case does real work). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/armo_kernels.h"
#include "tests/util/gpu_test_util.h"
#include "tests/util/test_util.h"

#define EXPECT(call, want)                                                                  \
    do {                                                                                    \
        const cudaError_t st_ = (call);                                                     \
        CHECK(st_ == (want), "%s returned %d (%s), expected %s", #call, (int)st_,          \
              cudaGetErrorString(st_), #want);                                              \
    } while (0)
#define REFUSED(call) EXPECT(call, cudaErrorInvalidValue)
#define ACCEPTED(call) EXPECT(call, cudaSuccess)

/* Inputs are finite (every byte 0x3F: bf16 0x3F3F = 0.746, fp32 0.747), so
 * that a kernel that did run writes finite values, never the poison's bit
 * pattern (NaN in, NaN out could leave 0xFF bytes as they were). */
#define INPUT_BYTE 0x3F
static void *gpu_alloc_input(size_t bytes) {
    void *p = gpu_alloc(bytes);
    GPU_CHECK(cudaMemset(p, INPUT_BYTE, bytes));
    return p;
}

/* Every byte of the device buffer still `byte` (0xFF: as gpu_alloc_poisoned
 * left it; INPUT_BYTE: an in-place operand as gpu_alloc_input left it). */
static void check_bytes(const char *what, const void *dev, size_t bytes, unsigned char byte) {
    unsigned char *h = gpu_host_alloc(bytes);
    gpu_download(h, dev, bytes);
    size_t changed = 0, first = 0;
    for (size_t i = 0; i < bytes; i++)
        if (h[i] != byte && changed++ == 0) first = i;
    CHECK(changed == 0, "%s: %zu of %zu bytes written (first at byte %zu)", what, changed,
          bytes, first);
    free(h);
}
#define check_untouched(what, dev, bytes) check_bytes((what), (dev), (bytes), 0xFF)

#define H 64      /* hidden of the small cases */
#define ROWS 4    /* tokens / rows of the small cases */

static void test_embed(void) {
    const int vocab = 16;
    int32_t ids_h[ROWS] = {0, 1, 2, 3};
    int32_t *ids = gpu_upload(ids_h, sizeof ids_h);
    uint16_t *table = gpu_alloc_input((size_t)vocab * H * 2);
    uint16_t *out = gpu_alloc_poisoned((size_t)ROWS * H * 2);
    ACCEPTED(armo_embed_bf16(out, table, ids, 0, H, vocab, 0));
    REFUSED(armo_embed_bf16(out, table, ids, -1, H, vocab, 0));
    REFUSED(armo_embed_bf16(out, table, ids, ROWS, 0, vocab, 0));
    REFUSED(armo_embed_bf16(out, table, ids, ROWS, -8, vocab, 0));
    REFUSED(armo_embed_bf16(out, table, ids, ROWS, H, 0, 0));
    REFUSED(armo_embed_bf16(out, table, ids, ROWS, H, -1, 0));
    check_untouched("embed", out, (size_t)ROWS * H * 2);
    gpu_free(ids); gpu_free(table); gpu_free(out);
}

static void test_rmsnorm(void) {
    const size_t bytes = (size_t)ROWS * H * 2;
    uint16_t *x = gpu_alloc_input(bytes), *w = gpu_alloc_input(H * 2);
    uint16_t *out = gpu_alloc_poisoned(bytes), *res = gpu_alloc_input(bytes);
    const float nan = nanf("");
    ACCEPTED(armo_rmsnorm_bf16(out, x, w, 0, H, 1e-5f, 0));
    REFUSED(armo_rmsnorm_bf16(out, x, w, -1, H, 1e-5f, 0));
    REFUSED(armo_rmsnorm_bf16(out, x, w, ROWS, 0, 1e-5f, 0));
    REFUSED(armo_rmsnorm_bf16(out, x, w, ROWS, -H, 1e-5f, 0));
    REFUSED(armo_rmsnorm_bf16(out, x, w, ROWS, H, -1e-6f, 0));
    REFUSED(armo_rmsnorm_bf16(out, x, w, ROWS, H, nan, 0));
    REFUSED(armo_rmsnorm_bf16(out, x, w, 0, H, nan, 0)); /* checked before n == 0 */
    check_untouched("rmsnorm out", out, bytes);

    /* the fused residual add writes residual too: both untouched */
    ACCEPTED(armo_add_rmsnorm_bf16(res, x, out, w, 0, H, 1e-5f, 0));
    REFUSED(armo_add_rmsnorm_bf16(res, x, out, w, -1, H, 1e-5f, 0));
    REFUSED(armo_add_rmsnorm_bf16(res, x, out, w, ROWS, 0, 1e-5f, 0));
    REFUSED(armo_add_rmsnorm_bf16(res, x, out, w, ROWS, -H, 1e-5f, 0));
    REFUSED(armo_add_rmsnorm_bf16(res, x, out, w, ROWS, H, -1e-6f, 0));
    REFUSED(armo_add_rmsnorm_bf16(res, x, out, w, ROWS, H, nan, 0));
    check_untouched("add_rmsnorm out", out, bytes);
    check_bytes("add_rmsnorm residual (in place)", res, bytes, INPUT_BYTE);
    /* its fp32-output twin: the same checks, both outputs untouched */
    float *out32 = gpu_alloc_poisoned((size_t)ROWS * H * 4);
    ACCEPTED(armo_add_rmsnorm_f32_bf16(res, x, out32, w, 0, H, 1e-5f, 0));
    REFUSED(armo_add_rmsnorm_f32_bf16(res, x, out32, w, -1, H, 1e-5f, 0));
    REFUSED(armo_add_rmsnorm_f32_bf16(res, x, out32, w, ROWS, 0, 1e-5f, 0));
    REFUSED(armo_add_rmsnorm_f32_bf16(res, x, out32, w, ROWS, H, -1e-6f, 0));
    REFUSED(armo_add_rmsnorm_f32_bf16(res, x, out32, w, ROWS, H, nan, 0));
    check_untouched("add_rmsnorm_f32 out", out32, (size_t)ROWS * H * 4);
    check_bytes("add_rmsnorm_f32 residual (in place)", res, bytes, INPUT_BYTE);
    gpu_free(out32);
    gpu_free(x); gpu_free(w); gpu_free(out); gpu_free(res);
}

static void test_rope(void) {
    const int nh = 2, nkv = 1, hd = 64;
    const size_t qb = (size_t)ROWS * nh * hd * 2, kb = (size_t)ROWS * nkv * hd * 2;
    uint16_t *q = gpu_alloc_input(qb), *k = gpu_alloc_input(kb); /* in place */
    int32_t pos_h[ROWS] = {0, 1, 2, 3};
    int32_t *pos = gpu_upload(pos_h, sizeof pos_h);
    float *inv = gpu_alloc_input(hd / 2 * 4);
    ACCEPTED(armo_rope_bf16(q, k, 0, nh, nkv, hd, pos, inv, 0));
    /* no heads at all: nothing to rotate, q and k may both be NULL */
    ACCEPTED(armo_rope_bf16(NULL, NULL, ROWS, 0, 0, hd, pos, inv, 0));
    REFUSED(armo_rope_bf16(q, k, -1, nh, nkv, hd, pos, inv, 0));
    REFUSED(armo_rope_bf16(q, k, ROWS, -1, nkv, hd, pos, inv, 0));
    REFUSED(armo_rope_bf16(q, k, ROWS, nh, -1, hd, pos, inv, 0));
    REFUSED(armo_rope_bf16(q, k, ROWS, nh, nkv, 0, pos, inv, 0));
    REFUSED(armo_rope_bf16(q, k, ROWS, nh, nkv, -64, pos, inv, 0));
    REFUSED(armo_rope_bf16(q, k, ROWS, nh, nkv, 63, pos, inv, 0));       /* odd head_dim */
    REFUSED(armo_rope_bf16(q, NULL, ROWS, nh, 1, hd, pos, inv, 0));      /* k NULL, nkv 1 */
    REFUSED(armo_rope_bf16(NULL, k, ROWS, 1, nkv, hd, pos, inv, 0));     /* q NULL, nh 1 */
    REFUSED(armo_rope_bf16(q, k, 0, nh, nkv, 63, pos, inv, 0));          /* before n == 0 */
    /* strided: a row stride below the heads' width is refused */
    ACCEPTED(armo_rope_strided_bf16(q, nh * hd, k, nkv * hd, 0, nh, nkv, hd, pos, inv, 0));
    REFUSED(armo_rope_strided_bf16(q, nh * hd - 1, k, nkv * hd, ROWS, nh, nkv, hd, pos, inv, 0));
    REFUSED(armo_rope_strided_bf16(q, nh * hd, k, nkv * hd - 2, ROWS, nh, nkv, hd, pos, inv, 0));
    REFUSED(armo_rope_strided_bf16(q, 0, k, nkv * hd, 0, nh, nkv, hd, pos, inv, 0));
    check_bytes("rope q", q, qb, INPUT_BYTE);
    check_bytes("rope k", k, kb, INPUT_BYTE);
    gpu_free(q); gpu_free(k); gpu_free(pos); gpu_free(inv);
}

typedef cudaError_t (*attn_fn)(uint16_t *, const uint16_t *, const uint16_t *, const uint16_t *,
                               const int32_t *, int, int, int, int, int, int, cudaStream_t);

/* One token in one sequence; buffers for nh 4 x hd 64 (and nkv <= 4). */
static void test_attention(void) {
    const int nh = 4, nkv = 2, hd = 64;
    const size_t qb = (size_t)nh * hd * 2; /* one token */
    uint16_t *q = gpu_alloc_input(qb), *k = gpu_alloc_input(qb), *v = gpu_alloc_input(qb);
    uint16_t *out = gpu_alloc_poisoned(qb);
    int32_t cu_h[2] = {0, 1};
    int32_t *cu = gpu_upload(cu_h, sizeof cu_h);
    const struct {
        const char *name;
        attn_fn fn;
    } fns[4] = {{"dispatcher", armo_attention_bf16},
                {"flash", armo_attention_flash_bf16},
                {"simple", armo_attention_simple_bf16},
                {"pipelined", armo_attention_pipelined_bf16}};
    for (int f = 0; f < 4; f++) {
        attn_fn A = fns[f].fn;
        printf("attention %s\n", fns[f].name);
        /* empty: no tokens, or no sequences */
        ACCEPTED(A(out, q, k, v, cu, 0, 0, 0, nh, nkv, hd, 0));
        ACCEPTED(A(out, q, k, v, cu, 1, 0, 0, nh, nkv, hd, 0));
        ACCEPTED(A(out, q, k, v, cu, 0, 1, 1, nh, nkv, hd, 0));
        /* the checks every variant shares */
        REFUSED(A(out, q, k, v, cu, -1, 1, 1, nh, nkv, hd, 0));
        REFUSED(A(out, q, k, v, cu, 1, -1, 1, nh, nkv, hd, 0));
        REFUSED(A(out, q, k, v, cu, 1, 1, -1, nh, nkv, hd, 0));
        REFUSED(A(out, q, k, v, cu, 1, 1, 1, 0, nkv, hd, 0));
        REFUSED(A(out, q, k, v, cu, 1, 1, 1, -4, nkv, hd, 0));
        REFUSED(A(out, q, k, v, cu, 1, 1, 1, nh, 0, hd, 0));
        REFUSED(A(out, q, k, v, cu, 1, 1, 1, nh, -2, hd, 0));
        REFUSED(A(out, q, k, v, cu, 1, 1, 1, 4, 3, hd, 0)); /* nh % nkv != 0 */
        REFUSED(A(out, q, k, v, cu, 1, 1, 1, nh, nkv, 0, 0));
        REFUSED(A(out, q, k, v, cu, 1, 1, 1, nh, nkv, -64, 0));
        /* grid.y holds the query head: nh 65536 (nkv 1) is over the limit
         * (hd 16: both variants take it); the small buffers would be read far
         * past their end if it launched */
        REFUSED(A(out, q, k, v, cu, 1, 1, 1, 65536, 1, 16, 0));
        REFUSED(A(out, q, k, v, cu, 0, 0, 0, 65536, 1, 16, 0));
    }
    /* simple: any hd up to 256; the dispatcher sends hd 264 there too */
    REFUSED(armo_attention_simple_bf16(out, q, k, v, cu, 1, 1, 1, 1, 1, 264, 0));
    REFUSED(armo_attention_simple_bf16(out, q, k, v, cu, 0, 0, 0, 1, 1, 264, 0));
    REFUSED(armo_attention_bf16(out, q, k, v, cu, 1, 1, 1, 1, 1, 264, 0));
    /* flash: hd 16, 32, 64, 128 only (48 is the simple kernel's, through the
     * dispatcher), and 16-byte aligned base pointers */
    CHECK(!armo_attention_flash_supports(48) && armo_attention_flash_supports(64),
          "flash_supports(48) %d, (64) %d", armo_attention_flash_supports(48),
          armo_attention_flash_supports(64));
    REFUSED(armo_attention_flash_bf16(out, q, k, v, cu, 1, 1, 1, 1, 1, 48, 0));
    REFUSED(armo_attention_flash_bf16(out, q, k, v, cu, 0, 0, 0, 1, 1, 48, 0));
    ACCEPTED(armo_attention_bf16(out, q, k, v, cu, 0, 0, 0, 1, 1, 48, 0));
    REFUSED(armo_attention_flash_bf16(out, q + 1, k, v, cu, 1, 1, 1, nh, nkv, hd, 0));
    REFUSED(armo_attention_flash_bf16(out, q, k + 4, v, cu, 1, 1, 1, nh, nkv, hd, 0));
    REFUSED(armo_attention_flash_bf16(out, q, k, v + 2, cu, 1, 1, 1, nh, nkv, hd, 0));
    REFUSED(armo_attention_flash_bf16(out + 1, q, k, v, cu, 1, 1, 1, nh, nkv, hd, 0));
    /* the alignment is checked before the empty-problem early return */
    REFUSED(armo_attention_flash_bf16(out, q + 1, k, v, cu, 0, 0, 0, nh, nkv, hd, 0));
    if (!armo_attention_use_simple()) /* the dispatcher picks flash (or pipelined) for hd 64 */
        REFUSED(armo_attention_bf16(out, q + 1, k, v, cu, 1, 1, 1, nh, nkv, hd, 0));
    /* pipelined: the flash kernel's head dims and 16-byte rules (cp.async
     * copies 16-byte aligned chunks) */
    REFUSED(armo_attention_pipelined_bf16(out, q, k, v, cu, 1, 1, 1, 1, 1, 48, 0));
    REFUSED(armo_attention_pipelined_bf16(out, q, k, v, cu, 0, 0, 0, 1, 1, 48, 0));
    REFUSED(armo_attention_pipelined_bf16(out, q + 1, k, v, cu, 1, 1, 1, nh, nkv, hd, 0));
    REFUSED(armo_attention_pipelined_bf16(out, q, k + 4, v, cu, 1, 1, 1, nh, nkv, hd, 0));
    REFUSED(armo_attention_pipelined_bf16(out, q, k, v + 2, cu, 1, 1, 1, nh, nkv, hd, 0));
    REFUSED(armo_attention_pipelined_bf16(out + 1, q, k, v, cu, 1, 1, 1, nh, nkv, hd, 0));
    REFUSED(armo_attention_pipelined_bf16(out, q + 1, k, v, cu, 0, 0, 0, nh, nkv, hd, 0));
    /* the general form: strides below the widths, flash strides that break
     * 16-byte rows, an unknown variant, a NULL argument block */
    for (int variant = ARMO_ATTN_AUTO; variant <= ARMO_ATTN_PIPELINED; variant++) {
        armo_attn_args a = {.out = out, .q = q, .k = k, .v = v, .q_stride = nh * hd,
                            .kv_stride = nkv * hd, .cu_seqlens = cu, .prefix_of = NULL,
                            .nseq = 1, .n = 1, .max_seqlen = 1, .nh = nh, .nkv = nkv, .hd = hd};
        armo_attn_args b = a;
        b.q_stride = nh * hd - 8;
        REFUSED(armo_attention_ex_bf16(&b, variant, 0));
        b = a;
        b.kv_stride = nkv * hd - 8;
        REFUSED(armo_attention_ex_bf16(&b, variant, 0));
        b = a;
        b.n = b.nseq = 0;
        ACCEPTED(armo_attention_ex_bf16(&b, variant, 0));
        b.nh = 4, b.nkv = 3;
        REFUSED(armo_attention_ex_bf16(&b, variant, 0));
    }
    {
        armo_attn_args a = {.out = out, .q = q, .k = k, .v = v, .q_stride = nh * hd + 4,
                            .kv_stride = nkv * hd, .cu_seqlens = cu, .prefix_of = NULL,
                            .nseq = 1, .n = 1, .max_seqlen = 1, .nh = nh, .nkv = nkv, .hd = hd};
        REFUSED(armo_attention_ex_bf16(&a, ARMO_ATTN_FLASH, 0)); /* rows not 16-byte */
        REFUSED(armo_attention_ex_bf16(&a, ARMO_ATTN_PIPELINED, 0));
        a.q_stride = nh * hd, a.kv_stride = nkv * hd + 4;
        REFUSED(armo_attention_ex_bf16(&a, ARMO_ATTN_PIPELINED, 0));
        REFUSED(armo_attention_ex_bf16(&a, 7, 0));
        REFUSED(armo_attention_ex_bf16(NULL, ARMO_ATTN_AUTO, 0));
    }
    check_untouched("attention out", out, qb);
    gpu_free(q); gpu_free(k); gpu_free(v); gpu_free(out); gpu_free(cu);
}

static void test_swiglu(void) {
    const int inter = 32;
    uint16_t *gu = gpu_alloc_input((size_t)ROWS * 2 * inter * 2);
    uint16_t *out = gpu_alloc_poisoned((size_t)ROWS * inter * 2);
    ACCEPTED(armo_swiglu_bf16(out, gu, 0, inter, 0));
    REFUSED(armo_swiglu_bf16(out, gu, -1, inter, 0));
    REFUSED(armo_swiglu_bf16(out, gu, ROWS, 0, 0));
    REFUSED(armo_swiglu_bf16(out, gu, ROWS, -inter, 0));
    check_untouched("swiglu out", out, (size_t)ROWS * inter * 2);
    gpu_free(gu); gpu_free(out);
}

static void test_gather(void) {
    int32_t rows_h[ROWS] = {3, 2, 1, 0};
    int32_t *rows = gpu_upload(rows_h, sizeof rows_h);
    uint16_t *x = gpu_alloc_input((size_t)ROWS * H * 2);
    uint16_t *ob = gpu_alloc_poisoned((size_t)ROWS * H * 2);
    float *of = gpu_alloc_poisoned((size_t)ROWS * H * 4);
    ACCEPTED(armo_gather_rows_bf16(ob, x, rows, 0, H, 0));
    REFUSED(armo_gather_rows_bf16(ob, x, rows, -1, H, 0));
    REFUSED(armo_gather_rows_bf16(ob, x, rows, ROWS, 0, 0));
    REFUSED(armo_gather_rows_bf16(ob, x, rows, ROWS, -H, 0));
    ACCEPTED(armo_gather_rows_f32(of, x, rows, 0, H, 0));
    REFUSED(armo_gather_rows_f32(of, x, rows, -1, H, 0));
    REFUSED(armo_gather_rows_f32(of, x, rows, ROWS, 0, 0));
    REFUSED(armo_gather_rows_f32(of, x, rows, ROWS, -H, 0));
    ACCEPTED(armo_gather_rows2_bf16(ob, x, H, ob, x, H, rows, 0, 0));
    REFUSED(armo_gather_rows2_bf16(ob, x, H, ob, x, H, rows, -1, 0));
    REFUSED(armo_gather_rows2_bf16(ob, x, 0, ob, x, H, rows, ROWS, 0));
    REFUSED(armo_gather_rows2_bf16(ob, x, H, ob, x, -H, rows, ROWS, 0));
    check_untouched("gather bf16 out", ob, (size_t)ROWS * H * 2);
    check_untouched("gather f32 out", of, (size_t)ROWS * H * 4);
    gpu_free(rows); gpu_free(x); gpu_free(ob); gpu_free(of);
}

/* Gated head H 8 -> gating 8 -> 16 -> K 4 (two layers), buffers for ONE
 * sequence: a refused call given more sequences would read past them. */
static void test_heads(void) {
    enum { HH = 8, G = 16, K = 4, S = 1 };
    float *reg = gpu_alloc_input(K * HH * 4), *w0 = gpu_alloc_input(G * HH * 4),
          *b0 = gpu_alloc_input(G * 4), *w1 = gpu_alloc_input(K * G * 4),
          *b1 = gpu_alloc_input(K * 4), *tr = gpu_alloc_input(K * K * 4);
    armo_head_params good;
    memset(&good, 0, sizeof good);
    good.hidden = HH;
    good.k = K;
    good.nlayers = 2;
    good.dims[0] = HH;
    good.dims[1] = G;
    good.dims[2] = K;
    good.temperature = 1.0f;
    good.logit_scale = 1.0f;
    good.regression = reg;
    good.gw[0] = w0;
    good.gb[0] = b0;
    good.gw[1] = w1;
    good.gb[1] = b1;
    good.transform = tr;
    CHECK(armo_head_scratch_floats(&good, S) == 2 * S * G, "scratch %zu floats, expected %d",
          armo_head_scratch_floats(&good, S), 2 * S * G);
    CHECK(armo_head_scratch_floats(&good, -1) == 0, "scratch for nseq -1: %zu floats",
          armo_head_scratch_floats(&good, -1));
    float *h_last = gpu_alloc_input(S * HH * 4), *h_prompt = gpu_alloc_input(S * HH * 4);
    float *rewards = gpu_alloc_poisoned(S * K * 4), *gating = gpu_alloc_poisoned(S * K * 4),
          *coefs = gpu_alloc_poisoned(S * K * 4), *score = gpu_alloc_poisoned(S * 4),
          *scratch = gpu_alloc_poisoned(armo_head_scratch_floats(&good, S) * 4);
#define GATED(hw, nseq) \
    armo_gated_head_f32((hw), h_last, h_prompt, (nseq), rewards, gating, coefs, score, scratch, 0)
    ACCEPTED(GATED(&good, 0));
    REFUSED(GATED(NULL, S));
    REFUSED(GATED(&good, -1));
    armo_head_params b;
    b = good; b.k = 0; REFUSED(GATED(&b, S));
    b = good; b.k = -1; REFUSED(GATED(&b, S));
    b = good; b.k = 1025; b.dims[b.nlayers] = 1025; REFUSED(GATED(&b, S)); /* K <= 1024 */
    b = good; b.hidden = 0; b.dims[0] = 0; REFUSED(GATED(&b, S));
    b = good; b.nlayers = 0; REFUSED(GATED(&b, S));
    b = good; b.nlayers = -1; REFUSED(GATED(&b, S));
    b = good; b.nlayers = ARMO_MAX_GATING_LAYERS + 1; REFUSED(GATED(&b, S));
    b = good; b.dims[1] = 0; REFUSED(GATED(&b, S));   /* a hidden gating width 0 */
    b = good; b.dims[1] = -16; REFUSED(GATED(&b, S));
    b = good; b.dims[0] = HH + 8; REFUSED(GATED(&b, S)); /* dims[0] != hidden */
    b = good; b.dims[2] = K + 1; REFUSED(GATED(&b, S));  /* dims[nlayers] != k */
    b = good; b.temperature = 0.0f; REFUSED(GATED(&b, S));
    b = good; b.temperature = -1.0f; REFUSED(GATED(&b, S));
    b = good; b.temperature = nanf(""); REFUSED(GATED(&b, S));
    b = good; b.k = 0; REFUSED(GATED(&b, 0)); /* checked before nseq == 0 */
    /* nseq <= 65535 per call (grid.y of the linear layers): refused before
     * the first launch, with buffers for one sequence */
    REFUSED(GATED(&good, 65536));
#undef GATED
    check_untouched("gated head rewards", rewards, S * K * 4);
    check_untouched("gated head gating", gating, S * K * 4);
    check_untouched("gated head coefficients", coefs, S * K * 4);
    check_untouched("gated head score", score, S * 4);
    check_untouched("gated head scratch", scratch, armo_head_scratch_floats(&good, S) * 4);

    /* single head: scores [nseq, labels] = h_last · Wᵀ */
    float *scores = gpu_alloc_poisoned(S * K * 4);
    ACCEPTED(armo_seqcls_head_f32(reg, K, HH, h_last, 0, scores, 0));
    REFUSED(armo_seqcls_head_f32(reg, 0, HH, h_last, S, scores, 0));
    REFUSED(armo_seqcls_head_f32(reg, -1, HH, h_last, S, scores, 0));
    REFUSED(armo_seqcls_head_f32(reg, K, 0, h_last, S, scores, 0));
    REFUSED(armo_seqcls_head_f32(reg, K, HH, h_last, -1, scores, 0));
    REFUSED(armo_seqcls_head_f32(reg, 0, HH, h_last, 0, scores, 0));
    REFUSED(armo_seqcls_head_f32(reg, K, HH, h_last, 65536, scores, 0));
    check_untouched("seqcls scores", scores, S * K * 4);

    gpu_free(reg); gpu_free(w0); gpu_free(b0); gpu_free(w1); gpu_free(b1); gpu_free(tr);
    gpu_free(h_last); gpu_free(h_prompt); gpu_free(rewards); gpu_free(gating); gpu_free(coefs);
    gpu_free(score); gpu_free(scratch); gpu_free(scores);
}

/* The cuBLASLt layer: 0 / -1 and a message instead of a cudaError_t. */
static void test_gemm_layer(void) {
    armo_err e;
    armo_gemm *g = NULL;
    if (armo_gemm_create(&g, 0, &e) != 0) {
        CHECK(0, "armo_gemm_create: %s", e.msg);
        return;
    }
    const int n = 4, in = 64, out = 64;
    uint16_t *x = gpu_alloc_input((size_t)n * in * 2), *w = gpu_alloc_input((size_t)out * in * 2);
    uint16_t *y = gpu_alloc_poisoned((size_t)n * out * 2);
#define GEMM_REFUSED(gg, nn, ii, oo, text)                                                     \
    do {                                                                                       \
        e.msg[0] = 0;                                                                          \
        CHECK(armo_gemm_bf16((gg), y, x, w, (nn), (ii), (oo), 0, &e) == -1,                    \
              "GEMM n %d in %d out %d%s must be refused", (nn), (ii), (oo), (gg) ? "" : " (g NULL)"); \
        CHECK(test_contains(e.msg, (text)), "GEMM n %d in %d out %d: message '%s', expected '%s'", \
              (nn), (ii), (oo), e.msg, (text));                                                \
    } while (0)
    GEMM_REFUSED(g, -1, in, out, "bad GEMM arguments");
    GEMM_REFUSED(g, n, 0, out, "bad GEMM arguments");
    GEMM_REFUSED(g, n, -in, out, "bad GEMM arguments");
    GEMM_REFUSED(g, n, in, 0, "bad GEMM arguments");
    GEMM_REFUSED(g, n, in, -out, "bad GEMM arguments");
    GEMM_REFUSED((armo_gemm *)NULL, n, in, out, "bad GEMM arguments");
    GEMM_REFUSED(g, n, in, 60, "multiples of 8");
#undef GEMM_REFUSED
    e.msg[0] = 0;
    CHECK(armo_gemm_bf16(g, y, x, w, 0, in, out, 0, &e) == 0, "GEMM n 0: %s", e.msg);
    check_untouched("GEMM refusals and n 0: y", y, (size_t)n * out * 2);

    /* fused weight layouts: every pointer and size checked; dst untouched */
    const int nh = 2, nkv = 1, hd = 8, hidden = 16, inter = 8;
    const size_t qkv_bytes = (size_t)(nh + 2 * nkv) * hd * hidden * 2;
    uint16_t *dst = gpu_alloc_poisoned(qkv_bytes);
    uint16_t *src = gpu_alloc_input((size_t)nh * hd * hidden * 2);
#define QKV_REFUSED(d, q, k, v, a, b_, c, h)                                                   \
    do {                                                                                       \
        e.msg[0] = 0;                                                                          \
        CHECK(armo_build_qkv_weight((d), (q), (k), (v), (a), (b_), (c), (h), 0, &e) == -1,     \
              "QKV weight (%s) must be refused", #d ", " #q ", " #k ", " #v ", " #a ", " #b_ ", " #c ", " #h); \
        CHECK(test_contains(e.msg, "bad QKV weight arguments"), "QKV message: '%s'", e.msg);  \
    } while (0)
    QKV_REFUSED(NULL, src, src, src, nh, nkv, hd, hidden);
    QKV_REFUSED(dst, NULL, src, src, nh, nkv, hd, hidden);
    QKV_REFUSED(dst, src, NULL, src, nh, nkv, hd, hidden);
    QKV_REFUSED(dst, src, src, NULL, nh, nkv, hd, hidden);
    QKV_REFUSED(dst, src, src, src, 0, nkv, hd, hidden);
    QKV_REFUSED(dst, src, src, src, nh, 0, hd, hidden);
    QKV_REFUSED(dst, src, src, src, nh, nkv, 0, hidden);
    QKV_REFUSED(dst, src, src, src, nh, nkv, hd, 0);
    QKV_REFUSED(dst, src, src, src, -1, nkv, hd, hidden);
#undef QKV_REFUSED
#define GU_REFUSED(d, gt, u, i, h)                                                             \
    do {                                                                                       \
        e.msg[0] = 0;                                                                          \
        CHECK(armo_build_gate_up_weight((d), (gt), (u), (i), (h), 0, &e) == -1,                \
              "gate|up weight (%s) must be refused", #d ", " #gt ", " #u ", " #i ", " #h);     \
        CHECK(test_contains(e.msg, "bad gate|up weight arguments"), "gate|up message: '%s'",  \
              e.msg);                                                                          \
    } while (0)
    GU_REFUSED(NULL, src, src, inter, hidden);
    GU_REFUSED(dst, NULL, src, inter, hidden);
    GU_REFUSED(dst, src, NULL, inter, hidden);
    GU_REFUSED(dst, src, src, 0, hidden);
    GU_REFUSED(dst, src, src, inter, 0);
    GU_REFUSED(dst, src, src, -inter, hidden);
#undef GU_REFUSED
    check_untouched("fused weight dst", dst, qkv_bytes);
    gpu_free(x); gpu_free(w); gpu_free(y); gpu_free(dst); gpu_free(src);
    armo_gemm_destroy(g);
    armo_gemm_destroy(NULL); /* a no-op */
}

int main(void) {
    gpu_test_require_device();
    GPU_CHECK(cudaGetLastError());
    test_embed();
    test_rmsnorm();
    test_rope();
    test_attention();
    test_swiglu();
    test_gather();
    test_heads();
    test_gemm_layer();
    /* no refused call slipped a launch with a bad configuration through */
    const cudaError_t last = cudaGetLastError();
    CHECK(last == cudaSuccess, "cudaGetLastError after the refusals: %s", cudaGetErrorString(last));
    const cudaError_t sync = cudaDeviceSynchronize();
    CHECK(sync == cudaSuccess, "cudaDeviceSynchronize: %s", cudaGetErrorString(sync));
    return test_finish("gpu_test_launch_contract");
}
