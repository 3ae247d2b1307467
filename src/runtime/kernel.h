// The operator interface. Each ONNX op type has one Kernel class registered under its op type
// (runtime/registry.h). A kernel object is created per node at plan time:
//   prepare(): validate attributes, input dtypes and ranks; set each output's dtype and shape.
//              All rejection of unsupported cases happens here, with a message naming the node,
//              op and attribute (Node::describe()). Shapes are static: every input shape is known.
//   run():     compute outputs into pre-allocated tensors. Must not allocate graph-visible
//              memory or log; may fail only on data-dependent errors (e.g. a Gather index out of
//              range), naming node and tensor. Scratch memory is sized in prepare() and kept in
//              members, so a kernel object runs one call at a time (the executor runs each
//              node's kernel sequentially).
// Shapes everywhere are in ONNX order (outermost first).
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"

namespace lowbit {

class ThreadPool;

// What prepare() knows about one input or output.
struct TensorInfo {
    DType dtype = DType::Undefined;  // Undefined for an absent optional input
    Shape shape;
    // The value, when known at plan time (initializer, Constant, or a folded subgraph such as
    // Shape -> Gather). Shape-parameter inputs (Reshape's shape, Slice's starts, ...) must be
    // known here; prepare() rejects the node otherwise.
    std::optional<Tensor> value;

    bool present() const { return dtype != DType::Undefined; }
};

struct PrepareContext {
    const Node& node;
    int64_t opset;  // default-domain opset of the model
    std::vector<TensorInfo> inputs;   // one per node input; absent optional inputs not present()
    std::vector<TensorInfo> outputs;  // one per node output; prepare() fills dtype and shape

    size_t num_inputs() const { return inputs.size(); }
    bool has_input(size_t i) const { return i < inputs.size() && inputs[i].present(); }
    // A prepare() may set an output's value directly (Shape, Constant, ConstantOfShape, ...);
    // the executor then treats it as a constant and never runs the node.
    void set_output_value(size_t i, Tensor t) {
        outputs[i].dtype = t.dtype();
        outputs[i].shape = t.shape();
        outputs[i].value = std::move(t);
    }
};

struct RunContext {
    const Node& node;
    std::span<const Tensor> inputs;  // absent optional inputs are empty Tensors
    std::span<Tensor> outputs;       // allocated with the prepared dtype/shape, contents undefined
    ThreadPool& pool;
};

class Kernel {
public:
    virtual ~Kernel() = default;
    virtual Status prepare(PrepareContext& ctx) = 0;
    virtual Status run(RunContext& ctx) = 0;
    // A kernel whose outputs are, after prepare(), always contiguous runs of input 0's elements
    // (copies the fused program replaces by aliases, memory_plan.h alias_copy_steps) says where
    // each output's run starts, in elements of input 0; empty when they are not such runs.
    virtual std::vector<int64_t> output_runs_of_input() const { return {}; }
};

}  // namespace lowbit
