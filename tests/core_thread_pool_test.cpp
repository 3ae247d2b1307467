// The one thread pool (core/thread_pool.h): every item exactly once, thread ids in range,
// nested loops from inside a task run inline, and a 1-thread pool runs on the caller.
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

}  // namespace
}  // namespace lowbit
