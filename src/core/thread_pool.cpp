#include "core/thread_pool.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LOWBIT_PAUSE() _mm_pause()
#else
#define LOWBIT_PAUSE() std::this_thread::yield()
#endif

namespace lowbit {

namespace {
// Pause iterations a worker spins on the job counter before it sleeps (~50-100 us): steps of a
// model follow each other within microseconds, and a futex wake costs more than that.
constexpr int kSpinBeforeSleep = 4000;
// Pause iterations the caller spins waiting for started tasks before it yields its core.
constexpr int kSpinBeforeYield = 20000;
constexpr uint64_t kIndexMask = 0xffffffffull;

// The pool whose task this thread is running (null: none), so that a nested loop runs inline.
thread_local const void* tl_in_task = nullptr;
}  // namespace

int hardware_threads() {
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

void single_threaded_openmp() {
    // Nothing else in lowbit sets the count, so once per thread is enough.
    thread_local bool done = false;
    if (done) return;
    omp_set_num_threads(1);
    done = true;
}

struct ThreadPool::State {
    int n_threads = 1;
    std::vector<std::thread> workers;
    // The current job: (epoch << 32) | next unclaimed index. A claim is a CAS that keeps the
    // epoch, so a worker that wakes up late can never claim a task of a finished job.
    alignas(64) std::atomic<uint64_t> claim{0};
    alignas(64) std::atomic<int64_t> done{0};    // tasks finished by workers in this epoch
    alignas(64) std::atomic<uint32_t> epoch{0};  // also the futex word workers sleep on
    std::atomic<int> sleepers{0};
    std::atomic<int64_t> n{0};
    std::atomic<const FunctionRef<void(int64_t, int)>*> fn{nullptr};
    std::atomic<bool> stop{false};
    uint32_t next_epoch = 0;  // caller side only

    // Claims and runs tasks of epoch e until none is left; returns how many it ran.
    int64_t work(uint32_t e, int thread) {
        int64_t ran = 0;
        uint64_t v = claim.load(std::memory_order_acquire);
        // n is read with acquire: a worker that sees the next job's n also sees the closed
        // claim stored before it, so its CAS below fails (see run()).
        while ((v >> 32) == e &&
               static_cast<int64_t>(v & kIndexMask) < n.load(std::memory_order_acquire)) {
            if (!claim.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) continue;
            // The claim succeeded in epoch e, so the caller is still waiting for this task and
            // fn is this epoch's.
            (*fn.load(std::memory_order_relaxed))(static_cast<int64_t>(v & kIndexMask), thread);
            ++ran;
            v = claim.load(std::memory_order_acquire);
        }
        return ran;
    }

    void worker_loop(int thread) {
        single_threaded_openmp();
        tl_in_task = this;
        uint32_t seen = 0;
        for (;;) {
            uint32_t e;
            int spins = 0;
            while ((e = epoch.load(std::memory_order_acquire)) == seen) {
                if (stop.load(std::memory_order_relaxed)) return;
                if (++spins < kSpinBeforeSleep) {
                    LOWBIT_PAUSE();
                    continue;
                }
                sleepers.fetch_add(1, std::memory_order_seq_cst);
                if (epoch.load(std::memory_order_seq_cst) == seen &&
                    !stop.load(std::memory_order_seq_cst)) {
                    epoch.wait(seen, std::memory_order_seq_cst);
                }
                sleepers.fetch_sub(1, std::memory_order_seq_cst);
                spins = 0;
            }
            if (stop.load(std::memory_order_relaxed)) return;
            seen = e;
            const int64_t ran = work(e, thread);
            if (ran > 0) done.fetch_add(ran, std::memory_order_acq_rel);
        }
    }
};

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads > 0 ? n_threads : hardware_threads()) {
    // The owner drives the pool (it is thread 0 of every loop) and plans oneDNN primitives.
    single_threaded_openmp();
    if (n_threads_ == 1) return;
    s_ = std::make_unique<State>();
    s_->n_threads = n_threads_;
    for (int i = 1; i < n_threads_; ++i) {
        s_->workers.emplace_back([st = s_.get(), i] { st->worker_loop(i); });
    }
}

ThreadPool::~ThreadPool() {
    if (!s_) return;
    s_->stop.store(true, std::memory_order_seq_cst);
    s_->epoch.fetch_add(1, std::memory_order_seq_cst);
    s_->epoch.notify_all();
    for (auto& t : s_->workers) t.join();
}

void ThreadPool::run(int64_t n, FunctionRef<void(int64_t, int)> fn) const {
    if (n <= 0) return;
    // The thread driving a loop runs oneDNN primitives in its tasks, as the workers do.
    single_threaded_openmp();
    if (!s_ || n == 1 || tl_in_task == s_.get()) {
        for (int64_t i = 0; i < n; ++i) fn(i, 0);
        return;
    }
    State& s = *s_;
    const uint32_t e = ++s.next_epoch == 0 ? ++s.next_epoch : s.next_epoch;
    // Close the previous job's claims before anything of this job is written: a worker still
    // in work() for the previous epoch may read the new n, and its claim CAS on the previous
    // epoch's counter would then succeed on a task that does not exist and run this job's fn
    // on it (counted in this job's done, so run() could return while a task still runs). After
    // this store that CAS fails, and the closed index claims nothing in this epoch either.
    s.claim.store((static_cast<uint64_t>(e) << 32) | kIndexMask, std::memory_order_seq_cst);
    s.fn.store(&fn, std::memory_order_release);
    s.n.store(n, std::memory_order_release);
    s.done.store(0, std::memory_order_relaxed);
    s.claim.store(static_cast<uint64_t>(e) << 32, std::memory_order_release);
    s.epoch.store(e, std::memory_order_seq_cst);
    if (s.sleepers.load(std::memory_order_seq_cst) > 0) s.epoch.notify_all();

    const void* outer = tl_in_task;
    tl_in_task = &s;
    const int64_t mine = s.work(e, 0);
    tl_in_task = outer;
    int spins = 0;
    while (s.done.load(std::memory_order_acquire) < n - mine) {
        if (++spins < kSpinBeforeYield) {
            LOWBIT_PAUSE();
        } else {
            std::this_thread::yield();
        }
    }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              FunctionRef<void(int64_t, int64_t)> fn) const {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    // Four ranges per thread: enough slack to rebalance when one thread starts late.
    const int64_t chunks = std::min<int64_t>(4 * n_threads_, (n + grain - 1) / grain);
    if (chunks <= 1 || n_threads_ == 1) {
        fn(0, n);
        return;
    }
    run(chunks, [&](int64_t c, int) {
        const int64_t begin = n * c / chunks;
        const int64_t end = n * (c + 1) / chunks;
        if (begin < end) fn(begin, end);
    });
}

}  // namespace lowbit
