// Per-node latency of a model from the real kernels: the engine's per-step wall times of a run
// (Executor::step_times()) attributed to ONNX nodes. `lowbit mixed` profiles one model per format
// (every candidate in that format) to get each node's latency cost in each format, and times the
// chosen models the same way.
//
// The latency estimate of a model is the sum over its steps of each step's median over the timed
// runs (`estimate_ms`). On a loaded machine a preemption lands in one or a few steps of a run;
// the per-step median drops it as long as it hits that step in under half of the runs, while the
// whole-run time (`run_ms`, kept beside it: the median of the whole-run wall times) carries every
// preemption of the run. Models that are compared are timed in interleaved rounds (A B C A B C
// ...: measure_interleaved) so that slow phases of the machine hit all of them alike. The
// estimate leaves out what no step times (input/output copies, the time between steps), so it is
// below a whole run even on a quiet machine; ratios of estimates are what budgets use.
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

#include "core/progress.h"
#include "core/status.h"
#include "ir/graph.h"
#include "runtime/executor.h"

namespace lowbit::pipeline {

struct NodeLatency {
    std::map<std::string, double> node_ms;  // candidate name -> ms (every candidate present)
    double other_ms = 0;                    // the steps no candidate owns
    double run_ms = 0;                      // wall time of the whole run (Executor::run)
    std::vector<double> run_samples_ms;     // stepwise_latency: every timed run's wall time
    // stepwise_latency: the sum of the per-step medians (= other_ms + the node_ms); 0 elsewhere.
    double estimate_ms = 0;
};

// One run's steps of a model with graph `g`, attributed to `candidates` (node names of g;
// names that are not nodes of g get 0). run_ms is left 0.
NodeLatency attribute_steps(const Graph& g, const std::vector<StepTime>& steps,
                            const std::set<std::string>& candidates);

// The median of every entry over `runs` (the per-node medians need not sum to the median run).
NodeLatency median_latency(const std::vector<NodeLatency>& runs);

// The robust estimate from the timed runs of one model: every step's median over `runs` (the
// runs of one program have the same steps in the same order), attributed as attribute_steps
// does; estimate_ms is their sum and run_ms the median of `run_ms` (one entry a run, may be
// empty). Fails when the runs' steps differ.
Result<NodeLatency> stepwise_latency(const Graph& g, const std::vector<std::vector<StepTime>>& runs,
                                     const std::vector<double>& run_ms,
                                     const std::set<std::string>& candidates);

struct LatencyOptions {
    int runs = 5;    // timed runs (the median is reported)
    int warmup = 1;  // untimed runs first (oneDNN primitive creation, page faults)
    ExecutorOptions exec;
    Progress* progress = nullptr;  // advanced once a round (warm-up rounds included)
    // measure_interleaved: round r starts with model r mod n (A B C, B C A, ...), so that no
    // model always runs right after the same one.
    bool rotate = false;
    // measure_interleaved: untimed runs of a model right before each of its timed runs, so that
    // the timed run finds the caches holding its own weights and buffers (as when it runs back
    // to back) rather than the previous model's.
    int turn_warmup = 0;
    // measure_interleaved: the input shapes of model i (its symbolic inputs) in place of
    // exec.input_shapes, for models that run at different sizes (missing: exec.input_shapes).
    std::vector<std::map<std::string, Shape>> model_input_shapes;
    // measure_interleaved: every model's inputs, in the order of its executor's inputs (each must
    // have that input's dtype and planned shape); empty: a constant input (0.5 for float32, else
    // 0). A kernel whose time depends on the values (as an int8 epilogue with a fast path for
    // values far from a rounding tie would) is timed as it runs on a real image.
    std::vector<Tensor> inputs;
    // measure_interleaved: the models' names, for error messages (missing: "model i of n").
    std::vector<std::string> names;
};

// Runs `model` warmup + runs times on a constant input of its planned shape (exec.input_shapes
// for symbolic inputs), or on o.inputs, and returns stepwise_latency of the timed runs.
Result<NodeLatency> measure_node_latency(const Model& model,
                                         const std::set<std::string>& candidates,
                                         const LatencyOptions& o);

// measure_node_latency of several models in interleaved rounds: every round runs each model once,
// in order (warmup rounds first, untimed). candidates[i] belongs to models[i] (missing: none).
Result<std::vector<NodeLatency>> measure_interleaved(
    const std::vector<const Model*>& models, const std::vector<std::set<std::string>>& candidates,
    const LatencyOptions& o);

}  // namespace lowbit::pipeline
