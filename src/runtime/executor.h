// Executor: turns a Model into a static execution plan and runs it.
//
// At load (Executor::create): shapes are resolved (graph input shapes from the model or from
// ExecutorOptions::input_shapes), every node gets a kernel and is prepared in topological order,
// subgraphs whose inputs are all constant are folded, and a memory planner assigns each
// intermediate tensor a slot in one arena, reusing memory of tensors that are dead.
//
// Hooks:
//  - observer: called for every tensor a node produces (after the node ran), in plan order. It
//    serves calibration, sensitivity and debugging. The tensor is only valid during the call.
//  - node override: called before a node runs with its input tensors; it may replace any input
//    (e.g. by a fake-quantized copy) to run that node "with other settings". It must keep each
//    input's dtype and shape. It can be limited to a set of nodes, so that the others pay nothing
//    (their inputs are not converted to plain layout).
//
// Cached runs (ExecutorOptions::keep_tensors): every tensor of the last run() keeps its own
// memory (no reuse), and run_nodes() re-runs a subset of the nodes into a second (scratch) arena:
// a re-run node reads what this partial run produced where it produced it, and everything else
// straight from the last full run, so nothing is copied. With downstream_nodes() this re-runs
// only the cone of a perturbed node (incremental sensitivity, DESIGN.md "Beyond the seed" 2).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "ir/graph.h"

namespace lowbit {

struct ExecutorOptions {
    int n_threads = 0;  // <= 0: one per core
    // Overrides for graph input shapes (by input name); needed when the model's are symbolic.
    std::map<std::string, Shape> input_shapes;
    // Use the reference kernels only (no oneDNN/vectorized fast paths). For tests.
    bool reference_only = false;
    // Keep every tensor of the last run() (no memory reuse, no multi-node fusion): enables
    // run_nodes() and tensor(). Memory is the sum of all tensors (twice, once run_nodes() ran)
    // instead of the peak of the live ones.
    bool keep_tensors = false;
};

using TensorObserver = std::function<void(size_t node_index, const Node& node,
                                          const std::string& name, const Tensor& t)>;
using NodeOverride =
    std::function<Status(size_t node_index, const Node& node, std::vector<Tensor>& inputs)>;

// How a hook or a fetch sees a run-time tensor that is stored channels-last: Plain converts it
// to ONNX order (a copy); Stored hands over the stored data as is (logical shape, NHWC bytes, no
// copy), which is right only for layout-independent uses (a per-tensor elementwise change, a sum
// over all elements). Constants are always plain.
enum class TensorView { Plain, Stored };

struct TensorDesc {
    std::string name;
    DType dtype = DType::Undefined;
    Shape shape;
};

class Executor {
public:
    ~Executor();
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    // Plans `model` (copied/shared: the executor keeps what it needs). Fails with a message
    // naming the node, op and attribute for anything unsupported.
    static Result<std::unique_ptr<Executor>> create(const Model& model, ExecutorOptions opts = {});

    const std::vector<TensorDesc>& inputs() const;
    const std::vector<TensorDesc>& outputs() const;

    // Runs the graph. `inputs` in graph-input order (excluding inputs that have initializers),
    // with the planned dtypes and shapes; returns the outputs in graph-output order.
    Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs);

    // Observer for every produced tensor, or only for the tensors named (the others are neither
    // converted to plain layout nor reported).
    void set_observer(TensorObserver obs);
    void set_observer(TensorObserver obs, const std::vector<std::string>& only_tensors);
    // Override for every node, or only for the nodes listed (graph node indices).
    void set_node_override(NodeOverride ov);
    void set_node_override(NodeOverride ov, const std::vector<size_t>& only_nodes,
                           TensorView view = TensorView::Plain);

    // keep_tensors only. Re-runs `nodes` (graph node indices, run in plan order) after a run():
    // a node reads the tensors produced earlier in this call from this call, every other tensor
    // from the last run() (which stays untouched). Hooks apply as in run(). Returns the graph
    // outputs (recomputed where this call produced them, else the last run's; none with
    // with_outputs = false), then the `fetch` tensors, taken the same way (Stored: views valid
    // until the next run).
    Result<std::vector<Tensor>> run_nodes(const std::vector<size_t>& nodes,
                                          const std::vector<std::string>& fetch = {},
                                          TensorView fetch_view = TensorView::Plain,
                                          bool with_outputs = true);
    // The nodes whose result depends on any of `nodes` (them included), in plan order: the cone
    // that run_nodes() must re-run when those nodes change.
    std::vector<size_t> downstream_nodes(const std::vector<size_t>& nodes) const;
    // keep_tensors only: plans a variant of `node` whose constant input `input` holds `value`
    // (same dtype and shape; e.g. fake-quantized weights), prepared once as planned constants
    // are (weights reordered at load), where an override replacing the input would pay that on
    // every call. use_constant_variants() picks the nodes that run their variant.
    Status add_constant_variant(size_t node, size_t input, const Tensor& value);
    void use_constant_variants(const std::vector<size_t>& nodes);
    // keep_tensors only: tensor `name` from the last run() (or a constant): a plain copy, or
    // with Stored a view of the stored data valid until the next run().
    Result<Tensor> tensor(const std::string& name, TensorView view = TensorView::Plain) const;
    // Whether run-time tensor `name` is stored channels-last (NHWC bytes under its logical NCHW
    // shape), i.e. what tensor(name, Stored) hands over; false for plain tensors and constants.
    bool stored_channels_last(const std::string& name) const;

    // Peak bytes of the intermediate-tensor arena (what `lowbit info` reports).
    size_t peak_activation_bytes() const;
    // Nodes in execution order (indices into the model's graph.nodes), after folding.
    const std::vector<size_t>& plan_order() const;
    const Graph& graph() const;
    // Shape/dtype of every tensor known at plan time.
    const TensorDesc* tensor_desc(const std::string& name) const;

    struct Impl;

private:
    explicit Executor(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit
