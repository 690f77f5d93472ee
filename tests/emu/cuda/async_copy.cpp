// async_copy.cpp — the emulator's model of cp.async's groups (API: emu.h;
// used by shim/kernels/cp_async.cuh).
//
// PTX ISA, cp.async / cp.async.commit_group / cp.async.wait_group: the
// copies a thread issues join its current group until commit_group closes
// it; wait_group N returns once all but the N most recent committed groups
// of the thread are complete; nothing orders the copies' writes with other
// accesses before that.  The model takes the two ends of that window:
//   - latest (the forward and reversed schedules): a copy is performed at
//     the wait that covers it, by the thread that issued it (so its own
//     reads after the wait see it, and the block's after the barrier that
//     follows), never earlier.  A kernel that reads a tile before waiting
//     for it reads the tile's previous contents: the test comparing with
//     the CPU reference fails, and the race check sees the schedules differ;
//   - earliest (the warp-serial schedule): a copy is performed at its issue.
//     A kernel that issues copies into a buffer other warps may still read
//     (a missing barrier before the refill) then overwrites it under them,
//     which the latest model cannot show when the wait comes after the
//     next barrier; the race check compares it with the forward run.
// Copies never waited for by the end of the block stop the run.
//
// Per thread of the running block, on the launching OS thread (launches are
// serialised: scheduler.cpp's g_launch_lock).  Kept out of the kernels'
// translation units so that the bank-conflict counter, which sees every
// instrumented access to static storage as shared memory, counts only the
// copies' own 16-byte stores (made by the shim's inline code) and not this
// bookkeeping.
#include "tests/emu/cuda/emu.h"

#include <deque>
#include <vector>

namespace emu {
namespace {

struct thread_copies {
    std::vector<async_copy> open;               // issued since the last commit
    std::deque<std::vector<async_copy>> groups; // committed, oldest first
};

thread_local std::vector<thread_copies> t_threads;

thread_copies &mine(void) {
    if (running_thread() < 0) fail("cp.async outside a kernel");
    const unsigned t = current_thread();
    if (t >= t_threads.size()) t_threads.resize(t + 1);
    return t_threads[t];
}

} // namespace

bool async_copy_issue(const async_copy &c) {
    if (c.src_size > 16) fail("cp.async: src-size %u exceeds the copy's 16 bytes", c.src_size);
    if (((uintptr_t)c.dst & 15) != 0 || (c.src_size != 0 && ((uintptr_t)c.src & 15) != 0))
        fail("cp.async of 16 bytes: dst %p / src %p not 16-byte aligned", c.dst, c.src);
    thread_copies &t = mine();
    if (schedule_warp_serial()) return true; // earliest: the shim copies now
    t.open.push_back(c);
    return false;
}

void async_copy_commit(void) {
    thread_copies &t = mine();
    t.groups.push_back(std::move(t.open));
    t.open.clear();
}

bool async_copy_due(int keep, async_copy *out) {
    thread_copies &t = mine();
    while ((int)t.groups.size() > keep) {
        std::vector<async_copy> &oldest = t.groups.front();
        if (oldest.empty()) {
            t.groups.pop_front();
            continue;
        }
        *out = oldest.front();
        oldest.erase(oldest.begin());
        return true;
    }
    return false;
}

void async_copy_block_end(void) {
    for (size_t i = 0; i < t_threads.size(); i++) {
        thread_copies &t = t_threads[i];
        size_t pending = t.open.size();
        for (const std::vector<async_copy> &g : t.groups) pending += g.size();
        if (pending != 0)
            fail("thread %zu ends its block with %zu cp.async copies never waited for "
                 "(cp.async.wait_group)", i, pending);
        t.groups.clear();
    }
}

} // namespace emu
