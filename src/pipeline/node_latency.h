// Per-node latency of a model from the real kernels: the engine's per-step wall times of a run
// (Executor::step_times()) attributed to ONNX nodes, median over several runs. `lowbit mixed`
// profiles one model per format (every candidate in that format) to get each node's latency
// cost in each format, and times the chosen models whole.
//
// Attribution of one run's steps to the candidate nodes:
//  - a step that computes a candidate (its node, or a node fused into it) is that candidate's;
//  - a step that runs a standalone QuantizeLinear / DequantizeLinear is split evenly over the
//    nodes it feeds through further Q/DQ nodes: the candidates' shares are theirs (an INT8 conv
//    pays for quantizing its input, a float conv inside an INT8 graph for dequantizing it), the
//    rest is `other_ms`;
//  - everything else (layout reorders, weightless ops) is `other_ms`.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "runtime/executor.h"

namespace lowbit::pipeline {

struct NodeLatency {
    std::map<std::string, double> node_ms;  // candidate name -> ms (every candidate present)
    double other_ms = 0;                    // the steps no candidate owns
    double run_ms = 0;                      // wall time of the whole run (Executor::run)
};

// One run's steps of a model with graph `g`, attributed to `candidates` (node names of g;
// names that are not nodes of g get 0). run_ms is left 0.
NodeLatency attribute_steps(const Graph& g, const std::vector<StepTime>& steps,
                            const std::set<std::string>& candidates);

// The median of every entry over `runs` (the per-node medians need not sum to the median run).
NodeLatency median_latency(const std::vector<NodeLatency>& runs);

struct LatencyOptions {
    int runs = 5;    // timed runs (the median is reported)
    int warmup = 1;  // untimed runs first (oneDNN primitive creation, page faults)
    ExecutorOptions exec;
};

// Runs `model` warmup + runs times on a constant input of its planned shape (exec.input_shapes
// for symbolic inputs) and returns the median per-node latency and run time.
Result<NodeLatency> measure_node_latency(const Model& model,
                                         const std::set<std::string>& candidates,
                                         const LatencyOptions& o);

}  // namespace lowbit::pipeline
