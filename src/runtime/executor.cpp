// Executor: plan (shapes, kernels, constant folding), then one or two "programs" that run it.
//
// A program is the list of steps actually executed, with a storage layout per tensor and a
// memory plan. Three kinds are built from the same prepared nodes:
//  - reference (ExecutorOptions::reference_only): one step per node, reference kernels, plain
//    layouts: the executable spec;
//  - fast: optimized CPU ops (kernels/cpu), activations channels-last between convs, reorder
//    steps inserted where a plain-layout op reads an NHWC tensor (once per tensor); the conv
//    step also computes a following SiLU (Sigmoid + Mul) and residual Add, channel Splits of
//    its output, and its slices of channel Concats (no copy left for the Concat step);
//  - hooked (built on first use, when an observer or a node override is set): like fast but
//    without multi-node fusion, so that every node's inputs and outputs exist. Observer and
//    override see plain (ONNX-order) tensors: NHWC ones are converted on demand, only then.
// With keep_tensors the main program is a hooked one whose memory plan gives every tensor its
// own slot; run_nodes() then runs chosen steps of it with their outputs redirected to a scratch
// arena of the same layout (same offsets), and their inputs taken from the scratch arena where
// this partial run wrote them, else from the main arena.
// Graph outputs are always returned in plain layout.
//
// Threads: the fast program runs on a TaskPool (runtime/task_pool.h), not on OpenMP teams, and
// sets the calling thread's OpenMP thread count to 1 so that oneDNN stays inside its tasks;
// reference kernels inside it run on the calling thread.
//
// LOWBIT_PROFILE=1 in the environment times every step and prints per-op-kind totals to stderr
// when the executor is destroyed (LOWBIT_PROFILE=2 adds every step, slowest first).
#include "runtime/executor.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unordered_map>
#include <unordered_set>

#include "runtime/kernel.h"
#include "runtime/kernels/cpu/fast_ops.h"
#include "runtime/layout.h"
#include "runtime/memory_plan.h"
#include "runtime/registry.h"
#include "runtime/task_pool.h"

namespace lowbit {

namespace {

constexpr size_t kNoNode = static_cast<size_t>(-1);

struct Stored {
    DType dtype = DType::Undefined;
    Shape shape;  // logical (ONNX order)
    Layout layout = Layout::Plain;
};

struct Step {
    size_t node = kNoNode;      // graph node index; kNoNode for an inserted reorder
    std::vector<size_t> fused;  // further nodes this step computes (a fused SiLU's Sigmoid, Mul)
    std::vector<std::string> in, out;         // storage tensor names ("" = absent)
    std::vector<Layout> in_layouts;           // layout of each `in` tensor
    std::vector<Tensor> in_views, out_views;  // the tensors of in/out (the arena never moves)
    std::vector<size_t> in_ids, out_ids;      // memory slot of each in/out (kNoNode: none)
    std::vector<Tensor> scratch_in_views, scratch_out_views;  // the same in the scratch arena
    // add_constant_variant(): replaced constant inputs (in the step's layouts; empty: as
    // planned) and the fast op prepared with them (null: `fast` runs with them per call).
    std::vector<Tensor> variant_in;
    std::unique_ptr<cpu::FastOp> variant_fast;
    std::unique_ptr<cpu::FastOp> fast;  // null: the node's reference kernel, or a reorder
    Layout reorder_to = Layout::Plain;
    std::string label;  // profile key
};

struct Program {
    std::vector<Step> steps;
    std::unordered_map<std::string, Stored> stored;     // run-time tensors (graph ones and aliases)
    std::unordered_map<std::string, Tensor> constants;  // plan-time NHWC copies of constants
    std::unordered_map<std::string, size_t> slot_of;
    std::vector<MemorySlot> slots;
    size_t arena_bytes = 0;
    std::shared_ptr<Buffer> arena;
    std::shared_ptr<Buffer> scratch;  // run_nodes() outputs (keep_tensors), made on first use

    Layout layout_of(const std::string& name) const {
        auto it = stored.find(name);
        return it == stored.end() ? Layout::Plain : it->second.layout;
    }
};

struct ProfileEntry {
    double ms = 0;
    double cpu_ms = 0;  // CPU time of the whole process (all threads, spinning included)
    int64_t calls = 0;
};

double process_cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

bool env_profile_level(int* level) {
    const char* e = std::getenv("LOWBIT_PROFILE");
    if (e == nullptr || *e == '\0' || std::string(e) == "0") return false;
    *level = std::atoi(e) > 1 ? 2 : 1;
    return true;
}

Status check_node_supported(const Node& n) {
    if (!n.domain.empty() && n.domain != "ai.onnx") {
        return unsupported("node {} is in domain '{}'; lowbit runs only the default ONNX domain",
                           n.describe(), n.domain);
    }
    return Status::ok();
}

}  // namespace

struct Executor::Impl {
    Graph graph;
    int64_t opset = 0;
    ThreadPool pool;                  // OpenMP: constant folding and the reference program
    ThreadPool serial;                // reference kernels inside the fast program (see task_pool.h)
    std::unique_ptr<TaskPool> tasks;  // the fast path's threads
    bool reference_only = false;
    std::vector<TensorDesc> inputs, outputs;
    std::unordered_map<std::string, TensorDesc> descs;  // every tensor known at plan time
    std::unordered_map<std::string, Tensor> constants;  // initializers and folded values
    std::vector<size_t> order;                          // run-time nodes, in execution order
    std::vector<std::unique_ptr<Kernel>> kernels;       // reference kernel per graph node

    std::unique_ptr<cpu::CpuBackend> backend;  // null with reference_only
    std::unique_ptr<Program> main;             // fast (or reference) program
    std::unique_ptr<Program> hooked;           // built on first hooked run (fast mode only)

    TensorObserver observer;
    NodeOverride node_override;
    bool observe_all = true;
    std::unordered_set<std::string> observe_only;
    bool override_all = true;
    std::vector<char> override_only;  // by graph node index
    TensorView override_view = TensorView::Plain;

    bool keep_tensors = false;
    bool has_run = false;              // keep_tensors: the main arena holds a full run
    std::vector<size_t> step_of_node;  // keep_tensors: main-program step of each graph node
    std::vector<char> variant_on;      // by graph node index: run the constant variant

    Status add_constant_variant(size_t node, size_t input, const Tensor& value);

    int profile_level = 0;
    int64_t profile_runs = 0;
    std::unordered_map<std::string, ProfileEntry> profile;
    std::vector<double> step_ms, step_cpu_ms;  // per step of the main program (level 2)

    Impl(int n_threads, bool reference)
        : pool(n_threads),
          serial(1),
          tasks(std::make_unique<TaskPool>(reference ? 1 : pool.size())),
          reference_only(reference) {}
    ~Impl();

    Status plan(const Model& model, const ExecutorOptions& opts);
    Result<std::unique_ptr<Program>> build_program(bool fast, bool fuse, bool reuse);
    void plan_in_place_concat(Program& p, const std::unordered_set<std::string>& graph_outputs);
    void fold_splits(Program& p, const std::unordered_set<std::string>& graph_outputs);
    Result<std::vector<Tensor>> run(const std::vector<Tensor>& in);
    Result<std::vector<Tensor>> run_nodes(const std::vector<size_t>& nodes,
                                          const std::vector<std::string>& fetch,
                                          TensorView fetch_view, bool with_outputs);
    Tensor view(const Program& p, const std::string& name) const;
    Tensor to_plain(const Program& p, const std::string& name) const;
    Tensor plain_copy(const Tensor& stored, Layout layout) const;
    Status run_step(Program& p, Step& s, std::span<const Tensor> ins, std::span<Tensor> outs);
    Status exec_step(Program& p, size_t si, std::vector<Tensor>& ins, std::vector<Tensor>& outs);
    std::string label_for(const Step& s, const Program& p) const;
    void print_profile() const;
};

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
                    return invalid(
                        "input '{}': override shape {} conflicts with the model's fixed "
                        "shape {}",
                        vi.name, shape_str(ov->second), vi.shape_str());
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
                    return invalid(
                        "input '{}' has a symbolic shape {}; give a fixed one with "
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
    kernels.resize(graph.nodes.size());
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
                    return invalid("node {}: input '{}' is not produced before it", node.describe(),
                                   in);
                }
                info.dtype = it->second.dtype;
                info.shape = it->second.shape;
                auto c = constants.find(in);
                if (c != constants.end())
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
        kernels[idx] = std::move(kernel);
        order.push_back(idx);
    }

    for (const auto& vo : graph.outputs) {
        auto it = descs.find(vo.name);
        if (it == descs.end())
            return invalid("graph output '{}' is not produced by any node", vo.name);
        outputs.push_back(it->second);
    }

    env_profile_level(&profile_level);
    if (!reference_only) backend = std::make_unique<cpu::CpuBackend>(pool.size());
    keep_tensors = opts.keep_tensors;
    LOWBIT_ASSIGN(main,
                  build_program(!reference_only, !reference_only && !keep_tensors, !keep_tensors));
    if (keep_tensors) {
        step_of_node.assign(graph.nodes.size(), kNoNode);
        for (size_t si = 0; si < main->steps.size(); ++si) {
            if (main->steps[si].node != kNoNode) step_of_node[main->steps[si].node] = si;
        }
    }
    if (profile_level > 1) {
        step_ms.assign(main->steps.size(), 0.0);
        step_cpu_ms.assign(main->steps.size(), 0.0);
    }
    return Status::ok();
}

Result<std::unique_ptr<Program>> Executor::Impl::build_program(bool fast, bool fuse, bool reuse) {
    auto prog = std::make_unique<Program>();
    Program& p = *prog;
    for (const auto& d : inputs) p.stored[d.name] = {d.dtype, d.shape, Layout::Plain};

    std::unordered_set<std::string> graph_outputs;
    for (const auto& d : outputs) graph_outputs.insert(d.name);
    // Run-time consumers of each tensor (by node index), for fusion.
    std::unordered_map<std::string, std::vector<size_t>> consumers;
    for (size_t idx : order) {
        for (const auto& in : graph.nodes[idx].inputs) {
            if (!in.empty()) consumers[in].push_back(idx);
        }
    }
    auto sole_consumer = [&](const std::string& t, size_t node) {
        auto it = consumers.find(t);
        return it != consumers.end() && !graph_outputs.count(t) &&
               std::all_of(it->second.begin(), it->second.end(),
                           [&](size_t c) { return c == node; });
    };
    std::unordered_map<std::string, std::string> aliases;  // "name\x1f<layout>" -> alias name
    // The storage name of `name` in layout `want`: itself, or a copy made by a reorder step
    // (or at plan time, for constants) that is shared by every later reader.
    auto storage = [&](const std::string& name, Layout want) -> std::string {
        if (name.empty()) return name;
        auto c = constants.find(name);
        const Layout have = c != constants.end() ? Layout::Plain : p.layout_of(name);
        if (have == want) return name;
        const std::string key = name + "\x1f" + layout_name(want);
        auto it = aliases.find(key);
        if (it != aliases.end()) return it->second;
        if (c != constants.end()) {
            Tensor t(c->second.dtype(), c->second.shape());
            convert_layout(c->second, have, t, want, *tasks);
            p.constants[key] = t;
        } else {
            const Stored& src = p.stored.at(name);
            p.stored[key] = {src.dtype, src.shape, want};
            Step s;
            s.in = {name};
            s.in_layouts = {have};
            s.out = {key};
            s.reorder_to = want;
            s.label = fmt::format("Reorder {}->{}", layout_name(have), layout_name(want));
            p.steps.push_back(std::move(s));
        }
        aliases[key] = key;
        return key;
    };

    std::vector<bool> covered(graph.nodes.size(), false);
    std::vector<std::string> warnings;
    for (size_t idx : order) {
        if (covered[idx]) continue;
        const Node& node = graph.nodes[idx];
        Step step;
        step.node = idx;
        std::vector<std::string> in_names = node.inputs;
        std::vector<std::string> outs = node.outputs;
        cpu::FastPlan plan;
        if (fast) {
            auto operands = [&](const std::vector<std::string>& names) {
                std::vector<cpu::Operand> ops;
                for (const auto& name : names) {
                    cpu::Operand o;
                    if (!name.empty()) {
                        const TensorDesc& d = descs.at(name);
                        o.dtype = d.dtype;
                        o.shape = d.shape;
                        auto c = constants.find(name);
                        if (c != constants.end())
                            o.constant = &c->second;
                        else
                            o.layout = p.layout_of(name);
                    }
                    ops.push_back(std::move(o));
                }
                return ops;
            };
            const std::vector<cpu::Operand> out_ops = operands(node.outputs);
            // Conv -> Sigmoid -> Mul(conv, sigmoid) is SiLU, and a following Add(that, R) is a
            // residual connection; both are fused into the conv step when the intermediate
            // tensors feed nothing else.
            cpu::ConvFusion fusion;
            std::vector<size_t> fused;
            std::vector<std::string> fused_ins = in_names;
            std::vector<std::string> fused_outs = outs;
            if (fuse && node.op_type == "Conv" && outs.size() == 1) {
                const std::string& c = outs[0];
                size_t sig = kNoNode;
                auto it = consumers.find(c);
                if (it != consumers.end() && it->second.size() == 2 && !graph_outputs.count(c)) {
                    for (size_t k : it->second) {
                        const Node& n = graph.nodes[k];
                        if (n.op_type == "Sigmoid" && n.inputs.size() == 1 && n.outputs.size() == 1)
                            sig = k;
                    }
                    for (size_t k : it->second) {
                        const Node& n = graph.nodes[k];
                        if (sig == kNoNode || n.op_type != "Mul" || n.inputs.size() != 2 ||
                            n.outputs.size() != 1) {
                            continue;
                        }
                        const std::string& sg = graph.nodes[sig].outputs[0];
                        if (((n.inputs[0] == c && n.inputs[1] == sg) ||
                             (n.inputs[1] == c && n.inputs[0] == sg)) &&
                            sole_consumer(sg, k)) {
                            fusion.silu = true;
                            fused = {sig, k};
                            fused_outs = n.outputs;
                        }
                    }
                }
                const std::string& t = fused_outs[0];
                auto ct = consumers.find(t);
                if (ct != consumers.end() && ct->second.size() == 1 && !graph_outputs.count(t)) {
                    const Node& n = graph.nodes[ct->second[0]];
                    const std::string& r =
                        n.inputs.size() == 2 ? (n.inputs[0] == t ? n.inputs[1] : n.inputs[0]) : t;
                    if (n.op_type == "Add" && n.outputs.size() == 1 && r != t && !r.empty() &&
                        p.stored.count(r) && descs.at(r).shape == descs.at(t).shape &&
                        descs.at(r).dtype == DType::Float32) {
                        fusion.residual = true;
                        fused.push_back(ct->second[0]);
                        fused_outs = n.outputs;
                        fused_ins.resize(3);
                        fused_ins.push_back(r);
                    }
                }
            }
            if (fusion.any()) {
                plan = backend->choose(node, opset, operands(fused_ins), out_ops, fusion, warnings);
                if (plan.op) {
                    step.fused = fused;
                    for (size_t k : fused) covered[k] = true;
                    in_names = fused_ins;
                    outs = fused_outs;
                }
            }
            if (!plan.op) {
                plan = backend->choose(node, opset, operands(in_names), out_ops, {}, warnings);
            }
        } else {
            plan.in_layouts.assign(in_names.size(), Layout::Plain);
            plan.out_layouts.assign(outs.size(), Layout::Plain);
        }
        for (size_t i = 0; i < in_names.size(); ++i) {
            step.in.push_back(storage(in_names[i], plan.in_layouts[i]));
        }
        for (size_t o = 0; o < outs.size(); ++o) {
            if (outs[o].empty()) continue;
            const TensorDesc& d = descs.at(outs[o]);
            p.stored[outs[o]] = {d.dtype, d.shape, plan.out_layouts[o]};
        }
        step.in_layouts = plan.in_layouts;
        step.out = outs;
        step.fast = std::move(plan.op);
        step.label = label_for(step, p);
        p.steps.push_back(std::move(step));
    }
    for (const auto& w : warnings) fmt::print(stderr, "lowbit: warning: {}\n", w);
    if (fuse) {
        fold_splits(p, graph_outputs);
        plan_in_place_concat(p, graph_outputs);
    }

    // Memory plan: each run-time tensor lives from the step that writes it to its last reader;
    // graph inputs from before the first step, graph outputs to the end.
    std::unordered_map<std::string, std::pair<int, int>> life;
    for (const auto& d : inputs) life[d.name] = {-1, -1};
    // A concat buffer written in place has several writers: it lives from the first.
    for (size_t s = 0; s < p.steps.size(); ++s) {
        for (const auto& in : p.steps[s].in) {
            auto it = life.find(in);
            if (it != life.end()) it->second.second = static_cast<int>(s);
        }
        for (const auto& o : p.steps[s].out) {
            if (o.empty()) continue;
            auto it = life.find(o);
            if (it == life.end())
                life[o] = {static_cast<int>(s), static_cast<int>(s)};
            else
                it->second.second = static_cast<int>(s);
        }
    }
    const int end = static_cast<int>(p.steps.size());
    for (const auto& d : outputs) {
        auto it = life.find(d.name);
        if (it != life.end()) it->second.second = end;
    }
    std::vector<std::string> names;
    for (const auto& [name, span] : life) names.push_back(name);
    // Sorted names make the plan deterministic (unordered_map order is not).
    std::sort(names.begin(), names.end());
    std::vector<MemoryRequest> reqs;
    for (const auto& name : names) {
        const Stored& d = p.stored.at(name);
        const auto& span = life.at(name);
        // Without reuse every tensor lives through the whole run (keep_tensors).
        reqs.push_back({static_cast<size_t>(shape_numel(d.shape)) * dtype_size(d.dtype),
                        reuse ? span.first : -1, reuse ? std::max(span.first, span.second) : end});
    }
    p.slots = plan_memory(reqs, &p.arena_bytes);
    for (size_t k = 0; k < names.size(); ++k) p.slot_of[names[k]] = k;
    p.arena = std::make_shared<Buffer>(p.arena_bytes);
    auto slot = [&](const std::string& name) {
        auto it = p.slot_of.find(name);
        return it == p.slot_of.end() ? kNoNode : it->second;
    };
    for (Step& st : p.steps) {
        for (const auto& name : st.in) {
            st.in_views.push_back(name.empty() ? Tensor() : view(p, name));
            st.in_ids.push_back(name.empty() ? kNoNode : slot(name));
        }
        for (const auto& name : st.out) {
            st.out_views.push_back(name.empty() ? Tensor() : view(p, name));
            st.out_ids.push_back(name.empty() ? kNoNode : slot(name));
        }
    }
    return prog;
}

namespace {

// Who produces each tensor of a program (step, output index) and how many steps read it.
struct StepIndex {
    std::unordered_map<std::string, std::pair<size_t, size_t>> producer;
    std::unordered_map<std::string, int> reads;
};

StepIndex index_steps(const Program& p) {
    StepIndex ix;
    for (size_t si = 0; si < p.steps.size(); ++si) {
        const Step& st = p.steps[si];
        for (size_t o = 0; o < st.out.size(); ++o) {
            if (!st.out[o].empty()) ix.producer[st.out[o]] = {si, o};
        }
        for (const auto& in : st.in) {
            if (!in.empty()) ++ix.reads[in];
        }
    }
    return ix;
}

}  // namespace

// Split folding: a channel Split (NHWC) of a tensor that nothing else reads is done by the op
// that produces the tensor, which writes each part as a channel range while its output is in
// cache (YOLO's C2f: cv1 -> Split). The Split step disappears; the parts can then take part in
// in-place concatenation like any other output.
void Executor::Impl::fold_splits(Program& p, const std::unordered_set<std::string>& graph_outputs) {
    auto [producer, reads] = index_steps(p);
    std::vector<bool> drop(p.steps.size(), false);
    for (size_t k = 0; k < p.steps.size(); ++k) {
        Step& split = p.steps[k];
        if (!split.fast || split.node == kNoNode || graph.nodes[split.node].op_type != "Split" ||
            split.in.empty() || split.in[0].empty() || p.layout_of(split.in[0]) != Layout::Nhwc) {
            continue;
        }
        const std::string x = split.in[0];
        auto pr = producer.find(x);
        if (pr == producer.end() || reads[x] != 1 || graph_outputs.count(x)) continue;
        Step& prod = p.steps[pr->second.first];
        if (!prod.fast) continue;
        int64_t c0 = 0;
        bool first = true, folded = true;
        const Node& node = graph.nodes[split.node];
        for (size_t o = 0; o < split.out.size(); ++o) {
            const std::string& part = split.out[o];
            const int64_t c = node.outputs[o].empty() ? 0 : descs.at(node.outputs[o]).shape[1];
            if (!part.empty()) {
                const bool ok = prod.fast->add_channel_range_output(pr->second.second,
                                                                    prod.out.size(), c0, c0 + c);
                if (!ok) {
                    // Producers accept all valid ranges or none.
                    LOWBIT_CHECK(first, "{}: channel range output refused half way", prod.label);
                    folded = false;
                    break;
                }
                prod.out.push_back(part);
                first = false;
            }
            c0 += c;
        }
        if (!folded || first) continue;
        prod.fast->drop_dense(pr->second.second);
        prod.out[pr->second.second].clear();
        drop[k] = true;
    }
    std::vector<Step> kept;
    for (size_t k = 0; k < p.steps.size(); ++k) {
        if (!drop[k]) kept.push_back(std::move(p.steps[k]));
    }
    p.steps = std::move(kept);
}

// Channel concatenation in place: a fast op that produces a Concat input writes it straight
// into its channel slice of the concat buffer (and keeps its own tensor only when something else
// reads it), so the Concat step copies nothing, or less. Only for NHWC concats along channels
// in the fused program; the hooked program keeps every tensor for observers.
void Executor::Impl::plan_in_place_concat(Program& p,
                                          const std::unordered_set<std::string>& graph_outputs) {
    auto [producer, reads] = index_steps(p);
    for (size_t k = 0; k < p.steps.size(); ++k) {
        Step& cat = p.steps[k];
        if (!cat.fast || cat.node == kNoNode || graph.nodes[cat.node].op_type != "Concat" ||
            cat.out.size() != 1 || p.layout_of(cat.out[0]) != Layout::Nhwc) {
            continue;
        }
        const std::string buffer = cat.out[0];
        const int64_t total = p.stored.at(buffer).shape[1];
        const std::vector<std::string> ins = cat.in;
        int64_t offset = 0;
        for (size_t j = 0; j < ins.size(); ++j) {
            const std::string& in = ins[j];
            auto st = p.stored.find(in);
            if (st == p.stored.end()) break;  // constants: leave the rest to the copy
            const int64_t c = st->second.shape[1];
            auto pr = producer.find(in);
            if (pr != producer.end() && pr->second.first < k) {
                Step& prod = p.steps[pr->second.first];
                const auto uses = std::count(ins.begin(), ins.end(), in);
                const bool keep = reads[in] > uses || graph_outputs.count(in) > 0;
                if (prod.fast && prod.fast->add_concat_slice(pr->second.second, prod.out.size(),
                                                             offset, total, keep)) {
                    prod.out.push_back(buffer);
                    if (!keep) prod.out[pr->second.second].clear();
                    cat.fast->set_input_in_place(j);
                    cat.in[j].clear();
                }
            }
            offset += c;
        }
    }
    for (Step& st : p.steps) st.label = label_for(st, p);
}

std::string Executor::Impl::label_for(const Step& s, const Program& p) const {
    if (s.node == kNoNode) return s.label;
    if (s.fast) return s.fast->describe();
    const Node& node = graph.nodes[s.node];
    bool nhwc = false;
    for (const auto& o : s.out) nhwc |= !o.empty() && p.layout_of(o) == Layout::Nhwc;
    return fmt::format("{} [ref{}]", node.op_type, nhwc ? " nhwc" : "");
}

Tensor Executor::Impl::view(const Program& p, const std::string& name) const {
    auto c = constants.find(name);
    if (c != constants.end()) return c->second;
    auto pc = p.constants.find(name);
    if (pc != p.constants.end()) return pc->second;
    const Stored& d = p.stored.at(name);
    return Tensor(d.dtype, d.shape, p.arena, p.slots[p.slot_of.at(name)].offset);
}

// A plain-layout view of a graph tensor: the tensor itself, or a converted copy.
Tensor Executor::Impl::to_plain(const Program& p, const std::string& name) const {
    return plain_copy(view(p, name), constants.count(name) ? Layout::Plain : p.layout_of(name));
}

// A tensor stored in `layout` (in either arena), in plain layout: itself, or a converted copy.
Tensor Executor::Impl::plain_copy(const Tensor& stored, Layout layout) const {
    if (layout == Layout::Plain) return stored;
    Tensor t(stored.dtype(), stored.shape());
    convert_layout(stored, layout, t, Layout::Plain, *tasks);
    return t;
}

Status Executor::Impl::run_step(Program& p, Step& s, std::span<const Tensor> ins,
                                std::span<Tensor> outs) {
    if (s.node == kNoNode) {
        convert_layout(ins[0], p.layout_of(s.in[0]), outs[0], s.reorder_to, *tasks);
        return Status::ok();
    }
    if (s.fast) return s.fast->run(ins, outs, *tasks);
    // In the fast program reference kernels run on the calling thread: their OpenMP teams
    // would spin next to the TaskPool's workers and steal their core.
    RunContext rc{graph.nodes[s.node], ins, outs, reference_only ? pool : serial};
    return kernels[s.node]->run(rc);
}

// One step with the hooks: the override may replace the inputs of the step's node, the observer
// sees its outputs. `ins`/`outs` are the stored tensors the step reads and writes.
Status Executor::Impl::exec_step(Program& p, size_t si, std::vector<Tensor>& ins,
                                 std::vector<Tensor>& outs) {
    using Clock = std::chrono::steady_clock;
    Step& step = p.steps[si];
    const Node* node = step.node == kNoNode ? nullptr : &graph.nodes[step.node];
    const bool variant =
        node && !variant_on.empty() && variant_on[step.node] && !step.variant_in.empty();
    if (variant) {
        for (size_t i = 0; i < step.variant_in.size() && i < ins.size(); ++i) {
            if (!step.variant_in[i].empty()) ins[i] = step.variant_in[i];
        }
    }
    if (node && node_override && (override_all || override_only[step.node])) {
        // The override sees the node's inputs in its own input order (hooked programs do not
        // fuse, so the step's inputs are the node's): constants as they are, run-time tensors
        // plain (or as stored, TensorView::Stored). An input it replaces is brought into the
        // layout this step reads.
        std::vector<Tensor> given;
        std::vector<char> plain(node->inputs.size(), 1);
        for (size_t i = 0; i < node->inputs.size(); ++i) {
            const std::string& name = node->inputs[i];
            auto c = name.empty() ? constants.end() : constants.find(name);
            if (name.empty()) {
                given.emplace_back();
            } else if (c != constants.end()) {
                given.push_back(c->second);
            } else if (override_view == TensorView::Stored) {
                given.push_back(ins[i]);
                plain[i] = 0;
            } else {
                given.push_back(plain_copy(ins[i], step.in_layouts[i]));
            }
        }
        const std::vector<Tensor> before = given;
        LOWBIT_TRY(node_override(step.node, *node, given));
        for (size_t i = 0; i < given.size(); ++i) {
            if (given[i].dtype() != before[i].dtype() || given[i].shape() != before[i].shape()) {
                return invalid("node override for {} changed input {} from {} {} to {} {}",
                               node->describe(), i, dtype_name(before[i].dtype()),
                               shape_str(before[i].shape()), dtype_name(given[i].dtype()),
                               shape_str(given[i].shape()));
            }
            if (given[i].buffer() == before[i].buffer() &&
                given[i].offset() == before[i].offset()) {
                continue;
            }
            const Layout want = step.in_layouts[i];
            if (want == Layout::Plain || !plain[i]) {
                ins[i] = given[i];
            } else {
                Tensor t(given[i].dtype(), given[i].shape());
                convert_layout(given[i], Layout::Plain, t, want, *tasks);
                ins[i] = t;
            }
        }
    }
    const bool timed = profile_level > 0 && &p == main.get();
    const auto t0 = timed ? Clock::now() : Clock::time_point();
    const double cpu0 = timed ? process_cpu_ms() : 0.0;
    if (variant && step.variant_fast) {
        LOWBIT_TRY(step.variant_fast->run(ins, outs, *tasks));
    } else {
        LOWBIT_TRY(run_step(p, step, ins, outs));
    }
    if (timed) {
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        const double cpu = process_cpu_ms() - cpu0;
        ProfileEntry& e = profile[step.label];
        e.cpu_ms += cpu;
        e.ms += ms;
        ++e.calls;
        if (!step_ms.empty()) {
            step_ms[si] += ms;
            step_cpu_ms[si] += cpu;
        }
    }
    if (node && observer) {
        for (size_t o = 0; o < node->outputs.size(); ++o) {
            const std::string& name = node->outputs[o];
            if (name.empty() || (!observe_all && !observe_only.count(name))) continue;
            observer(step.node, *node, name, plain_copy(outs[o], p.layout_of(step.out[o])));
        }
    }
    return Status::ok();
}

Result<std::vector<Tensor>> Executor::Impl::run(const std::vector<Tensor>& in) {
    if (in.size() != inputs.size()) {
        return invalid("model has {} input(s), {} given", inputs.size(), in.size());
    }
    const bool hooks = observer || node_override;
    const bool use_hooked = hooks && !reference_only && !keep_tensors;
    if (use_hooked && !hooked) {
        LOWBIT_ASSIGN(hooked, build_program(true, false, true));
    }
    Program& p = use_hooked ? *hooked : *main;
    // oneDNN calls made on this thread (weight reorders for overrides) stay single-threaded.
    if (!reference_only) omp_set_num_threads(1);
    for (size_t i = 0; i < inputs.size(); ++i) {
        const TensorDesc& d = inputs[i];
        if (in[i].dtype() != d.dtype || in[i].shape() != d.shape) {
            return invalid("input '{}': expected {} {}, got {} {}", d.name, dtype_name(d.dtype),
                           shape_str(d.shape), dtype_name(in[i].dtype()), shape_str(in[i].shape()));
        }
        Tensor dst = view(p, d.name);
        if (dst.nbytes()) std::memcpy(dst.raw(), in[i].raw(), dst.nbytes());
    }
    has_run = false;
    std::vector<Tensor> ins, outs;
    for (size_t si = 0; si < p.steps.size(); ++si) {
        ins = p.steps[si].in_views;
        outs = p.steps[si].out_views;
        LOWBIT_TRY(exec_step(p, si, ins, outs));
    }
    if (profile_level > 0 && &p == main.get()) ++profile_runs;
    has_run = keep_tensors;
    std::vector<Tensor> result;
    for (const auto& d : outputs) {
        // to_plain() already made a fresh copy for an NHWC output; clone the others.
        const bool converted = !constants.count(d.name) && p.layout_of(d.name) != Layout::Plain;
        result.push_back(converted ? to_plain(p, d.name) : view(p, d.name).clone());
    }
    return result;
}

Status Executor::Impl::add_constant_variant(size_t node, size_t input, const Tensor& value) {
    if (!keep_tensors) return invalid("constant variants need an executor with keep_tensors");
    if (node >= graph.nodes.size() || step_of_node[node] == kNoNode) {
        return invalid("add_constant_variant: node {} has no run-time step", node);
    }
    const Node& n = graph.nodes[node];
    auto c = input < n.inputs.size() ? constants.find(n.inputs[input]) : constants.end();
    if (c == constants.end()) {
        return invalid("add_constant_variant: input {} of {} is not a constant", input,
                       n.describe());
    }
    if (value.dtype() != c->second.dtype() || value.shape() != c->second.shape()) {
        return invalid("add_constant_variant: {} input {} is {} {}, the variant {} {}",
                       n.describe(), input, dtype_name(c->second.dtype()),
                       shape_str(c->second.shape()), dtype_name(value.dtype()),
                       shape_str(value.shape()));
    }
    Program& p = *main;
    Step& st = p.steps[step_of_node[node]];
    if (st.variant_in.empty()) st.variant_in.resize(n.inputs.size());
    Tensor stored = value;
    if (st.in_layouts[input] != Layout::Plain) {
        stored = Tensor(value.dtype(), value.shape());
        convert_layout(value, Layout::Plain, stored, st.in_layouts[input], *tasks);
    }
    st.variant_in[input] = stored;
    st.variant_fast.reset();
    if (!st.fast || !backend) return Status::ok();
    // The same op planned again with the variant constants (weights prepared now, once).
    std::vector<Tensor> values(n.inputs.size());
    std::vector<cpu::Operand> ins, outs;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
        cpu::Operand o;
        const std::string& name = n.inputs[i];
        if (!name.empty()) {
            const TensorDesc& d = descs.at(name);
            o.dtype = d.dtype;
            o.shape = d.shape;
            auto k = constants.find(name);
            if (i < st.variant_in.size() && !st.variant_in[i].empty()) {
                values[i] = i == input ? value : k->second;
                o.constant = &values[i];
            } else if (k != constants.end()) {
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
            o.dtype = descs.at(name).dtype;
            o.shape = descs.at(name).shape;
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
            convert_layout(v, st.in_layouts[i], t, Layout::Plain, *tasks);
            v = t;
        }
        values[i] = v;
    }
    std::vector<std::string> warnings;
    cpu::FastPlan plan = backend->choose(n, opset, ins, outs, {}, warnings);
    for (size_t o = 0; plan.op && o < n.outputs.size(); ++o) {
        if (!n.outputs[o].empty() && plan.out_layouts[o] != out_layouts[o]) plan.op.reset();
    }
    // Anything else than the planned layouts: keep the planned op (it honours replaced inputs).
    if (plan.op && plan.in_layouts == st.in_layouts) st.variant_fast = std::move(plan.op);
    return Status::ok();
}

Result<std::vector<Tensor>> Executor::Impl::run_nodes(const std::vector<size_t>& nodes,
                                                      const std::vector<std::string>& fetch,
                                                      TensorView fetch_view, bool with_outputs) {
    if (!keep_tensors) {
        return invalid("run_nodes() needs an executor created with keep_tensors");
    }
    if (!has_run) return invalid("run_nodes() needs a full run() first (none succeeded yet)");
    Program& p = *main;
    std::vector<char> selected(graph.nodes.size(), 0);
    for (size_t n : nodes) {
        if (n >= graph.nodes.size()) {
            return invalid("run_nodes: node index {} is out of range ({} nodes)", n,
                           graph.nodes.size());
        }
        if (step_of_node[n] == kNoNode) {
            return invalid(
                "run_nodes: node {} has no step (its outputs were folded into constants at load)",
                graph.nodes[n].describe());
        }
        selected[n] = 1;
    }
    if (!p.scratch) {
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
    }
    if (!reference_only) omp_set_num_threads(1);
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
        LOWBIT_TRY(exec_step(p, si, ins, outs));
        for (size_t id : st.out_ids) {
            if (id != kNoNode) fresh[id] = 1;
        }
    }
    auto result_of = [&](const std::string& name, TensorView tv) -> Result<Tensor> {
        auto c = constants.find(name);
        if (c != constants.end()) return tv == TensorView::Stored ? c->second : c->second.clone();
        auto it = p.slot_of.find(name);
        if (it == p.slot_of.end()) return invalid("run_nodes: no tensor named '{}'", name);
        Tensor stored = view(p, name);
        if (fresh[it->second])
            stored = Tensor(stored.dtype(), stored.shape(), p.scratch, stored.offset());
        if (tv == TensorView::Stored) return stored;
        Tensor t = plain_copy(stored, p.layout_of(name));
        return t.buffer() == stored.buffer() ? t.clone() : t;
    };
    std::vector<Tensor> result;
    for (size_t o = 0; with_outputs && o < outputs.size(); ++o) {
        LOWBIT_ASSIGN(Tensor t, result_of(outputs[o].name, TensorView::Plain));
        result.push_back(std::move(t));
    }
    for (const auto& name : fetch) {
        LOWBIT_ASSIGN(Tensor t, result_of(name, fetch_view));
        result.push_back(std::move(t));
    }
    return result;
}

void Executor::Impl::print_profile() const {
    if (profile_runs == 0) return;
    std::vector<std::pair<std::string, ProfileEntry>> rows(profile.begin(), profile.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    double total = 0, total_cpu = 0;
    for (const auto& r : rows) {
        total += r.second.ms;
        total_cpu += r.second.cpu_ms;
    }
    const double runs = static_cast<double>(profile_runs);
    // CPU time next to wall time shows time lost waiting for a core on a busy machine (at one
    // thread, cpu < wall) and time spent spinning (at several threads).
    fmt::print(stderr,
               "lowbit profile: {} run(s), {} threads, {:.3f} ms/run in steps, {:.3f} ms/run CPU\n",
               profile_runs, pool.size(), total / runs, total_cpu / runs);
    fmt::print(stderr, "  {:>9} {:>9} {:>6} {:>6}  {}\n", "ms/run", "cpu ms", "%", "calls", "op");
    for (const auto& [label, e] : rows) {
        fmt::print(stderr, "  {:9.3f} {:9.3f} {:6.1f} {:6}  {}\n", e.ms / runs, e.cpu_ms / runs,
                   100.0 * e.ms / total, e.calls / profile_runs, label);
    }
    if (profile_level > 1 && main) {
        std::vector<size_t> idx(step_ms.size());
        for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
        std::sort(idx.begin(), idx.end(),
                  [&](size_t a, size_t b) { return step_ms[a] > step_ms[b]; });
        fmt::print(stderr, "  steps, slowest first:\n");
        for (size_t k = 0; k < idx.size(); ++k) {
            const Step& s = main->steps[idx[k]];
            const std::string who = s.node == kNoNode ? s.in[0] : graph.nodes[s.node].name;
            fmt::print(stderr, "  {:9.3f} {:9.3f}  {}  ({})\n", step_ms[idx[k]] / runs,
                       step_cpu_ms[idx[k]] / runs, s.label, who);
        }
    }
}

Executor::Impl::~Impl() {
    if (profile_level > 0) print_profile();
}

Executor::Executor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Executor::~Executor() = default;

Result<std::unique_ptr<Executor>> Executor::create(const Model& model, ExecutorOptions opts) {
    auto impl = std::make_unique<Impl>(opts.n_threads, opts.reference_only);
    LOWBIT_TRY(impl->plan(model, opts));
    return std::unique_ptr<Executor>(new Executor(std::move(impl)));
}

const std::vector<TensorDesc>& Executor::inputs() const {
    return impl_->inputs;
}
const std::vector<TensorDesc>& Executor::outputs() const {
    return impl_->outputs;
}
Result<std::vector<Tensor>> Executor::run(const std::vector<Tensor>& inputs) {
    return impl_->run(inputs);
}
void Executor::set_observer(TensorObserver obs) {
    impl_->observer = std::move(obs);
    impl_->observe_all = true;
    impl_->observe_only.clear();
}
void Executor::set_observer(TensorObserver obs, const std::vector<std::string>& only_tensors) {
    impl_->observer = std::move(obs);
    impl_->observe_all = false;
    impl_->observe_only = {only_tensors.begin(), only_tensors.end()};
}
void Executor::set_node_override(NodeOverride ov) {
    impl_->node_override = std::move(ov);
    impl_->override_all = true;
    impl_->override_view = TensorView::Plain;
    impl_->override_only.clear();
}
void Executor::set_node_override(NodeOverride ov, const std::vector<size_t>& only_nodes,
                                 TensorView view) {
    impl_->node_override = std::move(ov);
    impl_->override_all = false;
    impl_->override_view = view;
    impl_->override_only.assign(impl_->graph.nodes.size(), 0);
    for (size_t n : only_nodes) {
        if (n < impl_->override_only.size()) impl_->override_only[n] = 1;
    }
}
Result<std::vector<Tensor>> Executor::run_nodes(const std::vector<size_t>& nodes,
                                                const std::vector<std::string>& fetch,
                                                TensorView fetch_view, bool with_outputs) {
    return impl_->run_nodes(nodes, fetch, fetch_view, with_outputs);
}
std::vector<size_t> Executor::downstream_nodes(const std::vector<size_t>& nodes) const {
    const Graph& g = impl_->graph;
    std::vector<char> seed(g.nodes.size(), 0);
    for (size_t n : nodes) {
        if (n < seed.size()) seed[n] = 1;
    }
    std::unordered_set<std::string> changed;
    std::vector<size_t> cone;
    for (size_t idx : impl_->order) {
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
Status Executor::add_constant_variant(size_t node, size_t input, const Tensor& value) {
    return impl_->add_constant_variant(node, input, value);
}
void Executor::use_constant_variants(const std::vector<size_t>& nodes) {
    impl_->variant_on.assign(impl_->graph.nodes.size(), 0);
    for (size_t n : nodes) {
        if (n < impl_->variant_on.size()) impl_->variant_on[n] = 1;
    }
}
Result<Tensor> Executor::tensor(const std::string& name, TensorView view) const {
    const Impl& m = *impl_;
    auto c = m.constants.find(name);
    if (c != m.constants.end()) return view == TensorView::Stored ? c->second : c->second.clone();
    if (!m.keep_tensors) return invalid("tensor('{}') needs an executor with keep_tensors", name);
    if (!m.has_run) return invalid("tensor('{}'): no full run yet", name);
    if (!m.main->slot_of.count(name)) return invalid("no run-time tensor named '{}'", name);
    if (view == TensorView::Stored) return m.view(*m.main, name);
    Tensor t = m.to_plain(*m.main, name);
    return t.buffer() == m.view(*m.main, name).buffer() ? t.clone() : t;
}
bool Executor::stored_channels_last(const std::string& name) const {
    const Impl& m = *impl_;
    return !m.constants.count(name) && m.main->layout_of(name) == Layout::Nhwc;
}
size_t Executor::peak_activation_bytes() const {
    return impl_->main->arena_bytes;
}
const std::vector<size_t>& Executor::plan_order() const {
    return impl_->order;
}
const Graph& Executor::graph() const {
    return impl_->graph;
}
const TensorDesc* Executor::tensor_desc(const std::string& name) const {
    auto it = impl_->descs.find(name);
    return it == impl_->descs.end() ? nullptr : &it->second;
}

}  // namespace lowbit
