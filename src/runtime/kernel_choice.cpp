#include "runtime/kernel_choice.h"

#include <fmt/format.h>

namespace lowbit {

std::vector<cpu::Operand> operands_of(const std::vector<std::string>& names, const TensorFacts& t,
                                      const Program& p) {
    std::vector<cpu::Operand> ops;
    for (const auto& name : names) {
        cpu::Operand o;
        if (!name.empty()) {
            const TensorDesc& d = t.descs.at(name);
            o.dtype = d.dtype;
            o.shape = d.shape;
            auto c = t.constants.find(name);
            if (c != t.constants.end())
                o.constant = &c->second;
            else
                o.layout = p.layout_of(name);
        }
        ops.push_back(std::move(o));
    }
    return ops;
}

cpu::FastPlan choose_step_kernel(cpu::CpuBackend& backend, const Node& node, int64_t opset,
                                 const FusionMatch& match, const TensorFacts& t, const Program& p,
                                 bool* fused, std::vector<std::string>& warnings) {
    // The outputs the backend sees are the anchor's (the conv's), fused or not.
    const std::vector<cpu::Operand> out_ops = operands_of(node.outputs, t, p);
    *fused = false;
    cpu::FastPlan plan;
    if (match.any()) {
        plan = backend.choose(node, opset, operands_of(match.inputs, t, p), out_ops, match.conv,
                              warnings);
        *fused = plan.op != nullptr;
    }
    if (!plan.op) plan = backend.choose(node, opset, operands_of(node.inputs, t, p), out_ops, {},
                                        warnings);
    return plan;
}

cpu::FastPlan plain_plan(size_t n_inputs, size_t n_outputs) {
    cpu::FastPlan plan;
    plan.in_layouts.assign(n_inputs, Layout::Plain);
    plan.out_layouts.assign(n_outputs, Layout::Plain);
    return plan;
}

std::string StorageLayouts::storage(const std::string& name, Layout want) {
    if (name.empty()) return name;
    auto c = constants_.find(name);
    const Layout have = c != constants_.end() ? Layout::Plain : p_.layout_of(name);
    if (have == want) return name;
    // [N, C, 1, 1] (the squeeze-excitation scales) and [N, 1, H, W]: the stored bytes already
    // are the wanted layout, so readers take the tensor itself and no reorder step is added.
    const Shape& shape = c != constants_.end() ? c->second.shape() : p_.stored.at(name).shape;
    if (same_bytes_in_layouts(shape)) return name;
    const std::string key = name + "\x1f" + layout_name(want);
    auto it = aliases_.find(key);
    if (it != aliases_.end()) return it->second;
    if (c != constants_.end()) {
        Tensor t(c->second.dtype(), c->second.shape());
        convert_layout(c->second, have, t, want, tasks_);
        p_.constants[key] = t;
    } else {
        const Stored& src = p_.stored.at(name);
        p_.stored[key] = {src.dtype, src.shape, want};
        Step s;
        s.in = {name};
        s.in_layouts = {have};
        s.out = {key};
        s.reorder_to = want;
        s.label = fmt::format("Reorder {}->{}", layout_name(have), layout_name(want));
        p_.steps.push_back(std::move(s));
    }
    aliases_[key] = key;
    return key;
}

}  // namespace lowbit
