// The Q/DQ rewrite (names, axes, dq_only, shared weights), the opset upgrade and the float16
// conversion, checked by running the rewritten graphs on lowbit's reference executor.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "core/half.h"
#include "quant/fp16.h"
#include "quant/numerics.h"
#include "quant/opset.h"
#include "quant/placement.h"
#include "quant/qdq_rewrite.h"
#include "runtime/executor.h"

namespace lowbit::quant {
namespace {

// x [1, 4, 6, 6] -> Conv(W [8, 4, 3, 3], pad 1) -> y
Model conv_model(std::vector<float>* wvals = nullptr) {
    Model m;
    m.ir_version = 8;
    m.opsets = {{"", 13}};
    Graph& g = m.graph;
    g.inputs = {{"x", DType::Float32, true, {{1, ""}, {4, ""}, {6, ""}, {6, ""}}, "", ""}};
    g.outputs = {{"y", DType::Float32, false, {}, "", ""}};
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 0.3f);
    Tensor w(DType::Float32, {8, 4, 3, 3});
    for (auto& v : w.span<float>()) v = nd(rng);
    if (wvals) wvals->assign(w.data<float>(), w.data<float>() + w.numel());
    g.set_initializer("W", w);
    Node conv{"conv", "Conv", "", {"x", "W"}, {"y"}, {}, ""};
    conv.attrs["kernel_shape"] = Attr::make_ints({3, 3});
    conv.attrs["pads"] = Attr::make_ints({1, 1, 1, 1});
    g.nodes = {conv};
    return m;
}

Tensor input(uint32_t seed) {
    Tensor t(DType::Float32, {1, 4, 6, 6});
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    for (auto& v : t.span<float>()) v = u(rng);
    return t;
}

Tensor run(const Model& m, const Tensor& x) {
    ExecutorOptions eo;
    eo.reference_only = true;
    auto ex = Executor::create(m, eo);
    EXPECT_TRUE(ex.is_ok()) << ex.status().message();
    auto out = (*ex)->run({x});
    EXPECT_TRUE(out.is_ok()) << out.status().message();
    return out->at(0);
}

const Node* find_node(const Graph& g, const std::string& name) {
    for (const auto& n : g.nodes) {
        if (n.name == name) return &n;
    }
    return nullptr;
}

// Per output channel: max |w| over the channel's 36 weights / qmax, computed here (not with
// per_channel_scales) so that a per-tensor scale would not pass.
std::vector<float> channel_scales(const std::vector<float>& w, double qmax) {
    std::vector<float> s(8);
    for (size_t c = 0; c < 8; ++c) {
        double a = 0;
        for (size_t i = 0; i < 36; ++i) a = std::max(a, std::fabs(double{w[c * 36 + i]}));
        s[c] = static_cast<float>(a / qmax);
    }
    return s;
}

Placement conv_placement(const Model& m) {
    auto p = place_qdq(m.graph, nullptr, {});
    EXPECT_TRUE(p.is_ok());
    return *p;
}

TEST(QuantRewrite, NamesAxesAndFakeQuantNumerics) {
    std::vector<float> w;
    Model m = conv_model(&w);
    Placement p = conv_placement(m);
    ASSERT_EQ(p.activations.size(), 1u);
    ASSERT_EQ(p.weights.size(), 1u);
    const double amax = 1.7;
    std::vector<ActivationParams> params{{symmetric_scale(amax, QuantMode::Int8), 0, DType::Int8}};
    Model q = m;
    auto st = insert_qdq(q, p, params, {});
    ASSERT_TRUE(st.is_ok()) << st.status().message();
    EXPECT_EQ(st->activation_pairs, 1);
    EXPECT_EQ(st->weight_pairs, 1);
    const Graph& g = q.graph;
    ASSERT_NE(find_node(g, "x_QuantizeLinear"), nullptr);
    ASSERT_NE(find_node(g, "x_DequantizeLinear"), nullptr);
    const Node* wq = find_node(g, "W_QuantizeLinear");
    const Node* wdq = find_node(g, "W_DequantizeLinear");
    ASSERT_NE(wq, nullptr);
    ASSERT_NE(wdq, nullptr);
    EXPECT_EQ(wq->attr_int("axis", -1), 0);
    EXPECT_EQ(wdq->attr_int("axis", -1), 0);
    EXPECT_FALSE(find_node(g, "x_QuantizeLinear")->has_attr("axis"));
    EXPECT_EQ(find_node(g, "x_QuantizeLinear")->outputs[0], "x_QuantizeLinear_Output");
    EXPECT_EQ(find_node(g, "conv")->inputs[0], "x_DequantizeLinear_Output");
    EXPECT_EQ(find_node(g, "conv")->inputs[1], "W_DequantizeLinear_Output");
    ASSERT_NE(g.initializer("W_scale"), nullptr);
    EXPECT_EQ(g.initializer("W_scale")->shape(), Shape{8});
    EXPECT_EQ(g.initializer("x_scale")->shape(), Shape{});
    EXPECT_EQ(g.initializer("x_zero_point")->dtype(), DType::Int8);

    // Reference: the float model on fake-quantized x and W.
    const Tensor x = input(11);
    const float sx = stored_scale(params[0].scale, DType::Float32);
    Tensor xq = x.clone();
    for (auto& v : xq.span<float>()) v = static_cast<float>(quantize_int8(v, sx)) * sx;
    Model ref = m;
    Tensor wfq(DType::Float32, {8, 4, 3, 3});
    auto sw = per_channel_scales(w.data(), {8, 4, 3, 3}, 0, QuantMode::Int8);
    for (int64_t i = 0; i < wfq.numel(); ++i) {
        const float s = static_cast<float>(sw[static_cast<size_t>(i / 36)]);
        wfq.data<float>()[i] = static_cast<float>(quantize_int8(w[static_cast<size_t>(i)], s)) * s;
    }
    ref.graph.set_initializer("W", wfq);
    const std::vector<float> want_sw = channel_scales(w, 127.0);
    for (size_t c = 0; c < 8; ++c) {
        EXPECT_FLOAT_EQ(static_cast<float>(sw[c]), want_sw[c]) << "channel " << c;
        EXPECT_FLOAT_EQ(g.initializer("W_scale")->data<float>()[c], want_sw[c]) << c;
    }
    EXPECT_FLOAT_EQ(g.initializer("x_scale")->data<float>()[0], static_cast<float>(amax / 127));
    const Tensor a = run(q, x), b = run(ref, xq);
    ASSERT_EQ(a.numel(), b.numel());
    for (int64_t i = 0; i < a.numel(); ++i) {
        EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]) << i;
    }

    // dq_only: the weight is stored as int8 under its own name, same results.
    Model d = m;
    RewriteOptions ro;
    ro.dq_only = true;
    auto sd = insert_qdq(d, p, params, ro);
    ASSERT_TRUE(sd.is_ok());
    EXPECT_EQ(sd->weight_dq, 1);
    EXPECT_EQ(d.graph.initializer("W")->dtype(), DType::Int8);
    EXPECT_EQ(find_node(d.graph, "W_QuantizeLinear"), nullptr);
    const Tensor c = run(d, x);
    for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.data<float>()[i], c.data<float>()[i]);
}

TEST(QuantRewrite, Fp8WeightsAndActivations) {
    std::vector<float> w;
    Model m = conv_model(&w);
    Placement p = conv_placement(m);
    std::vector<ActivationParams> params{
        {symmetric_scale(2.0, QuantMode::Fp8), 0, DType::Float8E4M3FN}};
    RewriteOptions ro;
    ro.mode = QuantMode::Fp8;
    Model q = m;
    ASSERT_TRUE(insert_qdq(q, p, params, ro).is_ok());
    ASSERT_TRUE(upgrade_opset(q, 19, nullptr).is_ok());
    EXPECT_EQ(q.graph.initializer("x_zero_point")->dtype(), DType::Float8E4M3FN);
    EXPECT_EQ(q.graph.initializer("W_zero_point")->dtype(), DType::Float8E4M3FN);
    // Scales: amax / 448, per output channel for W.
    const std::vector<float> want_sw = channel_scales(w, 448.0);
    for (size_t c = 0; c < 8; ++c) {
        EXPECT_FLOAT_EQ(q.graph.initializer("W_scale")->data<float>()[c], want_sw[c]) << c;
    }
    const float sx = q.graph.initializer("x_scale")->data<float>()[0];
    EXPECT_FLOAT_EQ(sx, static_cast<float>(2.0 / 448.0));
    // Reference: the float conv on x and W rounded to E4M3 steps of their scales.
    const Tensor x = input(5);
    Tensor xq = x.clone();
    for (auto& v : xq.span<float>()) {
        v = fp8_to_float(quantize_fp8(v, sx), DType::Float8E4M3FN) * sx;
    }
    Tensor wfq(DType::Float32, {8, 4, 3, 3});
    for (int64_t i = 0; i < wfq.numel(); ++i) {
        const float s = want_sw[static_cast<size_t>(i / 36)];
        wfq.data<float>()[i] =
            fp8_to_float(quantize_fp8(w[static_cast<size_t>(i)], s), DType::Float8E4M3FN) * s;
    }
    Model ref = m;
    ref.graph.set_initializer("W", wfq);
    const Tensor a = run(q, x), b = run(ref, xq);
    ASSERT_EQ(a.numel(), b.numel());
    for (int64_t i = 0; i < a.numel(); ++i) {
        EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i],
                    1e-6 * (1.0 + std::fabs(b.data<float>()[i]))) << i;
    }
}

TEST(QuantRewrite, SharedWeightsAreDuplicated) {
    // x [1, 16, 6, 6] -> Conv(Ws) -> Conv(Ws) -> u: one initializer read by two quantized Convs.
    Model m;
    m.ir_version = 8;
    m.opsets = {{"", 13}};
    Graph& g = m.graph;
    g.inputs = {{"x", DType::Float32, true, {{1, ""}, {16, ""}, {6, ""}, {6, ""}}, "", ""}};
    g.outputs = {{"u", DType::Float32, false, {}, "", ""}};
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 0.3f);
    Tensor ws(DType::Float32, {16, 16, 1, 1});
    for (auto& v : ws.span<float>()) v = nd(rng);
    g.set_initializer("Ws", ws);
    Node c1{"c1", "Conv", "", {"x", "Ws"}, {"z"}, {}, ""};
    c1.attrs["kernel_shape"] = Attr::make_ints({1, 1});
    Node c2 = c1;
    c2.name = "c2";
    c2.inputs[0] = "z";
    c2.outputs = {"u"};
    g.nodes = {c1, c2};
    const Model m0 = m;
    Placement p = conv_placement(m);
    ASSERT_EQ(p.weights.size(), 2u);
    std::vector<ActivationParams> params(p.activations.size(),
                                         {symmetric_scale(3.0, QuantMode::Int8), 0, DType::Int8});
    const Tensor x = [] {
        Tensor t(DType::Float32, {1, 16, 6, 6});
        for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = std::sin(0.37f * i);
        return t;
    }();
    ASSERT_TRUE(insert_qdq(m, p, params, {}).is_ok());
    EXPECT_EQ(m.graph.initializer("Ws"), nullptr);  // replaced by its two copies
    EXPECT_NE(m.graph.initializer("Ws_1"), nullptr);
    EXPECT_NE(m.graph.initializer("Ws_2"), nullptr);
    EXPECT_NE(find_node(m.graph, "Ws_1_QuantizeLinear"), nullptr);
    EXPECT_NE(find_node(m.graph, "Ws_2_DequantizeLinear"), nullptr);
    const Tensor u = run(m, x);
    // Reference: both convs on the same fake-quantized weights (per-channel), each input
    // fake-quantized with scale 3/127.
    Model ref = m0;
    Tensor wfq = ws.clone();
    for (int64_t c = 0; c < 16; ++c) {
        float a = 0;
        for (int64_t i = 0; i < 16; ++i) a = std::max(a, std::fabs(ws.data<float>()[c * 16 + i]));
        const float s = static_cast<float>(double{a} / 127.0);
        for (int64_t i = 0; i < 16; ++i) {
            float& v = wfq.data<float>()[c * 16 + i];
            v = static_cast<float>(quantize_int8(v, s)) * s;
        }
    }
    ref.graph.set_initializer("Ws", wfq);
    const float sx = stored_scale(symmetric_scale(3.0, QuantMode::Int8), DType::Float32);
    auto fq = [&](Tensor t) {
        for (auto& v : t.span<float>()) v = static_cast<float>(quantize_int8(v, sx)) * sx;
        return t;
    };
    // c1 alone on the fake-quantized input, then c2 on its fake-quantized output.
    Model first = ref;
    first.graph.nodes = {ref.graph.nodes[0]};
    first.graph.outputs = {{"z", DType::Float32, false, {}, "", ""}};
    const Tensor z = run(first, fq(x));
    Model second = ref;
    second.graph.nodes = {ref.graph.nodes[1]};
    second.graph.inputs = {{"z", DType::Float32, true, {{1, ""}, {16, ""}, {6, ""}, {6, ""}}, "",
                            ""}};
    const Tensor want = run(second, fq(z));
    ASSERT_EQ(u.numel(), want.numel());
    for (int64_t i = 0; i < u.numel(); ++i) {
        EXPECT_NEAR(u.data<float>()[i], want.data<float>()[i],
                    1e-5 * (1.0 + std::fabs(want.data<float>()[i]))) << i;
    }
}

TEST(QuantRewrite, OpsetUpgradeRewritesChangedOps) {
    Model m;
    m.ir_version = 8;
    m.opsets = {{"", 13}};
    Graph& g = m.graph;
    g.inputs = {{"x", DType::Float32, true, {{2, ""}, {6, ""}}, "", ""}};
    g.outputs = {{"r", DType::Float32, false, {}, "", ""},
                 {"s1", DType::Float32, false, {}, "", ""}};
    Node rm{"rmax", "ReduceMax", "", {"x"}, {"r"}, {}, ""};
    rm.attrs["axes"] = Attr::make_ints({1});
    rm.attrs["keepdims"] = Attr::make_int(0);
    Node sp{"split", "Split", "", {"x"}, {"s0", "s1"}, {}, ""};
    sp.attrs["axis"] = Attr::make_int(1);
    g.nodes = {rm, sp};
    Tensor x(DType::Float32, {2, 6});
    for (int64_t i = 0; i < 12; ++i) x.data<float>()[i] = static_cast<float>((i * 7) % 11) - 5.0f;
    ExecutorOptions eo;
    eo.reference_only = true;
    auto before = (*Executor::create(m, eo))->run({x});
    ASSERT_TRUE(before.is_ok());
    std::vector<std::string> notes;
    ASSERT_TRUE(upgrade_opset(m, 19, &notes).is_ok());
    EXPECT_EQ(m.default_opset(), 19);
    EXPECT_FALSE(m.graph.nodes[0].has_attr("axes"));
    ASSERT_EQ(m.graph.nodes[0].inputs.size(), 2u);
    EXPECT_EQ(m.graph.nodes[1].attr_int("num_outputs", 0), 2);
    auto ex = Executor::create(m, eo);
    ASSERT_TRUE(ex.is_ok()) << ex.status().message();
    auto after = (*ex)->run({x});
    ASSERT_TRUE(after.is_ok()) << after.status().message();
    for (size_t o = 0; o < 2; ++o) {
        ASSERT_EQ(before->at(o).numel(), after->at(o).numel());
        for (int64_t i = 0; i < before->at(o).numel(); ++i) {
            EXPECT_EQ(before->at(o).data<float>()[i], after->at(o).data<float>()[i]);
        }
    }
    Model old;
    old.opsets = {{"", 11}};
    EXPECT_FALSE(upgrade_opset(old, 13, nullptr).is_ok());
}

TEST(QuantRewrite, Fp16ConversionKeepsIoTypesWithBoundaryCasts) {
    Model m = conv_model();
    Placement p = conv_placement(m);
    std::vector<ActivationParams> params{{symmetric_scale(2.0, QuantMode::Int8), 0, DType::Int8}};
    RewriteOptions ro;
    ro.scale_dtype = DType::Float16;
    auto rs = insert_qdq(m, p, params, ro);
    ASSERT_TRUE(rs.is_ok());
    EXPECT_EQ(m.graph.initializer("x_scale")->dtype(), DType::Float16);
    const TypeLookup types = [&](const std::string& n) -> std::optional<TensorType> {
        auto it = rs->new_tensors.find(n);
        if (it != rs->new_tensors.end()) return TensorType{it->second, {}};
        if (n == "y") return TensorType{DType::Float32, {}};
        return std::nullopt;
    };
    auto f = convert_to_fp16(m, types, {});
    ASSERT_TRUE(f.is_ok()) << f.status().message();
    const Graph& g = m.graph;
    EXPECT_EQ(g.initializer("W")->dtype(), DType::Float16);
    const Node* in_cast = find_node(g, "x_cast_to_fp16");
    ASSERT_NE(in_cast, nullptr);
    EXPECT_EQ(in_cast->attr_int("to", 0), static_cast<int64_t>(DType::Float16));
    EXPECT_EQ(find_node(g, "x_QuantizeLinear")->inputs[0], "x_cast_to_fp16");
    const Node* out_cast = find_node(g, "y_cast_to_fp32");
    ASSERT_NE(out_cast, nullptr);
    EXPECT_EQ(out_cast->outputs[0], "y");
    EXPECT_EQ(find_node(g, "conv")->outputs[0], "y_fp16");
    EXPECT_EQ(g.outputs[0].dtype, DType::Float32);
    EXPECT_EQ(f->casts, 2);
}

}  // namespace
}  // namespace lowbit::quant
