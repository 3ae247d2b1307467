// ThreadPool: lowbit's one pool of threads, for every parallel loop (reference kernels through
// RunContext::pool, the fast CPU ops, layout reorders, calibration image loading, COCOeval).
// The calling thread and n_threads - 1 workers claim tasks from one shared counter; the caller
// waits only for tasks a worker has already started.
//
// Why not OpenMP regions: an OpenMP parallel region ends in a barrier that waits for every team
// thread, including one the OS has not scheduled yet. On a loaded 2-core machine each of the
// ~300 regions of a YOLO run then waits for a scheduler time slice, and 2 threads end up 2-3x
// slower than 1 (measured: 5.9 s vs 2.0 s for YOLOv10m at load 8). With claimed tasks, work a
// late worker never picked up is done by the caller, so a busy machine degrades towards the
// 1-thread time instead (ONNX Runtime's thread pool behaves the same way). oneDNN primitives
// run inside tasks with one thread each (kernels/cpu/conv.cpp splits convs into row chunks).
//
// OpenMP's thread count (which oneDNN reads when it creates a primitive, and uses to size its
// parallel regions) is set in one place, single_threaded_openmp(), for every thread that owns
// or works for a pool.
#pragma once

#include <cstdint>
#include <memory>

#include "core/function_ref.h"

namespace lowbit {

class ThreadPool {
public:
    // n_threads <= 0: one per core. Workers start here and spin briefly, then sleep, between
    // loops. A 1-thread pool has no workers and allocates nothing.
    explicit ThreadPool(int n_threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Calls fn(i, thread) once for every i in [0, n), on any of the pool's threads, and returns
    // when all calls have returned. `thread` in [0, size()) names the pool thread running the
    // call (0 = the caller), for per-thread scratch memory. A call from inside one of this
    // pool's tasks runs its loop on the calling thread (as thread 0). Neither loop allocates
    // (fn is referenced, not copied: core/function_ref.h).
    void run(int64_t n, FunctionRef<void(int64_t, int)> fn) const;

    // Calls fn(begin, end) over disjoint ranges covering [0, n), each holding at least `grain`
    // items (tiny loops stay on the calling thread). Ranges are smaller than n / size() so that
    // a thread that starts late finds work left to share. Results must not depend on where
    // the ranges are cut (every caller writes each item from that item's inputs only).
    void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn) const;

private:
    struct State;
    int n_threads_;
    std::unique_ptr<State> s_;  // null for a 1-thread pool
};

// Number of cores available to this process.
int hardware_threads();

// Sets the calling thread's OpenMP thread count to 1: lowbit parallelizes with ThreadPool
// tasks, and a oneDNN primitive (created and run on pool threads) must not open an OpenMP team
// of its own next to them. The only place lowbit sets OpenMP's thread count; called for pool
// threads and by code that makes oneDNN primitives outside a pool.
void single_threaded_openmp();

}  // namespace lowbit
