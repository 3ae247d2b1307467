// Per-node latency (pipeline/node_latency.h): the attribution of step times to ONNX nodes on a
// hand-built Q/DQ graph with injected times, the medians, and a real profiled run of the bundled
// model (Executor::step_times()).
#include <gtest/gtest.h>

#include <string>

#include "onnx/model_io.h"
#include "pipeline/node_latency.h"

namespace lowbit::pipeline {
namespace {

Node node(const std::string& name, const std::string& op, std::vector<std::string> ins,
          std::vector<std::string> outs) {
    Node n;
    n.name = name;
    n.op_type = op;
    n.inputs = std::move(ins);
    n.outputs = std::move(outs);
    return n;
}

// x -> Q -> DQ -> {convA, concat}; convA -> a; a -> QA -> DQA -> convB (a candidate, float in
// this model: its input is dequantized); convB, Relu and the concat are the rest.
Graph qdq_graph() {
    Graph g;
    g.nodes = {node("q", "QuantizeLinear", {"x", "s", "z"}, {"xq"}),
               node("dq", "DequantizeLinear", {"xq", "s", "z"}, {"xd"}),
               node("convA", "Conv", {"xd", "wA"}, {"a"}),
               node("cat", "Concat", {"xd", "a"}, {"c"}),
               node("qa", "QuantizeLinear", {"a", "s", "z"}, {"aq"}),
               node("dqa", "DequantizeLinear", {"aq", "s", "z"}, {"ad"}),
               node("convB", "Conv", {"ad", "wB"}, {"b"}),
               node("relu", "Relu", {"b"}, {"r"})};
    return g;
}

TEST(NodeLatency, AttributesStepsToCandidates) {
    const Graph g = qdq_graph();
    const std::vector<StepTime> steps = {
        {"q", {}, "QuantizeLinear", 2.0},        // feeds convA and cat: split 1.0 / 1.0
        {"convA", {"dq"}, "QConv", 5.0},         // convA's (its DQ fused)
        {"cat", {}, "Concat", 0.5},              // other
        {"qa", {"dqa"}, "QuantizeLinear", 1.5},  // feeds convB only (through dqa)
        {"", {}, "Reorder nhwc->plain", 0.25},   // other
        {"convB", {"relu"}, "Conv +Relu", 3.0},  // convB's
    };
    const NodeLatency r = attribute_steps(g, steps, {"convA", "convB", "missing"});
    EXPECT_DOUBLE_EQ(r.node_ms.at("convA"), 6.0);
    EXPECT_DOUBLE_EQ(r.node_ms.at("convB"), 4.5);
    EXPECT_DOUBLE_EQ(r.node_ms.at("missing"), 0.0);
    EXPECT_DOUBLE_EQ(r.other_ms, 1.0 + 0.5 + 0.25);
    EXPECT_DOUBLE_EQ(r.run_ms, 0.0);
    // Every step's time is somewhere, once.
    double sum = r.other_ms;
    for (const auto& [n, ms] : r.node_ms) sum += ms;
    EXPECT_DOUBLE_EQ(sum, 2.0 + 5.0 + 0.5 + 1.5 + 0.25 + 3.0);
}

TEST(NodeLatency, FusedCandidateAndNoCandidates) {
    const Graph g = qdq_graph();
    // A step whose anchor is not a candidate but fuses one belongs to the candidate.
    const NodeLatency r = attribute_steps(g, {{"dq", {"convA"}, "fused", 4.0}}, {"convA"});
    EXPECT_DOUBLE_EQ(r.node_ms.at("convA"), 4.0);
    EXPECT_DOUBLE_EQ(r.other_ms, 0.0);
    const NodeLatency none = attribute_steps(g, {{"q", {}, "Q", 2.0}, {"convA", {}, "C", 1.0}}, {});
    EXPECT_TRUE(none.node_ms.empty());
    EXPECT_DOUBLE_EQ(none.other_ms, 3.0);
}

TEST(NodeLatency, MedianPerEntry) {
    std::vector<NodeLatency> runs(3);
    const double a[] = {3.0, 1.0, 2.0}, o[] = {0.5, 0.7, 0.6}, t[] = {10.0, 30.0, 20.0};
    for (int i = 0; i < 3; ++i) {
        runs[static_cast<size_t>(i)].node_ms["a"] = a[i];
        runs[static_cast<size_t>(i)].other_ms = o[i];
        runs[static_cast<size_t>(i)].run_ms = t[i];
    }
    NodeLatency m = median_latency(runs);
    EXPECT_DOUBLE_EQ(m.node_ms.at("a"), 2.0);
    EXPECT_DOUBLE_EQ(m.other_ms, 0.6);
    EXPECT_DOUBLE_EQ(m.run_ms, 20.0);
    runs.pop_back();  // even count: the mean of the middle two
    m = median_latency(runs);
    EXPECT_DOUBLE_EQ(m.node_ms.at("a"), 2.0);
    EXPECT_DOUBLE_EQ(m.run_ms, 20.0);
    EXPECT_TRUE(median_latency({}).node_ms.empty());
}

TEST(NodeLatency, ProfiledRunOfTheBundledModel) {
    auto m =
        load_model(std::string(LOWBIT_SOURCE_DIR) + "/assets/shapes-yolov10m-w0p1875-raw.onnx");
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    std::set<std::string> convs;
    for (const Node& n : m->graph.nodes) {
        if (n.op_type == "Conv") convs.insert(n.name);
    }
    ASSERT_GT(convs.size(), 50u);
    LatencyOptions o;
    o.runs = 3;
    o.exec.n_threads = 1;
    auto r = measure_node_latency(*m, convs, o);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    double steps = r->other_ms;
    size_t timed = 0;
    for (const auto& [name, ms] : r->node_ms) {
        EXPECT_GE(ms, 0.0) << name;
        timed += ms > 0;
        steps += ms;
    }
    EXPECT_EQ(r->node_ms.size(), convs.size());
    EXPECT_EQ(timed, convs.size());  // every Conv runs a step of its own
    EXPECT_GT(r->run_ms, 0.0);
    // The steps are most of a run (medians of parts need not add up exactly; a loaded machine
    // adds noise, hence the loose bounds).
    EXPECT_GT(steps, 0.3 * r->run_ms);
    EXPECT_LT(steps, 3.0 * r->run_ms);
    o.runs = 0;
    EXPECT_FALSE(measure_node_latency(*m, convs, o).is_ok());
}

TEST(NodeLatency, StepTimesOffByDefault) {
    auto m =
        load_model(std::string(LOWBIT_SOURCE_DIR) + "/assets/shapes-yolov10m-w0p1875-raw.onnx");
    ASSERT_TRUE(m.is_ok());
    ExecutorOptions eo;
    eo.n_threads = 1;
    auto ex = Executor::create(*m, eo);
    ASSERT_TRUE(ex.is_ok()) << ex.status().message();
    Tensor x(DType::Float32, {1, 3, 320, 320});  // the model's fixed input
    ASSERT_TRUE((*ex)->run({x}).is_ok());
    EXPECT_TRUE((*ex)->step_times().empty());
}

}  // namespace
}  // namespace lowbit::pipeline
