/* bank_report.c — the shared-memory bank-conflict figure of every kernel of
 * kernels/armo_kernels.h, from the CPU emulator's counter (bank_conflicts.cpp),
 * and the CI gate on the hot ones (ctest emu_bank_conflicts).
 *
 * Each launcher runs once at a representative shape: a ragged batch of 200
 * tokens in 5 sequences (57, 1, 80, 3, 59: a 1-token sequence, sequences
 * sharing 64-token tiles, tiles straddling sequence starts), hidden 1024,
 * head_dim 128 with GQA 4:1 (8 query heads, 2 KV heads: 8 x 128 = 1024);
 * the flash and pipelined kernels also at head_dim 64, 32 and 16 (the
 * instantiations the dispatcher has), the heads on 5 sequences.  Inputs are random bf16: the
 * kernels' shared-memory addresses do not depend on the data, only on the
 * shape, so the figures are static properties of the code at that shape.
 * The GEMM layer is cuBLASLt's (the emulator fakes it on the CPU: no kernel
 * of ours, nothing to count).
 *
 * usage: bank_report [--markdown] [--sites] [--check]
 *   --markdown  the table in Markdown (profiling/bank_conflicts.md);
 *   --sites     under each conflicted kernel, its conflicted accesses;
 *   --check     exit 1 when a hot kernel (HOT below) did not run or its
 *               conflict rate exceeds HOT_MAX_RATE.
 * The conflict rate is wavefronts / ideal wavefronts (bank_conflicts.h):
 * 1.00 is conflict-free. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/armo_kernels.h"
#include "tests/emu/cuda/bank_conflicts.h"

/* The kernels on the per-token path of every layer, and the limit their
 * conflict rate is held to: conflict-free (profiling/bank_conflicts.md). */
static const char *const HOT[] = {
    "flash_attn_kernel<128>", "pipelined_attn_kernel<128>", "rmsnorm_kernel", "add_rmsnorm_kernel",
    "rope_kernel",            "swiglu_pair_kernel",      "embed_vec_kernel",
    "gather_rows_bf16_kernel", "gather_rows_f32_kernel", "gather_rows2_bf16_kernel",
    "add_rmsnorm_f32_kernel",
};
#define HOT_MAX_RATE 1.0

#define N_TOK 200
#define HIDDEN 1024
#define INTER 2048
#define VOCAB 1000

static void check(cudaError_t st, const char *what) {
    if (st != cudaSuccess) {
        fprintf(stderr, "bank_report: %s failed: %s\n", what, cudaGetErrorString(st));
        exit(2);
    }
}

static unsigned long long g_rng = 0x9e3779b97f4a7c15ull;
static float uniform(float scale) { /* xorshift64*, uniform in [-scale, scale) */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    const unsigned long long r = g_rng * 2685821657736338717ull;
    return ((float)(r >> 40) / (float)(1ull << 24) * 2.0f - 1.0f) * scale;
}

static uint16_t to_bf16(float f) { /* truncation: any bf16 does */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

/* every device buffer, freed at the end (the emulator reports leaks) */
static void *g_bufs[64];
static int g_nbufs;

static void *dev(size_t bytes) {
    void *p = NULL;
    check(cudaMalloc(&p, bytes ? bytes : 1), "cudaMalloc");
    if (g_nbufs == 64) {
        fprintf(stderr, "bank_report: more than 64 device buffers\n");
        exit(2);
    }
    g_bufs[g_nbufs++] = p;
    return p;
}

static void free_all(void) {
    while (g_nbufs > 0) check(cudaFree(g_bufs[--g_nbufs]), "cudaFree");
}

static uint16_t *dev_bf16(size_t count, float scale) {
    uint16_t *h = malloc(count * sizeof *h);
    if (!h) exit(2);
    for (size_t i = 0; i < count; i++) h[i] = to_bf16(uniform(scale));
    uint16_t *d = dev(count * sizeof *d);
    check(cudaMemcpy(d, h, count * sizeof *d, cudaMemcpyHostToDevice), "cudaMemcpy");
    free(h);
    return d;
}

static float *dev_f32(size_t count, float scale) {
    float *h = malloc(count * sizeof *h);
    if (!h) exit(2);
    for (size_t i = 0; i < count; i++) h[i] = uniform(scale);
    float *d = dev(count * sizeof *d);
    check(cudaMemcpy(d, h, count * sizeof *d, cudaMemcpyHostToDevice), "cudaMemcpy");
    free(h);
    return d;
}

static int32_t *dev_i32(const int32_t *h, size_t count) {
    int32_t *d = dev(count * sizeof *d);
    check(cudaMemcpy(d, h, count * sizeof *d, cudaMemcpyHostToDevice), "cudaMemcpy");
    return d;
}

/* What each kernel was launched as, for the table. */
typedef struct {
    const char *kernel, *shape;
} shape_note;
static shape_note g_shapes[48];
static int g_nshapes;
static void note_shape(const char *kernel, const char *shape) {
    if (g_nshapes < 48) g_shapes[g_nshapes++] = (shape_note){kernel, shape};
}
static const char *shape_of(const char *kernel) {
    for (int i = 0; i < g_nshapes; i++)
        if (strcmp(g_shapes[i].kernel, kernel) == 0) return g_shapes[i].shape;
    return "";
}

static void run_attention(void) {
    static const int lens[] = {57, 1, 80, 3, 59};
    const int nseq = 5;
    int32_t cu[6] = {0};
    for (int s = 0; s < nseq; s++) cu[s + 1] = cu[s] + lens[s];
    int32_t *d_cu = dev_i32(cu, 6);
    static const struct {
        int hd, nh, nkv;
        const char *kernel, *pipelined, *shape;
    } cases[] = {
        {128, 8, 2, "flash_attn_kernel<128>", "pipelined_attn_kernel<128>",
         "hd 128, 8 q / 2 kv heads, 200 tokens"},
        {64, 16, 4, "flash_attn_kernel<64>", "pipelined_attn_kernel<64>",
         "hd 64, 16 q / 4 kv heads, 200 tokens"},
        {32, 4, 1, "flash_attn_kernel<32>", "pipelined_attn_kernel<32>",
         "hd 32, 4 q / 1 kv heads, 200 tokens"},
        {16, 4, 1, "flash_attn_kernel<16>", "pipelined_attn_kernel<16>",
         "hd 16, 4 q / 1 kv heads, 200 tokens"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int hd = cases[c].hd, nh = cases[c].nh, nkv = cases[c].nkv;
        uint16_t *q = dev_bf16((size_t)N_TOK * nh * hd, 2.0f);
        uint16_t *k = dev_bf16((size_t)N_TOK * nkv * hd, 2.0f);
        uint16_t *v = dev_bf16((size_t)N_TOK * nkv * hd, 1.0f);
        uint16_t *o = dev((size_t)N_TOK * nh * hd * 2);
        check(armo_attention_flash_bf16(o, q, k, v, d_cu, nseq, N_TOK, 80, nh, nkv, hd, 0),
              "armo_attention_flash_bf16");
        note_shape(cases[c].kernel, cases[c].shape);
        /* the pipelined variant at the same shape (its cp.async stores are
         * counted at their wait, its ldmatrix per 8-lane phase) */
        check(armo_attention_pipelined_bf16(o, q, k, v, d_cu, nseq, N_TOK, 80, nh, nkv, hd, 0),
              "armo_attention_pipelined_bf16");
        note_shape(cases[c].pipelined, cases[c].shape);
        if (hd == 128) {
            /* the engine's launch: q, k, v in place in one fused [n, q | k | v]
             * buffer, and prefix sharing's second key range (sequence 2
             * continues sequence 0, sequence 4 continues 3) */
            const int stride = (nh + 2 * nkv) * hd;
            uint16_t *qkv = dev_bf16((size_t)N_TOK * stride, 2.0f);
            const int32_t pre[5] = {-1, -1, 0, -1, 3};
            int32_t *d_pre = dev_i32(pre, 5);
            const armo_attn_args a = {.out = o, .q = qkv, .k = qkv + nh * hd,
                                      .v = qkv + (nh + nkv) * hd, .q_stride = stride,
                                      .kv_stride = stride, .cu_seqlens = d_cu, .prefix_of = d_pre,
                                      .nseq = nseq, .n = N_TOK, .max_seqlen = 80, .nh = nh,
                                      .nkv = nkv, .hd = hd};
            check(armo_attention_ex_bf16(&a, ARMO_ATTN_FLASH, 0), "armo_attention_ex_bf16");
            check(armo_attention_ex_bf16(&a, ARMO_ATTN_PIPELINED, 0), "armo_attention_ex_bf16");
            check(armo_attention_simple_bf16(o, q, k, v, d_cu, nseq, N_TOK, 80, nh, nkv, hd, 0),
                  "armo_attention_simple_bf16");
            note_shape("simple_attn_kernel", cases[c].shape);
        }
    }
}

static void run_layer_kernels(void) {
    const size_t act = (size_t)N_TOK * HIDDEN;
    uint16_t *x = dev_bf16(act, 2.0f), *delta = dev_bf16(act, 1.0f), *w = dev_bf16(HIDDEN, 1.0f);
    uint16_t *out = dev(act * 2);
    check(armo_rmsnorm_bf16(out, x, w, N_TOK, HIDDEN, 1e-5f, 0), "armo_rmsnorm_bf16");
    note_shape("rmsnorm_kernel", "200 x 1024");
    check(armo_add_rmsnorm_bf16(x, delta, out, w, N_TOK, HIDDEN, 1e-5f, 0),
          "armo_add_rmsnorm_bf16");
    note_shape("add_rmsnorm_kernel", "200 x 1024");
    float *out32 = dev(act * 4);
    check(armo_add_rmsnorm_f32_bf16(x, delta, out32, w, N_TOK, HIDDEN, 1e-5f, 0),
          "armo_add_rmsnorm_f32_bf16");
    note_shape("add_rmsnorm_f32_kernel", "200 x 1024");

    /* RoPE on q [200, 8 x 128] and k [200, 2 x 128] */
    uint16_t *q = dev_bf16((size_t)N_TOK * 8 * 128, 2.0f), *k = dev_bf16((size_t)N_TOK * 2 * 128, 2.0f);
    int32_t pos[N_TOK];
    for (int i = 0; i < N_TOK; i++) pos[i] = i % 80;
    int32_t *d_pos = dev_i32(pos, N_TOK);
    float inv[64];
    for (int j = 0; j < 64; j++) inv[j] = powf(500000.0f, -2.0f * (float)j / 128.0f);
    float *d_inv = dev(sizeof inv);
    check(cudaMemcpy(d_inv, inv, sizeof inv, cudaMemcpyHostToDevice), "cudaMemcpy");
    check(armo_rope_bf16(q, k, N_TOK, 8, 2, 128, d_pos, d_inv, 0), "armo_rope_bf16");
    /* and in place in the fused [n, q | k | v] layout, as the engine runs it */
    uint16_t *qkv = dev_bf16((size_t)N_TOK * 12 * 128, 2.0f);
    check(armo_rope_strided_bf16(qkv, 12 * 128, qkv + 8 * 128, 12 * 128, N_TOK, 8, 2, 128, d_pos,
                                 d_inv, 0),
          "armo_rope_strided_bf16");
    note_shape("rope_kernel", "200 tokens, 8 q / 2 kv heads, hd 128");

    uint16_t *gate_up = dev_bf16((size_t)N_TOK * 2 * INTER, 2.0f);
    uint16_t *act_out = dev((size_t)N_TOK * INTER * 2);
    check(armo_swiglu_bf16(act_out, gate_up, N_TOK, INTER, 0), "armo_swiglu_bf16");
    note_shape("swiglu_pair_kernel", "200 x 2048");

    uint16_t *table = dev_bf16((size_t)VOCAB * HIDDEN, 1.0f);
    int32_t ids[N_TOK];
    for (int i = 0; i < N_TOK; i++) ids[i] = (i * 37) % VOCAB;
    int32_t *d_ids = dev_i32(ids, N_TOK);
    check(armo_embed_bf16(out, table, d_ids, N_TOK, HIDDEN, VOCAB, 0), "armo_embed_bf16");
    note_shape("embed_vec_kernel", "200 ids, hidden 1024");

    const int32_t rows[5] = {56, 57, 137, 140, 199}; /* each sequence's last token */
    int32_t *d_rows = dev_i32(rows, 5);
    uint16_t *g16 = dev((size_t)5 * HIDDEN * 2);
    float *g32 = dev((size_t)5 * HIDDEN * 4);
    check(armo_gather_rows_bf16(g16, x, d_rows, 5, HIDDEN, 0), "armo_gather_rows_bf16");
    note_shape("gather_rows_bf16_kernel", "5 rows of 1024");
    check(armo_gather_rows_f32(g32, x, d_rows, 5, HIDDEN, 0), "armo_gather_rows_f32");
    note_shape("gather_rows_f32_kernel", "5 rows of 1024");
    uint16_t *g16b = dev((size_t)5 * HIDDEN * 2);
    check(armo_gather_rows2_bf16(g16, x, HIDDEN, g16b, delta, HIDDEN, d_rows, 5, 0),
          "armo_gather_rows2_bf16");
    note_shape("gather_rows2_bf16_kernel", "5 rows of 1024, two sources");

    /* ArmoRM gated head (1024 -> 256 -> 256 -> 19 objectives) and a single head */
    armo_head_params hw;
    memset(&hw, 0, sizeof hw);
    hw.hidden = HIDDEN;
    hw.k = 19;
    hw.nlayers = 3;
    hw.dims[0] = HIDDEN;
    hw.dims[1] = 256;
    hw.dims[2] = 256;
    hw.dims[3] = 19;
    hw.temperature = 10.0f;
    hw.logit_scale = 1.0f;
    hw.regression = dev_f32((size_t)19 * HIDDEN, 0.05f);
    for (int l = 0; l < 3; l++) {
        hw.gw[l] = dev_f32((size_t)hw.dims[l + 1] * hw.dims[l], 0.05f);
        hw.gb[l] = dev_f32((size_t)hw.dims[l + 1], 0.05f);
    }
    hw.transform = dev_f32((size_t)19 * 19, 0.5f);
    float *scratch = dev(armo_head_scratch_floats(&hw, 5) * sizeof(float));
    float *rewards = dev(5 * 19 * 4), *gating = dev(5 * 19 * 4), *coeff = dev(5 * 19 * 4);
    float *score = dev(5 * 4);
    check(armo_gated_head_f32(&hw, g32, g32, 5, rewards, gating, coeff, score, scratch, 0),
          "armo_gated_head_f32");
    note_shape("linear_f32_kernel", "5 sequences, 1024 -> 256 -> 256 -> 19 (+ seqcls)");
    note_shape("armo_gate_kernel", "5 sequences, 19 objectives");
    float *w1 = dev_f32(HIDDEN, 0.05f), *scores = dev(5 * 4);
    check(armo_seqcls_head_f32(w1, 1, HIDDEN, g32, 5, scores, 0), "armo_seqcls_head_f32");
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

static int is_hot(const char *name) {
    for (size_t i = 0; i < sizeof HOT / sizeof HOT[0]; i++)
        if (strcmp(HOT[i], name) == 0) return 1;
    return 0;
}

static double rate_of(const armo_bank_stats *s) {
    return s->ideal ? (double)s->wavefronts / (double)s->ideal : 1.0;
}

int main(int argc, char **argv) {
    int markdown = 0, sites = 0, gate = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--markdown") == 0) markdown = 1;
        else if (strcmp(argv[i], "--sites") == 0) sites = 1;
        else if (strcmp(argv[i], "--check") == 0) gate = 1;
        else {
            fprintf(stderr, "usage: bank_report [--markdown] [--sites] [--check]\n");
            return 2;
        }
    }
    armo_banks_start();
    run_attention();
    run_layer_kernels();
    armo_banks_stop();
    free_all();

    if (markdown) {
        printf("| kernel | launched at | hot | shared-memory instructions | wavefronts | ideal "
               "| conflict rate | worst site |\n");
        printf("|---|---|---|--:|--:|--:|--:|---|\n");
    } else {
        printf("%-26s %4s %12s %12s %12s %6s  %s\n", "kernel", "hot", "instructions",
               "wavefronts", "ideal", "rate", "worst site");
    }
    for (int i = 0; i < armo_banks_count(); i++) {
        const char *name = armo_banks_name(i);
        armo_bank_stats s;
        armo_banks_get(name, &s);
        char worst[512] = "-", rate[32] = "-";
        if (!armo_banks_worst_site(name, worst, sizeof worst)) strcpy(worst, "-");
        if (s.instructions) snprintf(rate, sizeof rate, "%.2f", rate_of(&s));
        else strcpy(worst, "no shared memory");
        if (markdown)
            printf("| `%s` | %s | %s | %llu | %llu | %llu | %s | %s |\n", name, shape_of(name),
                   is_hot(name) ? "yes" : "", s.instructions, s.wavefronts, s.ideal, rate, worst);
        else
            printf("%-26s %4s %12llu %12llu %12llu %6s  %s\n", name, is_hot(name) ? "yes" : "",
                   s.instructions, s.wavefronts, s.ideal, rate, worst);
        if (s.unmodelled)
            printf("  (%s: %llu range accesses to shared memory not costed)\n", name, s.unmodelled);
        if (sites && !markdown) armo_banks_print_sites(stdout, name, 20);
    }

    int failed = 0;
    if (gate)
        for (size_t i = 0; i < sizeof HOT / sizeof HOT[0]; i++) {
            armo_bank_stats s;
            if (!armo_banks_get(HOT[i], &s)) {
                fprintf(stderr, "bank_report: hot kernel %s did not run (renamed? update HOT)\n",
                        HOT[i]);
                failed = 1;
            } else if (rate_of(&s) > HOT_MAX_RATE + 1e-9 || s.unmodelled) {
                fprintf(stderr, "bank_report: hot kernel %s: conflict rate %.3f > %.2f%s\n",
                        HOT[i], rate_of(&s), HOT_MAX_RATE,
                        s.unmodelled ? " (or uncosted range accesses)" : "");
                armo_banks_print_sites(stderr, HOT[i], 20);
                failed = 1;
            }
        }
    if (gate) printf("bank_report: hot kernels %s\n", failed ? "FAIL" : "ok (conflict-free)");
    return failed;
}
