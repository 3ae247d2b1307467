// The one thread pool (core/thread_pool.h): every item exactly once, thread ids in range,
// nested loops from inside a task run inline, a 1-thread pool runs on the caller, and jobs
// that follow each other back to back never share a task.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace lowbit {
namespace {

TEST(ThreadPool, ParallelForCoversEveryItemOnce) {
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        EXPECT_EQ(pool.size(), threads);
        for (int64_t n : {0, 1, 7, 1000}) {
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            pool.parallel_for(n, 3, [&](int64_t b, int64_t e) {
                EXPECT_LE(b, e);
                for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
            });
            for (const auto& h : hits) EXPECT_EQ(h.load(), 1) << threads << " threads, n " << n;
        }
    }
}

TEST(ThreadPool, RunGivesThreadIdsInRange) {
    ThreadPool pool(3);
    std::vector<std::atomic<int>> hits(100);
    std::atomic<bool> bad{false};
    pool.run(100, [&](int64_t i, int thread) {
        if (thread < 0 || thread >= pool.size()) bad = true;
        hits[static_cast<size_t>(i)]++;
    });
    EXPECT_FALSE(bad.load());
    for (const auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, NestedLoopsRunInline) {
    ThreadPool pool(2);
    std::atomic<int64_t> sum{0};
    pool.run(8, [&](int64_t, int) {
        pool.parallel_for(10, 1, [&](int64_t b, int64_t e) { sum += e - b; });
    });
    EXPECT_EQ(sum.load(), 80);
}

TEST(ThreadPool, OneThreadRunsOnTheCaller) {
    ThreadPool pool(1);
    const auto me = std::this_thread::get_id();
    bool elsewhere = false;
    pool.parallel_for(1000, 1, [&](int64_t, int64_t) {
        elsewhere |= std::this_thread::get_id() != me;
    });
    EXPECT_FALSE(elsewhere);
}

// Back-to-back jobs whose sizes alternate (2 then 5 tasks): a worker still inside the previous
// job must never claim a task there once the caller starts writing the next job (it used to
// read the new job's size, claim the finished job's index 2, run the new job's function on it
// and count it as done, so run() could return while one of its tasks was still running). Every
// task of every job writes its own slot: each slot must end at exactly 1.
TEST(ThreadPool, BackToBackJobsRunEachTaskOnce) {
    constexpr int kJobs = 100000;
    constexpr int kSlots = 5;
    for (int threads : {2, 3}) {
        ThreadPool pool(threads);
        std::vector<std::atomic<int>> hits(static_cast<size_t>(kJobs) * kSlots);
        for (int j = 0; j < kJobs; ++j) {
            const int64_t n = j % 2 == 0 ? 2 : kSlots;
            pool.run(n, [&hits, j](int64_t i, int) {
                hits[static_cast<size_t>(j) * kSlots + static_cast<size_t>(i)]++;
            });
        }
        int64_t wrong = 0;
        for (int j = 0; j < kJobs; ++j) {
            const int64_t n = j % 2 == 0 ? 2 : kSlots;
            for (int64_t i = 0; i < kSlots; ++i) {
                const int want = i < n ? 1 : 0;
                wrong += hits[static_cast<size_t>(j) * kSlots + static_cast<size_t>(i)].load() !=
                         want;
            }
        }
        EXPECT_EQ(wrong, 0) << threads << " threads";
    }
}

}  // namespace
}  // namespace lowbit
