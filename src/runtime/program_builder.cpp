#include "runtime/program_builder.h"

#include <fmt/format.h>

#include <cstdio>
#include <functional>
#include <unordered_set>

#include "runtime/fusion.h"
#include "runtime/kernel_choice.h"
#include "runtime/lifetimes.h"
#include "runtime/memory_plan.h"

namespace lowbit {

namespace {

// A QuantizeLinear step whose int8 result is read only by a reorder to NHWC (the input
// image's quantization before the first int8 conv) writes NHWC itself; the reorder goes.
void fold_quantize_reorders(Program& p, const FusionGraph& fg) {
    std::unordered_map<std::string, int> readers;
    std::unordered_map<std::string, size_t> producer;
    for (size_t k = 0; k < p.steps.size(); ++k) {
        for (const auto& in : p.steps[k].in) ++readers[in];
        for (const auto& out : p.steps[k].out) producer[out] = k;
    }
    std::vector<bool> drop(p.steps.size(), false);
    for (size_t k = 0; k < p.steps.size(); ++k) {
        Step& r = p.steps[k];
        if (r.node != kNoNode || r.reorder_to != Layout::Nhwc || r.in.size() != 1) continue;
        const std::string& x = r.in[0];
        auto pr = producer.find(x);
        if (pr == producer.end() || readers[x] != 1 || fg.graph_outputs.count(x)) continue;
        Step& q = p.steps[pr->second];
        if (!q.fast || q.kernel != "qdq_int8" || q.out.size() != 1 ||
            fg.graph.nodes[q.node].op_type != "QuantizeLinear" || !q.fast->write_output_nhwc()) {
            continue;
        }
        q.out[0] = r.out[0];
        q.label = q.fast->describe();
        drop[k] = true;
    }
    std::vector<Step> kept;
    for (size_t k = 0; k < p.steps.size(); ++k) {
        if (!drop[k]) kept.push_back(std::move(p.steps[k]));
    }
    p.steps = std::move(kept);
}

// One step per run-time node (or per fused group), in plan order, with reorder steps inserted
// before the steps that need another layout.
//
// Deferred DequantizeLinear (fused programs with lowp): a run-time DequantizeLinear whose
// output is no graph output gets its step only when a later step reads its output as float;
// an int8 Q/DQ conv step reads the DequantizeLinear's int8 input instead, so a DQ that only
// feeds such steps never runs.
void add_steps(const PlannedModel& pm, cpu::CpuBackend* backend, const ThreadPool& tasks,
               ProgramKind kind, Program& p) {
    const bool lowp = kind.fast && kind.fuse && kind.lowp;
    const FusionGraph fg(pm.graph, pm.descs, pm.order, pm.outputs,
                         kind.fast && kind.fuse ? &pm.constants : nullptr, lowp);
    const TensorFacts facts{pm.descs, pm.constants};
    StorageLayouts layouts(p, pm.constants, tasks);
    std::unordered_map<std::string, size_t> deferred;  // DQ output -> its node, not yet planned
    if (lowp) {
        for (size_t idx : pm.order) {
            const Node& n = pm.graph.nodes[idx];
            if (n.op_type == "DequantizeLinear" && n.outputs.size() == 1 &&
                !fg.graph_outputs.count(n.outputs[0])) {
                deferred[n.outputs[0]] = idx;
            }
        }
    }
    // A nearest Resize that an int8 Concat step will read as codes (fusion.h) is deferred the
    // same way: planned only if that step falls back to the float Concat.
    if (lowp) {
        for (size_t idx : pm.order) {
            if (pm.graph.nodes[idx].op_type != "Concat") continue;
            const FusionMatch mv = match_fusion(fg, idx, [](const std::string&) { return true; });
            if (!mv.qmove) continue;
            for (const auto& up : mv.qmove->upsample) {
                if (up.resize) deferred[up.resize->outputs[0]] = fg.producer.at(up.resize->outputs[0]);
            }
        }
    }
    // A deferred DQ's output counts as produced when its input is (the DQ then runs on demand).
    auto produced = [&](const std::string& name) {
        if (p.stored.count(name)) return true;
        auto d = deferred.find(name);
        return d != deferred.end() && p.stored.count(pm.graph.nodes[d->second].inputs[0]) > 0;
    };
    std::vector<bool> covered(pm.graph.nodes.size(), false);
    std::vector<std::string> warnings;
    KernelReport& report = p.report;
    std::function<void(size_t, bool)> plan_node = [&](size_t idx, bool defer_ok) {
        const Node& node = pm.graph.nodes[idx];
        if (defer_ok && node.outputs.size() == 1 && deferred.count(node.outputs[0])) return;
        Step step;
        step.node = idx;
        std::vector<std::string> in_names = node.inputs;
        std::vector<std::string> outs = node.outputs;
        cpu::FastPlan plan;
        // A deferred DequantizeLinear that this step may read as float runs now, just before
        // it (and before its kernel is chosen, which looks at the layouts of its inputs).
        auto emit_deferred = [&](const FusionMatch& m) {
            std::vector<std::string> names = m.any() ? m.inputs : node.inputs;
            if (!m.quant && !m.qmove) names.insert(names.end(), node.inputs.begin(), node.inputs.end());
            for (const auto& name : names) {
                auto d = deferred.find(name);
                if (d == deferred.end()) continue;
                const size_t dq = d->second;
                deferred.erase(d);
                plan_node(dq, false);
            }
        };
        if (kind.fast) {
            FusionMatch match;
            if (kind.fuse) match = match_fusion(fg, idx, produced);
            emit_deferred(match);
            bool fused = false;
            plan = choose_step_kernel(*backend, node, pm.opset, match, facts, p, &fused,
                                      warnings);
            std::string qdq_fallback = match.qdq_fallback;
            if (match.quant && !fused) {
                // The int8 step was refused: the float patterns, on the dequantized input.
                qdq_fallback = match.quant->fallback.empty() ? "no low-precision kernel took it"
                                                             : match.quant->fallback;
                match = match_fusion(fg, idx, produced, false);
                emit_deferred(match);
                plan = choose_step_kernel(*backend, node, pm.opset, match, facts, p, &fused,
                                          warnings);
            }
            if (match.qmove && !fused) {
                // The int8 Concat / MaxPool was refused: the float kernels, on dequantized data.
                report.fallbacks.push_back(
                    {node.name.empty() ? fmt::format("{} #{}", node.op_type, idx) : node.name,
                     match.qmove->fallback.empty() ? "no int8 kernel took it"
                                                   : match.qmove->fallback});
                ++report.qdq_moves;
                match = match_fusion(fg, idx, produced, false);
                emit_deferred(match);
                plan = choose_step_kernel(*backend, node, pm.opset, match, facts, p, &fused,
                                          warnings);
            } else if (match.qmove) {
                ++report.qdq_moves;
                ++report.int8_moves;
            }
            if (match.quant || !qdq_fallback.empty()) ++report.qdq_convs;
            if (match.quant) {
                ++(match.quant->codes == DType::Int8 ? report.int8_convs : report.fp8_convs);
            }
            if (!qdq_fallback.empty()) {
                report.fallbacks.push_back(
                    {node.name.empty() ? fmt::format("{} #{}", node.op_type, idx) : node.name,
                     qdq_fallback});
            }
            if (fused) {
                step.fused = match.fused;
                for (size_t k : match.fused) covered[k] = true;
                in_names = match.inputs;
                outs = match.outputs;
            }
        } else {
            plan = plain_plan(in_names.size(), outs.size());
        }
        for (size_t i = 0; i < in_names.size(); ++i) {
            step.in.push_back(layouts.storage(in_names[i], plan.in_layouts[i]));
        }
        for (size_t o = 0; o < outs.size(); ++o) {
            if (outs[o].empty()) continue;
            const TensorDesc& d = pm.descs.at(outs[o]);
            p.stored[outs[o]] = {d.dtype, d.shape, plan.out_layouts[o]};
        }
        step.in_layouts = plan.in_layouts;
        step.out = outs;
        step.fast = std::move(plan.op);
        step.kernel = plan.entry.empty() ? "reference" : std::string(plan.entry);
        step.label = step_label(step, p, pm.graph);
        p.steps.push_back(std::move(step));
    };
    for (size_t idx : pm.order) {
        if (!covered[idx]) plan_node(idx, true);
    }
    if (lowp) fold_quantize_reorders(p, fg);
    report.dq_skipped = 0;
    for (const auto& [name, idx] : deferred) {
        report.dq_skipped += pm.graph.nodes[idx].op_type == "DequantizeLinear" ? 1 : 0;
    }
    for (const Step& st : p.steps) ++report.kernels[st.node == kNoNode ? "reorder" : st.kernel];
    for (const auto& w : warnings) fmt::print(stderr, "lowbit: warning: {}\n", w);
}

}  // namespace

Result<std::unique_ptr<Program>> build_program(const PlannedModel& pm, cpu::CpuBackend* backend,
                                               const ThreadPool& tasks, ProgramKind kind) {
    LOWBIT_CHECK(!kind.fast || backend, "a fast program needs a backend");
    auto prog = std::make_unique<Program>();
    Program& p = *prog;
    for (const auto& d : pm.inputs) p.stored[d.name] = {d.dtype, d.shape, Layout::Plain};
    add_steps(pm, backend, tasks, kind, p);

    std::unordered_set<std::string> graph_outputs;
    std::vector<std::string> input_names, output_names;
    for (const auto& d : pm.outputs) {
        graph_outputs.insert(d.name);
        output_names.push_back(d.name);
    }
    for (const auto& d : pm.inputs) input_names.push_back(d.name);
    if (kind.fuse) {
        fold_splits(p, pm.graph, graph_outputs);
        plan_in_place_concat(p, pm.graph, graph_outputs);
        plan_quantized_concat_slices(p, pm.graph, graph_outputs);
        alias_copy_steps(p, pm.kernels);
        alias_concat_inputs(p, pm.graph, {input_names.begin(), input_names.end()});
        for (Step& st : p.steps) st.label = step_label(st, p, pm.graph);
    }

    // Each run-time tensor lives from the step that writes it to its last reader (or its
    // aliases' last reader); graph inputs from before the first step, graph outputs to the end.
    const auto lifetimes = tensor_lifetimes(p.steps, input_names, output_names, p.aliases);
    plan_program_memory(p, lifetimes, kind.reuse, static_cast<int>(p.steps.size()));
    auto slot = [&](const std::string& name) {
        auto it = p.slot_of.find(name);
        return it == p.slot_of.end() ? kNoNode : it->second;
    };
    for (Step& st : p.steps) {
        for (const auto& name : st.in) {
            st.in_views.push_back(name.empty() ? Tensor() : program_view(p, pm, name));
            st.in_ids.push_back(name.empty() ? kNoNode : slot(name));
        }
        for (const auto& name : st.out) {
            st.out_views.push_back(name.empty() ? Tensor() : program_view(p, pm, name));
            st.out_ids.push_back(name.empty() ? kNoNode : slot(name));
        }
    }
    return prog;
}

std::string step_label(const Step& s, const Program& p, const Graph& g) {
    if (s.node == kNoNode) return s.label;
    if (s.fast) return s.fast->describe();
    const Node& node = g.nodes[s.node];
    bool nhwc = false;
    for (const auto& o : s.out) nhwc |= !o.empty() && p.layout_of(o) == Layout::Nhwc;
    return fmt::format("{} [ref{}]", node.op_type, nhwc ? " nhwc" : "");
}

Tensor program_view(const Program& p, const PlannedModel& pm, const std::string& name) {
    auto c = pm.constants.find(name);
    if (c != pm.constants.end()) return c->second;
    auto pc = p.constants.find(name);
    if (pc != p.constants.end()) return pc->second;
    const Stored& d = p.stored.at(name);
    auto a = p.aliases.find(name);
    const size_t offset = a == p.aliases.end() ? 0 : a->second.offset;
    return Tensor(d.dtype, d.shape, p.arena, p.slots[p.slot_of.at(name)].offset + offset);
}

}  // namespace lowbit
