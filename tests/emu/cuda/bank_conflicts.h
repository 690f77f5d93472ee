/* bank_conflicts.h — the shared-memory bank-conflict counter of the CPU
 * emulator (bank_conflicts.cpp), as its driver (bank_report.c) and its
 * self-test (test_bank_counter.cpp) call it.  Plain C so that the C driver
 * can include it; only the emulator variant armo_cuda_emu_banks
 * (cmake/bank_conflicts.cmake) defines these functions.
 *
 * Figures per kernel (the launch's name, e.g. "flash_attn_kernel<128>"),
 * summed over every block of every launch since armo_banks_start():
 *   instructions  warp-level shared-memory instructions (the accesses of the
 *                 lanes of one warp at one site, grouped as the hardware
 *                 issues them: bank_conflicts.cpp);
 *   wavefronts    shared-memory cycles they take: per instruction the sum
 *                 over its phases of the largest number of distinct 32-bit
 *                 words any one bank must deliver;
 *   ideal         the wavefronts the same instructions take without a
 *                 conflict (one per phase: 1 for accesses of up to 4 bytes,
 *                 2 for 8, 4 for 16 bytes per lane);
 * conflict rate = wavefronts / ideal: 1.0 is conflict-free. */
#ifndef ARMO_EMU_BANK_CONFLICTS_H
#define ARMO_EMU_BANK_CONFLICTS_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    unsigned long long blocks;       /* blocks run */
    unsigned long long instructions; /* warp-level shared-memory instructions */
    unsigned long long wavefronts;
    unsigned long long ideal;
    unsigned max_degree;             /* worst wavefronts / ideal of one instruction */
    unsigned long long unmodelled;   /* range accesses (memcpy) that touched shared memory */
} armo_bank_stats;

/* Clears every figure and starts counting (installs the scheduler observer). */
void armo_banks_start(void);
/* Stops counting; the figures stay readable. */
void armo_banks_stop(void);

/* Kernels seen so far, in the order of their first block. */
int armo_banks_count(void);
const char *armo_banks_name(int i);

/* The figures of kernel name; 0 when no block of it ran. */
int armo_banks_get(const char *name, armo_bank_stats *out);

/* The site with the most excess wavefronts of kernel name, as
 * "file:line (function)" with its worst degree, into buf; 0 when the kernel
 * has no conflicted instruction. */
int armo_banks_worst_site(const char *name, char *buf, size_t size);

/* Every conflicted site of kernel name (at most max), one line each, with
 * its instructions, wavefronts, ideal and worst degree. */
void armo_banks_print_sites(FILE *f, const char *name, int max);

#ifdef __cplusplus
}
#endif

#endif
