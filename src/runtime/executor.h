// Executor: turns a Model into a static execution plan and runs it.
//
// At load (Executor::create): shapes are resolved (graph input shapes from the model or from
// ExecutorOptions::input_shapes), every node gets a kernel and is prepared in topological order,
// subgraphs whose inputs are all constant are folded (runtime/plan.h), and the program that runs
// it is built (runtime/program_builder.h): fusion, kernel and layout choice, and a memory plan
// that assigns each intermediate tensor a slot in one arena, reusing memory of dead tensors.
//
// Hooks:
//  - observer: called for every tensor a node produces (after the node ran), in plan order. It
//    serves calibration, sensitivity and debugging. The tensor is only valid during the call.
//  - node override: called before a node runs with its input tensors; it may replace any input
//    (e.g. by a fake-quantized copy) to run that node "with other settings". It must keep each
//    input's dtype and shape. It can be limited to a set of nodes, so that the others pay nothing
//    (their inputs are not converted to plain layout).
//
// Cached partial runs (re-running only some nodes over a kept full run) are IncrementalRunner's
// (runtime/incremental_runner.h).
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
#include "runtime/kernel_report.h"

namespace lowbit {

struct ExecutorOptions {
    int n_threads = 0;  // <= 0: one per core
    // Overrides for graph input shapes (by input name); needed when the model's are symbolic.
    std::map<std::string, Shape> input_shapes;
    // Use the reference kernels only (no oneDNN/vectorized fast paths). For tests.
    bool reference_only = false;
    // Step profile: 1 times every step of the main program and prints per-op-kind totals to
    // stderr when the executor is destroyed; 2 adds every step, slowest first. (The CLI sets
    // it from LOWBIT_PROFILE, cli/common.h.)
    int profile = 0;
    // Keep every main-program step's wall time of the latest run for step_times() (no printing;
    // per-node latency, pipeline/node_latency.h).
    bool step_times = false;
    // Winograd for the 3x3 stride-1 float32 convs of the fast path that allow it (kernels/cpu/
    // conv.cpp). (The CLI turns it off for LOWBIT_CONV_WINOGRAD=0.)
    bool conv_winograd = true;
    // Low-precision kernels for Q/DQ graphs: int8 Q/DQ convs run as oneDNN int8 convolutions
    // (runtime/fusion.h); false runs every Q/DQ graph as its float simulation (calibration and
    // sensitivity need that). (The CLI turns it off for LOWBIT_LOWP_KERNELS=0.)
    bool lowp_kernels = true;
    // Narrow int8 convs sum on lowbit's direct VNNI kernel where it measured faster than
    // oneDNN's (kernels/cpu/qconv_direct.h), depthwise ones on its direct depthwise kernel
    // (qconv_dw.h; the same bits either way); false keeps oneDNN's for every int8 conv. (The
    // CLI turns it off for LOWBIT_QCONV_DIRECT=0.)
    bool int8_direct = true;
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

// One step of the main program with its wall time in the latest run (Executor::step_times()).
struct StepTime {
    std::string node;                // the graph node it runs; "" for an inserted layout reorder
    std::vector<std::string> fused;  // further nodes it computes (a fused SiLU, DequantizeLinear)
    std::string label;               // the profile label (kernel and variant)
    double ms = 0;
};

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

    // Which kernel runs each step of the main program, and the Q/DQ convs that fell back to
    // the float simulation with the reason (runtime/kernel_report.h).
    const KernelReport& kernel_report() const;

    // The latest run's steps with their wall times (ExecutorOptions::step_times; empty when off
    // or before the first run). Runs through hooks (observer, override) are not timed.
    std::vector<StepTime> step_times() const;
    // The same wall times alone, in step order, without building names (nothing allocated: a
    // timing loop reads this between runs so that its own allocations do not move the runs'
    // output buffers onto fresh pages).
    const std::vector<double>& step_ms() const;

    // Peak bytes of the intermediate-tensor arena (what `lowbit info` reports).
    size_t peak_activation_bytes() const;
    // Nodes in execution order (indices into the model's graph.nodes), after folding.
    const std::vector<size_t>& plan_order() const;
    const Graph& graph() const;
    // Shape/dtype of every tensor known at plan time.
    const TensorDesc* tensor_desc(const std::string& name) const;

    struct Impl;

private:
    friend class IncrementalRunner;
    explicit Executor(std::unique_ptr<Impl> impl);
    // keep_tensors: IncrementalRunner's plan (every tensor keeps its memory, no fusion).
    static Result<std::unique_ptr<Executor>> create_planned(const Model& model,
                                                            const ExecutorOptions& opts,
                                                            bool keep_tensors);
    std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit
