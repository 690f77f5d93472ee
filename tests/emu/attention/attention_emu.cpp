// attention_emu.cpp — runs the real flash and simple attention kernels of
// kernels/attention.cuh on the CPU (see shim/kernels/) on small ragged
// batches (empty and short sequences, tails, GQA 1/2/4, hd 16/32/64/128, 48 for
// the simple kernel) and compares them with a double-precision reference.
// Catches indexing, masking, online-softmax and fragment-layout mistakes without
// a GPU (a swapped A-fragment register gives rel err ~0.5).  Built and run by
// tests/emu/attention/run.sh; not part of the CMake build.
#include <cstdio>
#include <thread>
#include <vector>
#include <random>
#include "kernels/kernel_util.cuh"
#include "kernels/mma.cuh"
thread_local dim3e threadIdx, blockIdx;
dim3e gridDim, blockDim;
std::barrier<> *g_block_bar;
std::barrier<> *g_warp_bar[4];
float g_shfl[4][32];
mma_slot g_mma[4][32];
#include "kernels/attention.cuh"

template <typename F> static void launch(dim3e grid, F body) {
    gridDim = grid; blockDim = {128, 1, 1};
    for (unsigned z = 0; z < grid.z; z++) for (unsigned y = 0; y < grid.y; y++) for (unsigned x = 0; x < grid.x; x++) {
        std::barrier<> bb(128); g_block_bar = &bb;
        std::barrier<> w0(32), w1(32), w2(32), w3(32); g_warp_bar[0] = &w0; g_warp_bar[1] = &w1; g_warp_bar[2] = &w2; g_warp_bar[3] = &w3;
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < 128; t++) ts.emplace_back([=] { threadIdx = {t, 0, 0}; blockIdx = {x, y, z}; body(); });
        for (auto &t : ts) t.join();
    }
}

static int run(std::vector<int> lens, int nh, int nkv, int hd, int variant) {
    std::vector<int32_t> cu{0};
    for (int l : lens) cu.push_back(cu.back() + l);
    int n = cu.back(), nseq = (int)lens.size();
    std::mt19937 rng(hd * 7 + n);
    std::uniform_real_distribution<float> U(-2, 2);
    auto fill = [&](std::vector<uint16_t> &v, size_t c) { v.resize(c); for (auto &e : v) e = f32_to_bf16_bits(U(rng)); };
    std::vector<uint16_t> q, k, v, out((size_t)n * nh * hd, 0xFFFF);
    fill(q, (size_t)n * nh * hd); fill(k, (size_t)n * nkv * hd); fill(v, (size_t)n * nkv * hd);
    float scale = 1.0f / sqrtf((float)hd);
    if (variant == 0) {
        dim3e grid{armo_ceil_div(n, FA_BM), (unsigned)nh, 1};
        auto body = [&] {
            float sl = 1.4426950408889634f * scale;
            if (hd == 16) flash_attn_kernel<16>(out.data(), q.data(), k.data(), v.data(), cu.data(), nseq, n, nh, nkv, sl);
            else if (hd == 32) flash_attn_kernel<32>(out.data(), q.data(), k.data(), v.data(), cu.data(), nseq, n, nh, nkv, sl);
            else if (hd == 64) flash_attn_kernel<64>(out.data(), q.data(), k.data(), v.data(), cu.data(), nseq, n, nh, nkv, sl);
            else flash_attn_kernel<128>(out.data(), q.data(), k.data(), v.data(), cu.data(), nseq, n, nh, nkv, sl);
        };
        launch(grid, body);
    } else {
        launch(dim3e{(unsigned)n, (unsigned)nh, 1}, [&] { simple_attn_kernel(out.data(), q.data(), k.data(), v.data(), cu.data(), nseq, nh, nkv, hd, scale); });
    }
    // reference in double
    double num = 0, den = 0; int nan = 0;
    for (int s = 0; s < nseq; s++) for (int i = cu[s]; i < cu[s + 1]; i++) for (int h = 0; h < nh; h++) {
        int kh = h / (nh / nkv);
        std::vector<double> sc;
        double mx = -1e300;
        for (int j = cu[s]; j <= i; j++) {
            double d = 0;
            for (int c = 0; c < hd; c++) d += (double)bf16_bits_to_f32(q[((size_t)i * nh + h) * hd + c]) * bf16_bits_to_f32(k[((size_t)j * nkv + kh) * hd + c]);
            sc.push_back(d * scale); mx = std::max(mx, d * scale);
        }
        double l = 0; for (auto &e : sc) { e = exp(e - mx); l += e; }
        for (int c = 0; c < hd; c++) {
            double o = 0;
            for (int j = cu[s]; j <= i; j++) o += sc[j - cu[s]] * bf16_bits_to_f32(v[((size_t)j * nkv + kh) * hd + c]);
            o /= l;
            float got = bf16_bits_to_f32(out[((size_t)i * nh + h) * hd + c]);
            if (!(got == got)) { nan++; continue; }
            num += (got - o) * (got - o); den += o * o;
        }
    }
    double err = sqrt(num / den);
    printf("%s hd %3d nh %d nkv %d n %4d nseq %d: rel err %.3g, NaN %d %s\n", variant ? "simple" : "flash ", hd, nh, nkv, n, nseq, err, nan, (err < 1e-2 && nan == 0) ? "ok" : "BAD");
    return err < 1e-2 && nan == 0;
}

int main() {
    int ok = 1;
    ok &= run({1, 7, 70, 5}, 4, 2, 16, 0);
    ok &= run({1, 7, 70, 5}, 4, 2, 16, 1);
    ok &= run({0, 1, 2, 3, 0, 5, 64, 1, 130, 0, 7, 0}, 2, 1, 32, 0);
    ok &= run({2, 130}, 4, 1, 32, 0);
    ok &= run({200}, 2, 2, 64, 0);
    ok &= run({3, 129}, 2, 1, 128, 0);
    ok &= run({3, 129}, 2, 1, 128, 1);
    ok &= run({0, 1, 2, 3, 0, 5, 64, 1, 130, 0, 7, 0}, 2, 1, 48, 1);
    printf(ok ? "ALL OK\n" : "SOME BAD\n");
    return !ok;
}
