// test_cublaslt_fake.cpp — checks cublaslt_fake.cpp against a double-precision
// reference written here from the cuBLASLt definitions (element (r, c) of
// batch b at b*stride + r + c*ld for COL, b*stride + r*ld + c for ROW; D =
// alpha·op(A)·op(B) + beta·C, then bias and ReLU), and that each refusal comes
// back with its documented status.  One line per case; exit 0 when all pass.
// Bytes of D outside its elements (ld padding, gaps between batches) must keep
// their sentinel.  Build and run (about 1 s), from the repository root:
//   g++ -std=c++17 -O2 -Wall -Wextra -I/usr/local/cuda/include -o t
//       tests/emu/cuda/cublaslt_fake.cpp tests/emu/cuda/test_cublaslt_fake.cpp && ./t
#include <cublasLt.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

int g_failures = 0, g_cases = 0;

void report(bool ok, const std::string &label, const std::string &detail) {
    g_cases++;
    if (!ok) g_failures++;
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", label.c_str(), detail.empty() ? "" : "  ",
           detail.c_str());
    fflush(stdout);
}

// ---- element values, decoded from first principles -----------------------------

double bf16_value(uint16_t bits) {
    const uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
double f16_value(uint16_t h) {
    const int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? std::ldexp((double)m, -24)
               : e == 31 ? (m ? NAN : INFINITY)
                         : std::ldexp(1024.0 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}
size_t type_bytes(uint32_t t) { return t == CUDA_R_32F ? 4 : 2; }
const char *type_name(uint32_t t) {
    return t == CUDA_R_16BF ? "bf16" : t == CUDA_R_16F ? "f16" : "f32";
}

// A matrix in host memory as cuBLASLt would see it.
struct Matrix {
    uint32_t type;
    int32_t order;
    int64_t rows, cols, ld;
    int32_t batch;
    int64_t stride; // elements between batches
    std::vector<unsigned char> storage;
    unsigned char *base; // 256-byte aligned start inside storage (plus an offset)

    int64_t offset(int64_t r, int64_t c, int b) const {
        return b * stride + (order == CUBLASLT_ORDER_COL ? r + c * ld : r * ld + c);
    }
    int64_t elements() const { return (batch - 1) * stride + (order == CUBLASLT_ORDER_COL ? ld * cols : ld * rows); }
    double get(int64_t r, int64_t c, int b) const {
        const int64_t o = offset(r, c, b);
        if (type == CUDA_R_32F) {
            float f;
            memcpy(&f, base + o * 4, 4);
            return f;
        }
        uint16_t h;
        memcpy(&h, base + o * 2, 2);
        return type == CUDA_R_16BF ? bf16_value(h) : f16_value(h);
    }
    void set_bits(int64_t r, int64_t c, int b, uint32_t bits) {
        const int64_t o = offset(r, c, b);
        if (type == CUDA_R_32F) memcpy(base + o * 4, &bits, 4);
        else {
            const uint16_t h = (uint16_t)bits;
            memcpy(base + o * 2, &h, 2);
        }
    }
};

// rows x cols, ld = minimum + pad, batches `extra` elements apart beyond the
// matrix; storage filled with a sentinel byte; base at 256-byte alignment + shift.
Matrix make_matrix(uint32_t type, int32_t order, int64_t rows, int64_t cols, int64_t pad,
                   int32_t batch, int64_t extra, size_t shift = 0) {
    Matrix m;
    m.type = type;
    m.order = order;
    m.rows = rows;
    m.cols = cols;
    m.ld = (order == CUBLASLT_ORDER_COL ? rows : cols) + pad;
    m.batch = batch;
    m.stride = (order == CUBLASLT_ORDER_COL ? m.ld * cols : m.ld * rows) + extra;
    const size_t bytes = (size_t)m.elements() * type_bytes(type);
    m.storage.assign(bytes + 512 + shift, 0x5a);
    uintptr_t p = (uintptr_t)m.storage.data();
    p = (p + 255) & ~(uintptr_t)255;
    m.base = (unsigned char *)p + shift;
    return m;
}

// Random values that every type holds exactly, of magnitude 1/8 .. 4.
uint32_t random_bits(uint32_t type, std::mt19937 &rng) {
    const uint32_t sign = rng() & 1, exp_off = rng() % 5; // 2^-3 .. 2^1
    if (type == CUDA_R_16BF) return (sign << 15) | ((124 + exp_off) << 7) | (rng() & 0x7f);
    if (type == CUDA_R_16F) return (sign << 15) | ((12 + exp_off) << 10) | (rng() & 0x3ff);
    return (sign << 31) | ((124 + exp_off) << 23) | (rng() & 0x7fffff);
}
void fill_random(Matrix &m, std::mt19937 &rng) {
    for (int b = 0; b < m.batch; b++)
        for (int64_t r = 0; r < m.rows; r++)
            for (int64_t c = 0; c < m.cols; c++) m.set_bits(r, c, b, random_bits(m.type, rng));
}

// ---- RAII wrappers over the API under test -------------------------------------------

#define CHECK_OK(call)                                                                     \
    do {                                                                                   \
        cublasStatus_t st_ = (call);                                                       \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                \
            fprintf(stderr, "%s:%d: %s -> %s\n", __FILE__, __LINE__, #call,                \
                    cublasLtGetStatusName(st_));                                           \
            return false;                                                                  \
        }                                                                                  \
    } while (0)

struct Lt {
    cublasLtHandle_t handle = nullptr;
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    ~Lt() {
        cublasLtMatmulPreferenceDestroy(pref);
        cublasLtMatrixLayoutDestroy(a);
        cublasLtMatrixLayoutDestroy(b);
        cublasLtMatrixLayoutDestroy(c);
        cublasLtMatrixLayoutDestroy(d);
        cublasLtMatmulDescDestroy(desc);
        if (handle) cublasLtDestroy(handle);
    }
};

bool make_layout(cublasLtMatrixLayout_t *out, const Matrix &m) {
    CHECK_OK(cublasLtMatrixLayoutCreate(out, (cudaDataType)m.type, (uint64_t)m.rows,
                                        (uint64_t)m.cols, m.ld));
    CHECK_OK(cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_ORDER, &m.order,
                                              sizeof m.order));
    CHECK_OK(cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &m.batch,
                                              sizeof m.batch));
    CHECK_OK(cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                              &m.stride, sizeof m.stride));
    return true;
}

bool set_pref(cublasLtMatmulPreference_t *pref, uint64_t max_ws, uint32_t align) {
    CHECK_OK(cublasLtMatmulPreferenceCreate(pref));
    CHECK_OK(cublasLtMatmulPreferenceSetAttribute(*pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                  &max_ws, sizeof max_ws));
    const cublasLtMatmulPreferenceAttributes_t which[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (auto w : which) CHECK_OK(cublasLtMatmulPreferenceSetAttribute(*pref, w, &align, sizeof align));
    return true;
}

// ---- the numeric cases -------------------------------------------------------------------

struct Spec {
    cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
    int32_t order_a = CUBLASLT_ORDER_COL, order_b = CUBLASLT_ORDER_COL, order_cd = CUBLASLT_ORDER_COL;
    int64_t m = 7, n = 13, k = 33;
    int32_t batch = 1;
    uint32_t ab = CUDA_R_16BF, cd = CUDA_R_16BF;
    float alpha = 1.5f, beta = -0.75f;
    bool in_place = false;
    bool nan_in_c = false; // fill C with NaN (with beta 0: must not be read)
    uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    int64_t pad = 3, extra = 5;
};

std::string describe(const Spec &s) {
    char buf[256];
    auto ord = [](int32_t o) { return o == CUBLASLT_ORDER_COL ? "col" : "row"; };
    snprintf(buf, sizeof buf,
             "%s%s A:%s B:%s CD:%s m%lld n%lld k%lld batch%d %s->%s a%.2g b%.2g%s%s%s",
             s.ta == CUBLAS_OP_N ? "N" : s.ta == CUBLAS_OP_T ? "T" : "C",
             s.tb == CUBLAS_OP_N ? "N" : s.tb == CUBLAS_OP_T ? "T" : "C", ord(s.order_a),
             ord(s.order_b), ord(s.order_cd), (long long)s.m, (long long)s.n, (long long)s.k,
             s.batch, type_name(s.ab), type_name(s.cd), s.alpha, s.beta,
             s.in_place ? " in-place" : "", s.nan_in_c ? " C=NaN" : "",
             s.epilogue == CUBLASLT_EPILOGUE_RELU        ? " RELU"
             : s.epilogue == CUBLASLT_EPILOGUE_BIAS      ? " BIAS"
             : s.epilogue == CUBLASLT_EPILOGUE_RELU_BIAS ? " RELU_BIAS"
                                                         : "");
    return buf;
}

double tolerance(uint32_t cd) { return cd == CUDA_R_32F ? 1e-5 : 1e-2; }

bool run_numeric(const Spec &s, std::string *detail) {
    std::mt19937 rng((unsigned)(s.m * 131 + s.n * 17 + s.k + s.ta * 7 + s.tb * 3 + s.order_a +
                                2 * s.order_b + 4 * s.order_cd + s.epilogue * 11));
    const bool ta = s.ta != CUBLAS_OP_N, tb = s.tb != CUBLAS_OP_N;
    Matrix A = make_matrix(s.ab, s.order_a, ta ? s.k : s.m, ta ? s.m : s.k, s.pad, s.batch, s.extra);
    Matrix B = make_matrix(s.ab, s.order_b, tb ? s.n : s.k, tb ? s.k : s.n, s.pad, s.batch, s.extra);
    Matrix C = make_matrix(s.cd, s.order_cd, s.m, s.n, s.pad, s.batch, s.extra);
    Matrix Dm = make_matrix(s.cd, s.order_cd, s.m, s.n, s.pad + 1, s.batch, s.extra + 2);
    Matrix &D = s.in_place ? C : Dm;
    fill_random(A, rng);
    fill_random(B, rng);
    fill_random(C, rng);
    if (s.nan_in_c)
        for (int b = 0; b < s.batch; b++)
            for (int64_t i = 0; i < s.m; i++)
                for (int64_t j = 0; j < s.n; j++) C.set_bits(i, j, b, s.cd == CUDA_R_32F ? 0x7fc00000u : 0x7fc0u);
    // bias: m per batch, batches m + 2 apart, of D's type
    const bool has_bias = s.epilogue == CUBLASLT_EPILOGUE_BIAS || s.epilogue == CUBLASLT_EPILOGUE_RELU_BIAS;
    const bool has_relu = s.epilogue == CUBLASLT_EPILOGUE_RELU || s.epilogue == CUBLASLT_EPILOGUE_RELU_BIAS;
    Matrix bias = make_matrix(s.cd, CUBLASLT_ORDER_COL, s.m, 1, 0, s.batch, 2);
    fill_random(bias, rng);

    // the reference, from the inputs as they are before the call
    std::vector<double> ref((size_t)(s.batch * s.m * s.n));
    for (int b = 0; b < s.batch; b++)
        for (int64_t i = 0; i < s.m; i++)
            for (int64_t j = 0; j < s.n; j++) {
                double sum = 0;
                for (int64_t p = 0; p < s.k; p++)
                    sum += (ta ? A.get(p, i, b) : A.get(i, p, b)) * (tb ? B.get(j, p, b) : B.get(p, j, b));
                double v = s.alpha * sum;
                if (s.beta != 0) v += s.beta * C.get(i, j, b);
                if (has_bias) v += bias.get(i, 0, b);
                if (has_relu && v < 0) v = 0;
                ref[(size_t)((b * s.m + i) * s.n + j)] = v;
            }
    // which bytes of D are elements (the rest must keep the sentinel)
    std::vector<char> is_element((size_t)D.elements(), 0);
    for (int b = 0; b < s.batch; b++)
        for (int64_t i = 0; i < s.m; i++)
            for (int64_t j = 0; j < s.n; j++) is_element[(size_t)D.offset(i, j, b)] = 1;
    const std::vector<unsigned char> before(D.base, D.base + D.elements() * type_bytes(D.type));

    Lt lt;
    CHECK_OK(cublasLtCreate(&lt.handle));
    CHECK_OK(cublasLtMatmulDescCreate(&lt.desc, s.compute, CUDA_R_32F));
    CHECK_OK(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_TRANSA, &s.ta, sizeof s.ta));
    CHECK_OK(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_TRANSB, &s.tb, sizeof s.tb));
    CHECK_OK(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &s.epilogue,
                                            sizeof s.epilogue));
    if (has_bias) {
        const void *bp = bias.base;
        CHECK_OK(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp));
        CHECK_OK(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE,
                                                &bias.stride, sizeof bias.stride));
    }
    if (!make_layout(&lt.a, A) || !make_layout(&lt.b, B) || !make_layout(&lt.c, C) ||
        !make_layout(&lt.d, D) || !set_pref(&lt.pref, 4u << 20, 16))
        return false;
    cublasLtMatmulHeuristicResult_t res[3];
    int found = 0;
    CHECK_OK(cublasLtMatmulAlgoGetHeuristic(lt.handle, lt.desc, lt.a, lt.b, lt.c, lt.d, lt.pref,
                                            3, res, &found));
    if (found != 1 || res[0].state != CUBLAS_STATUS_SUCCESS || res[0].workspaceSize > (4u << 20) ||
        res[0].wavesCount != 1.0f) {
        *detail = "heuristic result not as specified";
        return false;
    }
    std::vector<unsigned char> ws(res[0].workspaceSize + 256);
    void *wsp = (void *)(((uintptr_t)ws.data() + 255) & ~(uintptr_t)255);
    CHECK_OK(cublasLtMatmul(lt.handle, lt.desc, &s.alpha, A.base, lt.a, B.base, lt.b, &s.beta,
                            C.base, lt.c, D.base, lt.d, &res[0].algo, wsp, res[0].workspaceSize, 0));

    double num = 0, den = 0;
    int64_t nonfinite = 0, clobbered = 0;
    for (int b = 0; b < s.batch; b++)
        for (int64_t i = 0; i < s.m; i++)
            for (int64_t j = 0; j < s.n; j++) {
                const double got = D.get(i, j, b), want = ref[(size_t)((b * s.m + i) * s.n + j)];
                if (!std::isfinite(got)) nonfinite++;
                num += (got - want) * (got - want);
                den += want * want;
            }
    const size_t eb = type_bytes(D.type);
    for (size_t e = 0; e < is_element.size(); e++)
        if (!is_element[e] && memcmp(before.data() + e * eb, D.base + e * eb, eb) != 0) clobbered++;
    const double err = std::sqrt(num / (den > 0 ? den : 1));
    char buf[160];
    snprintf(buf, sizeof buf, "rel_err %.2e (tol %.0e)%s%s", err, tolerance(s.cd),
             nonfinite ? "  NON-FINITE OUTPUT" : "", clobbered ? "  PADDING CLOBBERED" : "");
    *detail = buf;
    return err <= tolerance(s.cd) && nonfinite == 0 && clobbered == 0;
}

void numeric_case(const Spec &s) {
    std::string detail;
    const bool ok = run_numeric(s, &detail);
    report(ok, describe(s), detail);
}

// ---- kernels/gemm.cu's exact call sequence ------------------------------------------------

// Mirrors armo_gemm_bf16: Y[n,out] = X[n,in]·Wᵀ as column-major TN, C = D = Y.
cublasStatus_t gemm_cu_sequence(cublasLtHandle_t lt, uint16_t *y, const uint16_t *x,
                                const uint16_t *w, int n, int in, int out, uint32_t align,
                                void *workspace, size_t workspace_bytes,
                                cublasLtMatmulAlgo_t *algo_out = nullptr,
                                const cublasLtMatmulAlgo_t *algo_in = nullptr) {
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t lw = NULL, lx = NULL, ly = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    const cublasOperation_t trans_w = CUBLAS_OP_T, trans_x = CUBLAS_OP_N;
    const float alpha = 1.0f, beta = 0.0f;
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
#define STEP(call) if ((st = (call)) != CUBLAS_STATUS_SUCCESS) goto done
    STEP(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_w, sizeof trans_w));
    STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_x, sizeof trans_x));
    STEP(cublasLtMatrixLayoutCreate(&lw, CUDA_R_16BF, (uint64_t)in, (uint64_t)out, (int64_t)in));
    STEP(cublasLtMatrixLayoutCreate(&lx, CUDA_R_16BF, (uint64_t)in, (uint64_t)n, (int64_t)in));
    STEP(cublasLtMatrixLayoutCreate(&ly, CUDA_R_16BF, (uint64_t)out, (uint64_t)n, (int64_t)out));
    if (!algo_in) {
        STEP(cublasLtMatmulPreferenceCreate(&pref));
        STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                  &workspace_bytes, sizeof workspace_bytes));
        {
            const cublasLtMatmulPreferenceAttributes_t align_of[4] = {
                CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
            for (int i = 0; i < 4; i++)
                STEP(cublasLtMatmulPreferenceSetAttribute(pref, align_of[i], &align, sizeof align));
        }
        STEP(cublasLtMatmulAlgoGetHeuristic(lt, op, lw, lx, ly, ly, pref, 1, &result, &found));
        if (found < 1 || result.state != CUBLAS_STATUS_SUCCESS) {
            st = CUBLAS_STATUS_NOT_SUPPORTED;
            goto done;
        }
        algo_in = &result.algo;
        if (algo_out) *algo_out = result.algo;
    }
    STEP(cublasLtMatmul(lt, op, &alpha, w, lw, x, lx, &beta, y, ly, y, ly, algo_in, workspace,
                        workspace_bytes, 0));
#undef STEP
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (ly) cublasLtMatrixLayoutDestroy(ly);
    if (lx) cublasLtMatrixLayoutDestroy(lx);
    if (lw) cublasLtMatrixLayoutDestroy(lw);
    if (op) cublasLtMatmulDescDestroy(op);
    return st;
}

struct GemmBuffers {
    Matrix w, x, y, ws;
    GemmBuffers(int n, int in, int out, size_t shift, size_t ws_bytes, std::mt19937 &rng)
        : w(make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_ROW, out, in, 0, 1, 0, shift)),
          x(make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_ROW, n, in, 0, 1, 0, shift)),
          y(make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_ROW, n, out, 0, 1, 0, shift)),
          ws(make_matrix(CUDA_R_32F, CUBLASLT_ORDER_COL, (int64_t)(ws_bytes / 4), 1, 0, 1, 0, 0)) {
        fill_random(w, rng);
        fill_random(x, rng);
    }
};

// Y[t][o] = sum_i X[t][i]·W[o][i] (row-major, as the engine holds them),
// over `samples` random (t, o) or all when samples is 0.
double gemm_rel_err(const GemmBuffers &g, int n, int in, int out, int samples, std::mt19937 &rng) {
    double num = 0, den = 0;
    auto one = [&](int t, int o) {
        double sum = 0;
        for (int i = 0; i < in; i++) sum += g.x.get(t, i, 0) * g.w.get(o, i, 0);
        const double got = g.y.get(t, o, 0);
        num += (got - sum) * (got - sum);
        den += sum * sum;
    };
    if (samples == 0)
        for (int t = 0; t < n; t++)
            for (int o = 0; o < out; o++) one(t, o);
    else
        for (int s = 0; s < samples; s++) one((int)(rng() % (unsigned)n), (int)(rng() % (unsigned)out));
    return std::sqrt(num / (den > 0 ? den : 1));
}

void gemm_cu_case(int n, int in, int out, uint32_t align, int samples) {
    std::mt19937 rng((unsigned)(n + in + out + align));
    const size_t ws_bytes = (size_t)32 << 20; // ARMO_GEMM_DEFAULT_WORKSPACE
    GemmBuffers g(n, in, out, align == 256 ? 0 : 16, ws_bytes, rng);
    cublasLtHandle_t lt;
    char label[128];
    snprintf(label, sizeof label, "gemm.cu TN bf16 n%d in%d out%d align%u", n, in, out, align);
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) {
        report(false, label, "cublasLtCreate failed");
        return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const cublasStatus_t st =
        gemm_cu_sequence(lt, (uint16_t *)g.y.base, (const uint16_t *)g.x.base,
                         (const uint16_t *)g.w.base, n, in, out, align, g.ws.base, ws_bytes);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    cublasLtDestroy(lt);
    const double err = st == CUBLAS_STATUS_SUCCESS ? gemm_rel_err(g, n, in, out, samples, rng) : 1.0;
    char detail[160];
    snprintf(detail, sizeof detail, "%s rel_err %.2e (tol 1e-02%s)  %.1f ms",
             cublasLtGetStatusName(st), err, samples ? ", sampled" : "", ms);
    report(st == CUBLAS_STATUS_SUCCESS && err <= 1e-2, label, detail);
}

// The algo cached for one shape reused on the next call, as gemm.cu does.
void gemm_cu_cached_algo_case() {
    std::mt19937 rng(77);
    const int n = 19, in = 64, out = 40;
    GemmBuffers g(n, in, out, 0, 1 << 20, rng);
    cublasLtHandle_t lt;
    cublasLtCreate(&lt);
    cublasLtMatmulAlgo_t algo;
    cublasStatus_t st = gemm_cu_sequence(lt, (uint16_t *)g.y.base, (const uint16_t *)g.x.base,
                                         (const uint16_t *)g.w.base, n, in, out, 256, g.ws.base,
                                         1 << 20, &algo);
    fill_random(g.x, rng); // new activations, same shape, cached algo
    if (st == CUBLAS_STATUS_SUCCESS)
        st = gemm_cu_sequence(lt, (uint16_t *)g.y.base, (const uint16_t *)g.x.base,
                              (const uint16_t *)g.w.base, n, in, out, 256, g.ws.base, 1 << 20,
                              nullptr, &algo);
    cublasLtDestroy(lt);
    const double err = gemm_rel_err(g, n, in, out, 0, rng);
    char detail[96];
    snprintf(detail, sizeof detail, "%s rel_err %.2e", cublasLtGetStatusName(st), err);
    report(st == CUBLAS_STATUS_SUCCESS && err <= 1e-2, "gemm.cu cached algo reused", detail);
}

// ---- rounding and NaN ---------------------------------------------------------------------

// 1 x 1 x 2 bf16 products whose fp32 sums are exact ties: D must round to even.
void rounding_case() {
    struct Tie {
        uint16_t b1;   // bf16 second B element (A = [1, 1])
        uint16_t b0;   // bf16 first B element
        uint16_t want; // bf16 D
    } ties[] = {
        {0x3b80 /* 2^-8 */, 0x3f80 /* 1 */, 0x3f80 /* 1 + 2^-8 -> 1 (even) */},
        {0x3b80, 0x3f81 /* 1 + 2^-7 */, 0x3f82 /* 1 + 3*2^-8 -> 1 + 2^-6 (even) */},
        {0xbb80, 0xbf80, 0xbf80 /* negative tie -> -1 */},
    };
    bool ok = true;
    std::string detail;
    for (const Tie &t : ties) {
        uint16_t a[2] = {0x3f80, 0x3f80}, b[2] = {t.b0, t.b1}, d = 0xffff;
        cublasLtHandle_t h;
        cublasLtMatmulDesc_t op;
        cublasLtMatrixLayout_t la, lb, ld;
        cublasLtCreate(&h);
        cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
        cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, 1, 2, 1);
        cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, 2, 1, 2);
        cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, 1, 1, 1);
        const float one = 1, zero = 0;
        const cublasStatus_t st =
            cublasLtMatmul(h, op, &one, a, la, b, lb, &zero, nullptr, ld, &d, ld, nullptr, nullptr, 0, 0);
        char buf[64];
        snprintf(buf, sizeof buf, "%04x->%04x ", (unsigned)t.b1, (unsigned)d);
        detail += buf;
        ok = ok && st == CUBLAS_STATUS_SUCCESS && d == t.want;
        cublasLtMatrixLayoutDestroy(la);
        cublasLtMatrixLayoutDestroy(lb);
        cublasLtMatrixLayoutDestroy(ld);
        cublasLtMatmulDescDestroy(op);
        cublasLtDestroy(h);
    }
    report(ok, "bf16 round to nearest even on exact ties (algo NULL, C NULL, beta 0)", detail);
}

// A NaN in row 2 of A makes row 2 of D NaN, and nothing else.
void nan_case() {
    const int m = 4, n = 3, k = 5;
    std::mt19937 rng(5);
    Matrix A = make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_COL, m, k, 0, 1, 0);
    Matrix B = make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_COL, k, n, 0, 1, 0);
    Matrix D = make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_COL, m, n, 0, 1, 0);
    fill_random(A, rng);
    fill_random(B, rng);
    A.set_bits(2, 3, 0, 0x7fc1);
    cublasLtHandle_t h;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtCreate(&h);
    cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, m, k, m);
    cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, k, n, k);
    cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, m, n, m);
    const float one = 1, zero = 0;
    const cublasStatus_t st =
        cublasLtMatmul(h, op, &one, A.base, la, B.base, lb, &zero, D.base, ld, D.base, ld, nullptr, nullptr, 0, 0);
    bool ok = st == CUBLAS_STATUS_SUCCESS;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) ok = ok && (std::isnan(D.get(i, j, 0)) == (i == 2));
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(ld);
    cublasLtMatmulDescDestroy(op);
    cublasLtDestroy(h);
    report(ok, "bf16 NaN in A row 2 -> D row 2 NaN, other rows finite", "");
}

// ---- refusals -------------------------------------------------------------------------------

// A valid small TN bf16 problem (as gemm.cu builds it) that each refusal case
// then spoils in one way.
struct Setup {
    static constexpr int kN = 8, kIn = 32, kOut = 16;
    Lt lt;
    Matrix w, x, y;
    size_t ws_bytes = 1 << 20;
    std::vector<unsigned char> ws_storage;
    void *ws;
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    float alpha = 1, beta = 0;
    bool ok = false;
    Setup()
        : w(make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_COL, kIn, kOut, 0, 1, 0)),
          x(make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_COL, kIn, kN, 0, 1, 0)),
          y(make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_COL, kOut, kN, 0, 1, 0)),
          ws_storage(ws_bytes + 256) {
        ws = (void *)(((uintptr_t)ws_storage.data() + 255) & ~(uintptr_t)255);
        std::mt19937 rng(3);
        fill_random(w, rng);
        fill_random(x, rng);
        const cublasOperation_t t = CUBLAS_OP_T;
        ok = cublasLtCreate(&lt.handle) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulDescCreate(&lt.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t) == CUBLAS_STATUS_SUCCESS &&
             make_layout(&lt.a, w) && make_layout(&lt.b, x) && make_layout(&lt.c, y) &&
             make_layout(&lt.d, y) && set_pref(&lt.pref, ws_bytes, 256) &&
             heuristic() == CUBLAS_STATUS_SUCCESS && found == 1;
    }
    cublasStatus_t heuristic(int requested = 1) {
        return cublasLtMatmulAlgoGetHeuristic(lt.handle, lt.desc, lt.a, lt.b, lt.c, lt.d, lt.pref,
                                              requested, &result, &found);
    }
    cublasStatus_t matmul(const void *a_ptr = nullptr, void *d_ptr = nullptr) {
        void *d = d_ptr ? d_ptr : y.base;
        return cublasLtMatmul(lt.handle, lt.desc, &alpha, a_ptr ? a_ptr : w.base, lt.a, x.base, lt.b,
                              &beta, d, lt.c, d, lt.d, &result.algo, ws, ws_bytes, 0);
    }
};

void refusal(const char *label, cublasStatus_t want, const std::function<cublasStatus_t(Setup &)> &body) {
    Setup s;
    if (!s.ok) {
        report(false, std::string("refuse: ") + label, "setup failed");
        return;
    }
    const cublasStatus_t got = body(s);
    report(got == want, std::string("refuse: ") + label,
           std::string("-> ") + cublasLtGetStatusName(got) + (got == want ? "" : std::string(" (want ") + cublasLtGetStatusName(want) + ")"));
}

template <typename T>
cublasStatus_t set_layout(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a, T v) {
    return cublasLtMatrixLayoutSetAttribute(l, a, &v, sizeof v);
}
template <typename T>
cublasStatus_t set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, T v) {
    return cublasLtMatmulDescSetAttribute(d, a, &v, sizeof v);
}
// Replaces one of Setup's layouts by a fresh one.
cublasStatus_t relayout(cublasLtMatrixLayout_t *l, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld) {
    cublasLtMatrixLayoutDestroy(*l);
    *l = nullptr;
    return cublasLtMatrixLayoutCreate(l, type, rows, cols, ld);
}

const cublasStatus_t INVALID = CUBLAS_STATUS_INVALID_VALUE, UNSUPPORTED = CUBLAS_STATUS_NOT_SUPPORTED;

void refusal_cases() {
    using S = Setup;
    refusal("cublasLtCreate(NULL)", INVALID, [](S &) { return cublasLtCreate(nullptr); });
    refusal("cublasLtDestroy(NULL)", CUBLAS_STATUS_NOT_INITIALIZED, [](S &) { return cublasLtDestroy(nullptr); });
    refusal("matmul with a NULL handle", CUBLAS_STATUS_NOT_INITIALIZED, [](S &s) {
        return cublasLtMatmul(nullptr, s.lt.desc, &s.alpha, s.w.base, s.lt.a, s.x.base, s.lt.b, &s.beta,
                              s.y.base, s.lt.c, s.y.base, s.lt.d, &s.result.algo, s.ws, s.ws_bytes, 0);
    });
    refusal("heuristic with a NULL handle", INVALID, [](S &s) {
        return cublasLtMatmulAlgoGetHeuristic(nullptr, s.lt.desc, s.lt.a, s.lt.b, s.lt.c, s.lt.d, s.lt.pref, 1, &s.result, &s.found);
    });
    refusal("matmul with a NULL matmul descriptor", INVALID, [](S &s) {
        return cublasLtMatmul(s.lt.handle, nullptr, &s.alpha, s.w.base, s.lt.a, s.x.base, s.lt.b, &s.beta,
                              s.y.base, s.lt.c, s.y.base, s.lt.d, &s.result.algo, s.ws, s.ws_bytes, 0);
    });
    refusal("matmul with a NULL Bdesc", INVALID, [](S &s) {
        return cublasLtMatmul(s.lt.handle, s.lt.desc, &s.alpha, s.w.base, s.lt.a, s.x.base, nullptr, &s.beta,
                              s.y.base, s.lt.c, s.y.base, s.lt.d, &s.result.algo, s.ws, s.ws_bytes, 0);
    });
    refusal("heuristic requestedAlgoCount 0", INVALID, [](S &s) { return s.heuristic(0); });
    refusal("desc attribute not modelled (AMAX_D_POINTER)", UNSUPPORTED, [](S &s) {
        return set_desc<void *>(s.lt.desc, CUBLASLT_MATMUL_DESC_AMAX_D_POINTER, s.y.base);
    });
    refusal("desc TRANSA with the wrong size", INVALID, [](S &s) {
        return set_desc<int64_t>(s.lt.desc, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
    });
    refusal("desc TRANSA value 7", INVALID, [](S &s) { return set_desc<int32_t>(s.lt.desc, CUBLASLT_MATMUL_DESC_TRANSA, 7); });
    refusal("desc TRANSC = T", UNSUPPORTED, [](S &s) { return set_desc<int32_t>(s.lt.desc, CUBLASLT_MATMUL_DESC_TRANSC, CUBLAS_OP_T); });
    refusal("desc EPILOGUE GELU", UNSUPPORTED, [](S &s) {
        return set_desc<uint32_t>(s.lt.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_GELU);
    });
    refusal("desc POINTER_MODE DEVICE", UNSUPPORTED, [](S &s) {
        return set_desc<int32_t>(s.lt.desc, CUBLASLT_MATMUL_DESC_POINTER_MODE, CUBLASLT_POINTER_MODE_DEVICE);
    });
    refusal("desc compute type 16F", UNSUPPORTED, [](S &) {
        cublasLtMatmulDesc_t d;
        return cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_16F, CUDA_R_16F);
    });
    refusal("desc scale type bf16 with COMPUTE_32F", UNSUPPORTED, [](S &) {
        cublasLtMatmulDesc_t d;
        return cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_32F, CUDA_R_16BF);
    });
    refusal("layout type CUDA_R_8I", UNSUPPORTED, [](S &) {
        cublasLtMatrixLayout_t l;
        return cublasLtMatrixLayoutCreate(&l, CUDA_R_8I, 4, 4, 4);
    });
    refusal("layout ORDER COL32", UNSUPPORTED, [](S &s) {
        return set_layout<int32_t>(s.lt.a, CUBLASLT_MATRIX_LAYOUT_ORDER, CUBLASLT_ORDER_COL32);
    });
    refusal("pref MIN_ALIGNMENT_A_BYTES 3", UNSUPPORTED, [](S &s) {
        const uint32_t three = 3;
        return cublasLtMatmulPreferenceSetAttribute(s.lt.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &three, sizeof three);
    });
    refusal("types A bf16, B f32 (heuristic)", UNSUPPORTED, [](S &s) {
        set_layout<uint32_t>(s.lt.b, CUBLASLT_MATRIX_LAYOUT_TYPE, CUDA_R_32F);
        const cublasStatus_t st = s.heuristic();
        return st == UNSUPPORTED && s.found != 0 ? CUBLAS_STATUS_INTERNAL_ERROR : st;
    });
    refusal("types A bf16, B f32 (matmul)", UNSUPPORTED, [](S &s) {
        set_layout<uint32_t>(s.lt.b, CUBLASLT_MATRIX_LAYOUT_TYPE, CUDA_R_32F);
        return s.matmul();
    });
    refusal("types A/B f32, C/D bf16", UNSUPPORTED, [](S &s) {
        set_layout<uint32_t>(s.lt.a, CUBLASLT_MATRIX_LAYOUT_TYPE, CUDA_R_32F);
        set_layout<uint32_t>(s.lt.b, CUBLASLT_MATRIX_LAYOUT_TYPE, CUDA_R_32F);
        return s.heuristic();
    });
    refusal("COMPUTE_32F_FAST_TF32 with bf16", UNSUPPORTED, [](S &s) {
        set_desc<int32_t>(s.lt.desc, CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, CUBLAS_COMPUTE_32F_FAST_TF32);
        return s.heuristic();
    });
    refusal("op(A) rows != D rows (TRANSA N)", INVALID, [](S &s) {
        set_desc<int32_t>(s.lt.desc, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_N);
        return s.matmul();
    });
    refusal("op(A) cols != op(B) rows", INVALID, [](S &s) {
        relayout(&s.lt.b, CUDA_R_16BF, S::kIn + 1, S::kN, S::kIn + 1);
        return s.heuristic();
    });
    refusal("C shape != D shape", INVALID, [](S &s) {
        relayout(&s.lt.c, CUDA_R_16BF, S::kOut, S::kN - 1, S::kOut);
        return s.heuristic();
    });
    refusal("COL ld < rows", INVALID, [](S &s) {
        set_layout<int64_t>(s.lt.b, CUBLASLT_MATRIX_LAYOUT_LD, S::kIn - 1);
        return s.matmul();
    });
    refusal("ROW ld < cols", INVALID, [](S &s) {
        // B as ROW [in, n]: ld, the stride between rows, must be >= n (8)
        set_layout<int32_t>(s.lt.b, CUBLASLT_MATRIX_LAYOUT_ORDER, CUBLASLT_ORDER_ROW);
        set_layout<int64_t>(s.lt.b, CUBLASLT_MATRIX_LAYOUT_LD, S::kN - 1);
        return s.heuristic();
    });
    refusal("batch counts differ", INVALID, [](S &s) {
        set_layout<int32_t>(s.lt.a, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, 2);
        return s.heuristic();
    });
    refusal("C == D in place with differing layouts", INVALID, [](S &s) {
        relayout(&s.lt.c, CUDA_R_16BF, S::kOut, S::kN, S::kOut + 8);
        return s.matmul();
    });
    refusal("workspace NULL with nonzero size", INVALID, [](S &s) {
        return cublasLtMatmul(s.lt.handle, s.lt.desc, &s.alpha, s.w.base, s.lt.a, s.x.base, s.lt.b, &s.beta,
                              s.y.base, s.lt.c, s.y.base, s.lt.d, &s.result.algo, nullptr, 4096, 0);
    });
    refusal("workspace smaller than the algo needs", INVALID, [](S &s) {
        if (s.result.workspaceSize == 0) return CUBLAS_STATUS_INTERNAL_ERROR;
        return cublasLtMatmul(s.lt.handle, s.lt.desc, &s.alpha, s.w.base, s.lt.a, s.x.base, s.lt.b, &s.beta,
                              s.y.base, s.lt.c, s.y.base, s.lt.d, &s.result.algo, s.ws,
                              s.result.workspaceSize - 1, 0);
    });
    refusal("A 16-byte aligned, algo chosen for 256", UNSUPPORTED, [](S &s) {
        Matrix w2 = make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_COL, S::kIn, S::kOut, 0, 1, 0, 16);
        return s.matmul(w2.base);
    });
    refusal("D 16-byte aligned, algo chosen for 256", UNSUPPORTED, [](S &s) {
        Matrix y2 = make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_COL, S::kOut, S::kN, 0, 1, 0, 16);
        return s.matmul(nullptr, y2.base);
    });
    refusal("algo for ld%8==0 used with an odd ld", UNSUPPORTED, [](S &s) {
        relayout(&s.lt.a, CUDA_R_16BF, S::kIn, S::kOut, S::kIn + 1);
        Matrix w2 = make_matrix(CUDA_R_16BF, CUBLASLT_ORDER_COL, S::kIn, S::kOut, 1, 1, 0);
        return s.matmul(w2.base);
    });
    refusal("BIAS epilogue without BIAS_POINTER", INVALID, [](S &s) {
        set_desc<uint32_t>(s.lt.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS);
        if (s.heuristic() != CUBLAS_STATUS_SUCCESS) return CUBLAS_STATUS_INTERNAL_ERROR;
        return s.matmul();
    });
    refusal("BIAS_DATA_TYPE f32 with bf16 D", UNSUPPORTED, [](S &s) {
        set_desc<uint32_t>(s.lt.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS);
        set_desc<int32_t>(s.lt.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_32F);
        return s.heuristic();
    });
    refusal("algo chosen for DEFAULT, matmul with RELU", UNSUPPORTED, [](S &s) {
        set_desc<uint32_t>(s.lt.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_RELU);
        return s.matmul();
    });
    refusal("algo not from the heuristic (zeroed)", INVALID, [](S &s) {
        memset(&s.result.algo, 0, sizeof s.result.algo);
        return s.matmul();
    });
    refusal("D overlaps B (out of place)", INVALID, [](S &s) {
        return cublasLtMatmul(s.lt.handle, s.lt.desc, &s.alpha, s.w.base, s.lt.a, s.x.base, s.lt.b, &s.beta,
                              s.y.base, s.lt.c, s.x.base, s.lt.d, &s.result.algo, s.ws, s.ws_bytes, 0);
    });
    refusal("alpha NULL", INVALID, [](S &s) {
        return cublasLtMatmul(s.lt.handle, s.lt.desc, nullptr, s.w.base, s.lt.a, s.x.base, s.lt.b, &s.beta,
                              s.y.base, s.lt.c, s.y.base, s.lt.d, &s.result.algo, s.ws, s.ws_bytes, 0);
    });
    refusal("C NULL with beta != 0", INVALID, [](S &s) {
        s.beta = 0.5f;
        return cublasLtMatmul(s.lt.handle, s.lt.desc, &s.alpha, s.w.base, s.lt.a, s.x.base, s.lt.b, &s.beta,
                              nullptr, s.lt.c, s.y.base, s.lt.d, &s.result.algo, s.ws, s.ws_bytes, 0);
    });
    refusal("pref MAX_WAVES_COUNT 0.5 -> no algo", UNSUPPORTED, [](S &s) {
        const float half = 0.5f;
        cublasLtMatmulPreferenceSetAttribute(s.lt.pref, CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT, &half, sizeof half);
        const cublasStatus_t st = s.heuristic();
        return s.found != 0 ? CUBLAS_STATUS_INTERNAL_ERROR : st;
    });
    refusal("pref IMPL_MASK without FMA -> no algo", UNSUPPORTED, [](S &s) {
        const uint64_t mask = CUBLASLT_NUMERICAL_IMPL_FLAGS_HMMA | CUBLASLT_NUMERICAL_IMPL_FLAGS_ACCUMULATOR_32F |
                              CUBLASLT_NUMERICAL_IMPL_FLAGS_INPUT_16BF;
        cublasLtMatmulPreferenceSetAttribute(s.lt.pref, CUBLASLT_MATMUL_PREF_IMPL_MASK, &mask, sizeof mask);
        const cublasStatus_t st = s.heuristic();
        return s.found != 0 ? CUBLAS_STATUS_INTERNAL_ERROR : st;
    });
}

// ---- documented behaviours that are not refusals ----------------------------------------------

void contract_cases() {
    {
        Setup s;
        size_t need = 0;
        int64_t ld = 0;
        const bool ok = s.ok &&
                        cublasLtMatrixLayoutGetAttribute(s.lt.a, CUBLASLT_MATRIX_LAYOUT_LD, nullptr, 0, &need) == CUBLAS_STATUS_SUCCESS &&
                        need == sizeof(int64_t) &&
                        cublasLtMatrixLayoutGetAttribute(s.lt.a, CUBLASLT_MATRIX_LAYOUT_LD, &ld, sizeof ld, nullptr) == CUBLAS_STATUS_SUCCESS &&
                        ld == Setup::kIn &&
                        cublasLtMatrixLayoutGetAttribute(s.lt.a, CUBLASLT_MATRIX_LAYOUT_LD, nullptr, 0, nullptr) == INVALID;
        report(ok, "GetAttribute: size query, value, sizeInBytes 0 without sizeWritten", "");
    }
    {
        Setup s;
        cublasLtMatmulHeuristicResult_t r[4];
        int found = -1;
        const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(s.lt.handle, s.lt.desc, s.lt.a, s.lt.b, s.lt.c,
                                                                 s.lt.d, s.lt.pref, 4, r, &found);
        const bool ok = s.ok && st == CUBLAS_STATUS_SUCCESS && found == 1 && r[0].state == CUBLAS_STATUS_SUCCESS &&
                        r[0].workspaceSize <= s.ws_bytes && r[0].wavesCount == 1.0f;
        char d[96];
        snprintf(d, sizeof d, "found %d, workspace %zu <= %zu", found, r[0].workspaceSize, s.ws_bytes);
        report(ok, "heuristic: 4 requested, one result within MAX_WORKSPACE_BYTES", d);
    }
    {
        Setup s;
        const uint64_t zero = 0;
        cublasLtMatmulPreferenceSetAttribute(s.lt.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &zero, sizeof zero);
        const bool ok = s.ok && s.heuristic() == CUBLAS_STATUS_SUCCESS && s.result.workspaceSize == 0 &&
                        cublasLtMatmul(s.lt.handle, s.lt.desc, &s.alpha, s.w.base, s.lt.a, s.x.base, s.lt.b, &s.beta,
                                       s.y.base, s.lt.c, s.y.base, s.lt.d, &s.result.algo, nullptr, 0, 0) ==
                            CUBLAS_STATUS_SUCCESS;
        report(ok, "MAX_WORKSPACE_BYTES 0: algo needs none, matmul runs with workspace NULL", "");
    }
}

} // namespace

int main() {
    // every TRANSA x TRANSB x ORDER(A, B, C/D), odd m n k, ld > minimal, bf16 and fp32
    const cublasOperation_t ops[2] = {CUBLAS_OP_N, CUBLAS_OP_T};
    const int32_t orders[2] = {CUBLASLT_ORDER_COL, CUBLASLT_ORDER_ROW};
    const uint32_t types[2] = {CUDA_R_16BF, CUDA_R_32F};
    for (uint32_t t : types)
        for (auto ta : ops)
            for (auto tb : ops)
                for (auto oa : orders)
                    for (auto ob : orders)
                        for (auto oc : orders) {
                            Spec s;
                            s.ta = ta, s.tb = tb, s.order_a = oa, s.order_b = ob, s.order_cd = oc;
                            s.ab = s.cd = t;
                            numeric_case(s);
                        }
    Spec s;
    s.ta = CUBLAS_OP_C; // C is T for real types
    s.tb = CUBLAS_OP_C;
    numeric_case(s);
    // strided batches
    for (auto oc : orders) {
        Spec b;
        b.batch = 3, b.ta = CUBLAS_OP_T, b.order_cd = oc, b.m = 13, b.n = 7, b.k = 33;
        numeric_case(b);
        b.ab = b.cd = CUDA_R_32F;
        numeric_case(b);
    }
    // mixed types, fp16, fast compute types
    { Spec m; m.ab = CUDA_R_16BF, m.cd = CUDA_R_32F; numeric_case(m); }
    { Spec m; m.ab = CUDA_R_16F, m.cd = CUDA_R_16F, m.tb = CUBLAS_OP_T; numeric_case(m); }
    { Spec m; m.ab = CUDA_R_16F, m.cd = CUDA_R_32F, m.batch = 3; numeric_case(m); }
    { Spec m; m.ab = m.cd = CUDA_R_32F, m.compute = CUBLAS_COMPUTE_32F_FAST_TF32; numeric_case(m); }
    // in place, beta 0 with NaN in C, epilogues
    { Spec m; m.in_place = true, m.ta = CUBLAS_OP_T, m.batch = 3; numeric_case(m); }
    { Spec m; m.in_place = true, m.ab = m.cd = CUDA_R_32F, m.order_cd = CUBLASLT_ORDER_ROW; numeric_case(m); }
    { Spec m; m.beta = 0, m.nan_in_c = true; numeric_case(m); }
    const uint32_t epilogues[3] = {CUBLASLT_EPILOGUE_RELU, CUBLASLT_EPILOGUE_BIAS, CUBLASLT_EPILOGUE_RELU_BIAS};
    for (uint32_t e : epilogues)
        for (uint32_t t : types) {
            Spec m;
            m.epilogue = e, m.ab = m.cd = t, m.batch = 3, m.ta = CUBLAS_OP_T, m.beta = 0.5f;
            numeric_case(m);
        }
    rounding_case();
    nan_case();
    // kernels/gemm.cu's calls, exact, at both pointer alignments it reports
    gemm_cu_case(37, 64, 96, 16, 0);
    gemm_cu_case(37, 64, 96, 256, 0);
    gemm_cu_case(1, 8, 8, 16, 0);
    gemm_cu_cached_algo_case();
    gemm_cu_case(300, 1024, 1536, 256, 2000);
    gemm_cu_case(300, 1024, 2 * 2816, 16, 2000);
    refusal_cases();
    contract_cases();
    printf("%d cases, %d failed\n", g_cases, g_failures);
    return g_failures ? 1 : 0;
}
