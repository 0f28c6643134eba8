// LD_PRELOAD malloc counter for scripts/bench/allocations-per-token.sh: prints the number of malloc calls at exit.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
static atomic_long count;
static void *(*real_malloc)(size_t);
void *malloc(size_t n) {
  if (!real_malloc) real_malloc = dlsym(RTLD_NEXT, "malloc");
  atomic_fetch_add(&count, 1);
  return real_malloc(n);
}
__attribute__((destructor)) static void report(void) { fprintf(stderr, "MALLOC_COUNT %ld\n", (long)count); }
