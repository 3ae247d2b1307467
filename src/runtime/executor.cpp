#include "runtime/executor.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "runtime/kernel.h"
#include "runtime/memory_plan.h"
#include "runtime/registry.h"

namespace lowbit {

struct Executor::Impl {
    Graph graph;
    int64_t opset = 0;
    ThreadPool pool;
    std::vector<TensorDesc> inputs, outputs;
    std::unordered_map<std::string, TensorDesc> descs;  // every tensor known at plan time
    std::unordered_map<std::string, Tensor> constants;  // initializers and folded values

    struct Step {
        size_t node_index;
        std::unique_ptr<Kernel> kernel;
    };
    std::vector<Step> steps;
    std::vector<size_t> order;  // node indices of steps

    // Run-time tensors live in one arena at planned offsets.
    std::unordered_map<std::string, size_t> slot_of;  // tensor name -> index in slots
    std::vector<MemorySlot> slots;
    size_t arena_bytes = 0;
    std::shared_ptr<Buffer> arena;

    TensorObserver observer;
    NodeOverride node_override;

    explicit Impl(int n_threads) : pool(n_threads) {}

    Status plan(const Model& model, const ExecutorOptions& opts);
    Result<std::vector<Tensor>> run(const std::vector<Tensor>& in);
    Tensor view(const std::string& name) const;
};

namespace {

Status check_node_supported(const Node& n) {
    if (!n.domain.empty() && n.domain != "ai.onnx") {
        return unsupported("node {} is in domain '{}'; lowbit runs only the default ONNX domain",
                           n.describe(), n.domain);
    }
    return Status::ok();
}

}  // namespace

Status Executor::Impl::plan(const Model& model, const ExecutorOptions& opts) {
    graph = model.graph;
    opset = model.default_opset();
    if (opset == 0) return invalid("model imports no default-domain (ai.onnx) opset");

    for (const auto& [name, t] : graph.initializers) {
        constants[name] = t;
        descs[name] = {name, t.dtype(), t.shape()};
    }
    // Graph inputs that are not initializers are the runtime inputs.
    for (const auto& vi : graph.inputs) {
        if (constants.count(vi.name)) continue;
        TensorDesc d{vi.name, vi.dtype, {}};
        auto ov = opts.input_shapes.find(vi.name);
        if (ov != opts.input_shapes.end()) {
            if (vi.has_shape && vi.dims.size() != ov->second.size()) {
                return invalid("input '{}': override shape {} has rank {}, the model declares {}",
                               vi.name, shape_str(ov->second), ov->second.size(), vi.shape_str());
            }
            for (size_t i = 0; vi.has_shape && i < vi.dims.size(); ++i) {
                if (vi.dims[i].is_fixed() && vi.dims[i].value != ov->second[i]) {
                    return invalid("input '{}': override shape {} conflicts with the model's fixed "
                                   "shape {}", vi.name, shape_str(ov->second), vi.shape_str());
                }
            }
            d.shape = ov->second;
        } else {
            if (!vi.has_shape) {
                return invalid("input '{}' has no declared shape; give one with --input-shape",
                               vi.name);
            }
            for (const auto& dim : vi.dims) {
                if (!dim.is_fixed()) {
                    return invalid("input '{}' has a symbolic shape {}; give a fixed one with "
                                   "--input-shape {}:1,3,640,640 (for example)",
                                   vi.name, vi.shape_str(), vi.name);
                }
                d.shape.push_back(dim.value);
            }
        }
        if (d.dtype == DType::Undefined) {
            return invalid("input '{}' has no element type", vi.name);
        }
        descs[vi.name] = d;
        inputs.push_back(d);
    }
    for (const auto& [name, shape] : opts.input_shapes) {
        if (!std::any_of(inputs.begin(), inputs.end(),
                         [&](const TensorDesc& d) { return d.name == name; })) {
            return invalid("--input-shape names '{}', which is not a graph input", name);
        }
    }

    LOWBIT_ASSIGN(std::vector<size_t> topo, topological_order(graph));
    const KernelRegistry& registry = KernelRegistry::builtin();
    for (size_t idx : topo) {
        const Node& node = graph.nodes[idx];
        LOWBIT_TRY(check_node_supported(node));
        std::unique_ptr<Kernel> kernel = registry.create(node.op_type);
        if (!kernel) {
            return unsupported("node {}: op type '{}' is not supported by lowbit", node.describe(),
                               node.op_type);
        }
        PrepareContext ctx{node, opset, {}, {}};
        bool all_const = true;
        for (const auto& in : node.inputs) {
            TensorInfo info;
            if (!in.empty()) {
                auto it = descs.find(in);
                if (it == descs.end()) {
                    return invalid("node {}: input '{}' is not produced before it", node.describe(), in);
                }
                info.dtype = it->second.dtype;
                info.shape = it->second.shape;
                auto c = constants.find(in);
                if (c != constants.end()) info.value = c->second;
                else all_const = false;
            }
            ctx.inputs.push_back(std::move(info));
        }
        ctx.outputs.resize(node.outputs.size());
        Status st = kernel->prepare(ctx);
        if (!st.is_ok()) return st;
        for (size_t o = 0; o < node.outputs.size(); ++o) {
            if (node.outputs[o].empty()) continue;
            if (ctx.outputs[o].dtype == DType::Undefined) {
                return error(StatusCode::Internal, "node {}: kernel did not set output {} type",
                             node.describe(), o);
            }
            for (int64_t d : ctx.outputs[o].shape) {
                if (d < 0) {
                    return error(StatusCode::Internal, "node {}: output '{}' has shape {}",
                                 node.describe(), node.outputs[o], shape_str(ctx.outputs[o].shape));
                }
            }
            descs[node.outputs[o]] = {node.outputs[o], ctx.outputs[o].dtype, ctx.outputs[o].shape};
        }
        bool outputs_known = std::all_of(ctx.outputs.begin(), ctx.outputs.end(),
                                         [](const TensorInfo& t) { return t.value.has_value(); });
        if (outputs_known) {
            for (size_t o = 0; o < node.outputs.size(); ++o) {
                if (!node.outputs[o].empty()) constants[node.outputs[o]] = *ctx.outputs[o].value;
            }
            continue;
        }
        if (all_const) {
            // Constant folding: every input is known, so run the node now, once.
            std::vector<Tensor> ins, outs;
            for (size_t i = 0; i < node.inputs.size(); ++i) {
                ins.push_back(ctx.inputs[i].value ? *ctx.inputs[i].value : Tensor());
            }
            for (const auto& o : ctx.outputs) outs.emplace_back(o.dtype, o.shape);
            RunContext rc{node, ins, outs, pool};
            LOWBIT_TRY(kernel->run(rc).with_context("while folding constants"));
            for (size_t o = 0; o < node.outputs.size(); ++o) {
                if (!node.outputs[o].empty()) constants[node.outputs[o]] = outs[o];
            }
            continue;
        }
        steps.push_back({idx, std::move(kernel)});
        order.push_back(idx);
    }

    for (const auto& vo : graph.outputs) {
        auto it = descs.find(vo.name);
        if (it == descs.end()) return invalid("graph output '{}' is not produced by any node", vo.name);
        outputs.push_back(it->second);
    }

    // Memory plan: each run-time tensor (graph inputs are copied in too) lives from the step
    // that defines it to its last reader; graph outputs live to the end.
    std::unordered_map<std::string, std::pair<int, int>> life;
    for (const auto& d : inputs) life[d.name] = {-1, -1};
    for (size_t s = 0; s < steps.size(); ++s) {
        const Node& node = graph.nodes[steps[s].node_index];
        for (const auto& in : node.inputs) {
            auto it = life.find(in);
            if (it != life.end()) it->second.second = static_cast<int>(s);
        }
        for (const auto& o : node.outputs) {
            if (!o.empty()) life[o] = {static_cast<int>(s), static_cast<int>(s)};
        }
    }
    const int end = static_cast<int>(steps.size());
    for (const auto& d : outputs) {
        auto it = life.find(d.name);
        if (it != life.end()) it->second.second = end;
    }
    std::vector<MemoryRequest> reqs;
    std::vector<std::string> names;
    for (const auto& [name, span] : life) {
        const TensorDesc& d = descs.at(name);
        reqs.push_back({static_cast<size_t>(shape_numel(d.shape)) * dtype_size(d.dtype), span.first,
                        std::max(span.first, span.second)});
        names.push_back(name);
    }
    // Sorted names make the plan deterministic (unordered_map order is not).
    std::vector<size_t> perm(names.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = i;
    std::sort(perm.begin(), perm.end(), [&](size_t a, size_t b) { return names[a] < names[b]; });
    std::vector<MemoryRequest> sorted_reqs;
    for (size_t i : perm) sorted_reqs.push_back(reqs[i]);
    slots = plan_memory(sorted_reqs, &arena_bytes);
    for (size_t k = 0; k < perm.size(); ++k) slot_of[names[perm[k]]] = k;
    arena = std::make_shared<Buffer>(arena_bytes);
    return Status::ok();
}

Tensor Executor::Impl::view(const std::string& name) const {
    auto c = constants.find(name);
    if (c != constants.end()) return c->second;
    const TensorDesc& d = descs.at(name);
    return Tensor(d.dtype, d.shape, arena, slots[slot_of.at(name)].offset);
}

Result<std::vector<Tensor>> Executor::Impl::run(const std::vector<Tensor>& in) {
    if (in.size() != inputs.size()) {
        return invalid("model has {} input(s), {} given", inputs.size(), in.size());
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
        const TensorDesc& d = inputs[i];
        if (in[i].dtype() != d.dtype || in[i].shape() != d.shape) {
            return invalid("input '{}': expected {} {}, got {} {}", d.name, dtype_name(d.dtype),
                           shape_str(d.shape), dtype_name(in[i].dtype()), shape_str(in[i].shape()));
        }
        Tensor dst = view(d.name);
        if (dst.nbytes()) std::memcpy(dst.raw(), in[i].raw(), dst.nbytes());
    }
    std::vector<Tensor> ins, outs;
    for (auto& step : steps) {
        const Node& node = graph.nodes[step.node_index];
        ins.clear();
        outs.clear();
        for (const auto& name : node.inputs) ins.push_back(name.empty() ? Tensor() : view(name));
        for (const auto& name : node.outputs) outs.push_back(name.empty() ? Tensor() : view(name));
        if (node_override) {
            std::vector<Tensor> before = ins;
            LOWBIT_TRY(node_override(step.node_index, node, ins));
            for (size_t i = 0; i < ins.size(); ++i) {
                if (ins[i].dtype() != before[i].dtype() || ins[i].shape() != before[i].shape()) {
                    return invalid("node override for {} changed input {} from {} {} to {} {}",
                                   node.describe(), i, dtype_name(before[i].dtype()),
                                   shape_str(before[i].shape()), dtype_name(ins[i].dtype()),
                                   shape_str(ins[i].shape()));
                }
            }
        }
        RunContext rc{node, ins, outs, pool};
        LOWBIT_TRY(step.kernel->run(rc));
        if (observer) {
            for (size_t o = 0; o < node.outputs.size(); ++o) {
                if (!node.outputs[o].empty()) observer(step.node_index, node, node.outputs[o], outs[o]);
            }
        }
    }
    std::vector<Tensor> result;
    for (const auto& d : outputs) result.push_back(view(d.name).clone());
    return result;
}

Executor::Executor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Executor::~Executor() = default;

Result<std::unique_ptr<Executor>> Executor::create(const Model& model, ExecutorOptions opts) {
    auto impl = std::make_unique<Impl>(opts.n_threads);
    LOWBIT_TRY(impl->plan(model, opts));
    return std::unique_ptr<Executor>(new Executor(std::move(impl)));
}

const std::vector<TensorDesc>& Executor::inputs() const { return impl_->inputs; }
const std::vector<TensorDesc>& Executor::outputs() const { return impl_->outputs; }
Result<std::vector<Tensor>> Executor::run(const std::vector<Tensor>& inputs) {
    return impl_->run(inputs);
}
void Executor::set_observer(TensorObserver obs) { impl_->observer = std::move(obs); }
void Executor::set_node_override(NodeOverride ov) { impl_->node_override = std::move(ov); }
size_t Executor::peak_activation_bytes() const { return impl_->arena_bytes; }
const std::vector<size_t>& Executor::plan_order() const { return impl_->order; }
const Graph& Executor::graph() const { return impl_->graph; }
const TensorDesc* Executor::tensor_desc(const std::string& name) const {
    auto it = impl_->descs.find(name);
    return it == impl_->descs.end() ? nullptr : &it->second;
}

}  // namespace lowbit
