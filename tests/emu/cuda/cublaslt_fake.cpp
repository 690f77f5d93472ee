// cublaslt_fake.cpp — cuBLASLt on the CPU, for the CUDA emulator
// (tests/emu/cuda): the cublasLt* calls of kernels/gemm.cu, with their real
// signatures (taken from <cublasLt.h>), so that the real host code runs
// unmodified against host memory standing in for device memory.
//
// What it models, read from the cuBLASLt reference: D = alpha·op(A)·op(B) +
// beta·C (op N, T, and C = T for real types), COL and ROW orders, strided
// batches, A/B/C/D in bf16, fp16 or fp32 as the table of supported
// configurations allows for CUBLAS_COMPUTE_32F (and its FAST_*/PEDANTIC
// variants) with fp32 scale type, host pointer mode, and the epilogues
// DEFAULT, RELU, BIAS, RELU_BIAS.  Products accumulate in fp32, the result is
// rounded once to D's type (round to nearest even; NaN stays NaN).
//
// Everything else is refused, never approximated: an unmodelled attribute or
// value, a type combination outside the table, conflicting shapes, an ld too
// small, C == D with differing layouts, overlapping outputs, a workspace
// smaller than the algorithm asked for, a pointer less aligned than the
// heuristic was told.  Each refusal returns the status the reference
// documents and prints one "cublaslt_fake: <call>: <reason>" line on stderr,
// so a mistake in the caller is named where a GPU would just misbehave.
//
// The algorithm returned by the heuristic records what it was chosen for
// (types, epilogue, pointer alignments, vector widths the lds allow,
// workspace bytes) in cublasLtMatmulAlgo_t::data, and cublasLtMatmul checks
// the call against that record.  It asks for min(MAX_WORKSPACE_BYTES, 1 MiB)
// of workspace and scribbles on it, as a split-K kernel would.
//
// The arithmetic is shaped for speed on one core: operands are converted to
// fp32 once per call into packed panels (MR rows of op(A), NR columns of
// op(B)), and a 6x8 register-tile kernel runs over k blocks sized for the
// caches; the epilogue then applies alpha, beta·C, bias and ReLU and rounds.
// It runs synchronously at the call; the stream only goes to the emulated
// runtime's ordering and fault checks (emu::before_launch).  It defines no
// CUDA runtime function.
#include <cublasLt.h>

#include "tests/emu/cuda/emu.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

namespace {

// ---- statuses and refusals ---------------------------------------------------

const char *status_name(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

__attribute__((format(printf, 3, 4))) cublasStatus_t refuse(cublasStatus_t status,
                                                            const char *call,
                                                            const char *fmt, ...) {
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    fprintf(stderr, "cublaslt_fake: %s: %s (%s)\n", call, reason, status_name(status));
    return status;
}

// ---- the objects behind the opaque handles -------------------------------------

constexpr uint64_t kContextMagic = 0x43424c54'43545831ull;    // "CBLTCTX1"
constexpr uint64_t kDescMagic = 0x43424c54'44534331ull;       // "CBLTDSC1"
constexpr uint64_t kLayoutMagic = 0x43424c54'4c594f31ull;     // "CBLTLYO1"
constexpr uint64_t kPreferenceMagic = 0x43424c54'50524631ull; // "CBLTPRF1"
constexpr uint64_t kAlgoMagic = 0x43424c54'414c4731ull;       // "CBLTALG1"
constexpr uint64_t kDeadMagic = 0xdeaddeaddeaddeadull;

struct Context {
    uint64_t magic;
};

struct MatmulDesc {
    uint64_t magic;
    int32_t compute_type, scale_type, pointer_mode;
    int32_t transa, transb, transc, fill_mode;
    uint32_t epilogue;
    const void *bias;
    int64_t bias_batch_stride;
    int32_t bias_type; // -1: D's type
};

struct Layout {
    uint64_t magic;
    uint32_t type;
    int32_t order;
    uint64_t rows, cols;
    int64_t ld;
    int32_t batch_count;
    int64_t batch_stride;
    int64_t plane_offset;
    uint32_t batch_mode;
};

enum { kA = 0, kB = 1, kC = 2, kD = 3 };

struct Preference {
    uint64_t magic;
    uint32_t search_mode;
    uint64_t max_workspace;
    uint32_t reduction_mask;
    uint32_t min_alignment[4]; // A, B, C, D
    float max_waves;
    uint64_t impl_mask;
};

Context *context_of(cublasLtHandle_t handle) {
    Context *c = reinterpret_cast<Context *>(handle);
    return c && c->magic == kContextMagic ? c : nullptr;
}
MatmulDesc *desc_of(cublasLtMatmulDesc_t desc) {
    MatmulDesc *d = reinterpret_cast<MatmulDesc *>(desc);
    return d && d->magic == kDescMagic ? d : nullptr;
}
Layout *layout_of(cublasLtMatrixLayout_t layout) {
    Layout *l = reinterpret_cast<Layout *>(layout);
    return l && l->magic == kLayoutMagic ? l : nullptr;
}
Preference *preference_of(cublasLtMatmulPreference_t pref) {
    Preference *p = reinterpret_cast<Preference *>(pref);
    return p && p->magic == kPreferenceMagic ? p : nullptr;
}

// ---- what is modelled ------------------------------------------------------------

bool data_type_modelled(uint32_t type) {
    return type == CUDA_R_16BF || type == CUDA_R_16F || type == CUDA_R_32F;
}
size_t element_bytes(uint32_t type) { return type == CUDA_R_32F ? 4 : 2; }
const char *data_type_name(uint32_t type) {
    switch (type) {
    case CUDA_R_16BF: return "CUDA_R_16BF";
    case CUDA_R_16F: return "CUDA_R_16F";
    case CUDA_R_32F: return "CUDA_R_32F";
    }
    return "an unmodelled type";
}
bool compute_type_modelled(int32_t compute) {
    return compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC ||
           compute == CUBLAS_COMPUTE_32F_FAST_16F || compute == CUBLAS_COMPUTE_32F_FAST_16BF ||
           compute == CUBLAS_COMPUTE_32F_FAST_TF32;
}
bool compute_type_fast(int32_t compute) {
    return compute == CUBLAS_COMPUTE_32F_FAST_16F || compute == CUBLAS_COMPUTE_32F_FAST_16BF ||
           compute == CUBLAS_COMPUTE_32F_FAST_TF32;
}
// The reference's table for compute type 32F, scale type 32F, real types:
// A/B bf16 -> C/D bf16 or fp32; A/B fp16 -> C/D fp16 or fp32; fp32 -> fp32.
// The FAST_* compute types take fp32 A/B/C/D only.
bool type_combination_supported(int32_t compute, uint32_t ab, uint32_t cd) {
    if (compute_type_fast(compute)) return ab == CUDA_R_32F && cd == CUDA_R_32F;
    if (ab == CUDA_R_32F) return cd == CUDA_R_32F;
    if (ab == CUDA_R_16BF || ab == CUDA_R_16F) return cd == ab || cd == CUDA_R_32F;
    return false;
}
bool epilogue_modelled(uint32_t e) {
    return e == CUBLASLT_EPILOGUE_DEFAULT || e == CUBLASLT_EPILOGUE_RELU ||
           e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_RELU_BIAS;
}
bool epilogue_has_bias(uint32_t e) {
    return e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_RELU_BIAS;
}
bool epilogue_has_relu(uint32_t e) {
    return e == CUBLASLT_EPILOGUE_RELU || e == CUBLASLT_EPILOGUE_RELU_BIAS;
}
const char *op_name(int32_t op) {
    switch (op) {
    case CUBLAS_OP_N: return "N";
    case CUBLAS_OP_T: return "T";
    case CUBLAS_OP_C: return "C";
    }
    return "?";
}

// ---- attribute plumbing ----------------------------------------------------------

template <typename T> bool read_value(const void *buf, size_t size, T *out) {
    if (!buf || size != sizeof(T)) return false;
    memcpy(out, buf, sizeof(T));
    return true;
}

cublasStatus_t bad_buffer(const char *call, const char *attr, const void *buf, size_t size,
                          size_t expected) {
    return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "%s: buf %s, sizeInBytes %zu, expected %zu",
                  attr, buf ? "given" : "NULL", size, expected);
}

// The documented get-attribute contract: sizeInBytes 0 asks for the size.
cublasStatus_t write_value(const char *call, const char *attr, const void *value,
                           size_t value_size, void *buf, size_t size, size_t *written) {
    if (size == 0) {
        if (!written)
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                          "%s: sizeInBytes 0 and sizeWritten NULL", attr);
        *written = value_size;
        return CUBLAS_STATUS_SUCCESS;
    }
    if (!buf || size != value_size) return bad_buffer(call, attr, buf, size, value_size);
    memcpy(buf, value, value_size);
    if (written) *written = value_size;
    return CUBLAS_STATUS_SUCCESS;
}

// ---- fp16 / bf16 conversions -------------------------------------------------------

float f32_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
uint32_t bits_from_f32(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

struct Bf16 {
    typedef uint16_t raw;
    static float load(raw v) { return f32_from_bits((uint32_t)v << 16); }
    static raw store(float f) {
        uint32_t u = bits_from_f32(f);
        if ((u & 0x7fffffffu) > 0x7f800000u) return (raw)((u >> 16) | 0x0040u); // quiet NaN
        u += 0x7fffu + ((u >> 16) & 1u); // round to nearest even; overflow becomes inf
        return (raw)(u >> 16);
    }
};

struct F16 {
    typedef uint16_t raw;
    static float load(raw v) {
        const uint32_t sign = (uint32_t)(v & 0x8000u) << 16;
        const uint32_t exp = (v >> 10) & 0x1fu, mant = v & 0x3ffu;
        if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));
        if (exp != 0) return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
        const float magnitude = (float)mant * 0x1p-24f; // subnormal (or zero), exact
        return sign ? -magnitude : magnitude;
    }
    static raw store(float f) {
        const uint32_t u = bits_from_f32(f);
        const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
        const uint32_t a = u & 0x7fffffffu;
        if (a > 0x7f800000u) return (raw)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); // NaN
        if (a >= 0x477ff000u) return (raw)(sign | 0x7c00u); // rounds past 65504: inf
        if (a < 0x38800000u) // below 2^-14: subnormal; the scaling by 2^24 is exact
            return (raw)(sign | (uint16_t)std::nearbyint(f32_from_bits(a) * 0x1p24f));
        const uint32_t rebased = a - (112u << 23);
        return (raw)(sign | ((rebased + 0xfffu + ((rebased >> 13) & 1u)) >> 13));
    }
};

struct F32 {
    typedef float raw;
    static float load(raw v) { return v; }
    static raw store(float f) { return f; }
};

// ---- the problem a descriptor set describes -----------------------------------------

// A matrix as the multiply sees it: element (i, j) of op(X) (or of C, D) is at
// base + i*step_i + j*step_j elements, batch b at b*batch_stride further.
struct Operand {
    const Layout *layout;
    int64_t step_i, step_j;
    size_t bytes; // per element
};

struct Problem {
    int64_t m, n, k;
    int32_t batch;
    int32_t compute;
    uint32_t ab_type, cd_type, bias_type;
    uint32_t epilogue;
    Operand a, b, c, d; // a: op(A) m x k; b: op(B) k x n; c, d: m x n
};

int64_t row_step(const Layout &l) { return l.order == CUBLASLT_ORDER_COL ? 1 : l.ld; }
int64_t col_step(const Layout &l) { return l.order == CUBLASLT_ORDER_COL ? l.ld : 1; }

// ld per the reference: COL, the stride between columns (>= rows); ROW, the
// stride between rows (>= cols).
cublasStatus_t check_ld(const char *call, const char *name, const Layout &l) {
    const bool col = l.order == CUBLASLT_ORDER_COL;
    const uint64_t need = col ? l.rows : l.cols;
    if ((uint64_t)l.ld < (need > 0 ? need : 1))
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "%s: ld %lld is less than its %s count %llu (order %s)", name,
                      (long long)l.ld, col ? "row" : "column", (unsigned long long)need,
                      col ? "COL" : "ROW");
    // every byte offset the batch touches must fit comfortably in int64
    const __int128 abs_stride = l.batch_stride < 0 ? -(__int128)l.batch_stride : l.batch_stride;
    const __int128 extent = ((__int128)(l.rows ? l.rows - 1 : 0) * (col ? 1 : l.ld) +
                             (__int128)(l.cols ? l.cols - 1 : 0) * (col ? l.ld : 1) +
                             (__int128)(l.batch_count - 1) * abs_stride + 1) *
                            (__int128)element_bytes(l.type);
    if (extent > ((__int128)1 << 60))
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                      "%s: ld %lld and batch stride %lld span more than 2^60 bytes", name,
                      (long long)l.ld, (long long)l.batch_stride);
    return CUBLAS_STATUS_SUCCESS;
}

Operand operand(const Layout &l, bool transposed) {
    Operand o;
    o.layout = &l;
    o.step_i = transposed ? col_step(l) : row_step(l);
    o.step_j = transposed ? row_step(l) : col_step(l);
    o.bytes = element_bytes(l.type);
    return o;
}

bool same_layout(const Layout &x, const Layout &y) {
    return x.type == y.type && x.order == y.order && x.rows == y.rows && x.cols == y.cols &&
           x.ld == y.ld && x.batch_count == y.batch_count && x.batch_stride == y.batch_stride;
}

// Checks the descriptors of one matmul against the reference's rules and what
// this fake models; fills *p.  Shared by the heuristic and the matmul.
cublasStatus_t describe_problem(const char *call, cublasLtMatmulDesc_t op_desc,
                                cublasLtMatrixLayout_t a_desc, cublasLtMatrixLayout_t b_desc,
                                cublasLtMatrixLayout_t c_desc, cublasLtMatrixLayout_t d_desc,
                                Problem *p) {
    const MatmulDesc *op = desc_of(op_desc);
    if (!op)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "computeDesc is NULL or not made by cublasLtMatmulDescCreate");
    const Layout *ls[4] = {layout_of(a_desc), layout_of(b_desc), layout_of(c_desc),
                           layout_of(d_desc)};
    const char *names[4] = {"Adesc", "Bdesc", "Cdesc", "Ddesc"};
    for (int x = 0; x < 4; x++)
        if (!ls[x])
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                          "%s is NULL or not made by cublasLtMatrixLayoutCreate", names[x]);
    const Layout &A = *ls[kA], &B = *ls[kB], &C = *ls[kC], &D = *ls[kD];

    if (A.type != B.type || C.type != D.type ||
        !type_combination_supported(op->compute_type, A.type, C.type))
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                      "types A %s, B %s, C %s, D %s with compute type %d are not in the "
                      "supported table",
                      data_type_name(A.type), data_type_name(B.type), data_type_name(C.type),
                      data_type_name(D.type), (int)op->compute_type);
    if (C.order != D.order)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "C and D have different orders");
    if (C.rows != D.rows || C.cols != D.cols)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "C is %llux%llu but D is %llux%llu", (unsigned long long)C.rows,
                      (unsigned long long)C.cols, (unsigned long long)D.rows,
                      (unsigned long long)D.cols);
    const bool ta = op->transa != CUBLAS_OP_N, tb = op->transb != CUBLAS_OP_N;
    const uint64_t a_rows = ta ? A.cols : A.rows, a_cols = ta ? A.rows : A.cols;
    const uint64_t b_rows = tb ? B.cols : B.rows, b_cols = tb ? B.rows : B.cols;
    if (a_rows != D.rows || b_cols != D.cols || a_cols != b_rows)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "op(A) (%s) is %llux%llu and op(B) (%s) is %llux%llu, which do not "
                      "multiply into D %llux%llu",
                      op_name(op->transa), (unsigned long long)a_rows,
                      (unsigned long long)a_cols, op_name(op->transb),
                      (unsigned long long)b_rows, (unsigned long long)b_cols,
                      (unsigned long long)D.rows, (unsigned long long)D.cols);
    for (int x = 0; x < 4; x++) {
        cublasStatus_t st = check_ld(call, names[x], *ls[x]);
        if (st != CUBLAS_STATUS_SUCCESS) return st;
    }
    if (A.batch_count != D.batch_count || B.batch_count != D.batch_count ||
        C.batch_count != D.batch_count)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "batch counts differ: A %d, B %d, C %d, D %d", (int)A.batch_count,
                      (int)B.batch_count, (int)C.batch_count, (int)D.batch_count);
    uint32_t bias_type = D.type;
    if (epilogue_has_bias(op->epilogue)) {
        if (op->bias_type != -1) bias_type = (uint32_t)op->bias_type;
        if (bias_type != D.type)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "bias type %s differs from D's type %s", data_type_name(bias_type),
                          data_type_name(D.type));
    }

    p->m = (int64_t)D.rows;
    p->n = (int64_t)D.cols;
    p->k = (int64_t)a_cols;
    p->batch = D.batch_count;
    p->compute = op->compute_type;
    p->ab_type = A.type;
    p->cd_type = D.type;
    p->bias_type = bias_type;
    p->epilogue = op->epilogue;
    p->a = operand(A, ta);
    p->b = operand(B, tb);
    p->c = operand(C, false);
    p->d = operand(D, false);
    return CUBLAS_STATUS_SUCCESS;
}

// ---- alignment and the algorithm record ---------------------------------------------

constexpr unsigned kMaxAlignLog2 = 12; // 4096 bytes: beyond any kernel's vector width

unsigned align_log2_of_value(uint64_t v) {
    if (v == 0) return kMaxAlignLog2;
    const unsigned tz = (unsigned)__builtin_ctzll(v);
    return tz < kMaxAlignLog2 ? tz : kMaxAlignLog2;
}
unsigned align_log2_of_pointer(const void *ptr) {
    return align_log2_of_value((uint64_t)(uintptr_t)ptr);
}

// The widest vector a kernel could use for this matrix, given the pointer
// alignment it may assume: ld and the batch stride must keep every column
// (row) and every batch's matrix as aligned as the first.
unsigned vector_log2(const Layout &l, unsigned pointer_log2) {
    const uint64_t es = element_bytes(l.type);
    unsigned v = pointer_log2;
    const unsigned ld = align_log2_of_value((uint64_t)l.ld * es);
    if (ld < v) v = ld;
    if (l.batch_count > 1) {
        const uint64_t s =
            l.batch_stride < 0 ? 0 - (uint64_t)l.batch_stride : (uint64_t)l.batch_stride;
        const unsigned st = align_log2_of_value(s * es);
        if (st < v) v = st;
    }
    return v;
}

constexpr uint64_t kAlgoWorkspaceBytes = 1u << 20;

struct AlgoRecord {
    int32_t compute;
    uint32_t ab_type, cd_type, epilogue;
    uint64_t workspace;
    unsigned pointer_log2[4], vec_log2[4], bias_log2;
};

uint64_t algo_checksum(const cublasLtMatmulAlgo_t &algo) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 6; i++) {
        h ^= algo.data[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

cublasLtMatmulAlgo_t encode_algo(const AlgoRecord &r) {
    cublasLtMatmulAlgo_t algo;
    memset(&algo, 0, sizeof algo);
    algo.data[0] = kAlgoMagic;
    algo.data[1] = (uint64_t)(uint32_t)r.compute | ((uint64_t)r.epilogue << 32);
    algo.data[2] = (uint64_t)r.ab_type | ((uint64_t)r.cd_type << 32);
    algo.data[3] = r.workspace;
    for (int x = 0; x < 4; x++)
        algo.data[4] |= ((uint64_t)r.pointer_log2[x] << (8 * x)) |
                        ((uint64_t)r.vec_log2[x] << (8 * (x + 4)));
    algo.data[5] = r.bias_log2;
    algo.data[6] = algo_checksum(algo);
    return algo;
}

bool decode_algo(const cublasLtMatmulAlgo_t &algo, AlgoRecord *r) {
    if (algo.data[0] != kAlgoMagic || algo.data[6] != algo_checksum(algo)) return false;
    r->compute = (int32_t)(uint32_t)algo.data[1];
    r->epilogue = (uint32_t)(algo.data[1] >> 32);
    r->ab_type = (uint32_t)algo.data[2];
    r->cd_type = (uint32_t)(algo.data[2] >> 32);
    r->workspace = algo.data[3];
    for (int x = 0; x < 4; x++) {
        r->pointer_log2[x] = (unsigned)(algo.data[4] >> (8 * x)) & 0xffu;
        r->vec_log2[x] = (unsigned)(algo.data[4] >> (8 * (x + 4))) & 0xffu;
    }
    r->bias_log2 = (unsigned)algo.data[5];
    return true;
}

// ---- the arithmetic -------------------------------------------------------------------

constexpr int64_t kMR = 6;         // rows of op(A) per register tile
constexpr int64_t kNR = 8;         // columns of op(B) per register tile (one 8-float vector)
constexpr int64_t kKC = 256;       // k per block: an 8 KiB panel of op(B) stays in L1
constexpr int64_t kMCPanels = 20;  // op(A) panels per block: 120 x 256 floats in L2

typedef float vec8 __attribute__((vector_size(32)));

// tile[MR][NR] += sum over kk of a[kk][MR] (outer) b[kk][NR]
void multiply_tile(int64_t kc, const float *a, const float *b, float *tile) {
    vec8 c0, c1, c2, c3, c4, c5;
    memcpy(&c0, tile + 0 * kNR, sizeof c0);
    memcpy(&c1, tile + 1 * kNR, sizeof c1);
    memcpy(&c2, tile + 2 * kNR, sizeof c2);
    memcpy(&c3, tile + 3 * kNR, sizeof c3);
    memcpy(&c4, tile + 4 * kNR, sizeof c4);
    memcpy(&c5, tile + 5 * kNR, sizeof c5);
    for (int64_t kk = 0; kk < kc; kk++, a += kMR, b += kNR) {
        vec8 bv;
        memcpy(&bv, b, sizeof bv);
        c0 += a[0] * bv;
        c1 += a[1] * bv;
        c2 += a[2] * bv;
        c3 += a[3] * bv;
        c4 += a[4] * bv;
        c5 += a[5] * bv;
    }
    memcpy(tile + 0 * kNR, &c0, sizeof c0);
    memcpy(tile + 1 * kNR, &c1, sizeof c1);
    memcpy(tile + 2 * kNR, &c2, sizeof c2);
    memcpy(tile + 3 * kNR, &c3, sizeof c3);
    memcpy(tile + 4 * kNR, &c4, sizeof c4);
    memcpy(tile + 5 * kNR, &c5, sizeof c5);
}

// out[(p*k + kk)*width + r] = element (p*width + r, kk) as fp32, where element
// (x, kk) is at base[x*step_x + kk*step_k]; zero past `count`.
template <class Fmt>
void pack_panels_as(const void *base, int64_t step_x, int64_t step_k, int64_t count, int64_t k,
                    int64_t width, float *out) {
    const typename Fmt::raw *src = static_cast<const typename Fmt::raw *>(base);
    const int64_t panels = (count + width - 1) / width;
    for (int64_t p = 0; p < panels; p++) {
        float *panel = out + p * k * width;
        for (int64_t r = 0; r < width; r++) {
            const int64_t x = p * width + r;
            if (x >= count) {
                for (int64_t kk = 0; kk < k; kk++) panel[kk * width + r] = 0.0f;
                continue;
            }
            const typename Fmt::raw *row = src + x * step_x;
            for (int64_t kk = 0; kk < k; kk++) panel[kk * width + r] = Fmt::load(row[kk * step_k]);
        }
    }
}

void pack_panels(uint32_t type, const void *base, int64_t step_x, int64_t step_k, int64_t count,
                 int64_t k, int64_t width, float *out) {
    switch (type) {
    case CUDA_R_16BF: pack_panels_as<Bf16>(base, step_x, step_k, count, k, width, out); break;
    case CUDA_R_16F: pack_panels_as<F16>(base, step_x, step_k, count, k, width, out); break;
    default: pack_panels_as<F32>(base, step_x, step_k, count, k, width, out); break;
    }
}

void load_vector(uint32_t type, const void *base, int64_t count, float *out) {
    for (int64_t i = 0; i < count; i++) {
        switch (type) {
        case CUDA_R_16BF: out[i] = Bf16::load(static_cast<const uint16_t *>(base)[i]); break;
        case CUDA_R_16F: out[i] = F16::load(static_cast<const uint16_t *>(base)[i]); break;
        default: out[i] = static_cast<const float *>(base)[i]; break;
        }
    }
}

// D(i,j) = epilogue(alpha*acc(i,j) + beta*C(i,j) + bias[i]), rounded to D's type.
// acc is tiled: tile (jp, ip) at ((jp*mp + ip)*MR + r)*NR + c.
template <class Fmt>
void finish_as(const Problem &p, const float *acc, int64_t mp, float alpha, float beta,
               const void *c_base, void *d_base, const float *bias) {
    const typename Fmt::raw *cm = static_cast<const typename Fmt::raw *>(c_base);
    typename Fmt::raw *dm = static_cast<typename Fmt::raw *>(d_base);
    const bool relu = epilogue_has_relu(p.epilogue);
    for (int64_t j = 0; j < p.n; j++) {
        // tile (jp, ip) element (r, c) is at ((jp*mp + ip)*MR + r)*NR + c, and
        // ip*MR + r = i: column j of acc is every NR-th float from its start
        const float *col = acc + (j / kNR) * mp * kMR * kNR + (j % kNR);
        for (int64_t i = 0; i < p.m; i++) {
            float v = alpha * col[i * kNR];
            if (beta != 0.0f) v += beta * Fmt::load(cm[i * p.c.step_i + j * p.c.step_j]);
            if (bias) v += bias[i];
            if (relu && v < 0.0f) v = 0.0f; // NaN passes through
            dm[i * p.d.step_i + j * p.d.step_j] = Fmt::store(v);
        }
    }
}

const char *byte_offset(const void *base, int64_t elements, size_t bytes) {
    return static_cast<const char *>(base) + elements * (int64_t)bytes;
}

void run_matmul(const Problem &p, float alpha, float beta, const void *A, const void *B,
                const void *C, void *D, const void *bias, int64_t bias_stride) {
    thread_local std::vector<float> a_pack, b_pack, acc, bias_f32;
    const int64_t mp = (p.m + kMR - 1) / kMR, np = (p.n + kNR - 1) / kNR;
    a_pack.resize((size_t)(mp * kMR * p.k));
    b_pack.resize((size_t)(np * kNR * p.k));
    acc.resize((size_t)(mp * np * kMR * kNR));
    if (bias) bias_f32.resize((size_t)p.m);
    const int64_t sa = p.a.layout->batch_stride, sb = p.b.layout->batch_stride;
    for (int32_t batch = 0; batch < p.batch; batch++) {
        if (p.k > 0 && (batch == 0 || sa != 0))
            pack_panels(p.ab_type, byte_offset(A, batch * sa, p.a.bytes), p.a.step_i, p.a.step_j,
                        p.m, p.k, kMR, a_pack.data());
        if (p.k > 0 && (batch == 0 || sb != 0))
            pack_panels(p.ab_type, byte_offset(B, batch * sb, p.b.bytes), p.b.step_j, p.b.step_i,
                        p.n, p.k, kNR, b_pack.data());
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t k0 = 0; k0 < p.k; k0 += kKC) {
            const int64_t kc = p.k - k0 < kKC ? p.k - k0 : kKC;
            for (int64_t i0 = 0; i0 < mp; i0 += kMCPanels) {
                const int64_t i1 = i0 + kMCPanels < mp ? i0 + kMCPanels : mp;
                for (int64_t jp = 0; jp < np; jp++) {
                    const float *bp = b_pack.data() + (jp * p.k + k0) * kNR;
                    for (int64_t ip = i0; ip < i1; ip++)
                        multiply_tile(kc, a_pack.data() + (ip * p.k + k0) * kMR, bp,
                                      acc.data() + (jp * mp + ip) * kMR * kNR);
                }
            }
        }
        if (bias)
            load_vector(p.bias_type,
                        byte_offset(bias, batch * bias_stride, element_bytes(p.bias_type)), p.m,
                        bias_f32.data());
        const void *c_b = C ? byte_offset(C, batch * p.c.layout->batch_stride, p.c.bytes) : C;
        void *d_b = const_cast<char *>(byte_offset(D, batch * p.d.layout->batch_stride, p.d.bytes));
        const float *bias_b = bias ? bias_f32.data() : nullptr;
        switch (p.cd_type) {
        case CUDA_R_16BF: finish_as<Bf16>(p, acc.data(), mp, alpha, beta, c_b, d_b, bias_b); break;
        case CUDA_R_16F: finish_as<F16>(p, acc.data(), mp, alpha, beta, c_b, d_b, bias_b); break;
        default: finish_as<F32>(p, acc.data(), mp, alpha, beta, c_b, d_b, bias_b); break;
        }
    }
}

// ---- memory spans, for overlap checks ---------------------------------------------------

struct Span {
    uintptr_t lo, hi; // [lo, hi) bytes; empty when lo == hi
};

Span span_of(const Operand &o, const void *base) {
    const Layout &l = *o.layout;
    if (!base || l.rows == 0 || l.cols == 0) return Span{0, 0};
    const int64_t last = ((int64_t)l.rows - 1) * row_step(l) + ((int64_t)l.cols - 1) * col_step(l);
    int64_t lo = 0, hi = last;
    const int64_t batch_extent = (int64_t)(l.batch_count - 1) * l.batch_stride;
    if (batch_extent < 0) lo += batch_extent;
    else hi += batch_extent;
    const uintptr_t b = (uintptr_t)base;
    return Span{b + (uintptr_t)(lo * (int64_t)o.bytes),
                b + (uintptr_t)((hi + 1) * (int64_t)o.bytes)};
}

bool overlap(Span x, Span y) { return x.lo < x.hi && y.lo < y.hi && x.lo < y.hi && y.lo < x.hi; }

} // namespace

// ---- the API -------------------------------------------------------------------------------

extern "C" {

const char *CUBLASWINAPI cublasLtGetStatusName(cublasStatus_t status) {
    return status_name(status);
}

const char *CUBLASWINAPI cublasLtGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "an error was detected when checking the license";
    }
    return "unknown cuBLAS status";
}

cublasStatus_t CUBLASWINAPI cublasLtCreate(cublasLtHandle_t *lightHandle) {
    if (!lightHandle)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasLtCreate", "lightHandle is NULL");
    Context *c = new (std::nothrow) Context{kContextMagic};
    if (!c) return refuse(CUBLAS_STATUS_ALLOC_FAILED, "cublasLtCreate", "out of host memory");
    *lightHandle = reinterpret_cast<cublasLtHandle_t>(c);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtDestroy(cublasLtHandle_t lightHandle) {
    Context *c = context_of(lightHandle);
    if (!c)
        return refuse(CUBLAS_STATUS_NOT_INITIALIZED, "cublasLtDestroy",
                      "lightHandle is NULL or not made by cublasLtCreate");
    c->magic = kDeadMagic;
    delete c;
    return CUBLAS_STATUS_SUCCESS;
}

// ---- matmul descriptor ----

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *matmulDesc,
                                                     cublasComputeType_t computeType,
                                                     cudaDataType_t scaleType) {
    const char *call = "cublasLtMatmulDescCreate";
    if (!matmulDesc) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "matmulDesc is NULL");
    *matmulDesc = nullptr;
    if (!compute_type_modelled(computeType))
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                      "compute type %d is not modelled (only CUBLAS_COMPUTE_32F and its "
                      "PEDANTIC / FAST_* variants)",
                      (int)computeType);
    if (scaleType != CUDA_R_32F)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                      "scale type %d with a 32F compute type: only CUDA_R_32F", (int)scaleType);
    MatmulDesc *d = new (std::nothrow) MatmulDesc;
    if (!d) return refuse(CUBLAS_STATUS_ALLOC_FAILED, call, "out of host memory");
    d->magic = kDescMagic;
    d->compute_type = computeType;
    d->scale_type = scaleType;
    d->pointer_mode = CUBLASLT_POINTER_MODE_HOST;
    d->transa = d->transb = d->transc = CUBLAS_OP_N;
    d->fill_mode = CUBLAS_FILL_MODE_FULL;
    d->epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    d->bias = nullptr;
    d->bias_batch_stride = 0;
    d->bias_type = -1;
    *matmulDesc = reinterpret_cast<cublasLtMatmulDesc_t>(d);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc) {
    if (!matmulDesc) return CUBLAS_STATUS_SUCCESS;
    MatmulDesc *d = desc_of(matmulDesc);
    if (!d)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulDescDestroy",
                      "not a descriptor made by cublasLtMatmulDescCreate");
    d->magic = kDeadMagic;
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc,
                                                           cublasLtMatmulDescAttributes_t attr,
                                                           const void *buf, size_t sizeInBytes) {
    const char *call = "cublasLtMatmulDescSetAttribute";
    MatmulDesc *d = desc_of(matmulDesc);
    if (!d)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "matmulDesc is NULL or not made by cublasLtMatmulDescCreate");
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    const void *ptr;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE:
        if (!read_value(buf, sizeInBytes, &i32))
            return bad_buffer(call, "COMPUTE_TYPE", buf, sizeInBytes, sizeof i32);
        if (!compute_type_modelled(i32))
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "COMPUTE_TYPE %d is not modelled", (int)i32);
        d->compute_type = i32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE:
        if (!read_value(buf, sizeInBytes, &i32))
            return bad_buffer(call, "SCALE_TYPE", buf, sizeInBytes, sizeof i32);
        if (i32 != CUDA_R_32F)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "SCALE_TYPE %d: only CUDA_R_32F is modelled", (int)i32);
        d->scale_type = i32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_POINTER_MODE:
        if (!read_value(buf, sizeInBytes, &i32))
            return bad_buffer(call, "POINTER_MODE", buf, sizeInBytes, sizeof i32);
        if (i32 != CUBLASLT_POINTER_MODE_HOST)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "POINTER_MODE %d: only CUBLASLT_POINTER_MODE_HOST is modelled",
                          (int)i32);
        d->pointer_mode = i32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB: {
        const char *name = attr == CUBLASLT_MATMUL_DESC_TRANSA ? "TRANSA" : "TRANSB";
        if (!read_value(buf, sizeInBytes, &i32))
            return bad_buffer(call, name, buf, sizeInBytes, sizeof i32);
        if (i32 == CUBLAS_OP_CONJG)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "%s CUBLAS_OP_CONJG is not modelled", name);
        if (i32 != CUBLAS_OP_N && i32 != CUBLAS_OP_T && i32 != CUBLAS_OP_C)
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "%s %d is not a cublasOperation_t",
                          name, (int)i32);
        (attr == CUBLASLT_MATMUL_DESC_TRANSA ? d->transa : d->transb) = i32;
        return CUBLAS_STATUS_SUCCESS;
    }
    case CUBLASLT_MATMUL_DESC_TRANSC:
        if (!read_value(buf, sizeInBytes, &i32))
            return bad_buffer(call, "TRANSC", buf, sizeInBytes, sizeof i32);
        if (i32 != CUBLAS_OP_N)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "TRANSC %d: only CUBLAS_OP_N is supported", (int)i32);
        d->transc = i32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_FILL_MODE:
        if (!read_value(buf, sizeInBytes, &i32))
            return bad_buffer(call, "FILL_MODE", buf, sizeInBytes, sizeof i32);
        if (i32 != CUBLAS_FILL_MODE_FULL)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "FILL_MODE %d: only CUBLAS_FILL_MODE_FULL is modelled", (int)i32);
        d->fill_mode = i32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        if (!read_value(buf, sizeInBytes, &u32))
            return bad_buffer(call, "EPILOGUE", buf, sizeInBytes, sizeof u32);
        if (!epilogue_modelled(u32))
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "EPILOGUE %u is not modelled (DEFAULT, RELU, BIAS, RELU_BIAS)",
                          (unsigned)u32);
        d->epilogue = u32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (!read_value(buf, sizeInBytes, &ptr))
            return bad_buffer(call, "BIAS_POINTER", buf, sizeInBytes, sizeof ptr);
        d->bias = ptr;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE:
        if (!read_value(buf, sizeInBytes, &i64))
            return bad_buffer(call, "BIAS_BATCH_STRIDE", buf, sizeInBytes, sizeof i64);
        d->bias_batch_stride = i64;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        if (!read_value(buf, sizeInBytes, &i32))
            return bad_buffer(call, "BIAS_DATA_TYPE", buf, sizeInBytes, sizeof i32);
        if (i32 != -1 && !data_type_modelled((uint32_t)i32))
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "BIAS_DATA_TYPE %d is not modelled", (int)i32);
        d->bias_type = i32;
        return CUBLAS_STATUS_SUCCESS;
    default:
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "attribute %d is not modelled",
                      (int)attr);
    }
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t matmulDesc,
                                                           cublasLtMatmulDescAttributes_t attr,
                                                           void *buf, size_t sizeInBytes,
                                                           size_t *sizeWritten) {
    const char *call = "cublasLtMatmulDescGetAttribute";
    const MatmulDesc *d = desc_of(matmulDesc);
    if (!d)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "matmulDesc is NULL or not made by cublasLtMatmulDescCreate");
    switch (attr) {
#define FAKE_GET(name, field) \
    case CUBLASLT_MATMUL_DESC_##name: \
        return write_value(call, #name, &d->field, sizeof d->field, buf, sizeInBytes, sizeWritten)
        FAKE_GET(COMPUTE_TYPE, compute_type);
        FAKE_GET(SCALE_TYPE, scale_type);
        FAKE_GET(POINTER_MODE, pointer_mode);
        FAKE_GET(TRANSA, transa);
        FAKE_GET(TRANSB, transb);
        FAKE_GET(TRANSC, transc);
        FAKE_GET(FILL_MODE, fill_mode);
        FAKE_GET(EPILOGUE, epilogue);
        FAKE_GET(BIAS_POINTER, bias);
        FAKE_GET(BIAS_BATCH_STRIDE, bias_batch_stride);
        FAKE_GET(BIAS_DATA_TYPE, bias_type);
#undef FAKE_GET
    default:
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "attribute %d is not modelled",
                      (int)attr);
    }
}

// ---- matrix layout ----

cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *matLayout,
                                                       cudaDataType type, uint64_t rows,
                                                       uint64_t cols, int64_t ld) {
    const char *call = "cublasLtMatrixLayoutCreate";
    if (!matLayout) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "matLayout is NULL");
    *matLayout = nullptr;
    if (!data_type_modelled(type))
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                      "type %d is not modelled (CUDA_R_16BF, CUDA_R_16F, CUDA_R_32F)", (int)type);
    if (rows > INT32_MAX || cols > INT32_MAX)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                      "%llu x %llu: only sizes that fit int32 are supported",
                      (unsigned long long)rows, (unsigned long long)cols);
    if (ld < 0)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "ld %lld is negative", (long long)ld);
    Layout *l = new (std::nothrow) Layout;
    if (!l) return refuse(CUBLAS_STATUS_ALLOC_FAILED, call, "out of host memory");
    l->magic = kLayoutMagic;
    l->type = (uint32_t)type;
    l->order = CUBLASLT_ORDER_COL;
    l->rows = rows;
    l->cols = cols;
    l->ld = ld;
    l->batch_count = 1;
    l->batch_stride = 0;
    l->plane_offset = 0;
    l->batch_mode = CUBLASLT_BATCH_MODE_STRIDED;
    *matLayout = reinterpret_cast<cublasLtMatrixLayout_t>(l);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout) {
    if (!matLayout) return CUBLAS_STATUS_SUCCESS;
    Layout *l = layout_of(matLayout);
    if (!l)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatrixLayoutDestroy",
                      "not a layout made by cublasLtMatrixLayoutCreate");
    l->magic = kDeadMagic;
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t matLayout,
                                                             cublasLtMatrixLayoutAttribute_t attr,
                                                             const void *buf, size_t sizeInBytes) {
    const char *call = "cublasLtMatrixLayoutSetAttribute";
    Layout *l = layout_of(matLayout);
    if (!l)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "matLayout is NULL or not made by cublasLtMatrixLayoutCreate");
    int32_t i32;
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE:
        if (!read_value(buf, sizeInBytes, &u32))
            return bad_buffer(call, "TYPE", buf, sizeInBytes, sizeof u32);
        if (!data_type_modelled(u32))
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "TYPE %u is not modelled",
                          (unsigned)u32);
        l->type = u32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATRIX_LAYOUT_ORDER:
        if (!read_value(buf, sizeInBytes, &i32))
            return bad_buffer(call, "ORDER", buf, sizeInBytes, sizeof i32);
        if (i32 != CUBLASLT_ORDER_COL && i32 != CUBLASLT_ORDER_ROW)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "ORDER %d: only CUBLASLT_ORDER_COL and CUBLASLT_ORDER_ROW are modelled",
                          (int)i32);
        l->order = i32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATRIX_LAYOUT_ROWS:
    case CUBLASLT_MATRIX_LAYOUT_COLS: {
        const char *name = attr == CUBLASLT_MATRIX_LAYOUT_ROWS ? "ROWS" : "COLS";
        if (!read_value(buf, sizeInBytes, &u64))
            return bad_buffer(call, name, buf, sizeInBytes, sizeof u64);
        if (u64 > INT32_MAX)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "%s %llu does not fit int32", name,
                          (unsigned long long)u64);
        (attr == CUBLASLT_MATRIX_LAYOUT_ROWS ? l->rows : l->cols) = u64;
        return CUBLAS_STATUS_SUCCESS;
    }
    case CUBLASLT_MATRIX_LAYOUT_LD:
        if (!read_value(buf, sizeInBytes, &i64))
            return bad_buffer(call, "LD", buf, sizeInBytes, sizeof i64);
        if (i64 < 0)
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "LD %lld is negative", (long long)i64);
        l->ld = i64;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT:
        if (!read_value(buf, sizeInBytes, &i32))
            return bad_buffer(call, "BATCH_COUNT", buf, sizeInBytes, sizeof i32);
        if (i32 < 1)
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "BATCH_COUNT %d is less than 1",
                          (int)i32);
        l->batch_count = i32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET:
        if (!read_value(buf, sizeInBytes, &i64))
            return bad_buffer(call, "STRIDED_BATCH_OFFSET", buf, sizeInBytes, sizeof i64);
        l->batch_stride = i64;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATRIX_LAYOUT_PLANE_OFFSET:
        if (!read_value(buf, sizeInBytes, &i64))
            return bad_buffer(call, "PLANE_OFFSET", buf, sizeInBytes, sizeof i64);
        if (i64 != 0)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "PLANE_OFFSET %lld: planar complex is not modelled", (long long)i64);
        l->plane_offset = i64;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATRIX_LAYOUT_BATCH_MODE:
        if (!read_value(buf, sizeInBytes, &u32))
            return bad_buffer(call, "BATCH_MODE", buf, sizeInBytes, sizeof u32);
        if (u32 != CUBLASLT_BATCH_MODE_STRIDED)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "BATCH_MODE %u: only CUBLASLT_BATCH_MODE_STRIDED is modelled",
                          (unsigned)u32);
        l->batch_mode = u32;
        return CUBLAS_STATUS_SUCCESS;
    default:
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "attribute %d is not modelled",
                      (int)attr);
    }
}

cublasStatus_t CUBLASWINAPI cublasLtMatrixLayoutGetAttribute(cublasLtMatrixLayout_t matLayout,
                                                             cublasLtMatrixLayoutAttribute_t attr,
                                                             void *buf, size_t sizeInBytes,
                                                             size_t *sizeWritten) {
    const char *call = "cublasLtMatrixLayoutGetAttribute";
    const Layout *l = layout_of(matLayout);
    if (!l)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "matLayout is NULL or not made by cublasLtMatrixLayoutCreate");
    switch (attr) {
#define FAKE_GET(name, field) \
    case CUBLASLT_MATRIX_LAYOUT_##name: \
        return write_value(call, #name, &l->field, sizeof l->field, buf, sizeInBytes, sizeWritten)
        FAKE_GET(TYPE, type);
        FAKE_GET(ORDER, order);
        FAKE_GET(ROWS, rows);
        FAKE_GET(COLS, cols);
        FAKE_GET(LD, ld);
        FAKE_GET(BATCH_COUNT, batch_count);
        FAKE_GET(STRIDED_BATCH_OFFSET, batch_stride);
        FAKE_GET(PLANE_OFFSET, plane_offset);
        FAKE_GET(BATCH_MODE, batch_mode);
#undef FAKE_GET
    default:
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "attribute %d is not modelled",
                      (int)attr);
    }
}

// ---- heuristic preference ----

cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    const char *call = "cublasLtMatmulPreferenceCreate";
    if (!pref) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "pref is NULL");
    Preference *p = new (std::nothrow) Preference;
    if (!p) return refuse(CUBLAS_STATUS_ALLOC_FAILED, call, "out of host memory");
    p->magic = kPreferenceMagic;
    p->search_mode = CUBLASLT_SEARCH_BEST_FIT;
    p->max_workspace = 0;
    p->reduction_mask = CUBLASLT_REDUCTION_SCHEME_MASK;
    for (int x = 0; x < 4; x++) p->min_alignment[x] = 256;
    p->max_waves = 0.0f;
    p->impl_mask = ~0ull;
    *pref = reinterpret_cast<cublasLtMatmulPreference_t>(p);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    if (!pref) return CUBLAS_STATUS_SUCCESS;
    Preference *p = preference_of(pref);
    if (!p)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceDestroy",
                      "not a preference made by cublasLtMatmulPreferenceCreate");
    p->magic = kDeadMagic;
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceSetAttribute(
    cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
    size_t sizeInBytes) {
    const char *call = "cublasLtMatmulPreferenceSetAttribute";
    Preference *p = preference_of(pref);
    if (!p)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "pref is NULL or not made by cublasLtMatmulPreferenceCreate");
    uint32_t u32;
    uint64_t u64;
    float f;
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_SEARCH_MODE:
        if (!read_value(buf, sizeInBytes, &u32))
            return bad_buffer(call, "SEARCH_MODE", buf, sizeInBytes, sizeof u32);
        if (u32 != CUBLASLT_SEARCH_BEST_FIT)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "SEARCH_MODE %u: only CUBLASLT_SEARCH_BEST_FIT is modelled",
                          (unsigned)u32);
        p->search_mode = u32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
        if (!read_value(buf, sizeInBytes, &u64))
            return bad_buffer(call, "MAX_WORKSPACE_BYTES", buf, sizeInBytes, sizeof u64);
        p->max_workspace = u64;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK:
        if (!read_value(buf, sizeInBytes, &u32))
            return bad_buffer(call, "REDUCTION_SCHEME_MASK", buf, sizeInBytes, sizeof u32);
        p->reduction_mask = u32; // the fake's algorithm reduces nothing: any mask admits it
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: {
        const int x = (int)attr - (int)CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES;
        static const char *const names[4] = {"MIN_ALIGNMENT_A_BYTES", "MIN_ALIGNMENT_B_BYTES",
                                             "MIN_ALIGNMENT_C_BYTES", "MIN_ALIGNMENT_D_BYTES"};
        if (!read_value(buf, sizeInBytes, &u32))
            return bad_buffer(call, names[x], buf, sizeInBytes, sizeof u32);
        if (u32 == 0 || (u32 & (u32 - 1)) != 0)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "%s %u: only powers of two are modelled", names[x], (unsigned)u32);
        p->min_alignment[x] = u32;
        return CUBLAS_STATUS_SUCCESS;
    }
    case CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT:
        if (!read_value(buf, sizeInBytes, &f))
            return bad_buffer(call, "MAX_WAVES_COUNT", buf, sizeInBytes, sizeof f);
        if (!(f >= 0.0f))
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "MAX_WAVES_COUNT %g is negative",
                          (double)f);
        p->max_waves = f;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_IMPL_MASK:
        if (!read_value(buf, sizeInBytes, &u64))
            return bad_buffer(call, "IMPL_MASK", buf, sizeInBytes, sizeof u64);
        p->impl_mask = u64;
        return CUBLAS_STATUS_SUCCESS;
    default:
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "attribute %d is not modelled",
                      (int)attr);
    }
}

cublasStatus_t CUBLASWINAPI cublasLtMatmulPreferenceGetAttribute(
    cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, void *buf,
    size_t sizeInBytes, size_t *sizeWritten) {
    const char *call = "cublasLtMatmulPreferenceGetAttribute";
    const Preference *p = preference_of(pref);
    if (!p)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "pref is NULL or not made by cublasLtMatmulPreferenceCreate");
    switch (attr) {
#define FAKE_GET(name, field) \
    case CUBLASLT_MATMUL_PREF_##name: \
        return write_value(call, #name, &p->field, sizeof p->field, buf, sizeInBytes, sizeWritten)
        FAKE_GET(SEARCH_MODE, search_mode);
        FAKE_GET(MAX_WORKSPACE_BYTES, max_workspace);
        FAKE_GET(REDUCTION_SCHEME_MASK, reduction_mask);
        FAKE_GET(MIN_ALIGNMENT_A_BYTES, min_alignment[kA]);
        FAKE_GET(MIN_ALIGNMENT_B_BYTES, min_alignment[kB]);
        FAKE_GET(MIN_ALIGNMENT_C_BYTES, min_alignment[kC]);
        FAKE_GET(MIN_ALIGNMENT_D_BYTES, min_alignment[kD]);
        FAKE_GET(MAX_WAVES_COUNT, max_waves);
        FAKE_GET(IMPL_MASK, impl_mask);
#undef FAKE_GET
    default:
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "attribute %d is not modelled",
                      (int)attr);
    }
}

// ---- heuristic ----

// Heuristic queries made so far (for the tests of the GEMM layer's cache).
static long g_heuristic_calls;
extern "C" long armo_emu_cublaslt_heuristic_calls(void) { return g_heuristic_calls; }

cublasStatus_t CUBLASWINAPI cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc,
    cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc,
    cublasLtMatrixLayout_t Ddesc, cublasLtMatmulPreference_t preference, int requestedAlgoCount,
    cublasLtMatmulHeuristicResult_t heuristicResultsArray[], int *returnAlgoCount) {
    g_heuristic_calls++;
    const char *call = "cublasLtMatmulAlgoGetHeuristic";
    if (returnAlgoCount) *returnAlgoCount = 0;
    if (!context_of(lightHandle))
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "lightHandle is NULL or not made by cublasLtCreate");
    if (requestedAlgoCount < 1)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "requestedAlgoCount %d is less than 1",
                      requestedAlgoCount);
    if (!heuristicResultsArray || !returnAlgoCount)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "heuristicResultsArray or returnAlgoCount is NULL");
    const Preference *pref = preference_of(preference);
    if (!pref)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "preference is NULL or not made by cublasLtMatmulPreferenceCreate");
    Problem p;
    cublasStatus_t st = describe_problem(call, operationDesc, Adesc, Bdesc, Cdesc, Ddesc, &p);
    if (st != CUBLAS_STATUS_SUCCESS) return st;

    const uint64_t input_flag = p.ab_type == CUDA_R_16BF  ? CUBLASLT_NUMERICAL_IMPL_FLAGS_INPUT_16BF
                                : p.ab_type == CUDA_R_16F ? CUBLASLT_NUMERICAL_IMPL_FLAGS_INPUT_16F
                                                          : CUBLASLT_NUMERICAL_IMPL_FLAGS_INPUT_32F;
    const uint64_t impl = CUBLASLT_NUMERICAL_IMPL_FLAGS_FMA |
                          CUBLASLT_NUMERICAL_IMPL_FLAGS_ACCUMULATOR_32F | input_flag;
    if ((pref->impl_mask & impl) != impl)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                      "IMPL_MASK 0x%llx excludes the fake's FMA, fp32-accumulating algorithm",
                      (unsigned long long)pref->impl_mask);
    if (pref->max_waves > 0.0f && pref->max_waves < 1.0f)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                      "MAX_WAVES_COUNT %g is below the fake's 1.0 waves", (double)pref->max_waves);

    const MatmulDesc *op = desc_of(operationDesc);
    const Layout *ls[4] = {layout_of(Adesc), layout_of(Bdesc), layout_of(Cdesc), layout_of(Ddesc)};
    AlgoRecord r;
    r.compute = p.compute;
    r.ab_type = p.ab_type;
    r.cd_type = p.cd_type;
    r.epilogue = p.epilogue;
    r.workspace = pref->max_workspace < kAlgoWorkspaceBytes ? pref->max_workspace
                                                            : kAlgoWorkspaceBytes;
    for (int x = 0; x < 4; x++) {
        unsigned lg = align_log2_of_value(pref->min_alignment[x]);
        const unsigned element_lg = align_log2_of_value(element_bytes(ls[x]->type));
        if (lg < element_lg) lg = element_lg; // no kernel reads a matrix less aligned than that
        r.pointer_log2[x] = lg;
        r.vec_log2[x] = vector_log2(*ls[x], lg);
    }
    r.bias_log2 = 0;
    if (epilogue_has_bias(p.epilogue)) {
        const unsigned element_lg = align_log2_of_value(element_bytes(p.bias_type));
        unsigned lg = op->bias ? align_log2_of_pointer(op->bias) : element_lg;
        if (lg > 4) lg = 4; // the fake's algorithm reads the bias at most 16 bytes at a time
        r.bias_log2 = lg < element_lg ? element_lg : lg;
    }

    memset(&heuristicResultsArray[0], 0, sizeof heuristicResultsArray[0]);
    heuristicResultsArray[0].algo = encode_algo(r);
    // outside the checksum: the n the choice was made for, which only the
    // stricter mode below (ARMO_EMU_CUBLASLT_EXACT_N) looks at
    heuristicResultsArray[0].algo.data[7] = (uint64_t)p.n;
    heuristicResultsArray[0].workspaceSize = (size_t)r.workspace;
    heuristicResultsArray[0].state = CUBLAS_STATUS_SUCCESS;
    heuristicResultsArray[0].wavesCount = 1.0f;
    *returnAlgoCount = 1;
    return CUBLAS_STATUS_SUCCESS;
}

// ---- matmul ----

static cublasStatus_t matmul_now(cublasLtHandle_t lightHandle,
                                 cublasLtMatmulDesc_t computeDesc, const void *alpha,
                                 const void *A, cublasLtMatrixLayout_t Adesc, const void *B,
                                 cublasLtMatrixLayout_t Bdesc, const void *beta, const void *C,
                                 cublasLtMatrixLayout_t Cdesc, void *D,
                                 cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo,
                                 void *workspace, size_t workspaceSizeInBytes,
                                 cudaStream_t stream) {
    const char *call = "cublasLtMatmul";
    if (!context_of(lightHandle))
        return refuse(CUBLAS_STATUS_NOT_INITIALIZED, call,
                      "lightHandle is NULL or not made by cublasLtCreate");
    Problem p;
    cublasStatus_t st = describe_problem(call, computeDesc, Adesc, Bdesc, Cdesc, Ddesc, &p);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    const MatmulDesc *op = desc_of(computeDesc);
    const Layout *ls[4] = {layout_of(Adesc), layout_of(Bdesc), layout_of(Cdesc), layout_of(Ddesc)};
    if (!alpha || !beta) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "alpha or beta is NULL");
    float alpha_f, beta_f;
    memcpy(&alpha_f, alpha, sizeof alpha_f);
    memcpy(&beta_f, beta, sizeof beta_f);

    // The algorithm: the heuristic's record, or (algo NULL) an implicit one
    // that assumes only element alignment and uses no workspace.
    AlgoRecord r;
    if (algo) {
        if (!decode_algo(*algo, &r))
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                          "algo was not returned by cublasLtMatmulAlgoGetHeuristic");
        if (r.compute != p.compute || r.ab_type != p.ab_type || r.cd_type != p.cd_type)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "algo was chosen for compute type %d, A/B %s, C/D %s, not %d, %s, %s",
                          (int)r.compute, data_type_name(r.ab_type), data_type_name(r.cd_type),
                          (int)p.compute, data_type_name(p.ab_type), data_type_name(p.cd_type));
        // A stricter cuBLASLt, for the tests of the GEMM layer's fallback: with
        // ARMO_EMU_CUBLASLT_EXACT_N=1 an algorithm runs only the n it was chosen for.
        const bool exact_n = getenv("ARMO_EMU_CUBLASLT_EXACT_N") != nullptr;
        if (exact_n && algo->data[7] != (uint64_t)p.n)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "algo was chosen for n %llu, not %lld (ARMO_EMU_CUBLASLT_EXACT_N)",
                          (unsigned long long)algo->data[7], (long long)p.n);
        if (r.epilogue != p.epilogue)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "algo was chosen for epilogue %u, the descriptor says %u",
                          (unsigned)r.epilogue, (unsigned)p.epilogue);
    } else {
        r.compute = p.compute;
        r.ab_type = p.ab_type;
        r.cd_type = p.cd_type;
        r.epilogue = p.epilogue;
        r.workspace = 0;
        for (int x = 0; x < 4; x++) {
            r.pointer_log2[x] = align_log2_of_value(element_bytes(ls[x]->type));
            r.vec_log2[x] = 0;
        }
        r.bias_log2 = align_log2_of_value(element_bytes(p.bias_type));
    }

    if (workspaceSizeInBytes > 0 && !workspace)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "workspace is NULL but workspaceSizeInBytes is %zu", workspaceSizeInBytes);
    if (workspaceSizeInBytes < r.workspace)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "workspaceSizeInBytes %zu is less than the %llu bytes the algo needs",
                      workspaceSizeInBytes, (unsigned long long)r.workspace);

    const bool any_output = p.m > 0 && p.n > 0 && p.batch > 0;
    const void *ptrs[4] = {A, B, C, D};
    const char *names[4] = {"A", "B", "C", "D"};
    const bool needed[4] = {any_output && p.k > 0, any_output && p.k > 0,
                            any_output && beta_f != 0.0f, any_output};
    for (int x = 0; x < 4; x++) {
        if (!needed[x]) continue;
        if (!ptrs[x])
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "%s is NULL%s", names[x],
                          x == kC ? " but beta is not 0" : "");
        const unsigned have = align_log2_of_pointer(ptrs[x]);
        if (have < r.pointer_log2[x])
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "%s %p is %u-byte aligned; the algo was chosen for %u-byte alignment "
                          "(MIN_ALIGNMENT_%s_BYTES)",
                          names[x], ptrs[x], 1u << have, 1u << r.pointer_log2[x], names[x]);
        const unsigned vec = vector_log2(*ls[x], r.pointer_log2[x]);
        if (vec < r.vec_log2[x])
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "%s's ld / batch stride allow %u-byte vectors; the algo was chosen "
                          "for %u-byte vectors",
                          names[x], 1u << vec, 1u << r.vec_log2[x]);
    }

    const bool in_place = C == D && C != nullptr;
    if (in_place && !same_layout(*ls[kC], *ls[kD]))
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "C == D (in place) but Cdesc and Ddesc differ");

    const void *bias = nullptr;
    if (epilogue_has_bias(p.epilogue) && any_output) {
        bias = op->bias;
        if (!bias)
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                          "epilogue %u needs CUBLASLT_MATMUL_DESC_BIAS_POINTER",
                          (unsigned)p.epilogue);
        if (align_log2_of_pointer(bias) < r.bias_log2)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "bias %p is less aligned than the %u bytes the algo was chosen for",
                          bias, 1u << r.bias_log2);
    }

    if (any_output) {
        const Span d = span_of(p.d, D);
        const Span inputs[3] = {span_of(p.a, needed[kA] ? A : nullptr),
                                span_of(p.b, needed[kB] ? B : nullptr),
                                span_of(p.c, needed[kC] && !in_place ? C : nullptr)};
        for (int x = 0; x < 3; x++)
            if (overlap(d, inputs[x]))
                return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                              "D overlaps %s (only C == D with equal layouts may alias)",
                              names[x]);
        if (bias) {
            const int64_t bias_bytes = (int64_t)element_bytes(p.bias_type);
            const int64_t last = (int64_t)(p.batch - 1) * op->bias_batch_stride;
            const uintptr_t base = (uintptr_t)bias;
            const Span bs{base + (uintptr_t)((last < 0 ? last : 0) * bias_bytes),
                          base + (uintptr_t)(((last > 0 ? last : 0) + p.m) * bias_bytes)};
            if (overlap(d, bs))
                return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "D overlaps the bias vector");
        }
        if (r.workspace > 0) {
            const Span ws{(uintptr_t)workspace, (uintptr_t)workspace + (uintptr_t)r.workspace};
            const Span all[4] = {inputs[0], inputs[1], span_of(p.c, needed[kC] ? C : nullptr), d};
            for (int x = 0; x < 4; x++)
                if (overlap(ws, all[x]))
                    return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                                  "the workspace overlaps %s", names[x]);
        }
    }

    // the emulated runtime's view of the launch: stream ordering, and a fault
    // injected by ARMO_EMU_FAULT=cublasLtMatmul:K (the GEMM then "fails while
    // running": it does not compute, the error shows at the next sync)
    if (!emu::before_launch("cublasLtMatmul", stream)) return CUBLAS_STATUS_SUCCESS;
    if (r.workspace > 0) memset(workspace, 0xa5, (size_t)r.workspace); // as a split-K kernel might
    if (!any_output) return CUBLAS_STATUS_SUCCESS;
    run_matmul(p, alpha_f, beta_f, A, B, beta_f != 0.0f ? C : nullptr, D, bias,
               op->bias_batch_stride);
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"

// A matmul on a stream that captures a CUDA graph (emu.h) is recorded with
// its scalars, algorithm and descriptors by value (cuBLASLt reads them when
// the call is made: a caller may destroy its descriptors right after, as
// kernels/gemm.cu does) and runs when the graph is launched; the handle, the
// workspace and the matrices must still be alive then, as on a GPU.
cublasStatus_t CUBLASWINAPI cublasLtMatmul(cublasLtHandle_t lightHandle,
                                           cublasLtMatmulDesc_t computeDesc, const void *alpha,
                                           const void *A, cublasLtMatrixLayout_t Adesc,
                                           const void *B, cublasLtMatrixLayout_t Bdesc,
                                           const void *beta, const void *C,
                                           cublasLtMatrixLayout_t Cdesc, void *D,
                                           cublasLtMatrixLayout_t Ddesc,
                                           const cublasLtMatmulAlgo_t *algo, void *workspace,
                                           size_t workspaceSizeInBytes, cudaStream_t stream) {
    if (!emu::stream_capturing(stream) || !alpha || !beta || !desc_of(computeDesc) ||
        !layout_of(Adesc) || !layout_of(Bdesc) || !layout_of(Cdesc) || !layout_of(Ddesc))
        return matmul_now(lightHandle, computeDesc, alpha, A, Adesc, B, Bdesc, beta, C, Cdesc, D,
                          Ddesc, algo, workspace, workspaceSizeInBytes, stream);
    struct Snapshot {
        MatmulDesc op;
        Layout l[4];
    };
    std::shared_ptr<Snapshot> snap = std::make_shared<Snapshot>();
    snap->op = *desc_of(computeDesc);
    snap->l[0] = *layout_of(Adesc);
    snap->l[1] = *layout_of(Bdesc);
    snap->l[2] = *layout_of(Cdesc);
    snap->l[3] = *layout_of(Ddesc);
    float alpha_f, beta_f;
    memcpy(&alpha_f, alpha, sizeof alpha_f);
    memcpy(&beta_f, beta, sizeof beta_f);
    const bool has_algo = algo != nullptr;
    cublasLtMatmulAlgo_t algo_v;
    if (has_algo) algo_v = *algo;
    emu::capture_record(stream, [=]() {
        float a = alpha_f, b = beta_f;
        cublasLtMatmulAlgo_t al = algo_v;
        Snapshot *sn = snap.get();
        const cublasStatus_t st = matmul_now(
            lightHandle, reinterpret_cast<cublasLtMatmulDesc_t>(&sn->op), &a, A,
            reinterpret_cast<cublasLtMatrixLayout_t>(&sn->l[0]), B,
            reinterpret_cast<cublasLtMatrixLayout_t>(&sn->l[1]), &b, C,
            reinterpret_cast<cublasLtMatrixLayout_t>(&sn->l[2]), D,
            reinterpret_cast<cublasLtMatrixLayout_t>(&sn->l[3]), has_algo ? &al : nullptr,
            workspace, workspaceSizeInBytes, stream);
        if (st != CUBLAS_STATUS_SUCCESS) {
            fprintf(stderr, "cublaslt_fake: a cublasLtMatmul recorded in a CUDA graph failed when "
                            "the graph ran (status %d)\n", (int)st);
            abort();
        }
    });
    return CUBLAS_STATUS_SUCCESS;
}
