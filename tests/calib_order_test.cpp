// Calibration through the executor: shuffling the samples or changing the batch size leaves the
// statistics, and so the entropy (and every other) threshold, bit-identical.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "calib/calibrate.h"
#include "calib/calibrators.h"

namespace lowbit::calib {
namespace {

class MemorySource : public CalibSource {
public:
    MemorySource(std::vector<std::vector<float>> samples, Shape shape)
        : samples_(std::move(samples)), shape_(std::move(shape)) {}
    int64_t size() const override { return static_cast<int64_t>(samples_.size()); }
    const Shape& sample_shape() const override { return shape_; }
    Status read(int64_t i, float* dst) override {
        std::copy(samples_[static_cast<size_t>(i)].begin(), samples_[static_cast<size_t>(i)].end(),
                  dst);
        return Status::ok();
    }
    std::string describe() const override { return "memory"; }

private:
    std::vector<std::vector<float>> samples_;
    Shape shape_;
};

// x [N, 3, 8, 8] (N free) -> Conv 3->8 -> Sigmoid -> Mul -> Conv 8->8 -> y
Model model() {
    Model m;
    m.ir_version = 8;
    m.opsets = {{"", 13}};
    Graph& g = m.graph;
    g.inputs = {{"x", DType::Float32, true, {{-1, "N"}, {3, ""}, {8, ""}, {8, ""}}, "", ""}};
    g.outputs = {{"y", DType::Float32, false, {}, "", ""}};
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 0.5f);
    Tensor w1(DType::Float32, {8, 3, 3, 3}), w2(DType::Float32, {8, 8, 1, 1});
    for (auto& v : w1.span<float>()) v = nd(rng);
    for (auto& v : w2.span<float>()) v = nd(rng);
    g.set_initializer("w1", w1);
    g.set_initializer("w2", w2);
    Node c1{"c1", "Conv", "", {"x", "w1"}, {"a"}, {}, ""};
    c1.attrs["pads"] = Attr::make_ints({1, 1, 1, 1});
    c1.attrs["kernel_shape"] = Attr::make_ints({3, 3});
    Node sg{"sg", "Sigmoid", "", {"a"}, {"s"}, {}, ""};
    Node mu{"mu", "Mul", "", {"a", "s"}, {"b"}, {}, ""};
    Node c2{"c2", "Conv", "", {"b", "w2"}, {"y"}, {}, ""};
    c2.attrs["kernel_shape"] = Attr::make_ints({1, 1});
    g.nodes = {c1, sg, mu, c2};
    return m;
}

std::vector<std::vector<float>> samples(int n) {
    std::mt19937 rng(17);
    std::vector<std::vector<float>> out(static_cast<size_t>(n), std::vector<float>(3 * 8 * 8));
    for (int i = 0; i < n; ++i) {
        // Each sample has its own scale so the histogram range grows with the order.
        std::uniform_real_distribution<float> u(-0.5f * (i + 1), 0.5f * (i + 1));
        for (auto& v : out[static_cast<size_t>(i)]) v = u(rng);
    }
    return out;
}

CalibResult calibrate_with(std::vector<std::vector<float>> s, int64_t batch) {
    MemorySource src(std::move(s), {3, 8, 8});
    CalibRequest req;
    req.groups = {{"x"}, {"b"}, {"a", "s"}};  // the last pools two tensors, like a Concat group
    CalibRunOptions o;
    o.batch = batch;
    o.progress = false;
    auto r = calibrate(model(), src, req, o);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r.is_ok() ? std::move(r).value() : CalibResult{};
}

TEST(CalibOrder, ShuffleAndBatchSizeLeaveStatisticsUnchanged) {
    auto base = samples(10);
    CalibResult ref = calibrate_with(base, 1);
    ASSERT_EQ(ref.samples, 10);
    ASSERT_TRUE(ref.unobserved.empty());

    auto shuffled = base;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(1));
    std::reverse(base.begin(), base.end());
    for (const auto& [data, batch] :
         std::vector<std::pair<std::vector<std::vector<float>>, int64_t>>{
             {shuffled, 1}, {shuffled, 3}, {base, 4}, {base, 10}}) {
        CalibResult r = calibrate_with(data, batch);
        ASSERT_EQ(r.samples, 10);
        ASSERT_EQ(r.stats.size(), ref.stats.size());
        for (size_t gi = 0; gi < ref.stats.size(); ++gi) {
            EXPECT_EQ(r.stats[gi].count(), ref.stats[gi].count());
            EXPECT_EQ(r.stats[gi].amax(), ref.stats[gi].amax());
            EXPECT_TRUE(r.stats[gi].histogram() == ref.stats[gi].histogram()) << "group " << gi;
            for (CalibMethod m :
                 {CalibMethod::Entropy, CalibMethod::Percentile, CalibMethod::Mse}) {
                CalibConfig c{m, 99.9, QuantMode::Int8};
                EXPECT_EQ(compute_amax(r.stats[gi], c), compute_amax(ref.stats[gi], c));
            }
        }
    }
}

}  // namespace
}  // namespace lowbit::calib
