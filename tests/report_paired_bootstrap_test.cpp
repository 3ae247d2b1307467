// compare's paired bootstrap (report/paired_bootstrap.h): a difference is called only when the
// 95% interval of the per-resample differences excludes 0.
#include <gtest/gtest.h>

#include "report/paired_bootstrap.h"

namespace lowbit::report {
namespace {

Variant variant(const std::string& name, double map, std::vector<double> boot) {
    Variant v;
    v.name = name;
    v.map50_95 = map;
    v.bootstrap = std::move(boot);
    v.bootstrap_images = {1, 2, 3};
    v.bootstrap_ci = std::make_pair(0.0, 1.0);
    return v;
}

TEST(PairedBootstrap, CallsOnlyIntervalsExcludingZero) {
    std::vector<double> base(100), lower(100), noisy(100);
    for (int r = 0; r < 100; ++r) {
        base[r] = 0.70 + 0.001 * (r % 10);  // resample spread larger than the shift below
        lower[r] = base[r] - 0.004;         // paired: always 0.004 lower
        noisy[r] = base[r] + (r % 2 ? 0.003 : -0.003);
    }
    Comparison c;
    c.variants = {variant("base", 0.705, base), variant("q", 0.701, lower),
                  variant("n", 0.705, noisy)};
    c.variants[0].baseline = true;
    c.baseline = 0;
    auto p = paired_bootstrap(c.variants[1], c.variants[0]);
    ASSERT_TRUE(p.has_value());
    EXPECT_NEAR(p->lo, -0.004, 1e-12);
    EXPECT_NEAR(p->hi, -0.004, 1e-12);
    EXPECT_TRUE(p->different());
    EXPECT_EQ(accuracy_verdict(c, 1).rfind("lower by 0.0040", 0), 0u) << accuracy_verdict(c, 1);
    auto n = paired_bootstrap(c.variants[2], c.variants[0]);
    ASSERT_TRUE(n.has_value());
    EXPECT_FALSE(n->different());
    EXPECT_EQ(accuracy_verdict(c, 2).rfind("no measurable difference", 0), 0u);
    EXPECT_EQ(accuracy_verdict(c, 0), "-");

    // Unpaired: other images, or no bootstrap at all.
    c.variants[2].bootstrap_images = {1, 2};
    EXPECT_FALSE(paired_bootstrap(c.variants[2], c.variants[0]).has_value());
    EXPECT_NE(accuracy_verdict(c, 2).find("other images"), std::string::npos);
    c.variants[1].bootstrap.clear();
    EXPECT_NE(accuracy_verdict(c, 1).find("has none"), std::string::npos);
    EXPECT_NE(accuracy_markdown(c).find("| q | 0.7010 |"), std::string::npos);
}

}  // namespace
}  // namespace lowbit::report
