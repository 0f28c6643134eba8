// The compute pool's spin-wait hint (Sources/Kernels/ComputePool.swift): Swift has no spelling of
// x86's `pause`.
#include "CKernels.h"

void sb_spin_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
