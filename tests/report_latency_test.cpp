// src/report/compare: latency verdicts from medians and spreads, and the recommendation rule that
// uses them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "report/compare.h"
#include "report/html_report.h"

namespace lowbit::report {
namespace {

Variant timed(const std::string& name, double map, double median, std::optional<double> spread) {
    Variant v;
    v.name = name;
    v.file = "results/" + name + ".json";
    v.map50_95 = map;
    v.map50 = map + 0.2;
    v.mean_ms = median;
    v.median_ms = median;
    v.p90_ms = median + 1;
    v.spread_ms = spread;
    return v;
}

std::string recommended(const Comparison& c) {
    return c.recommendation.index ? c.variants[*c.recommendation.index].name : "";
}

TEST(CompareLatency, FasterOnlyBeyondTheSumOfSpreads) {
    Variant a = timed("a", 0.7, 14.0, 0.6), b = timed("b", 0.7, 15.0, 0.6);
    EXPECT_EQ(speed_against(a, b), Speed::Same);  // 1.0 <= 1.2
    EXPECT_EQ(speed_against(b, a), Speed::Same);
    b.median_ms = 15.3;
    EXPECT_EQ(speed_against(a, b), Speed::Faster);  // 1.3 > 1.2
    EXPECT_EQ(speed_against(b, a), Speed::Slower);
    // No recorded spread counts as 0.
    Variant old_a = timed("a", 0.7, 14.0, std::nullopt), old_b = timed("b", 0.7, 14.1, {});
    EXPECT_EQ(speed_against(old_a, old_b), Speed::Faster);
}

// Rounds timed side by side (compare --interleave-rounds): a machine that swings between a fast
// and a slow phase gives both variants wide spreads, but in every round the quantized one is
// 1 ms faster; the paired verdict sees it, the spreads alone cannot.
TEST(CompareLatency, PairedRoundsDecideWhereTheSpreadsCannot) {
    Variant b = timed("baseline", 0.70, 15.0, 5.0), q = timed("int8", 0.70, 14.0, 5.0);
    EXPECT_EQ(speed_against(q, b), Speed::Same);  // 1 ms against 10 ms of spreads
    for (int r = 0; r < 20; ++r) {
        const double phase = r % 2 ? 20.0 : 10.0;
        b.round_ms.push_back(phase + 0.01 * r);
        q.round_ms.push_back(phase + 0.01 * r - 1.0);
    }
    EXPECT_EQ(speed_against(q, b), Speed::Faster);
    EXPECT_EQ(speed_against(b, q), Speed::Slower);
    auto p = paired_difference(q, b);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->rounds, 20);
    EXPECT_NEAR(p->median_ms, -1.0, 1e-9);
    EXPECT_LT(p->high_ms, 0.0);
    // Differences of either sign: no measurable difference, whatever the medians say.
    for (size_t r = 0; r < q.round_ms.size(); ++r) q.round_ms[r] = b.round_ms[r] + (r % 2 ? 1 : -1);
    EXPECT_EQ(speed_against(q, b), Speed::Same);
    // Rounds that do not pair (another count): back to the spreads.
    q.round_ms.pop_back();
    EXPECT_FALSE(paired_difference(q, b));
    EXPECT_EQ(speed_against(q, b), Speed::Same);
    q.spread_ms = b.spread_ms = 0.1;
    EXPECT_EQ(speed_against(q, b), Speed::Faster);

    // The verdict and the recommendation say which evidence they used.
    q.round_ms = b.round_ms;
    for (double& t : q.round_ms) t -= 1.0;
    auto c = compare_variants({b, q}, CompareOptions{});
    ASSERT_TRUE(c);
    EXPECT_EQ(latency_verdict(*c, 1).rfind("faster by 1.000 ms (paired over 20 rounds", 0), 0u)
        << latency_verdict(*c, 1);
    EXPECT_NE(c->recommendation.reason.find("measurably faster than the baseline"),
              std::string::npos);
}

TEST(CompareLatency, RecommendsTheMostAccurateAmongTheNotMeasurablySlower) {
    // The case: int8_k5 is 1 ms faster than int8 on noisy timings, and less accurate.
    std::vector<Variant> vs = {
        timed("baseline", 0.7040, 15.1, 0.8), timed("int8", 0.7030, 14.4, 0.7),
        timed("int8_k5", 0.7011, 13.4, 0.7), timed("fp8_k0", 0.7035, 20.3, 0.9)};
    CompareOptions o;
    auto c = compare_variants(vs, o);
    ASSERT_TRUE(c);
    EXPECT_EQ(recommended(*c), "int8");
    EXPECT_NE(c->recommendation.rule.find("more than the sum of the two latency spreads"),
              std::string::npos);
    EXPECT_NE(c->recommendation.reason.find("not measurably faster than the baseline"),
              std::string::npos);
    // With tight timings the same 1 ms is real: int8_k5 wins.
    for (Variant& v : vs) v.spread_ms = 0.1;
    c = compare_variants(vs, o);
    ASSERT_TRUE(c);
    EXPECT_EQ(recommended(*c), "int8_k5");
    EXPECT_NE(c->recommendation.reason.find("; measurably faster than the baseline"),
              std::string::npos);
    // fp8_k0 is measurably slower than the baseline.
    const size_t fp8 = 1;
    ASSERT_EQ(c->variants[fp8].name, "fp8_k0");
    EXPECT_EQ(latency_verdict(*c, fp8).rfind("slower by 5.200 ms", 0), 0u);
    EXPECT_EQ(latency_verdict(*c, 0), "-");
}

TEST(CompareLatency, SummaryAndHtmlStateTheRuleAndDrawErrorBars) {
    std::vector<Variant> vs = {timed("baseline", 0.70, 15.0, 0.5), timed("int8", 0.699, 6.0, 0.4),
                               timed("old", 0.69, 7.0, std::nullopt)};
    vs[1].median_ci_ms = {5.8, 6.3};
    vs[1].median_ci_level = 0.979;
    vs[1].p10_ms = 5.5;
    vs[1].latency_samples = 10;
    CompareOptions o;
    auto c = compare_variants(vs, o);
    ASSERT_TRUE(c);
    std::string md = summary_markdown(*c, o);
    const size_t lat = md.find("## Latency"), rec = md.find("## Recommendation");
    ASSERT_NE(lat, std::string::npos);
    ASSERT_LT(lat, rec);
    const std::string section = md.substr(lat, rec - lat);
    EXPECT_NE(section.find(latency_rule()), std::string::npos);
    EXPECT_NE(section.find("| int8 | 6.000 | 0.400 | 5.800..6.300 (97.9%) | 5.500 | 7.000 | 10 | "
                           "faster by 9.000 ms (> 0.900 ms of spreads) |"),
              std::string::npos);
    EXPECT_NE(section.find("No spread recorded for old"), std::string::npos);
    EXPECT_NE(latency_lines(*c).find("int8      median 6.000 +/- 0.400 ms"), std::string::npos);

    std::string html = html_report(*c, o, {});
    // One error bar per variant with a spread (the baseline and int8), none for "old".
    size_t bars = 0;
    for (size_t p = html.find("class=\"errbar\""); p != std::string::npos;
         p = html.find("class=\"errbar\"", p + 1)) {
        ++bars;
    }
    EXPECT_EQ(bars, 2u);
    EXPECT_NE(html.find("<h2>Latency</h2>"), std::string::npos);
    EXPECT_NE(html.find("more than the sum of the two spreads"), std::string::npos);
}

}  // namespace
}  // namespace lowbit::report
