// TaskPool: the fast path's parallel loops. The calling thread and n_threads - 1 workers claim
// tasks from one shared counter; the caller waits only for tasks a worker has already started.
//
// Why not OpenMP here: an OpenMP parallel region ends in a barrier that waits for every team
// thread, including one the OS has not scheduled yet. On a loaded 2-core machine each of the
// ~300 regions of a YOLO run then waits for a scheduler time slice, and 2 threads end up 2-3x
// slower than 1 (measured: 5.9 s vs 2.0 s for YOLOv10m at load 8). With claimed tasks, work a
// late worker never picked up is done by the caller, so a busy machine degrades towards the
// 1-thread time instead (ONNX Runtime's thread pool behaves the same way). oneDNN primitives
// run inside tasks with one thread each (kernels/cpu/conv.cpp splits convs into row chunks).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace lowbit {

class TaskPool {
public:
    // n_threads <= 0: one per core. Workers start here and spin briefly, then sleep, between
    // loops.
    explicit TaskPool(int n_threads = 0);
    ~TaskPool();
    TaskPool(const TaskPool&) = delete;
    TaskPool& operator=(const TaskPool&) = delete;

    int size() const;

    // Calls fn(i, thread) once for every i in [0, n), on any of the pool's threads, and returns
    // when all calls have returned. `thread` in [0, size()) names the pool thread running the
    // call (0 = the caller), for per-thread scratch memory. Not reentrant: fn must not call
    // run() or parallel_for().
    void run(int64_t n, const std::function<void(int64_t, int)>& fn) const;

    // Calls fn(begin, end) over disjoint ranges covering [0, n), each holding at least `grain`
    // items (tiny loops stay on the calling thread). Ranges are smaller than n / size() so that
    // a thread that starts late finds work left to share.
    void parallel_for(int64_t n, int64_t grain,
                      const std::function<void(int64_t, int64_t)>& fn) const;

private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace lowbit
