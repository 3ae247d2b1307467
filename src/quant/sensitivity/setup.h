// Sensitivity setup: calibration, placement and scales exactly as `quantize` computes them, the
// sweep's incremental runner (every tensor kept) on the prepared float graph, and what quantizing each node
// means -- its placed activation inputs with their stored scales (fake-quantized through the
// executor's node override) and its weights (fake-quantized once, as constant variants). Also the
// measured nodes in plan order with their cones (the nodes re-run when one changes).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "calib/calib_source.h"
#include "core/status.h"
#include "ir/graph.h"
#include "quant/quantize_model.h"
#include "quant/sensitivity/sensitivity.h"
#include "runtime/executor.h"
#include "runtime/incremental_runner.h"

namespace lowbit::quant {

// What quantizing one node means for its activation inputs.
struct NodeQuant {
    std::vector<std::pair<size_t, float>> activations;  // (input index, stored scale)
    std::vector<Tensor> buffers;  // per activation: reused output (the executor reads it only
                                  // while the node runs)
};

// The executor's node override that fake-quantizes a node's placed activation inputs. Fake
// quantization is per tensor and elementwise, so it works on tensors as stored
// (TensorView::Stored: no layout conversions).
//
// With `share` (local-sqnr reads every input from the float32 run), a tensor consumed by several
// quantizable nodes (shared Q/DQ) is fake-quantized once per image: (source data, scale) maps to
// the first node's buffer until new_image(). Cone runs read fresh tensors from a scratch arena
// whose addresses repeat, so they never share.
class FakeQuantOverride {
public:
    FakeQuantOverride(std::vector<NodeQuant>& node_quant, QuantMode mode, bool share)
        : nq_(node_quant), mode_(mode), share_(share) {}
    void new_image() { shared_.clear(); }
    Status apply(size_t idx, const Node& node, std::vector<Tensor>& ins);
    // A NodeOverride calling apply(); valid while this object lives.
    NodeOverride hook() {
        return [this](size_t idx, const Node& node, std::vector<Tensor>& ins) {
            return apply(idx, node, ins);
        };
    }

private:
    std::vector<NodeQuant>& nq_;
    QuantMode mode_;
    bool share_;
    std::map<std::pair<const void*, float>, Tensor> shared_;
};

struct SweepSetup {
    QuantMode mode = QuantMode::Int8;
    Int4Weights int4;  // INT4 weights (w4a8 / w4a16): weights fake-quantized to INT4
    Placement placement;  // on `model`
    Model model;          // the prepared float graph the placement indices refer to
    ExecutorOptions exec_options;
    std::unique_ptr<IncrementalRunner> ex;    // the float32 pass stays readable
    TensorDesc input;                         // the one float32 batch-1 input
    std::vector<NodeQuant> node_quant;        // by graph node index
    std::vector<size_t> nodes;                // the measured (quantizable) nodes, in plan order
    std::vector<std::vector<size_t>> cones;   // per measured node k: nodes downstream of it
    std::vector<std::vector<size_t>> active;  // per k: the nodes quantized when measuring k
    std::vector<std::string> first_output;    // per k: the node's first output

    const Graph& graph() const { return model.graph; }
    size_t size() const { return nodes.size(); }
};

// Fills `s` for `input` (the model as loaded); calibration fields and notes go to `rep`.
// `s` must not move afterwards (the executor is planned on s.model's graph).
Status setup_sweep(const Model& input, calib::CalibSource& source, const SensitivityOptions& opts,
                   SweepSetup& s, SensitivityReport& rep);

// Adds the fake-quantized weights as a constant variant of each node that runs through the
// executor; own_weights[node] != 0 marks nodes that quantize their weights themselves (a Conv
// probe holds its own).
Status add_weight_variants(SweepSetup& s, const std::vector<char>& own_weights);

}  // namespace lowbit::quant
