// The parts of GNU OpenMP's runtime (libgomp, which oneDNN threads with) that the engine uses to run
// its own parallel loops on the same thread pool, so the two never compete for the cores.
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned int flags);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
int omp_get_max_threads(void);
void omp_set_num_threads(int n);
