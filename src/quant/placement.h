// Q/DQ placement: which tensors get a QuantizeLinear/DequantizeLinear pair and why.
//
// Implements ModelOpt's TensorRT-friendly partitioning (research/modelopt.md §3.2-§3.6, §4):
// automatic exclusions (small-channel / FP8 depthwise / large-kernel Convs, attention MatMuls,
// GEMV), CASK partitions seeded by Conv/ConvTranspose/Gemm/MatMul, residual-Add detection, KGEN
// heads, leftovers (pooling and Resize next to quantized nodes in INT8), the graph-output rule,
// per-op input rules, and Concat groups that share one scale. One addition over ModelOpt:
// a residual Add behind a BN-folded SiLU (Conv -> Sigmoid -> Mul, the YOLO block) is recognised,
// so only its skip input is quantized (ModelOpt quantizes both inputs there); `modelopt_parity`
// turns that off. A second, opt-in one: `ConvPlacement::All` drops ModelOpt's small-channel /
// depthwise / large-kernel Conv exclusions, which exist because TensorRT has no INT8/FP8 kernel
// for those Convs; lowbit's own oneDNN kernels run every 2-D Conv with constant weights.
//
// Placement sees only the graph (and tensor shapes when known); calibration and the rewrite come
// after it. Every decision is recorded for `lowbit quantize --explain`.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "quant/numerics.h"

namespace lowbit::quant {

// Which Convs the automatic exclusions keep in high precision (`--placement`).
enum class ConvPlacement {
    ModelOpt,  // ModelOpt's Conv rules (research/modelopt.md §3.2 item 3, §4): the default
    All,       // every 2-D Conv with a constant weight (lowbit's int8 / bf16 kernels run them all)
};

struct PlacementOptions {
    QuantMode mode = QuantMode::Int8;
    // --op-types: INT8 selects every node of these types and bypasses the partitioner (as
    // ModelOpt's op_types_to_quantize); FP8 restricts the partitioner's op set.
    std::vector<std::string> op_types;
    std::vector<std::string> exclude_regex;     // prefix-anchored (Python re.match semantics)
    std::vector<std::string> exclude_names;     // exact node names
    std::vector<std::string> exclude_op_types;  // every node of these types
    bool modelopt_parity = false;  // no SiLU residual rule: ModelOpt's placement exactly
    bool disable_mha_qdq = false;  // exclude both MatMuls of every attention block
    ConvPlacement conv_placement = ConvPlacement::ModelOpt;
};

// --placement: "modelopt" or "all"; anything else is an error naming the flag.
Result<ConvPlacement> parse_conv_placement(const std::string& s);

// Element type and shape of a tensor when known (from the executor's plan).
struct TensorType {
    DType dtype = DType::Undefined;
    Shape shape;
};
// Returns nullopt for tensors whose type is unknown (placement then assumes float, unknown shape).
using TypeLookup = std::function<std::optional<TensorType>(const std::string& tensor)>;

// One Q/DQ pair on a non-weight tensor, shared by the consumer edges listed.
struct ActivationQdq {
    std::string tensor;
    std::vector<std::pair<size_t, size_t>> edges;  // (node index, input index) reading the DQ
    std::string rule;                              // why it was placed (first consumer's rule)
    bool constant = false;      // a constant input (scale from its values, no calibration)
    bool from_softmax = false;  // produced by Softmax: range forced to [0, 1] (§3.8.6)
    int group = -1;             // index into Placement::groups
};

// One weight Q/DQ (per output channel along `axis`, or per tensor when axis < 0).
struct WeightQdq {
    size_t node = 0;
    size_t input = 0;
    std::string tensor;
    int64_t axis = 0;
    std::string rule;
};

struct SkipNote {
    std::string node;
    std::string op_type;
    std::string reason;
};

struct Placement {
    std::vector<ActivationQdq> activations;
    std::vector<WeightQdq> weights;
    // Concat groups: indices into `activations` that share one calibrated range (§3.5).
    std::vector<std::vector<size_t>> groups;
    // Nodes that received Q/DQ on at least one input, with the rule that selected them.
    std::vector<std::pair<size_t, std::string>> selected;
    // Candidates left in high precision (every linear op, every op of the quantizable set not
    // selected), with the reason.
    std::vector<SkipNote> skipped;
    // Nodes excluded before placement (user or automatic), with the reason.
    std::vector<SkipNote> excluded;
};

// The op types ModelOpt would quantize by default for a mode (§3.1, §4).
std::vector<std::string> default_quantizable_ops(QuantMode mode);

Result<Placement> place_qdq(const Graph& g, const TypeLookup& types, const PlacementOptions& opts);

// Weight-only placement (w4a16): a weight Q/DQ on every Conv, Gemm and MatMul (default domain)
// whose weight (input 1) is a float32 initializer, per output channel (Conv: axis 0; Gemm: 0 with
// transB, else 1; MatMul: 1), minus --exclude / exclusion-file names / --exclude-op-types
// (--op-types narrows the three op types). No activation pairs.
Result<Placement> place_weights_only(const Graph& g, const PlacementOptions& opts);

// True when `name` matches `pattern` anchored at its start (Python re.match). Invalid patterns
// are reported by validate_regexes().
bool regex_prefix_match(const std::string& pattern, const std::string& name);
Status validate_regexes(const std::vector<std::string>& patterns);

}  // namespace lowbit::quant
