// Parallel loops. The engine shares one OpenMP runtime (libgomp) with oneDNN: on a 2-core machine
// two thread pools spinning side by side steal each other's core (research/engine-perf.md,
// "Threading interplay"), so our kernels use the same OpenMP team oneDNN uses.
#pragma once

#include <cstdint>
#include <functional>

namespace lowbit {

class ThreadPool {
public:
    // n_threads <= 0: one thread per core.
    explicit ThreadPool(int n_threads = 0);
    int size() const { return n_threads_; }

    // Calls fn(begin, end) over disjoint chunks covering [0, n). Chunks hold at least `grain`
    // items, so tiny loops stay on the calling thread.
    void parallel_for(int64_t n, int64_t grain,
                      const std::function<void(int64_t, int64_t)>& fn) const;

private:
    int n_threads_;
};

// Number of cores available to this process.
int hardware_threads();

}  // namespace lowbit
