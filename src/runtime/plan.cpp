#include "runtime/plan.h"

#include <algorithm>

#include "runtime/registry.h"

namespace lowbit {

namespace {

Status check_node_supported(const Node& n) {
    if (!n.domain.empty() && n.domain != "ai.onnx") {
        return unsupported("node {} is in domain '{}'; lowbit runs only the default ONNX domain",
                           n.describe(), n.domain);
    }
    return Status::ok();
}

// The shape of run-time input `vi`: the override when given (which must agree with the
// model's rank and fixed dimensions), else the model's, which must then be fixed.
Result<Shape> input_shape(const ValueInfo& vi, const std::map<std::string, Shape>& overrides) {
    auto ov = overrides.find(vi.name);
    if (ov != overrides.end()) {
        if (vi.has_shape && vi.dims.size() != ov->second.size()) {
            return invalid("input '{}': override shape {} has rank {}, the model declares {}",
                           vi.name, shape_str(ov->second), ov->second.size(), vi.shape_str());
        }
        for (size_t i = 0; vi.has_shape && i < vi.dims.size(); ++i) {
            if (vi.dims[i].is_fixed() && vi.dims[i].value != ov->second[i]) {
                return invalid(
                    "input '{}': override shape {} conflicts with the model's fixed "
                    "shape {}",
                    vi.name, shape_str(ov->second), vi.shape_str());
            }
        }
        return ov->second;
    }
    if (!vi.has_shape) {
        return invalid("input '{}' has no declared shape; give one with --input-shape", vi.name);
    }
    Shape shape;
    for (const auto& dim : vi.dims) {
        if (!dim.is_fixed()) {
            return invalid(
                "input '{}' has a symbolic shape {}; give a fixed one with "
                "--input-shape {}:1,3,640,640 (for example)",
                vi.name, vi.shape_str(), vi.name);
        }
        shape.push_back(dim.value);
    }
    return shape;
}

Status resolve_inputs(const std::map<std::string, Shape>& overrides, PlannedModel& pm) {
    for (const auto& [name, t] : pm.graph.initializers) {
        pm.constants[name] = t;
        pm.descs[name] = {name, t.dtype(), t.shape()};
    }
    // Graph inputs that are not initializers are the runtime inputs.
    for (const auto& vi : pm.graph.inputs) {
        if (pm.constants.count(vi.name)) continue;
        TensorDesc d{vi.name, vi.dtype, {}};
        LOWBIT_ASSIGN(d.shape, input_shape(vi, overrides));
        if (d.dtype == DType::Undefined) {
            return invalid("input '{}' has no element type", vi.name);
        }
        pm.descs[vi.name] = d;
        pm.inputs.push_back(d);
    }
    for (const auto& [name, shape] : overrides) {
        if (!std::any_of(pm.inputs.begin(), pm.inputs.end(),
                         [&](const TensorDesc& d) { return d.name == name; })) {
            return invalid("--input-shape names '{}', which is not a graph input", name);
        }
    }
    return Status::ok();
}

// Prepares node `idx`: its outputs' descs, and either a constant value for each (known at
// prepare time, or folded by running the node now) or a place in the run-time order.
Status prepare_node(size_t idx, const KernelRegistry& registry, ThreadPool& pool,
                    PlannedModel& pm) {
    const Node& node = pm.graph.nodes[idx];
    LOWBIT_TRY(check_node_supported(node));
    std::unique_ptr<Kernel> kernel = registry.create(node.op_type);
    if (!kernel) {
        return unsupported("node {}: op type '{}' is not supported by lowbit", node.describe(),
                           node.op_type);
    }
    PrepareContext ctx{node, pm.opset, {}, {}};
    bool all_const = true;
    for (const auto& in : node.inputs) {
        TensorInfo info;
        if (!in.empty()) {
            auto it = pm.descs.find(in);
            if (it == pm.descs.end()) {
                return invalid("node {}: input '{}' is not produced before it", node.describe(),
                               in);
            }
            info.dtype = it->second.dtype;
            info.shape = it->second.shape;
            auto c = pm.constants.find(in);
            if (c != pm.constants.end())
                info.value = c->second;
            else
                all_const = false;
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
        pm.descs[node.outputs[o]] = {node.outputs[o], ctx.outputs[o].dtype, ctx.outputs[o].shape};
    }
    bool outputs_known = std::all_of(ctx.outputs.begin(), ctx.outputs.end(),
                                     [](const TensorInfo& t) { return t.value.has_value(); });
    if (outputs_known) {
        for (size_t o = 0; o < node.outputs.size(); ++o) {
            if (!node.outputs[o].empty()) pm.constants[node.outputs[o]] = *ctx.outputs[o].value;
        }
        return Status::ok();
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
            if (!node.outputs[o].empty()) pm.constants[node.outputs[o]] = outs[o];
        }
        return Status::ok();
    }
    pm.kernels[idx] = std::move(kernel);
    pm.order.push_back(idx);
    return Status::ok();
}

}  // namespace

Status plan_model(const Model& model, const std::map<std::string, Shape>& input_shapes,
                  ThreadPool& pool, PlannedModel& pm) {
    pm.graph = model.graph;
    pm.opset = model.default_opset();
    if (pm.opset == 0) return invalid("model imports no default-domain (ai.onnx) opset");
    LOWBIT_TRY(resolve_inputs(input_shapes, pm));

    LOWBIT_ASSIGN(std::vector<size_t> topo, topological_order(pm.graph));
    const KernelRegistry& registry = KernelRegistry::builtin();
    pm.kernels.resize(pm.graph.nodes.size());
    for (size_t idx : topo) LOWBIT_TRY(prepare_node(idx, registry, pool, pm));

    for (const auto& vo : pm.graph.outputs) {
        auto it = pm.descs.find(vo.name);
        if (it == pm.descs.end())
            return invalid("graph output '{}' is not produced by any node", vo.name);
        pm.outputs.push_back(it->second);
    }
    return Status::ok();
}

}  // namespace lowbit
