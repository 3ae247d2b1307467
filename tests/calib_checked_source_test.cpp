// Calibration data is checked as it is read (calib/checked_source.h): NaN/Inf is an error naming
// the source and sample, a constant sample a named warning; calibrate() refuses tensors that
// took non-finite values and warns about constant ones.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "calib/calibrate.h"
#include "calib/checked_source.h"

namespace lowbit::calib {
namespace {

// Samples [3] from a table; sample i is rows[i].
class TableSource : public CalibSource {
public:
    explicit TableSource(std::vector<std::vector<float>> rows) : rows_(std::move(rows)) {}
    int64_t size() const override { return static_cast<int64_t>(rows_.size()); }
    const Shape& sample_shape() const override { return shape_; }
    Status read(int64_t index, float* dst) override {
        std::copy(rows_[index].begin(), rows_[index].end(), dst);
        return Status::ok();
    }
    std::string describe() const override { return "table.npy"; }

private:
    std::vector<std::vector<float>> rows_;
    Shape shape_{3};
};

TEST(CheckedSource, NanOrInfIsAnErrorNamingSourceAndSample) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    for (float bad : {nan, inf, -inf}) {
        auto src = checked_source(
            std::make_unique<TableSource>(std::vector<std::vector<float>>{{1, 2, 3}, {1, bad, 3}}),
            nullptr);
        float buf[3];
        EXPECT_TRUE(src->read(0, buf));
        Status st = src->read(1, buf);
        ASSERT_FALSE(st);
        EXPECT_NE(st.message().find("table.npy"), std::string::npos) << st.message();
        EXPECT_NE(st.message().find("sample 1"), std::string::npos) << st.message();
        EXPECT_NE(st.message().find("element 1"), std::string::npos) << st.message();
    }
}

TEST(CheckedSource, ConstantSampleIsOneNamedWarningPerSample) {
    std::vector<std::string> warnings;
    auto src = checked_source(std::make_unique<TableSource>(
                                  std::vector<std::vector<float>>{{0, 0, 0}, {1, 2, 3}, {5, 5, 5}}),
                              [&](const std::string& w) { warnings.push_back(w); });
    float buf[3];
    for (int pass = 0; pass < 2; ++pass) {
        for (int64_t i = 0; i < 3; ++i) ASSERT_TRUE(src->read(i, buf));
    }
    ASSERT_EQ(warnings.size(), 2u);
    EXPECT_NE(warnings[0].find("table.npy: sample 0 is constant"), std::string::npos)
        << warnings[0];
    EXPECT_NE(warnings[1].find("sample 2"), std::string::npos) << warnings[1];
    EXPECT_EQ(src->size(), 3);
    EXPECT_EQ(src->describe(), "table.npy");
}

// y = Relu(x) on x: [1, 3].
Model relu_model() {
    Model m;
    m.opsets = {{"", 13}};
    m.graph.inputs = {ValueInfo{"x", DType::Float32, true, {{1, ""}, {3, ""}}, "", ""}};
    m.graph.outputs = {ValueInfo{"y", DType::Float32, true, {{1, ""}, {3, ""}}, "", ""}};
    m.graph.nodes = {Node{"relu0", "Relu", "", {"x"}, {"y"}, {}, ""}};
    return m;
}

TEST(Calibrate, NonFiniteTensorIsAnErrorNamingIt) {
    TableSource src({{1, 2, 3}, {std::numeric_limits<float>::infinity(), 0, 1}});
    CalibRequest req;
    req.groups = {{"x"}, {"y"}};
    CalibRunOptions opts;
    opts.progress = false;
    auto r = calibrate(relu_model(), src, req, opts);
    ASSERT_FALSE(r);
    EXPECT_NE(r.status().message().find("'x'"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("table.npy"), std::string::npos) << r.status().message();
}

TEST(Calibrate, ConstantTensorIsANamedWarning) {
    TableSource src({{-1, -2, -3}, {-4, -5, -6}});  // Relu gives all zeros
    CalibRequest req;
    req.groups = {{"x"}, {"y"}};
    CalibRunOptions opts;
    opts.progress = false;
    auto r = calibrate(relu_model(), src, req, opts);
    ASSERT_TRUE(r) << r.status().message();
    ASSERT_EQ(r->warnings.size(), 1u);
    EXPECT_NE(r->warnings[0].find("'y'"), std::string::npos) << r->warnings[0];
    EXPECT_NE(r->warnings[0].find("constant"), std::string::npos) << r->warnings[0];
}

}  // namespace
}  // namespace lowbit::calib
