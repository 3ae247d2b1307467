// Structural checks at load (ir/validate.h, called by onnx/model_io.h's parse_model/load_model):
// one producer per tensor, a known opset.
#include <gtest/gtest.h>

#include "ir/validate.h"
#include "onnx/model_io.h"

namespace lowbit {
namespace {

// y = Relu(x + b).
Model small_model(int64_t opset = 13) {
    Model m;
    m.opsets = {{"", opset}};
    Graph& g = m.graph;
    g.name = "small";
    g.inputs = {ValueInfo{"x", DType::Float32, true, {{1, ""}, {3, ""}}, "", ""}};
    g.outputs = {ValueInfo{"y", DType::Float32, true, {{1, ""}, {3, ""}}, "", ""}};
    g.initializers.emplace_back(
        "b", Tensor::from_vector<float>(DType::Float32, {3}, {1.0f, 2.0f, 3.0f}));
    g.nodes = {Node{"add0", "Add", "", {"x", "b"}, {"s"}, {}, ""},
               Node{"relu0", "Relu", "", {"s"}, {"y"}, {}, ""}};
    return m;
}

Status load_status(const Model& m) {
    auto bytes = serialize_model(m);
    EXPECT_TRUE(bytes);
    return parse_model(*bytes, "", "hostile.onnx").status();
}

TEST(IrValidate, AValidModelPasses) {
    EXPECT_TRUE(validate_model(small_model()));
    EXPECT_TRUE(load_status(small_model()));
    EXPECT_TRUE(validate_model(small_model(kMaxOpset)));
}

TEST(IrValidate, TwoNodesWritingOneTensorAreRefusedAtLoad) {
    Model m = small_model();
    m.graph.nodes.push_back(Node{"relu1", "Relu", "", {"x"}, {"s"}, {}, ""});
    Status st = load_status(m);
    ASSERT_FALSE(st);
    EXPECT_NE(st.message().find("hostile.onnx"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("'s'"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("add0"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("relu1"), std::string::npos) << st.message();
}

TEST(IrValidate, ANodeOverwritingAnInitializerOrAGraphInputIsRefused) {
    Model m = small_model();
    m.graph.nodes[1].outputs = {"b"};
    Status st = validate_model(m);
    ASSERT_FALSE(st);
    EXPECT_NE(st.message().find("initializer"), std::string::npos) << st.message();
    Model m2 = small_model();
    m2.graph.nodes[1].outputs = {"x"};
    Status st2 = validate_model(m2);
    ASSERT_FALSE(st2);
    EXPECT_NE(st2.message().find("graph input"), std::string::npos) << st2.message();
}

TEST(IrValidate, InitializerListedAsInputIsFine) {
    Model m = small_model();
    m.graph.inputs.push_back(ValueInfo{"b", DType::Float32, true, {{3, ""}}, "", ""});
    EXPECT_TRUE(validate_model(m));
}

TEST(IrValidate, DuplicateInitializerIsRefused) {
    Model m = small_model();
    m.graph.initializers.emplace_back("b", Tensor::from_vector<float>(DType::Float32, {1}, {0}));
    EXPECT_FALSE(validate_model(m));
}

TEST(IrValidate, EmptyOptionalOutputsAreNotProducers) {
    Model m = small_model();
    m.graph.nodes[0].outputs = {"s", ""};
    m.graph.nodes[1].outputs = {"y", ""};
    EXPECT_TRUE(validate_model(m));
}

TEST(IrValidate, OpsetsBeyondWhatIsImplementedAreRefused) {
    for (int64_t v : {kMaxOpset + 1, int64_t{999}, int64_t{-1}}) {
        Status st = load_status(small_model(v));
        ASSERT_FALSE(st) << v;
        EXPECT_EQ(st.code(), StatusCode::Unsupported) << st.message();
        EXPECT_NE(st.message().find(std::to_string(v)), std::string::npos) << st.message();
        EXPECT_NE(st.message().find("hostile.onnx"), std::string::npos) << st.message();
    }
    Model m = small_model();
    m.opsets.push_back({"ai.onnx", 17});
    EXPECT_FALSE(validate_model(m));
    Model custom = small_model();
    custom.opsets.push_back({"com.example", 999});  // other domains are not ours to judge
    EXPECT_TRUE(validate_model(custom));
}

TEST(IrValidate, SubgraphsAreChecked) {
    Model m = small_model();
    auto body = std::make_shared<Graph>();
    body->outputs = {ValueInfo{"t", DType::Float32, true, {{1, ""}}, "", ""}};
    body->nodes = {Node{"c0", "Identity", "", {"x"}, {"t"}, {}, ""},
                   Node{"c1", "Identity", "", {"x"}, {"t"}, {}, ""}};
    Attr a;
    a.kind = Attr::Kind::Graph;
    a.g = body;
    Node iff{"if0", "If", "", {"x"}, {"z"}, {}, ""};
    iff.attrs["then_branch"] = a;
    m.graph.nodes.push_back(iff);
    Status st = validate_model(m);
    ASSERT_FALSE(st);
    EXPECT_NE(st.message().find("then_branch"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace lowbit
