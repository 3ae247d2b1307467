#include "runtime/incremental_runner.h"

#include <unordered_set>

#include "runtime/executor_impl.h"
#include "runtime/layout.h"

namespace lowbit {

IncrementalRunner::IncrementalRunner(std::unique_ptr<Executor> ex)
    : ex_(std::move(ex)), m_(*ex_->impl_) {
    const Program& p = *m_.main;
    step_of_node_.assign(m_.m.graph.nodes.size(), kNoNode);
    for (size_t si = 0; si < p.steps.size(); ++si) {
        if (p.steps[si].node != kNoNode) step_of_node_[p.steps[si].node] = si;
    }
}

IncrementalRunner::~IncrementalRunner() = default;

Result<std::unique_ptr<IncrementalRunner>> IncrementalRunner::create(const Model& model,
                                                                     ExecutorOptions opts) {
    LOWBIT_ASSIGN(std::unique_ptr<Executor> ex, Executor::create_planned(model, opts, true));
    return std::unique_ptr<IncrementalRunner>(new IncrementalRunner(std::move(ex)));
}

// The scratch arena has the main arena's layout: a step's scratch views sit at the offsets of
// its main views. Tensors without a slot (constants) are the same in both.
Status IncrementalRunner::make_scratch_views() {
    Program& p = *m_.main;
    p.scratch = std::make_shared<Buffer>(p.arena_bytes);
    auto scratch_view = [&](const std::string& name, const Tensor& main_view) {
        if (name.empty() || !p.slot_of.count(name)) return main_view;
        return Tensor(main_view.dtype(), main_view.shape(), p.scratch, main_view.offset());
    };
    for (Step& st : p.steps) {
        for (size_t i = 0; i < st.in.size(); ++i)
            st.scratch_in_views.push_back(scratch_view(st.in[i], st.in_views[i]));
        for (size_t o = 0; o < st.out.size(); ++o)
            st.scratch_out_views.push_back(scratch_view(st.out[o], st.out_views[o]));
    }
    return Status::ok();
}

Result<std::vector<Tensor>> IncrementalRunner::run_nodes(const std::vector<size_t>& nodes,
                                                         const std::vector<std::string>& fetch,
                                                         TensorView fetch_view,
                                                         bool with_outputs) {
    if (!m_.has_run) return invalid("run_nodes() needs a full run() first (none succeeded yet)");
    const Graph& graph = m_.m.graph;
    Program& p = *m_.main;
    std::vector<char> selected(graph.nodes.size(), 0);
    for (size_t n : nodes) {
        if (n >= graph.nodes.size()) {
            return invalid("run_nodes: node index {} is out of range ({} nodes)", n,
                           graph.nodes.size());
        }
        if (step_of_node_[n] == kNoNode) {
            return invalid(
                "run_nodes: node {} has no step (its outputs were folded into constants at load)",
                graph.nodes[n].describe());
        }
        selected[n] = 1;
    }
    if (!p.scratch) LOWBIT_TRY(make_scratch_views());
    // Memory slots written by this call: readers take those from the scratch arena.
    std::vector<char> fresh(p.slots.size(), 0);
    std::vector<Tensor> ins, outs;
    for (size_t si = 0; si < p.steps.size(); ++si) {
        const Step& st = p.steps[si];
        const bool run = st.node != kNoNode
                             ? selected[st.node] != 0
                             : st.in_ids[0] != kNoNode && fresh[st.in_ids[0]] != 0;  // reorder
        if (!run) continue;
        ins = st.in_views;
        for (size_t i = 0; i < st.in_ids.size(); ++i) {
            if (st.in_ids[i] != kNoNode && fresh[st.in_ids[i]]) ins[i] = st.scratch_in_views[i];
        }
        outs = st.scratch_out_views;
        LOWBIT_TRY(m_.exec_step(p, si, ins, outs));
        for (size_t id : st.out_ids) {
            if (id != kNoNode) fresh[id] = 1;
        }
    }
    auto result_of = [&](const std::string& name, TensorView tv) -> Result<Tensor> {
        auto c = m_.m.constants.find(name);
        if (c != m_.m.constants.end())
            return tv == TensorView::Stored ? c->second : c->second.clone();
        auto it = p.slot_of.find(name);
        if (it == p.slot_of.end()) return invalid("run_nodes: no tensor named '{}'", name);
        Tensor stored = m_.view(p, name);
        if (fresh[it->second])
            stored = Tensor(stored.dtype(), stored.shape(), p.scratch, stored.offset());
        if (tv == TensorView::Stored) return stored;
        Tensor t = m_.plain_copy(stored, p.layout_of(name));
        return t.buffer() == stored.buffer() ? t.clone() : t;
    };
    std::vector<Tensor> result;
    for (size_t o = 0; with_outputs && o < m_.m.outputs.size(); ++o) {
        LOWBIT_ASSIGN(Tensor t, result_of(m_.m.outputs[o].name, TensorView::Plain));
        result.push_back(std::move(t));
    }
    for (const auto& name : fetch) {
        LOWBIT_ASSIGN(Tensor t, result_of(name, fetch_view));
        result.push_back(std::move(t));
    }
    return result;
}

std::vector<size_t> IncrementalRunner::downstream_nodes(const std::vector<size_t>& nodes) const {
    const Graph& g = m_.m.graph;
    std::vector<char> seed(g.nodes.size(), 0);
    for (size_t n : nodes) {
        if (n < seed.size()) seed[n] = 1;
    }
    std::unordered_set<std::string> changed;
    std::vector<size_t> cone;
    for (size_t idx : m_.m.order) {
        const Node& node = g.nodes[idx];
        bool in = seed[idx] != 0;
        for (size_t i = 0; !in && i < node.inputs.size(); ++i) {
            in = !node.inputs[i].empty() && changed.count(node.inputs[i]) > 0;
        }
        if (!in) continue;
        cone.push_back(idx);
        for (const auto& o : node.outputs) {
            if (!o.empty()) changed.insert(o);
        }
    }
    return cone;
}

Status IncrementalRunner::add_constant_variant(size_t node, size_t input, const Tensor& value) {
    const PlannedModel& pm = m_.m;
    if (node >= pm.graph.nodes.size() || step_of_node_[node] == kNoNode) {
        return invalid("add_constant_variant: node {} has no run-time step", node);
    }
    const Node& n = pm.graph.nodes[node];
    auto c = input < n.inputs.size() ? pm.constants.find(n.inputs[input]) : pm.constants.end();
    if (c == pm.constants.end()) {
        return invalid("add_constant_variant: input {} of {} is not a constant", input,
                       n.describe());
    }
    if (value.dtype() != c->second.dtype() || value.shape() != c->second.shape()) {
        return invalid("add_constant_variant: {} input {} is {} {}, the variant {} {}",
                       n.describe(), input, dtype_name(c->second.dtype()),
                       shape_str(c->second.shape()), dtype_name(value.dtype()),
                       shape_str(value.shape()));
    }
    Program& p = *m_.main;
    Step& st = p.steps[step_of_node_[node]];
    if (st.variant_in.empty()) st.variant_in.resize(n.inputs.size());
    Tensor stored = value;
    if (st.in_layouts[input] != Layout::Plain) {
        stored = Tensor(value.dtype(), value.shape());
        convert_layout(value, Layout::Plain, stored, st.in_layouts[input], m_.pool);
    }
    st.variant_in[input] = stored;
    st.variant_fast.reset();
    if (!st.fast || !m_.backend) return Status::ok();
    // The same op planned again with the variant constants (weights prepared now, once).
    std::vector<Tensor> values(n.inputs.size());
    std::vector<cpu::Operand> ins, outs;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
        cpu::Operand o;
        const std::string& name = n.inputs[i];
        if (!name.empty()) {
            const TensorDesc& d = pm.descs.at(name);
            o.dtype = d.dtype;
            o.shape = d.shape;
            auto k = pm.constants.find(name);
            if (i < st.variant_in.size() && !st.variant_in[i].empty()) {
                values[i] = i == input ? value : k->second;
                o.constant = &values[i];
            } else if (k != pm.constants.end()) {
                o.constant = &k->second;
            } else {
                o.layout = p.layout_of(name);
            }
        }
        ins.push_back(std::move(o));
    }
    std::vector<Layout> out_layouts;
    for (const auto& name : n.outputs) {
        cpu::Operand o;
        if (!name.empty()) {
            o.dtype = pm.descs.at(name).dtype;
            o.shape = pm.descs.at(name).shape;
        }
        outs.push_back(std::move(o));
        out_layouts.push_back(name.empty() ? Layout::Plain : p.layout_of(name));
    }
    // Earlier variants of other inputs of this node: their plain values.
    for (size_t i = 0; i < n.inputs.size(); ++i) {
        if (i == input || st.variant_in[i].empty()) continue;
        Tensor v = st.variant_in[i];
        if (st.in_layouts[i] != Layout::Plain) {
            Tensor t(v.dtype(), v.shape());
            convert_layout(v, st.in_layouts[i], t, Layout::Plain, m_.pool);
            v = t;
        }
        values[i] = v;
    }
    std::vector<std::string> warnings;
    cpu::FastPlan plan = m_.backend->choose(n, pm.opset, ins, outs, {}, warnings);
    for (size_t o = 0; plan.op && o < n.outputs.size(); ++o) {
        if (!n.outputs[o].empty() && plan.out_layouts[o] != out_layouts[o]) plan.op.reset();
    }
    // Anything else than the planned layouts: keep the planned op (it honours replaced inputs).
    if (plan.op && plan.in_layouts == st.in_layouts) st.variant_fast = std::move(plan.op);
    return Status::ok();
}

void IncrementalRunner::use_constant_variants(const std::vector<size_t>& nodes) {
    m_.variant_on.assign(m_.m.graph.nodes.size(), 0);
    for (size_t n : nodes) {
        if (n < m_.variant_on.size()) m_.variant_on[n] = 1;
    }
}

Result<Tensor> IncrementalRunner::tensor(const std::string& name, TensorView view) const {
    auto c = m_.m.constants.find(name);
    if (c != m_.m.constants.end()) return view == TensorView::Stored ? c->second : c->second.clone();
    if (!m_.has_run) return invalid("tensor('{}'): no full run yet", name);
    if (!m_.main->slot_of.count(name)) return invalid("no run-time tensor named '{}'", name);
    if (view == TensorView::Stored) return m_.view(*m_.main, name);
    Tensor t = m_.to_plain(*m_.main, name);
    return t.buffer() == m_.view(*m_.main, name).buffer() ? t.clone() : t;
}

bool IncrementalRunner::stored_channels_last(const std::string& name) const {
    return !m_.m.constants.count(name) && m_.main->layout_of(name) == Layout::Nhwc;
}

}  // namespace lowbit
