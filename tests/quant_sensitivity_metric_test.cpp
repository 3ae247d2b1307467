// Sensitivity's Metric implementations on known tensors (output-mse, cosine, local-sqnr), and
// the one detection decoder: a non-finite box fails `lowbit eval` (evaluate_detector) and the
// map metric alike (eval::DetectionDecoder's stated policy).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "eval/detection_decoder.h"
#include "eval/evaluator.h"
#include "quant/sensitivity/metric.h"
#include "quant/sensitivity/probes.h"
#include "quant/sensitivity/sensitivity.h"
#include "runtime/executor.h"

namespace lowbit {
namespace {

const std::string kVal = std::string(LOWBIT_SOURCE_DIR) + "/assets/val";

class ConstantSource : public calib::CalibSource {
public:
    explicit ConstantSource(Shape s, int64_t n = 2) : shape_(std::move(s)), n_(n) {}
    int64_t size() const override { return n_; }
    const Shape& sample_shape() const override { return shape_; }
    Status read(int64_t i, float* dst) override {
        std::mt19937 rng(static_cast<uint32_t>(7 + i));
        std::uniform_real_distribution<float> u(0.0f, 1.0f);
        for (int64_t e = 0; e < shape_numel(shape_); ++e) dst[e] = u(rng);
        return Status::ok();
    }
    std::string describe() const override { return "constant"; }

private:
    Shape shape_;
    int64_t n_;
};

Tensor vec(const std::vector<float>& v) {
    return Tensor::from_vector<float>(DType::Float32, {static_cast<int64_t>(v.size())}, v);
}

ValueInfo float_info(const std::string& name, const Shape& shape) {
    ValueInfo vi;
    vi.name = name;
    vi.dtype = DType::Float32;
    vi.has_shape = true;
    for (int64_t d : shape) vi.dims.push_back({d, ""});
    return vi;
}

// output-mse and cosine: the mean over images of the concatenated outputs' error against the
// float32 pass; each ranks by its own value and reports both.
TEST(SensitivityMetric, OutputMseAndCosineOfKnownTensors) {
    for (auto which : {quant::SensitivityMetric::OutputMse, quant::SensitivityMetric::Cosine}) {
        quant::SweepSetup s;
        s.nodes = {0, 1};
        ConstantSource src({2});
        quant::SensitivityOptions so;
        so.metric = which;
        so.images = 5;
        quant::SensitivityReport rep;
        auto m = quant::make_metric(which, {s, src, so, rep});
        ASSERT_TRUE(m);
        EXPECT_FALSE(m->local());
        auto n = m->prepare();
        ASSERT_TRUE(n) << n.status().message();
        EXPECT_EQ(*n, 2);  // min(images, source size)
        const quant::Sample smp;
        m->begin_image(0);
        // Outputs {1, 2} and {2}: the reference concatenated is (1, 2, 2).
        ASSERT_TRUE(m->reference(smp, {vec({1, 2}), vec({2})}));
        // Node 0: (1, 2, 3): squared error 1 over 3 values; cos = 11 / sqrt(9 * 14).
        ASSERT_TRUE(m->node(0, smp, {vec({1, 2}), vec({3})}));
        // Node 1: a scaled reference: no direction change, squared error (1 + 4 + 4) / 3.
        ASSERT_TRUE(m->node(1, smp, {vec({2, 4}), vec({4})}));
        m->end_image();
        ASSERT_NE(m->image_sums(), nullptr);
        EXPECT_EQ(m->image_sums()->rows.size(), 1u);
        nlohmann::ordered_json ref;
        ASSERT_TRUE(m->finish(1, ref));
        EXPECT_TRUE(ref.empty());
        quant::NodeSensitivity a, b;
        ASSERT_TRUE(m->score(0, a));
        ASSERT_TRUE(m->score(1, b));
        const double cos_a = 1.0 - 11.0 / std::sqrt(9.0 * 14.0);
        EXPECT_DOUBLE_EQ(a.metrics["output_mse"].get<double>(), 1.0 / 3.0);
        EXPECT_NEAR(a.metrics["cosine"].get<double>(), cos_a, 1e-15);
        EXPECT_DOUBLE_EQ(b.metrics["output_mse"].get<double>(), 3.0);
        EXPECT_NEAR(b.metrics["cosine"].get<double>(), 0.0, 1e-15);
        if (which == quant::SensitivityMetric::OutputMse) {
            EXPECT_DOUBLE_EQ(a.score, 1.0 / 3.0);
            EXPECT_DOUBLE_EQ(b.score, 3.0);
        } else {
            EXPECT_NEAR(a.score, cos_a, 1e-15);
            EXPECT_NEAR(b.score, 0.0, 1e-15);
        }
    }
}

// With --all-but-one the score is the error recovered: all-quantized error minus the node's.
TEST(SensitivityMetric, OutputMseAllButOneScoresRecovery) {
    quant::SweepSetup s;
    s.nodes = {0};
    ConstantSource src({2});
    quant::SensitivityOptions so;
    so.all_but_one = true;
    quant::SensitivityReport rep;
    auto m = quant::make_metric(quant::SensitivityMetric::OutputMse, {s, src, so, rep});
    ASSERT_TRUE(m->prepare());
    const quant::Sample smp;
    for (int image = 0; image < 2; ++image) {
        m->begin_image(image);
        ASSERT_TRUE(m->reference(smp, {vec({0, 0})}));
        ASSERT_TRUE(m->all_quantized(smp, {vec({2, 2})}));  // mse 4
        ASSERT_TRUE(m->node(0, smp, {vec({1, 1})}));        // mse 1
        m->end_image();
    }
    nlohmann::ordered_json ref;
    ASSERT_TRUE(m->finish(2, ref));
    EXPECT_DOUBLE_EQ(ref["all_quantized_output_mse"].get<double>(), 4.0);
    quant::NodeSensitivity ns;
    ASSERT_TRUE(m->score(0, ns));
    EXPECT_DOUBLE_EQ(ns.score, 3.0);
    EXPECT_DOUBLE_EQ(ns.metrics["recovery_fraction"].get<double>(), 0.75);
}

// local-sqnr: 10 log10(sum y^2 / sum (yq - y)^2) of the node's first output against the float32
// pass, capped at 300 dB when nothing changes; it has no cones, so --all-but-one and --naive are
// refused.
TEST(SensitivityMetric, LocalSqnrOfKnownTensors) {
    Model model;
    model.opsets = {{"", 19}};
    model.graph.inputs.push_back(float_info("x", {1, 4}));
    model.graph.outputs.push_back(float_info("y", {1, 4}));
    Node relu;
    relu.op_type = "Relu";
    relu.name = "relu";
    relu.inputs = {"x"};
    relu.outputs = {"y"};
    model.graph.nodes = {relu};
    quant::SweepSetup s;
    ExecutorOptions eo;
    eo.n_threads = 1;
    auto ex = IncrementalRunner::create(model, eo);
    ASSERT_TRUE(ex) << ex.status().message();
    s.ex = std::move(ex).value();
    s.nodes = {0, 0};
    s.first_output = {"y", "y"};
    ConstantSource src({1, 4});
    quant::SensitivityOptions so;
    so.metric = quant::SensitivityMetric::LocalSqnr;
    so.local_probes = false;
    quant::SensitivityReport rep;
    auto m = quant::make_metric(so.metric, {s, src, so, rep});
    EXPECT_TRUE(m->local());
    so.all_but_one = true;
    EXPECT_FALSE(m->check(so));
    so.all_but_one = false;
    so.naive = true;
    EXPECT_FALSE(m->check(so));
    so.naive = false;
    EXPECT_TRUE(m->check(so));
    ASSERT_TRUE(m->prepare());
    const Tensor x = Tensor::from_vector<float>(DType::Float32, {1, 4}, {3, 4, -1, 0});
    ASSERT_TRUE(s.ex->run({x}));
    const quant::Sample smp;
    m->begin_image(0);
    // y = (3, 4, 0, 0): signal 25; node 0's output off by (0.5, 0, 0, 0): noise 0.25 -> 20 dB.
    ASSERT_TRUE(
        m->node(0, smp, {Tensor::from_vector<float>(DType::Float32, {1, 4}, {3.5f, 4, 0, 0})}));
    ASSERT_TRUE(
        m->node(1, smp, {Tensor::from_vector<float>(DType::Float32, {1, 4}, {3, 4, 0, 0})}));
    m->end_image();
    nlohmann::ordered_json ref;
    ASSERT_TRUE(m->finish(1, ref));
    quant::NodeSensitivity a, b;
    ASSERT_TRUE(m->score(0, a));
    ASSERT_TRUE(m->score(1, b));
    EXPECT_NEAR(a.metrics["local_sqnr_db"].get<double>(), 20.0, 1e-12);
    EXPECT_NEAR(a.score, -20.0, 1e-12);
    EXPECT_EQ(b.metrics["local_sqnr_db"].get<double>(), 300.0);
}

TEST(SensitivityMetric, SumSquaresOverLanesAndTail) {
    std::vector<float> a(21), b(21);
    double sig = 0, noise = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        a[i] = 0.25f * static_cast<float>(i) - 2.0f;
        b[i] = a[i] + (i % 3 == 0 ? 0.5f : -0.125f);
        sig += double(a[i]) * a[i];
        noise += (double(b[i]) - a[i]) * (double(b[i]) - a[i]);
    }
    const quant::SumSquares ss = quant::sum_squares(a.data(), b.data(), 21);
    EXPECT_DOUBLE_EQ(ss.signal, sig);
    EXPECT_DOUBLE_EQ(ss.noise, noise);
}

// A detector whose output is end-to-end [1, 4096, 6] and, whatever the image, holds one
// detection with a NaN box (x1, y1, NaN, y2, score 0.9, class 0): a zero-weight 1x1 Conv with 24
// outputs (a node that sensitivity quantizes) reshaped and offset by a constant.
Model nan_box_detector() {
    Model m;
    m.opsets = {{"", 19}};
    m.graph.inputs.push_back(float_info("images", {1, 3, 32, 32}));
    m.graph.outputs.push_back(float_info("output0", {1, 4096, 6}));
    m.graph.set_initializer("w", Tensor::from_vector<float>(DType::Float32, {24, 3, 1, 1},
                                                            std::vector<float>(72, 0.0f)));
    m.graph.set_initializer("shape", Tensor::from_vector<int64_t>(DType::Int64, {3}, {1, 4096, 6}));
    std::vector<float> offset(4096 * 6, 0.0f);
    const float first[6] = {4, 5, std::numeric_limits<float>::quiet_NaN(), 20, 0.9f, 0};
    std::memcpy(offset.data(), first, sizeof(first));
    m.graph.set_initializer("offset",
                            Tensor::from_vector<float>(DType::Float32, {1, 4096, 6}, offset));
    Node conv, reshape, add;
    conv.op_type = "Conv";
    conv.name = "/model.0/conv/Conv";
    conv.inputs = {"images", "w"};
    conv.outputs = {"c"};
    reshape.op_type = "Reshape";
    reshape.name = "/model.1/Reshape";
    reshape.inputs = {"c", "shape"};
    reshape.outputs = {"r"};
    add.op_type = "Add";
    add.name = "/model.1/Add";
    add.inputs = {"r", "offset"};
    add.outputs = {"output0"};
    m.graph.nodes = {conv, reshape, add};
    return m;
}

EvalOptions val_options() {
    EvalOptions ev;
    ev.ann_path = kVal + "/instances_val.json";
    ev.images_dir = kVal + "/images";
    ev.max_images = 2;
    ev.imgsz = 32;
    ev.n_threads = 1;
    ev.progress = false;
    return ev;
}

// The decoder itself: the NaN box is an error naming the output, not a dropped detection.
TEST(DetectionDecoder, NonFiniteBoxIsAnError) {
    std::vector<float> out(10 * 6, 0.0f);
    const float first[6] = {4, 5, std::numeric_limits<float>::quiet_NaN(), 20, 0.9f, 0};
    std::memcpy(out.data(), first, sizeof(first));
    const Tensor t = Tensor::from_vector<float>(DType::Float32, {1, 10, 6}, out);
    const std::vector<CocoCategory> cats = {{1, "a"}, {2, "b"}};
    auto dec = eval::DetectionDecoder::create("output0", t, 32, {}, cats, {});
    ASSERT_TRUE(dec) << dec.status().message();
    EXPECT_EQ(dec->layout().kind, HeadKind::EndToEnd);
    EXPECT_FALSE(dec->sigmoid_applied());
    const Letterbox lb = letterbox_geometry(32, 32, 32);
    std::vector<CocoAnnotation> results;
    auto r = dec->append(t, lb, 1, results);
    ASSERT_FALSE(r);
    EXPECT_NE(r.status().message().find("'output0' produced a non-finite box"), std::string::npos)
        << r.status().message();
    // The same row with a finite box is one result, in COCO [x, y, w, h].
    out[2] = 12;
    auto n =
        dec->append(Tensor::from_vector<float>(DType::Float32, {1, 10, 6}, out), lb, 1, results);
    ASSERT_TRUE(n) << n.status().message();
    EXPECT_EQ(*n, 0);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].id, 1);
    EXPECT_FLOAT_EQ(results[0].bbox[2], 8.0f);
    EXPECT_FLOAT_EQ(results[0].bbox[3], 15.0f);
    EXPECT_FLOAT_EQ(results[0].score, 0.9f);
}

// `lowbit eval` and sensitivity's map metric decode through the same DetectionDecoder, so a
// non-finite box fails both with the same message (before, the map metric dropped it as a miss).
TEST(DetectionDecoder, EvalAndMapMetricAgreeOnNonFiniteBoxes) {
    const Model model = nan_box_detector();
    const EvalOptions ev = val_options();
    std::string eval_error;
    {
        ExecutorOptions eo;
        eo.n_threads = 1;
        auto ex = Executor::create(model, eo);
        ASSERT_TRUE(ex) << ex.status().message();
        auto r = evaluate_detector(**ex, model, ev);
        ASSERT_FALSE(r);
        eval_error = r.status().message();
    }
    quant::SensitivityOptions so;
    so.metric = quant::SensitivityMetric::Map;
    so.quant.placement.mode = quant::QuantMode::Int8;
    so.quant.method = calib::CalibMethod::Max;
    so.quant.run.progress = false;
    so.quant.run.n_threads = 1;
    so.n_threads = 1;
    so.progress = false;
    so.eval = ev;
    ConstantSource src({3, 32, 32});
    auto rep = quant::run_sensitivity(model, src, so);
    ASSERT_FALSE(rep);
    const std::string map_error = rep.status().message();
    const std::string what = "model output 'output0' produced a non-finite box or score";
    EXPECT_NE(eval_error.find(what), std::string::npos) << eval_error;
    EXPECT_NE(map_error.find(what), std::string::npos) << map_error;
    // Both name the first validation image.
    EXPECT_NE(eval_error.find("000000000001.jpg"), std::string::npos) << eval_error;
    EXPECT_NE(map_error.find("000000000001.jpg"), std::string::npos) << map_error;
}

}  // namespace
}  // namespace lowbit
