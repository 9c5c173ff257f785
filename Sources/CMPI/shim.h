// The parts of MPI (Open MPI's C API) that `Distributed` uses. MPI's handles (MPI_COMM_WORLD,
// MPI_FLOAT, MPI_SUM, …) are macros Swift cannot import, so each call is wrapped in a small inline
// function with only plain C types in its signature.
#include <mpi.h>

/// MPI_Init_thread at MPI_THREAD_SERIALIZED (only the training thread calls MPI); returns the level given.
static inline int mmkd_mpi_init(int *provided) {
    int flag = 0;
    MPI_Initialized(&flag);
    if (flag) { MPI_Query_thread(provided); return MPI_SUCCESS; }
    return MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, provided);
}
static inline int mmkd_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int mmkd_mpi_finalize(void) {
    int flag = 0;
    MPI_Finalized(&flag);
    return flag ? MPI_SUCCESS : MPI_Finalize();
}
static inline int mmkd_mpi_abort(MPI_Comm comm, int code) { return MPI_Abort(comm, code); }

static inline MPI_Comm mmkd_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline int mmkd_mpi_comm_rank(MPI_Comm comm) { int r = -1; MPI_Comm_rank(comm, &r); return r; }
static inline int mmkd_mpi_comm_size(MPI_Comm comm) { int s = 0; MPI_Comm_size(comm, &s); return s; }
/// The communicator of the processes that passed the same `color`, ranked by `key`.
static inline MPI_Comm mmkd_mpi_comm_split(MPI_Comm comm, int color, int key) {
    MPI_Comm out = MPI_COMM_NULL;
    MPI_Comm_split(comm, color, key, &out);
    return out;
}
static inline void mmkd_mpi_comm_free(MPI_Comm comm) { MPI_Comm c = comm; MPI_Comm_free(&c); }

/// In-place elementwise sums over the communicator.
static inline int mmkd_mpi_sum_float(float *values, int count, MPI_Comm comm) {
    return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_FLOAT, MPI_SUM, comm);
}
static inline int mmkd_mpi_sum_double(double *values, int count, MPI_Comm comm) {
    return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, comm);
}
/// Starts the in-place sum of `values` over the communicator (MPI_Iallreduce); the values belong to
/// MPI until `mmkd_mpi_test` says done or `mmkd_mpi_wait` returns.
static inline int mmkd_mpi_start_sum_float(float *values, int count, MPI_Comm comm, MPI_Request *request) {
    return MPI_Iallreduce(MPI_IN_PLACE, values, count, MPI_FLOAT, MPI_SUM, comm, request);
}
/// Lets a started operation advance; `*done` is 1 once it completed (the request is then freed).
static inline int mmkd_mpi_test(MPI_Request *request, int *done) { return MPI_Test(request, done, MPI_STATUS_IGNORE); }
/// Waits for a started operation to complete.
static inline int mmkd_mpi_wait(MPI_Request *request) { return MPI_Wait(request, MPI_STATUS_IGNORE); }
static inline MPI_Request mmkd_mpi_request_null(void) { return MPI_REQUEST_NULL; }
/// Every process's `count` floats concatenated in rank order into `all`.
static inline int mmkd_mpi_gather_float(const float *local, int count, float *all, MPI_Comm comm) {
    return MPI_Allgather(local, count, MPI_FLOAT, all, count, MPI_FLOAT, comm);
}
/// Every process's `count` bytes (the same count on every process) concatenated in rank order.
static inline int mmkd_mpi_gather_bytes(const void *local, int count, void *all, MPI_Comm comm) {
    return MPI_Allgather(local, count, MPI_BYTE, all, count, MPI_BYTE, comm);
}
/// `count` bytes of process `root` copied to every process.
static inline int mmkd_mpi_broadcast_bytes(void *bytes, int count, int root, MPI_Comm comm) {
    return MPI_Bcast(bytes, count, MPI_BYTE, root, comm);
}
static inline double mmkd_mpi_wtime(void) { return MPI_Wtime(); }
