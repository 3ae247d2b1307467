// Incremental sensitivity: IncrementalRunner's cached runs (run_nodes, downstream_nodes)
// against full runs, the observer's name filter, and the determinism of the sensitivity ranking.
// Subject: the bundled model (assets/, YOLOv10m topology at width 0.1875, 320x320 input).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "onnx/model_io.h"
#include "quant/quantize_model.h"
#include "quant/sensitivity/fake_quant.h"
#include "quant/sensitivity/sensitivity.h"
#include "runtime/executor.h"
#include "runtime/incremental_runner.h"

namespace lowbit {
namespace {

const std::string kModel =
    std::string(LOWBIT_SOURCE_DIR) + "/assets/shapes-yolov10m-w0p1875-raw.onnx";

Tensor random_image(const Shape& shape, uint32_t seed) {
    Tensor t(DType::Float32, shape);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (float& v : t.span<float>()) v = u(rng);
    return t;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    EXPECT_EQ(a.shape(), b.shape());
    double d = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
        d = std::max(d, std::fabs(double(a.data<float>()[i]) - b.data<float>()[i]));
    }
    return d;
}

Model load_prepared() {
    auto m = load_model(kModel);
    EXPECT_TRUE(m) << m.status().message();
    auto p = quant::prepare_float_model(*m);
    EXPECT_TRUE(p) << p.status().message();
    return *p;
}

std::unique_ptr<Executor> make(const Model& m) {
    ExecutorOptions eo;
    eo.n_threads = 2;
    auto ex = Executor::create(m, eo);
    EXPECT_TRUE(ex) << ex.status().message();
    return ex ? std::move(ex).value() : nullptr;
}

std::unique_ptr<IncrementalRunner> make_cached(const Model& m) {
    ExecutorOptions eo;
    eo.n_threads = 2;
    auto ex = IncrementalRunner::create(m, eo);
    EXPECT_TRUE(ex) << ex.status().message();
    return ex ? std::move(ex).value() : nullptr;
}

// Input 0 of the node scaled and coarsened: a perturbation like fake quantization.
NodeOverride perturb() {
    return [](size_t, const Node& n, std::vector<Tensor>& ins) -> Status {
        Tensor t = ins[0].clone();
        for (float& v : t.span<float>()) v = std::round(v * 8.0f) / 8.0f;
        ins[0] = t;
        return Status::ok();
    };
}

// Re-running only the cone of a perturbed node gives the outputs of a full run with the same
// override (bit-exact: the same kernels run on the same values), and leaves the cached full run
// untouched.
TEST(SensitivityExecutor, ConeRunEqualsFullRun) {
    const Model m = load_prepared();
    auto cached = make_cached(m);
    auto full = make(m);
    ASSERT_TRUE(cached && full);
    const Tensor x = random_image(cached->inputs()[0].shape, 7);
    auto base = cached->run({x});
    ASSERT_TRUE(base);
    // Convs early in the backbone, in the neck and in the head, and an Add.
    std::vector<size_t> picks;
    std::vector<size_t> convs;
    for (size_t idx : cached->plan_order()) {
        if (m.graph.nodes[idx].op_type == "Conv") convs.push_back(idx);
    }
    ASSERT_GT(convs.size(), 20u);
    picks = {convs[1], convs[convs.size() / 2], convs.back()};
    for (size_t idx : cached->plan_order()) {
        if (m.graph.nodes[idx].op_type == "Add") {
            picks.push_back(idx);
            break;
        }
    }
    for (size_t n : picks) {
        SCOPED_TRACE(m.graph.nodes[n].name);
        full->set_node_override(perturb(), {n});
        auto want = full->run({x});
        ASSERT_TRUE(want) << want.status().message();
        const std::vector<size_t> cone = cached->downstream_nodes({n});
        ASSERT_FALSE(cone.empty());
        EXPECT_EQ(cone.front(), n);
        EXPECT_LT(cone.size(), cached->plan_order().size() + 1);
        // The perturbation is elementwise, so it may see the tensors as stored (NHWC).
        cached->set_node_override(perturb(), {n}, TensorView::Stored);
        auto got = cached->run_nodes(cone);
        ASSERT_TRUE(got) << got.status().message();
        ASSERT_EQ(got->size(), want->size());
        double changed = 0;
        for (size_t k = 0; k < want->size(); ++k) {
            EXPECT_LE(max_abs_diff((*got)[k], (*want)[k]), 1e-6);
            changed = std::max(changed, max_abs_diff((*got)[k], (*base)[k]));
        }
        EXPECT_GT(changed, 0.0) << "the perturbation had no visible effect";
        // The cached float32 run is still there: re-running nothing returns it.
        cached->set_node_override(nullptr);
        auto same = cached->run_nodes({});
        ASSERT_TRUE(same);
        for (size_t k = 0; k < base->size(); ++k) {
            EXPECT_EQ(max_abs_diff((*same)[k], (*base)[k]), 0.0);
        }
    }
    // A single node's own output, fetched from a one-node run, against the full run.
    const size_t n = convs[2];
    const std::string y = m.graph.nodes[n].outputs[0];
    full->set_node_override(perturb(), {n});
    std::vector<Tensor> want_y;
    full->set_observer([&](size_t, const Node&, const std::string&,
                           const Tensor& t) { want_y.push_back(t.clone()); },
                       {y});
    ASSERT_TRUE(full->run({x}));
    ASSERT_EQ(want_y.size(), 1u);
    cached->set_node_override(perturb(), {n});
    auto one = cached->run_nodes({n}, {y});
    ASSERT_TRUE(one);
    EXPECT_LE(max_abs_diff(one->back(), want_y[0]), 1e-6);
    auto fp32_y = cached->tensor(y);
    ASSERT_TRUE(fp32_y);
    EXPECT_GT(max_abs_diff(*fp32_y, want_y[0]), 0.0);
}

TEST(SensitivityExecutor, RunNodesNeedsKeepTensorsAndARun) {
    const Model m = load_prepared();
    // (A plain Executor has no run_nodes() at all.)
    auto cached = make_cached(m);
    ASSERT_TRUE(cached);
    EXPECT_FALSE(cached->run_nodes({}));  // no full run yet
    EXPECT_FALSE(cached->tensor("nope"));
}

// The observer's name filter reports exactly the tensors asked for, with the same values as the
// unfiltered observer.
TEST(SensitivityExecutor, ObserverFilterGivesSameValues) {
    const Model m = load_prepared();
    auto all = make(m);
    auto some = make(m);
    ASSERT_TRUE(all && some);
    std::map<std::string, Tensor> seen_all, seen_some;
    all->set_observer([&](size_t, const Node&, const std::string& name, const Tensor& t) {
        seen_all[name] = t.clone();
    });
    std::vector<std::string> wanted;
    for (size_t k = 0; k < m.graph.nodes.size(); k += 7) {
        if (!m.graph.nodes[k].outputs.empty()) wanted.push_back(m.graph.nodes[k].outputs[0]);
    }
    some->set_observer([&](size_t, const Node&, const std::string& name,
                           const Tensor& t) { seen_some[name] = t.clone(); },
                       wanted);
    const Tensor x = random_image(all->inputs()[0].shape, 3);
    ASSERT_TRUE(all->run({x}));
    ASSERT_TRUE(some->run({x}));
    size_t found = 0;
    for (const auto& name : wanted) found += seen_all.count(name);
    EXPECT_EQ(seen_some.size(), found);
    EXPECT_GT(found, 10u);
    for (const auto& [name, t] : seen_some) {
        ASSERT_TRUE(seen_all.count(name)) << name;
        EXPECT_EQ(max_abs_diff(t, seen_all[name]), 0.0) << name;
    }
}

class RandomSource : public calib::CalibSource {
public:
    RandomSource(Shape s, int64_t n) : shape_(std::move(s)), n_(n) {}
    int64_t size() const override { return n_; }
    const Shape& sample_shape() const override { return shape_; }
    Status read(int64_t i, float* dst) override {
        const Tensor t = random_image(shape_, static_cast<uint32_t>(100 + i));
        std::memcpy(dst, t.raw(), t.nbytes());
        return Status::ok();
    }
    std::string describe() const override { return "random"; }

private:
    Shape shape_;
    int64_t n_;
};

// Two sweeps over the same data rank the same nodes the same way with the same scores, and
// every quantizable node is ranked once.
TEST(Sensitivity, RankingIsDeterministicAndComplete) {
    auto m = load_model(kModel);
    ASSERT_TRUE(m);
    quant::SensitivityOptions so;
    so.quant.placement.mode = quant::QuantMode::Int8;
    so.quant.method = calib::CalibMethod::Max;
    so.images = 1;
    so.n_threads = 2;
    so.progress = false;
    so.quant.run.progress = false;
    so.quant.run.n_threads = 2;
    std::vector<quant::SensitivityReport> reps;
    for (int r = 0; r < 2; ++r) {
        RandomSource src({3, 320, 320}, 2);
        auto rep = quant::run_sensitivity(*m, src, so);
        ASSERT_TRUE(rep) << rep.status().message();
        reps.push_back(std::move(rep).value());
    }
    auto prepared = quant::prepare_float_model(*m);
    ASSERT_TRUE(prepared);
    quant::QuantizeOptions qo;
    qo.placement = so.quant.placement;
    auto pl = quant::plan_placement(*prepared, qo);
    ASSERT_TRUE(pl);
    ASSERT_EQ(reps[0].nodes.size(), pl->selected.size());
    for (size_t k = 0; k < reps[0].nodes.size(); ++k) {
        EXPECT_EQ(reps[0].nodes[k].name, reps[1].nodes[k].name);
        EXPECT_EQ(reps[0].nodes[k].score, reps[1].nodes[k].score);
        EXPECT_EQ(reps[0].nodes[k].rank, static_cast<int>(k) + 1);
        if (k > 0) {
            EXPECT_GE(reps[0].nodes[k - 1].score, reps[0].nodes[k].score);
        }
    }
    EXPECT_GT(reps[0].nodes.front().score, 0.0);
    EXPECT_LT(reps[0].cost.ratio_vs_naive, 1.0);
}

// local-sqnr's fast paths (Convs on int8 / bf16 kernels, MaxPool, Resize and Add computed from
// the float32 pass) give every node the SQNR of the reference runs through the executor, up to
// float rounding, in both modes; and on a CPU with the exact kernels the Convs do use them.
TEST(Sensitivity, LocalSqnrProbesMatchReferenceRuns) {
    auto m = load_model(kModel);
    ASSERT_TRUE(m);
    for (quant::QuantMode mode : {quant::QuantMode::Int8, quant::QuantMode::Fp8}) {
        SCOPED_TRACE(mode == quant::QuantMode::Int8 ? "int8" : "fp8");
        quant::SensitivityOptions so;
        so.quant.placement.mode = mode;
        so.quant.method = calib::CalibMethod::Max;
        so.metric = quant::SensitivityMetric::LocalSqnr;
        so.images = 2;
        so.n_threads = 2;
        so.progress = false;
        so.quant.run.progress = false;
        so.quant.run.n_threads = 2;
        std::map<std::string, double> db[2];
        int64_t kernel_nodes = 0;
        for (int probes = 0; probes < 2; ++probes) {
            so.local_probes = probes == 1;
            RandomSource src({3, 320, 320}, 3);
            auto rep = quant::run_sensitivity(*m, src, so);
            ASSERT_TRUE(rep) << rep.status().message();
            for (const auto& n : rep->nodes)
                db[probes][n.name] = n.metrics.at("local_sqnr_db").get<double>();
            if (probes == 1) kernel_nodes = rep->cost.quant_kernel_nodes;
        }
        ASSERT_EQ(db[0].size(), db[1].size());
        for (const auto& [name, want] : db[0]) {
            ASSERT_TRUE(db[1].count(name)) << name;
            // Measured at most 2.6e-5 dB (float rounding of the sums).
            EXPECT_NEAR(db[1][name], want, 2e-4) << name;
        }
        const bool exact_kernels = mode == quant::QuantMode::Int8
                                       ? __builtin_cpu_supports("avx512vnni")
                                       : __builtin_cpu_supports("avx512bf16");
        if (exact_kernels) {
            EXPECT_GT(kernel_nodes, static_cast<int64_t>(db[0].size() / 2));
        }
    }
}

// The sweep's fake quantization is bit-identical to running QuantizeLinear -> DequantizeLinear
// in the executor with the same scale (INT8 and FP8 E4M3FN, including saturation, ties, and
// FP8 subnormals), and to the readable round_to_e4m3.
TEST(Sensitivity, FakeQuantizeMatchesQdqKernels) {
    std::vector<float> xs;
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const float s = 0.0371f;
    for (int i = 0; i < 20000; ++i) xs.push_back(u(rng) * (i % 3 == 0 ? 30.0f : 3.0f));
    for (int k = -300; k <= 300; ++k) xs.push_back((static_cast<float>(k) + 0.5f) * s);  // ties
    for (int k = 0; k < 2000; ++k) xs.push_back(std::ldexp(static_cast<float>(k), -20) * s);
    xs.push_back(1e30f);
    xs.push_back(-1e30f);
    xs.push_back(0.0f);
    xs.push_back(-0.0f);
    const int64_t n = static_cast<int64_t>(xs.size());
    for (quant::QuantMode mode : {quant::QuantMode::Int8, quant::QuantMode::Fp8}) {
        SCOPED_TRACE(mode == quant::QuantMode::Int8 ? "int8" : "fp8");
        Model m;
        m.opsets = {{"", 19}};
        ValueInfo vi;
        vi.name = "x";
        vi.dtype = DType::Float32;
        vi.has_shape = true;
        vi.dims.push_back({n, ""});
        m.graph.inputs.push_back(vi);
        ValueInfo vo = vi;
        vo.name = "y";
        m.graph.outputs.push_back(vo);
        m.graph.set_initializer("s", Tensor::from_vector<float>(DType::Float32, {}, {s}));
        Tensor zp(quant::quant_dtype(mode), {});
        std::memset(zp.raw(), 0, zp.nbytes());
        m.graph.set_initializer("zp", zp);
        Node q, dq;
        q.op_type = "QuantizeLinear";
        q.name = "q";
        q.inputs = {"x", "s", "zp"};
        q.outputs = {"xq"};
        dq.op_type = "DequantizeLinear";
        dq.name = "dq";
        dq.inputs = {"xq", "s", "zp"};
        dq.outputs = {"y"};
        m.graph.nodes = {q, dq};
        ExecutorOptions eo;
        eo.reference_only = true;
        eo.n_threads = 1;
        auto ex = Executor::create(m, eo);
        ASSERT_TRUE(ex) << ex.status().message();
        const Tensor x = Tensor::from_vector<float>(DType::Float32, {n}, xs);
        auto y = (*ex)->run({x});
        ASSERT_TRUE(y) << y.status().message();
        const Tensor f = quant::fake_quantize(x, s, mode);
        for (int64_t i = 0; i < n; ++i) {
            const float want = (*y)[0].data<float>()[i];
            ASSERT_EQ(std::bit_cast<uint32_t>(f.data<float>()[i]), std::bit_cast<uint32_t>(want))
                << "x = " << xs[static_cast<size_t>(i)] << ": " << f.data<float>()[i] << " vs "
                << want;
            if (mode == quant::QuantMode::Fp8) {
                EXPECT_EQ(f.data<float>()[i],
                          quant::round_to_e4m3(xs[static_cast<size_t>(i)] / s) * s);
            }
        }
    }
}

TEST(Sensitivity, NodeScope) {
    EXPECT_EQ(quant::node_scope("/model.23/cv3.0/cv3.0.0/conv/Conv"), "/model.23/cv3.0/cv3.0.0");
    EXPECT_EQ(quant::node_scope("/model.23/cv2.0/cv2.0.2/Conv"), "/model.23/cv2.0/cv2.0.2");
    EXPECT_EQ(quant::node_scope("/model.2/m.0/Add"), "/model.2/m.0");
    EXPECT_EQ(quant::node_scope("Conv_3"), "Conv_3");
}

}  // namespace
}  // namespace lowbit
