// nccl_fake.cpp — the part of NCCL armo uses, faked for the CPU emulator
// (tests/emu/cuda): communicators made by ncclCommInitAll (ranks are host
// threads of one process) or by ncclGetUniqueId + ncclCommInitRank (ranks
// are processes: a tensor-parallel group spread over mpirun's ranks), and
// ncclAllReduce(sum) between them; ncclCommAbort / ncclCommGetAsyncError.
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
// Across processes: the unique id names a POSIX shared-memory segment that
// ncclGetUniqueId creates (a process-shared mutex and condition variable, a
// slot per rank for its send buffer, one for the sum); ncclCommInitRank
// maps it and waits for all nranks to join (then the name is unlinked, so
// nothing is left behind whatever happens later); the all-reduce copies the
// rank's buffer into its slot and the last to arrive sums the slots in rank
// order, exactly as between threads, so results are bit-identical to an
// in-process group.  A peer that never arrives does not hang a test: every
// wait gives up after ARMO_EMU_NCCL_TIMEOUT_S seconds (default 120) and
// aborts with a message naming the rank and the call.  At most 8 ranks
// across processes, ARMO_EMU_NCCL_SLOT_BYTES (default 8 MiB) per buffer.
//
// Abort: ncclCommAbort on a rank's communicator marks the group aborted;
// a peer blocked in ncclAllReduce (or arriving later) returns
// ncclRemoteError, and ncclCommGetAsyncError reports it, as a real NCCL
// releases the peers of an aborted communicator.
//
// The types are declared here (ABI-compatible with nccl.h, whose value
// enums they copy) so that the emulator needs no nccl.h of its own.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include <cuda_runtime_api.h>

namespace {

enum result { ok = 0, invalid_argument = 4, invalid_usage = 5, remote_error = 6 };
enum dtype { dt_half = 6, dt_float = 7, dt_bfloat16 = 9 };

struct group;
struct xseg;

// a rank's communicator: of an in-process group (g) or of a cross-process
// one (x, the mapped segment)
struct comm {
    group *g;
    xseg *x;
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
    int aborted = 0;             // a rank's communicator was aborted
    int inside = 0;              // threads inside ncclAllReduce (an abort may free their comm)
};

// ---- the cross-process segment ----
constexpr int k_xmax = 8;               // ranks
constexpr uint32_t k_magic = 0x41524d4e; // "ARMN"

struct xseg {
    uint32_t magic;
    int n;                       // 0 until the first rank joins
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t joined_mask;
    int joined;
    long round;
    int arrived, left, draining;
    size_t count;
    int dt;
    int aborted, aborted_by;
    size_t slot_bytes;           // each of the k_xmax + 1 slots (the last: the sum)
    char name[128];
};

size_t x_total(size_t slot) { return sizeof(xseg) + (size_t)(k_xmax + 1) * slot; }
char *x_slot(xseg *x, int r) { return (char *)(x + 1) + (size_t)r * x->slot_bytes; }

[[noreturn]] void die(const char *what) {
    fprintf(stderr, "armo emu nccl: %s\n", what);
    abort();
}

int timeout_s() {
    const char *v = getenv("ARMO_EMU_NCCL_TIMEOUT_S");
    int t = v && *v ? atoi(v) : 120;
    return t > 0 ? t : 120;
}

// waits on x->cv until pred() or the timeout; false on timeout
template <class P> bool x_wait(xseg *x, P pred) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_s();
    while (!pred()) {
        int rc = pthread_cond_timedwait(&x->cv, &x->mu, &until);
        if (rc == ETIMEDOUT) return pred();
        if (rc && rc != EINTR) die("pthread_cond_timedwait failed on the shared segment");
    }
    return true;
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

size_t dt_size(int dt) { return dt == dt_float ? 4 : 2; }

// the sum over ranks 0..n-1 of send[r] (in rank order, fp32, rounded once) into out
void reduce_sum(const void *const *send, int n, int dt, size_t count, void *out) {
    std::vector<float> sum(count);
    for (size_t i = 0; i < count; i++) sum[i] = load(send[0], dt, i);
    for (int r = 1; r < n; r++)
        for (size_t i = 0; i < count; i++) sum[i] += load(send[r], dt, i);
    for (size_t i = 0; i < count; i++) store(out, dt, i, sum[i]);
}

void check_op(int datatype, int op) {
    if (op != 0) die("only ncclSum is faked");
    if (datatype != dt_float && datatype != dt_half && datatype != dt_bfloat16)
        die("only float, half and bfloat16 are faked");
}

// ---- cross-process all-reduce ----
int x_allreduce(comm *c, const void *sendbuff, void *recvbuff, size_t count, int datatype) {
    xseg *x = c->x;
    const size_t bytes = count * dt_size(datatype);
    if (bytes > x->slot_bytes) {
        char msg[256];
        snprintf(msg, sizeof msg, "an all-reduce of %zu bytes exceeds the shared segment's slot "
                 "of %zu (raise ARMO_EMU_NCCL_SLOT_BYTES)", bytes, x->slot_bytes);
        die(msg);
    }
    char msg[300];
    pthread_mutex_lock(&x->mu);
    if (!x_wait(x, [&] { return !x->draining || x->aborted; })) {
        snprintf(msg, sizeof msg, "ncclAllReduce: TP rank %d of %d waited %d s for its peers to "
                 "finish the previous all-reduce: a peer process never came back", c->rank, x->n,
                 timeout_s());
        die(msg);
    }
    if (x->aborted) {
        pthread_mutex_unlock(&x->mu);
        return remote_error;
    }
    if (x->arrived == 0) {
        x->count = count;
        x->dt = datatype;
    } else if (x->count != count || x->dt != datatype) {
        die("ranks called ncclAllReduce with different counts or datatypes");
    }
    memcpy(x_slot(x, c->rank), sendbuff, bytes);
    const long round = x->round;
    if (++x->arrived == x->n) {
        const void *send[k_xmax];
        for (int r = 0; r < x->n; r++) send[r] = x_slot(x, r);
        reduce_sum(send, x->n, datatype, count, x_slot(x, k_xmax));
        x->draining = 1;
        x->round++;
        pthread_cond_broadcast(&x->cv);
    } else if (!x_wait(x, [&] { return x->round != round || x->aborted; })) {
        snprintf(msg, sizeof msg, "ncclAllReduce: TP rank %d of %d waited %d s for its peers "
                 "(%d of %d arrived): a peer process never called it", c->rank, x->n,
                 timeout_s(), x->arrived, x->n);
        die(msg);
    }
    if (x->round == round) { // released by an abort before the sum
        pthread_mutex_unlock(&x->mu);
        return remote_error;
    }
    memcpy(recvbuff, x_slot(x, k_xmax), bytes);
    if (++x->left == x->n) {
        x->left = x->arrived = x->draining = 0;
        pthread_cond_broadcast(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
    return ok;
}

} // namespace

extern "C" {

typedef comm *ncclComm_t;
typedef struct { char internal[128]; } ncclUniqueId;

const char *ncclGetErrorString(int r) {
    switch (r) {
    case ok: return "no error";
    case invalid_argument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case invalid_usage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case remote_error: return "remote process exited or there was a network error (emulated: a "
                              "peer's communicator was aborted)";
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
        comms[r] = new comm{g, nullptr, r};
        g->comms.push_back(comms[r]);
    }
    return ok;
}

// A new shared segment, named in the id (the process that broadcasts the id
// calls this once).
int ncclGetUniqueId(ncclUniqueId *id) {
    if (!id) return invalid_argument;
    static std::atomic<int> seq{0};
    memset(id, 0, sizeof *id);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(id->internal, sizeof id->internal, "/armo-emu-nccl-%ld-%d-%ld", (long)getpid(),
             seq++, (long)now.tv_nsec);
    const char *v = getenv("ARMO_EMU_NCCL_SLOT_BYTES");
    const size_t slot = v && *v ? (size_t)strtoull(v, nullptr, 10) : (size_t)8 << 20;
    int fd = shm_open(id->internal, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return 2; // ncclSystemError
    void *p = MAP_FAILED;
    if (ftruncate(fd, (off_t)x_total(slot)) == 0)
        p = mmap(nullptr, x_total(slot), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        shm_unlink(id->internal);
        return 2;
    }
    xseg *x = (xseg *)p;
    memset(x, 0, sizeof *x);
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&x->mu, &ma);
    pthread_cond_init(&x->cv, &ca);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_destroy(&ca);
    x->slot_bytes = slot;
    snprintf(x->name, sizeof x->name, "%s", id->internal);
    x->magic = k_magic;
    munmap(p, x_total(slot));
    return ok;
}

// Rank `rank` of nranks joins the segment the id names; returns when all
// have joined.
int ncclCommInitRank(ncclComm_t *out, int nranks, ncclUniqueId id, int rank) {
    if (!out || nranks < 1 || nranks > k_xmax || rank < 0 || rank >= nranks)
        return invalid_argument;
    id.internal[sizeof id.internal - 1] = 0;
    int fd = shm_open(id.internal, O_RDWR, 0);
    if (fd < 0) return invalid_usage; // not an id of ncclGetUniqueId, or all joined already
    xseg head;
    if (pread(fd, &head, sizeof head, 0) != (ssize_t)sizeof head || head.magic != k_magic) {
        close(fd);
        return invalid_usage;
    }
    void *p = mmap(nullptr, x_total(head.slot_bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return 2;
    xseg *x = (xseg *)p;
    char msg[300];
    pthread_mutex_lock(&x->mu);
    if (x->n == 0) x->n = nranks;
    if (x->n != nranks || (x->joined_mask >> rank & 1u)) {
        pthread_mutex_unlock(&x->mu);
        munmap(p, x_total(head.slot_bytes));
        return invalid_usage; // ranks disagree on the size, or a rank joined twice
    }
    x->joined_mask |= 1u << rank;
    if (++x->joined == x->n) {
        shm_unlink(x->name); // every rank has it mapped: nothing left behind
        pthread_cond_broadcast(&x->cv);
    } else if (!x_wait(x, [&] { return x->joined == x->n; })) {
        shm_unlink(x->name);
        snprintf(msg, sizeof msg, "ncclCommInitRank: rank %d waited %d s for its peers (%d of %d "
                 "joined): a peer process never called it", rank, timeout_s(), x->joined, x->n);
        die(msg);
    }
    pthread_mutex_unlock(&x->mu);
    *out = new comm{nullptr, x, rank};
    return ok;
}

static int release(ncclComm_t c) {
    if (!c) return invalid_argument;
    if (c->x) {
        munmap(c->x, x_total(c->x->slot_bytes));
        delete c;
        return ok;
    }
    group *g = c->g;
    bool last;
    {
        std::lock_guard<std::mutex> hold(g->mu);
        last = ++g->destroyed == g->n && g->inside == 0;
    }
    delete c;
    if (last) delete g;
    return ok;
}

int ncclCommDestroy(ncclComm_t c) { return release(c); }

// Marks the group aborted (peers blocked in an all-reduce return
// ncclRemoteError), then frees the communicator.
int ncclCommAbort(ncclComm_t c) {
    if (!c) return invalid_argument;
    if (c->x) {
        pthread_mutex_lock(&c->x->mu);
        if (!c->x->aborted) c->x->aborted_by = c->rank;
        c->x->aborted = 1;
        pthread_cond_broadcast(&c->x->cv);
        pthread_mutex_unlock(&c->x->mu);
    } else {
        std::lock_guard<std::mutex> hold(c->g->mu);
        c->g->aborted = 1;
        c->g->cv.notify_all();
    }
    return release(c);
}

// ncclRemoteError once a peer's communicator was aborted, else ncclSuccess.
int ncclCommGetAsyncError(ncclComm_t c, int *async_error) {
    if (!c || !async_error) return invalid_argument;
    if (c->x) {
        pthread_mutex_lock(&c->x->mu);
        *async_error = c->x->aborted ? remote_error : ok;
        pthread_mutex_unlock(&c->x->mu);
    } else {
        std::lock_guard<std::mutex> hold(c->g->mu);
        *async_error = c->g->aborted ? remote_error : ok;
    }
    return ok;
}

int ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, int datatype, int op,
                  ncclComm_t c, cudaStream_t stream) {
    (void)stream; // the emulator's streams have already run everything enqueued
    if (!c || !sendbuff || !recvbuff) return invalid_argument;
    check_op(datatype, op);
    if (c->x) return x_allreduce(c, sendbuff, recvbuff, count, datatype);
    // c may be aborted (and freed) by another thread while this one waits:
    // only its group and rank are used past this point
    group *g = c->g;
    const size_t me = (size_t)c->rank;
    std::unique_lock<std::mutex> lock(g->mu);
    if (g->aborted) return remote_error;
    if (g->recv[me]) die("a rank called ncclAllReduce twice before its peers arrived");
    if (g->arrived == 0) {
        g->count = count;
        g->dt = datatype;
    } else if (g->count != count || g->dt != datatype) {
        die("ranks called ncclAllReduce with different counts or datatypes");
    }
    g->recv[me] = recvbuff;
    g->send[me] = sendbuff;
    const long round = g->round;
    int rc = ok;
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
        g->inside++;
        g->cv.wait(lock, [&] { return g->round != round || g->aborted; });
        g->inside--;
        if (g->round == round) { // released by an abort: this rank leaves the round
            g->recv[me] = nullptr;
            g->send[me] = nullptr;
            g->arrived--;
            rc = remote_error;
        }
        if (g->destroyed == g->n && g->inside == 0) { // every comm freed while this one waited
            lock.unlock();
            delete g;
        }
    }
    return rc;
}

} // extern "C"
