// nccl_fake.cpp — the part of NCCL armo uses, faked for the CPU emulator
// (tests/emu/cuda): communicators made by ncclCommInitAll, and
// ncclAllReduce(sum) between ranks that are host threads of one process.
//
// The emulator runs every launch to completion when it is enqueued, so a
// rank's buffer is final when it calls ncclAllReduce.  The call is a
// barrier: the last rank to arrive adds the ranks' buffers in rank order
// (0, 1, ..., n-1; in fp32 for bf16 and fp16, rounded once, as the CPU
// backend's tensor-parallel all-reduce adds its partials) and writes the sum
// to every rank's receive buffer; then all return.  Checks a real NCCL makes
// are made here too: a count or datatype that differs between the ranks,
// and a rank calling twice before the others arrive, abort with a message.
// Only ncclSum, and the datatypes float, half and bfloat16.
//
// The types are declared here (ABI-compatible with nccl.h, whose value
// enums they copy) so that the emulator needs no nccl.h of its own.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <condition_variable>
#include <mutex>
#include <vector>

#include <cuda_runtime_api.h>

namespace {

enum result { ok = 0, invalid_argument = 4, invalid_usage = 5 };
enum dtype { dt_half = 6, dt_float = 7, dt_bfloat16 = 9 };

struct group;

struct comm {
    group *g;
    int rank;
};

struct group {
    int n;
    std::vector<comm *> comms;
    std::mutex mu;
    std::condition_variable cv;
    long round = 0;              // completed all-reduces
    int arrived = 0;
    std::vector<void *> recv;    // this round's buffers, per rank
    std::vector<const void *> send;
    size_t count = 0;
    int dt = -1;
    int destroyed = 0;
};

[[noreturn]] void die(const char *what) {
    fprintf(stderr, "armo emu nccl: %s\n", what);
    abort();
}

float load(const void *p, int dt, size_t i) {
    if (dt == dt_float) return ((const float *)p)[i];
    uint16_t h = ((const uint16_t *)p)[i];
    if (dt == dt_bfloat16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    // half -> float
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { // subnormal
            exp = 113;
            while (!(man & 1024)) man <<= 1, exp--;
            u = sign | (exp << 23) | ((man & 1023) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void store(void *p, int dt, size_t i, float f) {
    if (dt == dt_float) {
        ((float *)p)[i] = f;
        return;
    }
    uint32_t u;
    memcpy(&u, &f, 4);
    if (dt == dt_bfloat16) { // round to nearest even, NaN kept quiet
        uint16_t h = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40)
                                                      : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
        ((uint16_t *)p)[i] = h;
        return;
    }
    die("half all-reduce results are not written by this fake (armo reduces bf16)");
}

} // namespace

extern "C" {

typedef comm *ncclComm_t;

const char *ncclGetErrorString(int r) {
    switch (r) {
    case ok: return "no error";
    case invalid_argument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case invalid_usage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    default: return "unhandled error (emulated)";
    }
}

int ncclGetVersion(int *version) {
    *version = 22809; // the version the project builds against (2.28.9)
    return ok;
}

int ncclCommInitAll(ncclComm_t *comms, int ndev, const int *devlist) {
    if (!comms || ndev < 1) return invalid_argument;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) return invalid_usage;
    for (int r = 0; r < ndev; r++) {
        if (devlist && (devlist[r] < 0 || devlist[r] >= count)) return invalid_argument;
        for (int q = 0; devlist && q < r; q++)
            if (devlist[q] == devlist[r]) return invalid_usage; // one rank per device
    }
    group *g = new group;
    g->n = ndev;
    g->recv.assign((size_t)ndev, nullptr);
    g->send.assign((size_t)ndev, nullptr);
    for (int r = 0; r < ndev; r++) {
        comms[r] = new comm{g, r};
        g->comms.push_back(comms[r]);
    }
    return ok;
}

static int release(ncclComm_t c) {
    if (!c) return invalid_argument;
    group *g = c->g;
    bool last;
    {
        std::lock_guard<std::mutex> hold(g->mu);
        last = ++g->destroyed == g->n;
    }
    delete c;
    if (last) delete g;
    return ok;
}

int ncclCommDestroy(ncclComm_t c) { return release(c); }
int ncclCommAbort(ncclComm_t c) { return release(c); }

int ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, int datatype, int op,
                  ncclComm_t c, cudaStream_t stream) {
    (void)stream; // the emulator's streams have already run everything enqueued
    if (!c || !sendbuff || !recvbuff) return invalid_argument;
    if (op != 0) die("only ncclSum is faked");
    if (datatype != dt_float && datatype != dt_half && datatype != dt_bfloat16)
        die("only float, half and bfloat16 are faked");
    group *g = c->g;
    std::unique_lock<std::mutex> lock(g->mu);
    if (g->recv[(size_t)c->rank]) die("a rank called ncclAllReduce twice before its peers arrived");
    if (g->arrived == 0) {
        g->count = count;
        g->dt = datatype;
    } else if (g->count != count || g->dt != datatype) {
        die("ranks called ncclAllReduce with different counts or datatypes");
    }
    g->recv[(size_t)c->rank] = recvbuff;
    g->send[(size_t)c->rank] = sendbuff;
    const long round = g->round;
    if (++g->arrived == g->n) { // the last one: sum in rank order, write to every rank
        std::vector<float> sum(count);
        for (size_t i = 0; i < count; i++) sum[i] = load(g->send[0], datatype, i);
        for (int r = 1; r < g->n; r++)
            for (size_t i = 0; i < count; i++) sum[i] += load(g->send[(size_t)r], datatype, i);
        for (int r = 0; r < g->n; r++)
            for (size_t i = 0; i < count; i++) store(g->recv[(size_t)r], datatype, i, sum[i]);
        for (int r = 0; r < g->n; r++) g->recv[(size_t)r] = nullptr, g->send[(size_t)r] = nullptr;
        g->arrived = 0;
        g->round++;
        g->cv.notify_all();
    } else {
        g->cv.wait(lock, [&] { return g->round != round; });
    }
    return ok;
}

} // extern "C"
