#include <cblas.h>
// OpenBLAS extensions: the pthread build oversubscribes two cores unless its thread count is set.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
