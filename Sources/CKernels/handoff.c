// Atomic words for the compute pool's spinning hand-off (Sources/Kernels/ComputePool.swift): C11
// atomics on plain 64-bit words that Swift allocates, usable on every platform the package builds for
// (Swift's Synchronization.Atomic needs macOS 15).
#include "CKernels.h"
#include <stdatomic.h>

int64_t sb_atomic_load(int64_t *word) { return atomic_load_explicit((_Atomic int64_t *)word, memory_order_seq_cst); }

void sb_atomic_store(int64_t *word, int64_t value) { atomic_store_explicit((_Atomic int64_t *)word, value, memory_order_seq_cst); }

int64_t sb_atomic_add(int64_t *word, int64_t delta) {
    return atomic_fetch_add_explicit((_Atomic int64_t *)word, delta, memory_order_seq_cst);
}

int64_t sb_atomic_exchange(int64_t *word, int64_t value) {
    return atomic_exchange_explicit((_Atomic int64_t *)word, value, memory_order_seq_cst);
}

void sb_spin_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
