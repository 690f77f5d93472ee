/* cuda_fake.c — the few CUDA runtime calls host/cuda/cuda_backend.c makes,
 * done on the host: "device" memory is malloc'd (poisoned with 0xFF bytes, a
 * bf16 / fp32 NaN, so that a read of something never written shows up as NaN
 * in the scores), copies run at once, streams and events are tokens.  With
 * kernels_host.c this runs the CUDA engine's host code under AddressSanitizer
 * on a machine without a GPU (the ctest engine_emulator).  Every allocation is
 * tracked so that a copy that runs past the end of a buffer aborts with the
 * buffer named, and leaks are reported at exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

typedef struct {
    char *p;
    size_t n;
    int pinned;
} block;

static block blocks[4096];
static int nblocks;

static void track(void *p, size_t n, int pinned) {
    if (nblocks == (int)(sizeof blocks / sizeof blocks[0])) {
        fprintf(stderr, "cuda_fake: too many allocations\n");
        abort();
    }
    blocks[nblocks++] = (block){p, n, pinned};
}

static int untrack(void *p, int pinned) {
    for (int i = 0; i < nblocks; i++)
        if (blocks[i].p == p) {
            if (blocks[i].pinned != pinned) {
                fprintf(stderr, "cuda_fake: %s of a %s pointer\n", pinned ? "cudaFreeHost" : "cudaFree",
                        blocks[i].pinned ? "pinned" : "device");
                abort();
            }
            blocks[i] = blocks[--nblocks];
            return 1;
        }
    return 0;
}

/* a range [p, p+n) must lie inside one tracked block, or be untracked (host
 * pageable memory) entirely */
static void check_range(const void *p, size_t n, const char *what) {
    const char *c = p;
    for (int i = 0; i < nblocks; i++)
        if (c >= blocks[i].p && c < blocks[i].p + blocks[i].n) {
            if (c + n > blocks[i].p + blocks[i].n) {
                fprintf(stderr, "cuda_fake: %s of %zu bytes at offset %zu runs past a %zu-byte "
                                "buffer\n", what, n, (size_t)(c - blocks[i].p), blocks[i].n);
                abort();
            }
            return;
        }
}

cudaError_t cudaMalloc(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    if (!*p) return cudaErrorMemoryAllocation;
    memset(*p, 0xFF, n);
    track(*p, n, 0);
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    if (!untrack(p, 0)) {
        fprintf(stderr, "cuda_fake: cudaFree of an unknown pointer\n");
        abort();
    }
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    if (!*p) return cudaErrorMemoryAllocation;
    memset(*p, 0xEE, n);
    track(*p, n, 1);
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *p) {
    if (!p) return cudaSuccess;
    if (!untrack(p, 1)) {
        fprintf(stderr, "cuda_fake: cudaFreeHost of an unknown pointer\n");
        abort();
    }
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind) {
    (void)kind;
    check_range(dst, n, "cudaMemcpy destination");
    check_range(src, n, "cudaMemcpy source");
    memmove(dst, src, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
    (void)stream;
    return cudaMemcpy(dst, src, n, kind);
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, enum cudaMemcpyKind kind,
                              cudaStream_t stream) {
    (void)kind;
    (void)stream;
    if (width > dpitch || width > spitch) return cudaErrorInvalidPitchValue;
    for (size_t r = 0; r < height; r++) {
        check_range((char *)dst + r * dpitch, width, "cudaMemcpy2DAsync destination row");
        check_range((const char *)src + r * spitch, width, "cudaMemcpy2DAsync source row");
        memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    }
    return cudaSuccess;
}

static char token_stream, token_event[64];
static int nevents;

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    (void)flags;
    *s = (cudaStream_t)(void *)&token_stream;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    (void)s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    (void)s;
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned int flags) {
    (void)flags;
    *ev = (cudaEvent_t)(void *)&token_event[nevents++ % 64];
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *ev) { return cudaEventCreateWithFlags(ev, 0); }
/* the engine's optional phase timing (armo bench) reads zero on the CPU */
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    (void)a;
    (void)b;
    *ms = 0.0f;
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = (size_t)64 << 30;
    *total_bytes = (size_t)80 << 30;
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t ev) {
    (void)ev;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t ev) {
    (void)ev;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t s) {
    (void)ev;
    (void)s;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int d) {
    (void)d;
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "host emulation");
    prop->totalGlobalMem = (size_t)1 << 30;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char *cudaGetErrorString(cudaError_t st) { return st == cudaSuccess ? "no error" : "emulated error"; }

__attribute__((destructor)) static void report_leaks(void) {
    if (nblocks) fprintf(stderr, "cuda_fake: %d device / pinned allocations never freed\n", nblocks);
}
