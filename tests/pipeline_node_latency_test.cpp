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

// The estimate is the sum of per-step medians: spikes in under half of the runs of a step (a
// preemption on a loaded machine) leave it at the unspiked value, while the whole-run median
// moves with them.
TEST(NodeLatency, StepwiseMedianIgnoresSpikes) {
    const Graph g = qdq_graph();
    const std::vector<StepTime> quiet = {
        {"q", {}, "QuantizeLinear", 2.0}, {"convA", {"dq"}, "QConv", 5.0},
        {"cat", {}, "Concat", 0.5},       {"qa", {"dqa"}, "QuantizeLinear", 1.5},
        {"", {}, "Reorder", 0.25},        {"convB", {"relu"}, "Conv +Relu", 3.0},
    };
    const std::set<std::string> cands = {"convA", "convB"};
    const NodeLatency clean = attribute_steps(g, quiet, cands);
    std::vector<std::vector<StepTime>> runs(5, quiet);
    // Every run has a spike somewhere, each step in at most 2 of the 5 runs.
    runs[0][1].ms += 40;  // convA
    runs[1][0].ms += 25;  // q
    runs[2][5].ms += 30;  // convB
    runs[3][1].ms += 60;  // convA again
    runs[4][4].ms += 10;  // reorder
    runs[4][2].ms += 5;   // concat
    std::vector<double> run_ms;
    for (const auto& r : runs) {
        double t = 0.1;  // input/output copies outside the steps
        for (const StepTime& st : r) t += st.ms;
        run_ms.push_back(t);
    }
    auto r = stepwise_latency(g, runs, run_ms, cands);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_DOUBLE_EQ(r->estimate_ms, 12.25);
    EXPECT_DOUBLE_EQ(r->node_ms.at("convA"), clean.node_ms.at("convA"));
    EXPECT_DOUBLE_EQ(r->node_ms.at("convB"), clean.node_ms.at("convB"));
    EXPECT_DOUBLE_EQ(r->other_ms, clean.other_ms);
    EXPECT_DOUBLE_EQ(r->other_ms + r->node_ms.at("convA") + r->node_ms.at("convB"), r->estimate_ms);
    EXPECT_GT(r->run_ms, 12.25 + 20);  // the whole-run median keeps a spike of every run
    // Spikes in most runs of one step do move it (the median is not a minimum).
    runs[1][1].ms += 40;
    r = stepwise_latency(g, runs, run_ms, cands);
    ASSERT_TRUE(r.is_ok());
    EXPECT_DOUBLE_EQ(r->node_ms.at("convA"), 6.0 + 40);
    // Runs of different programs cannot be combined.
    runs[2].pop_back();
    EXPECT_FALSE(stepwise_latency(g, runs, run_ms, cands).is_ok());
    EXPECT_FALSE(stepwise_latency(g, {}, {}, cands).is_ok());
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
    // The estimate is the attributed per-step medians, whole.
    EXPECT_NEAR(steps, r->estimate_ms, 1e-9 * r->estimate_ms);
    // Interleaved with a second model (no candidates: every step is other_ms); each model gets
    // its own steps.
    o.runs = 2;
    auto two = measure_interleaved({&*m, &*m}, {convs}, o);
    ASSERT_TRUE(two.is_ok()) << two.status().message();
    ASSERT_EQ(two->size(), 2u);
    EXPECT_EQ((*two)[0].node_ms.size(), convs.size());
    EXPECT_TRUE((*two)[1].node_ms.empty());
    EXPECT_DOUBLE_EQ((*two)[1].other_ms, (*two)[1].estimate_ms);
    EXPECT_GT((*two)[1].estimate_ms, 0.0);
    EXPECT_GT((*two)[1].run_ms, 0.0);
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
