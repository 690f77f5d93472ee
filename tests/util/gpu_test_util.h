/* gpu_test_util.h — the shared kit of the GPU tests (tests/kernels/,
 * tests/cuda/).
 *
 * Every GPU test: gpu_test_require_device() first (exits 77, ctest's skip
 * code, when there is no usable CUDA device); fresh random bf16 inputs from a
 * seeded generator; outputs poisoned with 0xFF bytes (bf16 / fp32 NaN) before
 * the kernel runs so that an unwritten element shows up as NaN; comparison
 * with the CPU reference (host/engine/cpu_ops.h) on the same bf16 values converted
 * to fp32, by relative Frobenius error ‖out − ref‖ / ‖ref‖.
 * Failing CUDA calls abort the test with file:line. */
#ifndef ARMO_GPU_TEST_UTIL_H
#define ARMO_GPU_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

/* 1 when the test is built against the CPU emulator of the CUDA path
 * (cmake/emulator.cmake defines ARMO_EMULATED): each test then runs its
 * emulator-sized cases — the shapes that matter (head_dim 128, GQA 4:1,
 * ragged batches with empty, 1-token and odd-length sequences) at widths the
 * CPU gets through in seconds — with the same references and tolerances. */
#ifdef ARMO_EMULATED
#define GPU_TEST_EMULATED 1
#else
#define GPU_TEST_EMULATED 0
#endif

/* Aborts the test (exit 1) naming the call and file:line when it fails. */
#define GPU_CHECK(call) gpu_check_status((int)(call), #call, __FILE__, __LINE__)
void gpu_check_status(int status, const char *what, const char *file, int line);

/* Exits 77 with "no CUDA device: skipped" unless a CUDA device is usable. */
void gpu_test_require_device(void);

/* Deterministic generator (xorshift64*), uniform in [-scale, scale). */
typedef struct { uint64_t s; } gpu_rng;
void gpu_rng_seed(gpu_rng *r, uint64_t seed);
float gpu_rng_uniform(gpu_rng *r, float scale);

/* Fills bf16 host array with uniform [-scale, scale) values and, when f32 is
 * not NULL, the same values as fp32 (exactly: bf16 -> fp32 is exact). */
void gpu_fill_bf16(gpu_rng *r, uint16_t *bf16, float *f32, size_t count, float scale);

/* Host <-> device helpers (checked; abort on failure). */
void *gpu_alloc(size_t bytes);                  /* cudaMalloc */
void *gpu_alloc_poisoned(size_t bytes);         /* cudaMalloc + 0xFF fill */
void *gpu_upload(const void *host, size_t bytes);
void gpu_download(void *host, const void *dev, size_t bytes); /* synchronises the device first */
void gpu_free(void *dev);

/* bf16 device array -> fp32 host array (count elements, malloc'd). */
float *gpu_download_bf16_as_f32(const uint16_t *dev, size_t count);

/* Relative Frobenius error ‖out − ref‖ / ‖ref‖ (ref norm floored at 1e-30);
 * *nan_count receives the number of non-finite outputs. */
double gpu_rel_err(const float *out, const float *ref, size_t count, size_t *nan_count);

/* Host malloc that aborts on failure. */
void *gpu_host_alloc(size_t bytes);

#endif
