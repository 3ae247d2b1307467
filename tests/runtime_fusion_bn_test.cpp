// Fusion matching of the float conv patterns of issue 16: a BatchNormalization folded into the
// conv, Relu and hard-swish (HardSigmoid -> Mul, or HardSwish) epilogues (runtime/fusion.h).
// The kernels themselves are checked against the reference in tests/ops/lowbit_ops.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/fusion.h"

namespace lowbit {
namespace {

Node node(const std::string& op, std::vector<std::string> ins, std::vector<std::string> outs) {
    Node n;
    n.name = op + "_" + outs[0];
    n.op_type = op;
    n.inputs = std::move(ins);
    n.outputs = std::move(outs);
    return n;
}

Tensor vec(std::vector<float> v) {
    Tensor t(DType::Float32, {static_cast<int64_t>(v.size())});
    for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
    return t;
}

// Conv -> BatchNormalization -> HardSigmoid -> Mul(bn, hs) -> Add(., r); [1, 2, 4, 4].
struct BnGraph {
    Graph g;
    std::unordered_map<std::string, TensorDesc> descs;
    std::unordered_map<std::string, Tensor> consts;
    std::vector<size_t> order;
    std::vector<TensorDesc> outputs;

    BnGraph() {
        g.nodes = {node("Conv", {"x", "w"}, {"c"}),
                   node("BatchNormalization", {"c", "s", "b", "m", "v"}, {"n"}),
                   node("HardSigmoid", {"n"}, {"h"}), node("Mul", {"n", "h"}, {"y"}),
                   node("Add", {"y", "r"}, {"z"})};
        g.nodes[1].attrs["epsilon"] = Attr{};
        g.nodes[1].attrs["epsilon"].kind = Attr::Kind::Float;
        g.nodes[1].attrs["epsilon"].f = 0.5f;
        g.nodes[2].attrs["alpha"] = Attr{};
        g.nodes[2].attrs["alpha"].kind = Attr::Kind::Float;
        g.nodes[2].attrs["alpha"].f = 1.0f / 6.0f;
        for (const char* t : {"x", "r", "c", "n", "h", "y", "z"}) {
            descs[t] = {t, DType::Float32, {1, 2, 4, 4}};
        }
        descs["w"] = {"w", DType::Float32, {2, 2, 1, 1}};
        consts["s"] = vec({2.0f, 3.0f});
        consts["b"] = vec({0.25f, -1.0f});
        consts["m"] = vec({1.0f, 0.0f});
        consts["v"] = vec({3.5f, 0.5f});
        for (const char* t : {"s", "b", "m", "v"}) descs[t] = {t, DType::Float32, {2}};
        order = {0, 1, 2, 3, 4};
        outputs = {descs["z"]};
    }
    FusionMatch match() const {
        FusionGraph fg(g, descs, order, outputs, &consts);
        return match_fusion(fg, 0, [](const std::string& t) { return t == "x" || t == "r"; });
    }
};

TEST(FusionBn, ConvBnHardSwishResidual) {
    const BnGraph bg;
    const FusionMatch m = bg.match();
    ASSERT_NE(m.conv.bn, nullptr);
    // scale / sqrt(var + eps), B - mean * that.
    EXPECT_FLOAT_EQ(m.conv.bn->scale[0], 2.0f / std::sqrt(4.0f));
    EXPECT_FLOAT_EQ(m.conv.bn->scale[1], 3.0f);
    EXPECT_FLOAT_EQ(m.conv.bn->shift[0], 0.25f - 1.0f);
    EXPECT_FLOAT_EQ(m.conv.bn->shift[1], -1.0f);
    EXPECT_TRUE(m.conv.hardswish);
    EXPECT_FLOAT_EQ(m.conv.hs_alpha, 1.0f / 6.0f);
    EXPECT_FLOAT_EQ(m.conv.hs_beta, 0.5f);  // HardSigmoid's default
    EXPECT_FALSE(m.conv.silu);
    EXPECT_TRUE(m.conv.residual);
    EXPECT_EQ(m.fused, (std::vector<size_t>{1, 2, 3, 4}));
    EXPECT_EQ(m.inputs, (std::vector<std::string>{"x", "w", "", "r"}));
    EXPECT_EQ(m.outputs, (std::vector<std::string>{"z"}));
}

TEST(FusionBn, NoFoldWhenConvOutputHasAnotherReader) {
    BnGraph bg;
    bg.g.nodes.push_back(node("Relu", {"c"}, {"q"}));
    bg.descs["q"] = bg.descs["c"];
    bg.order.push_back(5);
    const FusionMatch m = bg.match();
    EXPECT_EQ(m.conv.bn, nullptr);
    EXPECT_FALSE(m.any());
}

TEST(FusionBn, NoFoldOfRuntimeParametersOrTrainingMode) {
    BnGraph bg;
    bg.consts.erase("v");  // a run-time variance
    EXPECT_EQ(bg.match().conv.bn, nullptr);
    BnGraph tg;
    tg.g.nodes[1].attrs["training_mode"] = Attr{};
    tg.g.nodes[1].attrs["training_mode"].kind = Attr::Kind::Int;
    tg.g.nodes[1].attrs["training_mode"].i = 1;
    EXPECT_EQ(tg.match().conv.bn, nullptr);
}

TEST(FusionBn, ReluAfterResidualAdd) {
    // Conv -> BN -> Add(., r) -> Relu (ResNet).
    Graph g;
    g.nodes = {node("Conv", {"x", "w"}, {"c"}),
               node("BatchNormalization", {"c", "s", "b", "m", "v"}, {"n"}),
               node("Add", {"n", "r"}, {"a"}), node("Relu", {"a"}, {"z"})};
    std::unordered_map<std::string, TensorDesc> descs;
    for (const char* t : {"x", "r", "c", "n", "a", "z"}) {
        descs[t] = {t, DType::Float32, {1, 2, 4, 4}};
    }
    std::unordered_map<std::string, Tensor> consts;
    for (const char* t : {"s", "b", "m", "v"}) consts[t] = vec({1.0f, 2.0f});
    FusionGraph fg(g, descs, {0, 1, 2, 3}, {descs["z"]}, &consts);
    const FusionMatch m = match_fusion(fg, 0, [](const std::string&) { return true; });
    EXPECT_NE(m.conv.bn, nullptr);
    EXPECT_FALSE(m.conv.relu);
    EXPECT_TRUE(m.conv.residual);
    EXPECT_TRUE(m.conv.relu_after);
    EXPECT_EQ(m.fused, (std::vector<size_t>{1, 2, 3}));
    EXPECT_EQ(m.outputs, (std::vector<std::string>{"z"}));
}

TEST(FusionBn, ReluAndHardSwishOp) {
    for (const char* act : {"Relu", "HardSwish"}) {
        Graph g;
        g.nodes = {node("Conv", {"x", "w"}, {"c"}), node(act, {"c"}, {"a"})};
        std::unordered_map<std::string, TensorDesc> descs;
        for (const char* t : {"x", "c", "a"}) descs[t] = {t, DType::Float32, {1, 2, 4, 4}};
        FusionGraph fg(g, descs, {0, 1}, {descs["a"]});
        const FusionMatch m = match_fusion(fg, 0, [](const std::string&) { return true; });
        EXPECT_EQ(m.conv.relu, std::string(act) == "Relu") << act;
        EXPECT_EQ(m.conv.hardswish, std::string(act) == "HardSwish") << act;
        EXPECT_EQ(m.fused, (std::vector<size_t>{1})) << act;
        EXPECT_EQ(m.outputs, (std::vector<std::string>{"a"})) << act;
    }
}

}  // namespace
}  // namespace lowbit
