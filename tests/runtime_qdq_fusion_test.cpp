// The Q/DQ conv matcher (runtime/fusion.h) on small hand-built graphs: what it fuses, what the
// int8 step reads and writes, and the reason it records when a Q/DQ conv is not an int8 pattern.
#include <gtest/gtest.h>

#include <cstring>

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

Tensor scalar(float v) {
    Tensor t(DType::Float32, {});
    t.data<float>()[0] = v;
    return t;
}

Tensor zeros(DType dt, Shape s) {
    Tensor t(dt, std::move(s));
    if (t.nbytes()) std::memset(t.raw(), 0, t.nbytes());
    return t;
}

// Q(x) -> DQ -> Conv(., DQ(wq) folded, b) -> Sigmoid -> Mul -> Q -> DQ (the graph output),
// activations [1, 8, 4, 4], weights [8, 8, 1, 1] per output channel.
struct QdqGraph {
    Graph g;
    std::unordered_map<std::string, TensorDesc> descs;
    std::unordered_map<std::string, Tensor> constants;
    std::vector<size_t> order;
    std::vector<TensorDesc> outputs;

    QdqGraph() {
        g.nodes = {node("QuantizeLinear", {"x", "sx", "zx"}, {"xq"}),      // 0
                   node("DequantizeLinear", {"xq", "sx", "zx"}, {"xd"}),   // 1
                   node("DequantizeLinear", {"wq", "ws", "wz"}, {"w"}),    // 2 (folded)
                   node("Conv", {"xd", "w", "b"}, {"c"}),                  // 3
                   node("Sigmoid", {"c"}, {"s"}),                          // 4
                   node("Mul", {"c", "s"}, {"y"}),                         // 5
                   node("QuantizeLinear", {"y", "sy", "zy"}, {"yq"}),      // 6
                   node("DequantizeLinear", {"yq", "sy", "zy"}, {"yd"})};  // 7
        Attr axis;
        axis.kind = Attr::Kind::Int;
        axis.i = 0;
        g.nodes[2].attrs["axis"] = axis;
        for (const char* t : {"x", "xd", "c", "s", "y", "yd"}) {
            descs[t] = {t, DType::Float32, {1, 8, 4, 4}};
        }
        descs["xq"] = {"xq", DType::Int8, {1, 8, 4, 4}};
        descs["yq"] = {"yq", DType::Int8, {1, 8, 4, 4}};
        descs["w"] = {"w", DType::Float32, {8, 8, 1, 1}};
        constants["sx"] = scalar(0.5f);
        constants["sy"] = scalar(0.25f);
        constants["zx"] = zeros(DType::Int8, {});
        constants["zy"] = zeros(DType::Int8, {});
        constants["wq"] = zeros(DType::Int8, {8, 8, 1, 1});
        Tensor ws(DType::Float32, {8});
        for (int i = 0; i < 8; ++i) ws.data<float>()[i] = 0.1f * static_cast<float>(i + 1);
        constants["ws"] = ws;
        constants["wz"] = zeros(DType::Int8, {8});
        constants["w"] = zeros(DType::Float32, {8, 8, 1, 1});
        constants["b"] = zeros(DType::Float32, {8});
        order = {0, 1, 3, 4, 5, 6, 7};
        outputs = {descs["yd"]};
    }
    FusionMatch match(bool lowp = true, bool allow_quant = true) const {
        FusionGraph fg(g, descs, order, outputs, &constants, lowp);
        return match_fusion(
            fg, 3, [](const std::string& t) { return t == "x" || t == "xq"; }, allow_quant);
    }
};

TEST(QdqFusion, ConvSiluQuantizeIsOneInt8Step) {
    const QdqGraph qg;
    const FusionMatch m = qg.match();
    ASSERT_TRUE(m.quant);
    EXPECT_EQ(m.conv.quant, m.quant.get());
    EXPECT_TRUE(m.conv.silu);
    EXPECT_FALSE(m.conv.residual);
    EXPECT_EQ(m.fused, (std::vector<size_t>{4, 5, 6}));
    // The step reads the int8 codes, not the dequantized tensor, and writes int8 codes.
    EXPECT_EQ(m.inputs, (std::vector<std::string>{"xq", "w", "b"}));
    EXPECT_EQ(m.outputs, (std::vector<std::string>{"yq"}));
    EXPECT_TRUE(m.quant->out_q);
    EXPECT_FLOAT_EQ(m.quant->x_scale, 0.5f);
    EXPECT_FLOAT_EQ(m.quant->y_scale, 0.25f);
    ASSERT_EQ(m.quant->w_scale.size(), 8u);
    EXPECT_FLOAT_EQ(m.quant->w_scale[7], 0.8f);
    EXPECT_EQ(m.quant->w_codes, &qg.constants.at("wq"));
    EXPECT_TRUE(m.qdq_fallback.empty());
}

TEST(QdqFusion, FloatOutputWhenTheResultHasOtherReaders) {
    QdqGraph qg;
    qg.g.nodes.push_back(node("Relu", {"y"}, {"r"}));
    qg.descs["r"] = qg.descs["y"];
    qg.order.push_back(8);
    const FusionMatch m = qg.match();
    ASSERT_TRUE(m.quant);
    EXPECT_FALSE(m.quant->out_q);
    EXPECT_EQ(m.outputs, (std::vector<std::string>{"y"}));
    EXPECT_EQ(m.fused, (std::vector<size_t>{4, 5}));
}

TEST(QdqFusion, ResidualReadAsInt8CodesWhenItIsDequantized) {
    QdqGraph qg;
    // y -> Add(y, rd) with rd = DQ(rq); the Add's output is quantized.
    qg.g.nodes[6].inputs[0] = "z";
    qg.g.nodes.push_back(node("DequantizeLinear", {"rq", "sr", "zr"}, {"rd"}));  // 8
    qg.g.nodes.push_back(node("Add", {"y", "rd"}, {"z"}));                       // 9
    qg.descs["rq"] = {"rq", DType::Int8, {1, 8, 4, 4}};
    qg.descs["rd"] = qg.descs["z"] = qg.descs["y"];
    qg.descs["rd"].name = "rd";
    qg.descs["z"].name = "z";
    qg.constants["sr"] = scalar(0.125f);
    qg.constants["zr"] = zeros(DType::Int8, {});
    qg.order = {0, 1, 8, 3, 4, 5, 9, 6, 7};
    FusionGraph fg(qg.g, qg.descs, qg.order, qg.outputs, &qg.constants, true);
    auto produced = [](const std::string& t) { return t == "xq" || t == "rq" || t == "rd"; };
    const FusionMatch m = match_fusion(fg, 3, produced);
    ASSERT_TRUE(m.quant);
    EXPECT_TRUE(m.conv.residual);
    EXPECT_TRUE(m.quant->residual_q);
    EXPECT_FLOAT_EQ(m.quant->r_scale, 0.125f);
    EXPECT_EQ(m.inputs, (std::vector<std::string>{"xq", "w", "b", "rq"}));
    EXPECT_EQ(m.fused, (std::vector<size_t>{4, 5, 9, 6}));
    EXPECT_TRUE(m.quant->out_q);
    // R's codes not produced yet: the residual is read as the float DQ output.
    auto no_rq = [](const std::string& t) { return t == "xq" || t == "rd"; };
    const FusionMatch f = match_fusion(fg, 3, no_rq);
    ASSERT_TRUE(f.quant);
    EXPECT_FALSE(f.quant->residual_q);
    EXPECT_EQ(f.inputs[3], "rd");
}

// The same graph with FP8 E4M3FN codes everywhere is one FP8 step (QuantConvSpec::codes).
TEST(QdqFusion, Fp8CodesAreOneFp8Step) {
    QdqGraph qg;
    qg.descs["xq"].dtype = DType::Float8E4M3FN;
    qg.descs["yq"].dtype = DType::Float8E4M3FN;
    for (const char* z : {"zx", "zy"}) qg.constants[z] = zeros(DType::Float8E4M3FN, {});
    qg.constants["wq"] = zeros(DType::Float8E4M3FN, {8, 8, 1, 1});
    qg.constants["wz"] = zeros(DType::Float8E4M3FN, {8});
    Attr sat;
    sat.kind = Attr::Kind::Int;
    sat.i = 0;
    qg.g.nodes[6].attrs["saturate"] = sat;
    const FusionMatch m = qg.match();
    ASSERT_TRUE(m.quant) << m.qdq_fallback;
    EXPECT_EQ(m.quant->codes, DType::Float8E4M3FN);
    EXPECT_TRUE(m.quant->out_q);
    EXPECT_FALSE(m.quant->saturate);
    EXPECT_EQ(m.inputs[0], "xq");
    EXPECT_EQ(m.outputs, std::vector<std::string>{"yq"});
    // An int8 QuantizeLinear after FP8 activations does not end the FP8 step.
    qg.descs["yq"].dtype = DType::Int8;
    qg.constants["zy"] = zeros(DType::Int8, {});
    const FusionMatch f = qg.match();
    ASSERT_TRUE(f.quant);
    EXPECT_FALSE(f.quant->out_q);
    EXPECT_EQ(f.outputs, std::vector<std::string>{"y"});
}

// INT4 weights (W4A8) behind int8 activations are the int8 step too: the INT4 codes, held one
// sign-extended value a byte, are the step's weight codes.
TEST(QdqFusion, Int4WeightsWithInt8ActivationsAreOneInt8Step) {
    QdqGraph qg;
    qg.constants["wq"] = zeros(DType::Int4, {8, 8, 1, 1});
    qg.constants["wz"] = zeros(DType::Int4, {8});
    const FusionMatch m = qg.match();
    ASSERT_TRUE(m.quant) << m.qdq_fallback;
    EXPECT_EQ(m.quant->codes, DType::Int8);
    EXPECT_EQ(m.quant->w_codes, &qg.constants.at("wq"));
    EXPECT_EQ(m.quant->w_codes->dtype(), DType::Int4);
    EXPECT_TRUE(m.quant->out_q);
    // FP8 activations do not take INT4 weights.
    qg.descs["xq"].dtype = DType::Float8E4M3FN;
    qg.constants["zx"] = zeros(DType::Float8E4M3FN, {});
    EXPECT_NE(qg.match().qdq_fallback.find("constant float8e4m3fn codes"), std::string::npos);
}

// A weight DequantizeLinear without a zero point input dequantizes with zero point 0 (ONNX's
// default), as lowbit's INT4 weights are written: int8, int4 and FP8 weights all fuse.
TEST(QdqFusion, AbsentWeightZeroPointIsZero) {
    for (DType wt : {DType::Int8, DType::Int4}) {
        QdqGraph qg;
        qg.constants["wq"] = zeros(wt, {8, 8, 1, 1});
        qg.g.nodes[2].inputs.resize(2);
        const FusionMatch m = qg.match();
        EXPECT_TRUE(m.quant) << dtype_name(wt) << ": " << m.qdq_fallback;
    }
    QdqGraph qg;
    qg.descs["xq"].dtype = DType::Float8E4M3FN;
    qg.descs["yq"].dtype = DType::Float8E4M3FN;
    for (const char* z : {"zx", "zy"}) qg.constants[z] = zeros(DType::Float8E4M3FN, {});
    qg.constants["wq"] = zeros(DType::Float8E4M3FN, {8, 8, 1, 1});
    qg.g.nodes[2].inputs = {"wq", "ws", ""};  // an empty name is an absent input too
    const FusionMatch m = qg.match();
    ASSERT_TRUE(m.quant) << m.qdq_fallback;
    EXPECT_EQ(m.quant->codes, DType::Float8E4M3FN);
}

// Block-wise weight scales (DequantizeLinear-21 block_size) have no int8 kernel: the conv keeps
// the simulation and says why.
TEST(QdqFusion, BlockwiseInt4WeightsFallBack) {
    QdqGraph qg;
    qg.constants["wq"] = zeros(DType::Int4, {8, 8, 1, 1});
    qg.g.nodes[2].inputs.resize(2);
    Tensor ws(DType::Float32, {8, 2, 1, 1});
    for (int64_t i = 0; i < ws.numel(); ++i) ws.data<float>()[i] = 0.1f;
    qg.constants["ws"] = ws;
    Attr block;
    block.kind = Attr::Kind::Int;
    block.i = 4;
    qg.g.nodes[2].attrs["block_size"] = block;
    qg.g.nodes[2].attrs["axis"].i = 1;
    const FusionMatch m = qg.match();
    EXPECT_FALSE(m.quant);
    EXPECT_NE(m.qdq_fallback.find("block-wise int4 weight scales"), std::string::npos)
        << m.qdq_fallback;
    EXPECT_TRUE(m.conv.silu);  // the float patterns still apply
}

TEST(QdqFusion, FallbackReasons) {
    {
        const FusionMatch m = QdqGraph().match(false);
        EXPECT_FALSE(m.quant);
        EXPECT_NE(m.qdq_fallback.find("low-precision kernels off"), std::string::npos);
        EXPECT_TRUE(m.conv.silu);  // the float patterns still apply
    }
    {
        const FusionMatch m = QdqGraph().match(true, false);
        EXPECT_FALSE(m.quant);
        EXPECT_NE(m.qdq_fallback.find("refused"), std::string::npos);
    }
    {
        QdqGraph qg;  // FP8 activations with int8 weights
        qg.descs["xq"].dtype = DType::Float8E4M3FN;
        qg.constants["zx"] = zeros(DType::Float8E4M3FN, {});
        EXPECT_NE(qg.match().qdq_fallback.find("constant float8e4m3fn codes"), std::string::npos);
    }
    {
        QdqGraph qg;
        qg.descs["xq"].dtype = DType::Float8E5M2;
        EXPECT_NE(qg.match().qdq_fallback.find("only float8e4m3fn"), std::string::npos);
    }
    {
        QdqGraph qg;
        qg.descs["xq"].dtype = DType::UInt8;
        qg.constants["zx"] = zeros(DType::UInt8, {});
        EXPECT_NE(qg.match().qdq_fallback.find("only symmetric int8"), std::string::npos);
    }
    {
        QdqGraph qg;
        qg.constants["zx"].data<int8_t>()[0] = 3;
        EXPECT_NE(qg.match().qdq_fallback.find("activation zero point"), std::string::npos);
    }
    {
        QdqGraph qg;
        qg.constants["sx"] = zeros(DType::Float32, {2});
        EXPECT_NE(qg.match().qdq_fallback.find("activation scale"), std::string::npos);
    }
    {
        QdqGraph qg;
        qg.constants["wz"].data<int8_t>()[1] = 1;
        EXPECT_NE(qg.match().qdq_fallback.find("weight zero point"), std::string::npos);
    }
    {
        QdqGraph qg;  // UINT4 weights (asymmetric grid) have no kernel
        qg.constants["wq"] = zeros(DType::UInt4, {8, 8, 1, 1});
        qg.constants["wz"] = zeros(DType::UInt4, {8});
        EXPECT_NE(qg.match().qdq_fallback.find("int8 codes or int4 codes"), std::string::npos);
    }
    {
        QdqGraph qg;
        qg.g.nodes[2].attrs["axis"].i = 1;
        EXPECT_NE(qg.match().qdq_fallback.find("weight scales"), std::string::npos);
    }
    {
        QdqGraph qg;  // weights computed at run time
        qg.order = {0, 1, 2, 3, 4, 5, 6, 7};
        EXPECT_NE(qg.match().qdq_fallback.find("weights are not"), std::string::npos);
    }
    {
        QdqGraph qg;  // no DequantizeLinear before the Conv: not a Q/DQ conv at all
        qg.g.nodes[3].inputs[0] = "x";
        const FusionMatch m = qg.match();
        EXPECT_FALSE(m.quant);
        EXPECT_TRUE(m.qdq_fallback.empty());
    }
}

}  // namespace
}  // namespace lowbit
