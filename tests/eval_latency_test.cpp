// src/eval/latency: percentiles, the median's binomial confidence interval, the spread.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "eval/latency.h"

namespace lowbit {
namespace {

TEST(LatencyStats, BinomialHalfCdf) {
    // P(B <= k) for B ~ Binomial(10, 1/2): sums of C(10, i) / 1024.
    EXPECT_NEAR(binomial_half_cdf(10, 0), 1.0 / 1024, 1e-15);
    EXPECT_NEAR(binomial_half_cdf(10, 1), 11.0 / 1024, 1e-15);
    EXPECT_NEAR(binomial_half_cdf(10, 2), 56.0 / 1024, 1e-14);
    EXPECT_NEAR(binomial_half_cdf(10, 5), 638.0 / 1024, 1e-13);
    EXPECT_EQ(binomial_half_cdf(10, -1), 0.0);
    EXPECT_EQ(binomial_half_cdf(10, 10), 1.0);
    // Symmetry holds far past where C(n, i) fits a double.
    EXPECT_NEAR(binomial_half_cdf(2001, 1000), 0.5, 1e-9);
}

TEST(LatencyStats, MedianIntervalRanks) {
    // The textbook 95% ranks: n=6 -> (1, 6) at 96.9%; n=10 -> (2, 9); n=20 -> (6, 15);
    // n=100 -> (40, 61).
    EXPECT_EQ(median_ci_rank(0, 0.95), 0);
    EXPECT_EQ(median_ci_rank(1, 0.95), 1);
    EXPECT_EQ(median_ci_rank(5, 0.95), 1);  // min..max reaches only 93.75%
    EXPECT_EQ(median_ci_rank(6, 0.95), 1);
    EXPECT_EQ(median_ci_rank(8, 0.95), 1);
    EXPECT_EQ(median_ci_rank(9, 0.95), 2);
    EXPECT_EQ(median_ci_rank(10, 0.95), 2);
    EXPECT_EQ(median_ci_rank(20, 0.95), 6);
    EXPECT_EQ(median_ci_rank(100, 0.95), 40);
    // Every rank chosen covers the level, and one rank further in would not.
    for (int64_t n = 6; n <= 300; ++n) {
        const int64_t l = median_ci_rank(n, 0.95);
        EXPECT_GE(1 - 2 * binomial_half_cdf(n, l - 1), 0.95) << n;
        if (l + 1 <= (n + 1) / 2) EXPECT_LT(1 - 2 * binomial_half_cdf(n, l), 0.95) << n;
    }
}

TEST(LatencyStats, NumpyPercentilesAndSpread) {
    // Seconds, first one skipped (a warm-up outlier).
    std::vector<double> sec = {9.0};
    for (int i = 1; i <= 10; ++i) sec.push_back(i * 0.001);
    LatencyStats s = latency_stats(sec, 1);
    ASSERT_EQ(s.samples, 10);
    EXPECT_EQ(s.times_ms.size(), 10u);
    EXPECT_NEAR(s.times_ms.front(), 1.0, 1e-12);  // measurement order kept
    EXPECT_NEAR(s.mean_ms, 5.5, 1e-12);
    EXPECT_NEAR(s.median_ms, 5.5, 1e-12);
    EXPECT_NEAR(s.p10_ms, 1.9, 1e-12);  // np.percentile(1..10, 10)
    EXPECT_NEAR(s.p90_ms, 9.1, 1e-12);
    EXPECT_NEAR(s.median_ci_low_ms, 2.0, 1e-12);
    EXPECT_NEAR(s.median_ci_high_ms, 9.0, 1e-12);
    EXPECT_NEAR(s.median_ci_level, 1 - 2 * 11.0 / 1024, 1e-12);
    // (9.1 - 1.9) / 2 = 3.6 against the CI's sides 3.5 and 3.5.
    EXPECT_NEAR(s.spread_ms, 3.6, 1e-12);
}

TEST(LatencyStats, SpreadTakesTheWiderIntervalSide) {
    // 9 fast samples and one slow one: p10..p90 is narrow, but the median's interval reaches
    // the slow tail's neighbour ranks.
    std::vector<double> ms = {10, 10, 10, 10, 10, 10, 10, 10.2, 14, 30};
    LatencyStats s = latency_stats_ms(ms);
    EXPECT_NEAR(s.median_ms, 10, 1e-12);
    EXPECT_NEAR(s.median_ci_high_ms, 14, 1e-12);  // x_(9)
    EXPECT_NEAR(s.p90_ms, 15.6, 1e-12);
    EXPECT_NEAR(s.spread_ms, 4.0, 1e-12);  // 14 - 10 > (15.6 - 10) / 2 = 2.8
}

TEST(LatencyStats, FewOrNoSamples) {
    LatencyStats one = latency_stats_ms({4.0});
    EXPECT_EQ(one.samples, 1);
    EXPECT_EQ(one.median_ci_low_ms, 4.0);
    EXPECT_EQ(one.median_ci_high_ms, 4.0);
    EXPECT_EQ(one.median_ci_level, 0.0);
    EXPECT_EQ(one.spread_ms, 0.0);
    LatencyStats none = latency_stats({1.0}, 5);
    EXPECT_EQ(none.samples, 0);
    EXPECT_EQ(none.spread_ms, 0.0);
    EXPECT_TRUE(none.times_ms.empty());
}

TEST(LatencyStats, JsonKeepsTheSeedKeysFirst) {
    auto j = latency_json(latency_stats_ms({3, 1, 2}));
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.push_back(k);
    ASSERT_GE(keys.size(), 4u);
    EXPECT_EQ(std::vector<std::string>(keys.begin(), keys.begin() + 4),
              (std::vector<std::string>{"mean_ms", "median_ms", "p90_ms", "throughput_fps"}));
    EXPECT_EQ(j["times_ms"], (std::vector<double>{3, 1, 2}));
    EXPECT_EQ(j["median_ci_ms"].size(), 2u);
    EXPECT_EQ(j["samples"], 3);
}

}  // namespace
}  // namespace lowbit
