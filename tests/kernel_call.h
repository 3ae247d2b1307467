// Runs registered (reference) kernels outside the executor, without gtest: build a Node from
// a call, prepare() and run() the kernel exactly as the executor would (including plan-time
// constant inputs), and make and read small tensors. Used by the gtest helpers
// (kernel_test_util.h) and by the op harness (tests/ops/lowbit_ops.cpp).
//
//   KernelCall call{"Add", {f32({2, 3}, {...}), f32({3}, {...})}};
//   auto r = run_kernel(call);              // Result<std::vector<Tensor>>
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "ir/graph.h"
#include "runtime/kernel.h"
#include "runtime/registry.h"

namespace lowbit::test {

struct KernelCall {
    std::string op;
    std::vector<Tensor> inputs;  // an empty Tensor() is an absent optional input
    std::map<std::string, Attr> attrs = {};
    int64_t opset = 19;
    size_t num_outputs = 1;
    // Inputs whose values prepare() sees (initializers / folded constants). Shape-parameter
    // inputs (axes, Reshape's shape, ...) usually need this.
    std::vector<size_t> constant_inputs = {};
    bool all_constant = false;  // every present input is known at plan time
    int n_threads = 2;
};

struct KernelOutcome {
    Status status;                     // the first failure of create, prepare or run
    std::vector<TensorInfo> prepared;  // what prepare() set for each output
    std::vector<Tensor> outputs;
};

// The node a call describes: inputs "in<i>" ("" for absent ones), outputs "out<i>".
inline Node make_node(const KernelCall& call) {
    Node node;
    node.name = "test_" + call.op;
    node.op_type = call.op;
    node.attrs = call.attrs;
    for (size_t i = 0; i < call.inputs.size(); ++i) {
        node.inputs.push_back(call.inputs[i].empty() ? "" : "in" + std::to_string(i));
    }
    for (size_t i = 0; i < call.num_outputs; ++i) node.outputs.push_back("out" + std::to_string(i));
    return node;
}

// A registered kernel created and prepared for a call, as the executor plans a node.
struct PreparedCall {
    Node node;
    std::unique_ptr<Kernel> kernel;
    std::vector<TensorInfo> outputs;  // what prepare() set for each output
    bool all_values = false;          // prepare() set every output's value: run() is skipped
};

inline Status prepare_call(const KernelCall& call, PreparedCall& p) {
    p.node = make_node(call);
    p.kernel = KernelRegistry::builtin().create(call.op);
    if (!p.kernel) return unsupported("no kernel registered for op {}", call.op);
    PrepareContext pctx{p.node, call.opset, {}, {}};
    for (size_t i = 0; i < call.inputs.size(); ++i) {
        TensorInfo info;
        const Tensor& t = call.inputs[i];
        if (!t.empty()) {
            info.dtype = t.dtype();
            info.shape = t.shape();
            bool is_const = call.all_constant;
            for (size_t c : call.constant_inputs) is_const = is_const || c == i;
            if (is_const) info.value = t;
        }
        pctx.inputs.push_back(std::move(info));
    }
    pctx.outputs.resize(call.num_outputs);
    const Status s = p.kernel->prepare(pctx);
    p.outputs = pctx.outputs;
    p.all_values = true;
    for (const TensorInfo& o : p.outputs) p.all_values = p.all_values && o.value.has_value();
    return s;
}

// Output tensors of the prepared dtypes and shapes (contents undefined).
inline std::vector<Tensor> allocate_outputs(const PreparedCall& p) {
    std::vector<Tensor> outs;
    for (const TensorInfo& o : p.outputs) outs.emplace_back(o.dtype, o.shape);
    return outs;
}

inline Status run_prepared(const PreparedCall& p, std::span<const Tensor> inputs,
                           std::vector<Tensor>& outputs, ThreadPool& pool) {
    RunContext rctx{p.node, inputs, std::span<Tensor>(outputs), pool};
    return p.kernel->run(rctx);
}

// Runs prepare() then run() (unless prepare() already set every output's value, as the executor
// would then skip the node). Failures land in `status`.
inline KernelOutcome run_kernel_full(const KernelCall& call) {
    KernelOutcome out;
    PreparedCall p;
    out.status = prepare_call(call, p);
    out.prepared = p.outputs;
    if (!out.status.is_ok()) return out;
    if (p.all_values) {
        for (const TensorInfo& o : p.outputs) out.outputs.push_back(*o.value);
        return out;
    }
    out.outputs = allocate_outputs(p);
    ThreadPool pool(call.n_threads);
    out.status = run_prepared(p, call.inputs, out.outputs, pool);
    return out;
}

inline Result<std::vector<Tensor>> run_kernel(const KernelCall& call) {
    KernelOutcome o = run_kernel_full(call);
    if (!o.status.is_ok()) return o.status;
    return std::move(o.outputs);
}

// ---- tensor makers -------------------------------------------------------------------------

inline Tensor f32(Shape shape, const std::vector<float>& v) {
    return Tensor::from_vector(DType::Float32, std::move(shape), v);
}
inline Tensor f64(Shape shape, const std::vector<double>& v) {
    return Tensor::from_vector(DType::Float64, std::move(shape), v);
}
inline Tensor i64(Shape shape, const std::vector<int64_t>& v) {
    return Tensor::from_vector(DType::Int64, std::move(shape), v);
}
inline Tensor i32(Shape shape, const std::vector<int32_t>& v) {
    return Tensor::from_vector(DType::Int32, std::move(shape), v);
}
inline Tensor i8(Shape shape, const std::vector<int8_t>& v) {
    return Tensor::from_vector(DType::Int8, std::move(shape), v);
}
inline Tensor u8(Shape shape, const std::vector<uint8_t>& v) {
    return Tensor::from_vector(DType::UInt8, std::move(shape), v);
}
inline Tensor boolean(Shape shape, const std::vector<uint8_t>& v) {
    return Tensor::from_vector(DType::Bool, std::move(shape), v);
}
// Float16 tensor from float values (rounded to nearest even).
inline Tensor f16(Shape shape, const std::vector<float>& v) {
    std::vector<uint16_t> h;
    for (float x : v) h.push_back(float_to_half(x));
    return Tensor::from_vector(DType::Float16, std::move(shape), h);
}
// Raw bytes of a 1-byte dtype (FP8 codes, ...).
inline Tensor bytes(DType t, Shape shape, const std::vector<uint8_t>& v) {
    return Tensor::from_vector(t, std::move(shape), v);
}
inline Tensor scalar_f32(float v) {
    return f32({}, {v});
}
inline Tensor scalar_i64(int64_t v) {
    return i64({}, {v});
}

// ---- readers -------------------------------------------------------------------------------

template <typename T>
std::vector<T> values(const Tensor& t) {
    if (t.empty()) return {};
    return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}
// Any numeric dtype read as float/double/int64 (FP16/FP8 decoded).
inline std::vector<float> values_f32(const Tensor& t) {
    std::vector<float> v;
    for (int64_t i = 0; !t.empty() && i < t.numel(); ++i) {
        v.push_back(static_cast<float>(tensor_get_f64(t, i)));
    }
    return v;
}
inline std::vector<int64_t> values_i64(const Tensor& t) {
    std::vector<int64_t> v;
    for (int64_t i = 0; !t.empty() && i < t.numel(); ++i) v.push_back(tensor_get_i64(t, i));
    return v;
}

// ---- attributes ----------------------------------------------------------------------------

inline Attr attr_i(int64_t v) {
    return Attr::make_int(v);
}
inline Attr attr_f(float v) {
    return Attr::make_float(v);
}
inline Attr attr_ints(std::vector<int64_t> v) {
    return Attr::make_ints(std::move(v));
}
inline Attr attr_s(std::string v) {
    return Attr::make_string(std::move(v));
}

}  // namespace lowbit::test
