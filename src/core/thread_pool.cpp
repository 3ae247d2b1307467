#include "core/thread_pool.h"

#include <omp.h>

#include <algorithm>
#include <thread>

namespace lowbit {

int hardware_threads() {
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads > 0 ? n_threads : hardware_threads()) {
    // oneDNN reads omp_get_max_threads() when a primitive is created.
    omp_set_num_threads(n_threads_);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) const {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    int64_t chunks = std::min<int64_t>(n_threads_, (n + grain - 1) / grain);
    if (chunks <= 1) {
        fn(0, n);
        return;
    }
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
    for (int64_t c = 0; c < chunks; ++c) {
        int64_t begin = n * c / chunks;
        int64_t end = n * (c + 1) / chunks;
        if (begin < end) fn(begin, end);
    }
}

}  // namespace lowbit
