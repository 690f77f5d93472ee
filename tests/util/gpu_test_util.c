/* gpu_test_util.c — see gpu_test_util.h: device check (exit 77), seeded
 * random bf16 inputs, poisoned device buffers, checked copies and the
 * relative-error measure every GPU test uses. */
#include "tests/util/gpu_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights/dtype.h"

void gpu_check_status(int status, const char *what, const char *file, int line) {
    if (status == 0) return;
    fprintf(stderr, "%s:%d: %s failed: %s (%d)\n", file, line, what,
            cudaGetErrorString((cudaError_t)status), status);
    exit(1);
}

void gpu_test_require_device(void) {
    int count = 0;
    cudaError_t st = cudaGetDeviceCount(&count);
    if (st != cudaSuccess || count <= 0) {
        printf("no CUDA device: skipped (%s)\n",
               st != cudaSuccess ? cudaGetErrorString(st) : "device count 0");
        exit(77);
    }
    st = cudaSetDevice(0);
    if (st != cudaSuccess) {
        printf("no CUDA device: skipped (cudaSetDevice: %s)\n", cudaGetErrorString(st));
        exit(77);
    }
}

void gpu_rng_seed(gpu_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 1; }

float gpu_rng_uniform(gpu_rng *r, float scale) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    const uint64_t x = r->s * 0x2545F4914F6CDD1Dull;
    const double u = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
    return (float)((2.0 * u - 1.0) * scale);
}

void gpu_fill_bf16(gpu_rng *r, uint16_t *bf16, float *f32, size_t count, float scale) {
    for (size_t i = 0; i < count; i++) {
        bf16[i] = armo_f32_to_bf16(gpu_rng_uniform(r, scale));
        if (f32) f32[i] = armo_bf16_to_f32(bf16[i]);
    }
}

void *gpu_host_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "%s:%d: out of host memory (%zu bytes)\n", __FILE__, __LINE__, bytes);
        exit(1);
    }
    return p;
}

void *gpu_alloc(size_t bytes) {
    void *p = NULL;
    GPU_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    return p;
}

void *gpu_alloc_poisoned(size_t bytes) {
    void *p = gpu_alloc(bytes);
    GPU_CHECK(cudaMemset(p, 0xFF, bytes ? bytes : 1));
    return p;
}

void *gpu_upload(const void *host, size_t bytes) {
    void *p = gpu_alloc(bytes);
    if (bytes) GPU_CHECK(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice));
    return p;
}

void gpu_download(void *host, const void *dev, size_t bytes) {
    GPU_CHECK(cudaDeviceSynchronize());
    if (bytes) GPU_CHECK(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
}

void gpu_free(void *dev) { GPU_CHECK(cudaFree(dev)); }

float *gpu_download_bf16_as_f32(const uint16_t *dev, size_t count) {
    uint16_t *tmp = gpu_host_alloc(count * sizeof *tmp);
    float *out = gpu_host_alloc(count * sizeof *out);
    gpu_download(tmp, dev, count * sizeof *tmp);
    for (size_t i = 0; i < count; i++) out[i] = armo_bf16_to_f32(tmp[i]);
    free(tmp);
    return out;
}

double gpu_rel_err(const float *out, const float *ref, size_t count, size_t *nan_count) {
    double num = 0.0, den = 0.0;
    size_t bad = 0;
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(out[i])) {
            bad++;
            continue;
        }
        const double d = (double)out[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    if (nan_count) *nan_count = bad;
    if (den < 1e-30) den = 1e-30;
    return sqrt(num / den);
}
