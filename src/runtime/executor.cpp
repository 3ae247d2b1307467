// Executor: plan (runtime/plan.h), then one or two programs that run it
// (runtime/program_builder.h), and running them with the hooks and the profile.
//
// A program is the list of steps actually executed, with a storage layout per tensor and a
// memory plan. Three kinds are built from the same prepared nodes:
//  - reference (ExecutorOptions::reference_only): one step per node, reference kernels, plain
//    layouts: the executable spec;
//  - fast: optimized CPU ops (kernels/cpu), activations channels-last between convs, reorder
//    steps inserted where a plain-layout op reads an NHWC tensor (once per tensor); the conv
//    step also computes a following BatchNormalization (folded into its weights), SiLU
//    (Sigmoid + Mul), Relu or hard-swish, residual Add (+ Relu), channel Splits of its output,
//    and its slices of channel Concats (no copy left for the Concat step);
//  - hooked (built on first use, when an observer or a node override is set): like fast but
//    without multi-node fusion, so that every node's inputs and outputs exist. Observer and
//    override see plain (ONNX-order) tensors: NHWC ones are converted on demand, only then.
// For an IncrementalRunner the main program is a hooked one whose memory plan gives every
// tensor its own slot (runtime/incremental_runner.cpp runs parts of it again).
// Graph outputs are always returned in plain layout.
//
// Threads: everything runs on the executor's ThreadPool (core/thread_pool.h: claimed tasks, not
// OpenMP teams; oneDNN stays inside its tasks), reference kernels inside the fast program
// included (they ran on a 1-thread pool before: RT-DETR-l's reference steps, GridSample among
// them, took 0.80 of that time at 2 threads; the YOLOs' few small ones a few microseconds
// more). Their parallel loops write each output element from its own inputs, so the bits do
// not depend on the thread count.
//
// ExecutorOptions::profile times every step (runtime/profile.h).
#include "runtime/executor.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "runtime/executor_impl.h"
#include "runtime/kernel.h"
#include "runtime/layout.h"
#include "runtime/program_builder.h"

namespace lowbit {

Executor::Impl::Impl(const ExecutorOptions& opts)
    : pool(opts.n_threads), reference_only(opts.reference_only) {}

Executor::Impl::~Impl() {
    if (profile.level() == 0 || !main) return;
    std::vector<std::string> labels, who;
    for (const Step& s : main->steps) {
        labels.push_back(s.label);
        who.push_back(s.node == kNoNode ? s.in[0] : m.graph.nodes[s.node].name);
    }
    profile.print(pool.size(), labels, who);
    fmt::print(stderr, "  {}\n", main->report.summary());
}

Status Executor::Impl::init(const Model& model, const ExecutorOptions& opts, bool keep) {
    LOWBIT_TRY(plan_model(model, opts.input_shapes, pool, m));
    if (!reference_only) {
        backend = std::make_unique<cpu::CpuBackend>(pool.size(), opts.conv_winograd,
                                                    opts.lowp_kernels, opts.int8_direct);
    }
    keep_tensors = keep;
    ProgramKind kind{!reference_only, !reference_only && !keep_tensors, !keep_tensors,
                     opts.lowp_kernels};
    LOWBIT_ASSIGN(main, build_program(m, backend.get(), pool, kind));
    profile.start(std::clamp(opts.profile, 0, 2), main->steps.size(), opts.step_times);
    return Status::ok();
}

Tensor Executor::Impl::view(const Program& p, const std::string& name) const {
    return program_view(p, m, name);
}

// A plain-layout view of a graph tensor: the tensor itself, or a converted copy.
Tensor Executor::Impl::to_plain(const Program& p, const std::string& name) const {
    return plain_copy(view(p, name), m.constants.count(name) ? Layout::Plain : p.layout_of(name));
}

// A tensor stored in `layout` (in either arena), in plain layout: itself, or a converted copy.
Tensor Executor::Impl::plain_copy(const Tensor& stored, Layout layout) const {
    if (layout == Layout::Plain) return stored;
    Tensor t(stored.dtype(), stored.shape());
    convert_layout(stored, layout, t, Layout::Plain, pool);
    return t;
}

Status Executor::Impl::run_step(Program& p, Step& s, std::span<const Tensor> ins,
                                std::span<Tensor> outs) {
    if (s.node == kNoNode) {
        convert_layout(ins[0], p.layout_of(s.in[0]), outs[0], s.reorder_to, pool);
        return Status::ok();
    }
    if (s.fast) return s.fast->run(ins, outs, pool);
    RunContext rc{m.graph.nodes[s.node], ins, outs, pool};
    return m.kernels[s.node]->run(rc);
}

// The override sees the node's inputs in its own input order (hooked programs do not fuse, so
// the step's inputs are the node's): constants as they are, run-time tensors plain (or as
// stored, TensorView::Stored). An input it replaces is brought into the layout this step reads.
Status Executor::Impl::apply_override(const Step& step, std::vector<Tensor>& ins) {
    const Node& node = m.graph.nodes[step.node];
    std::vector<Tensor> given;
    std::vector<char> plain(node.inputs.size(), 1);
    for (size_t i = 0; i < node.inputs.size(); ++i) {
        const std::string& name = node.inputs[i];
        auto c = name.empty() ? m.constants.end() : m.constants.find(name);
        if (name.empty()) {
            given.emplace_back();
        } else if (c != m.constants.end()) {
            given.push_back(c->second);
        } else if (override_view == TensorView::Stored) {
            given.push_back(ins[i]);
            plain[i] = 0;
        } else {
            given.push_back(plain_copy(ins[i], step.in_layouts[i]));
        }
    }
    const std::vector<Tensor> before = given;
    LOWBIT_TRY(node_override(step.node, node, given));
    for (size_t i = 0; i < given.size(); ++i) {
        if (given[i].dtype() != before[i].dtype() || given[i].shape() != before[i].shape()) {
            return invalid("node override for {} changed input {} from {} {} to {} {}",
                           node.describe(), i, dtype_name(before[i].dtype()),
                           shape_str(before[i].shape()), dtype_name(given[i].dtype()),
                           shape_str(given[i].shape()));
        }
        if (given[i].buffer() == before[i].buffer() && given[i].offset() == before[i].offset()) {
            continue;
        }
        const Layout want = step.in_layouts[i];
        if (want == Layout::Plain || !plain[i]) {
            ins[i] = given[i];
        } else {
            Tensor t(given[i].dtype(), given[i].shape());
            convert_layout(given[i], Layout::Plain, t, want, pool);
            ins[i] = t;
        }
    }
    return Status::ok();
}

Status Executor::Impl::exec_step(Program& p, size_t si, std::vector<Tensor>& ins,
                                 std::vector<Tensor>& outs) {
    using Clock = std::chrono::steady_clock;
    Step& step = p.steps[si];
    const Node* node = step.node == kNoNode ? nullptr : &m.graph.nodes[step.node];
    const bool variant =
        node && !variant_on.empty() && variant_on[step.node] && !step.variant_in.empty();
    if (variant) {
        for (size_t i = 0; i < step.variant_in.size() && i < ins.size(); ++i) {
            if (!step.variant_in[i].empty()) ins[i] = step.variant_in[i];
        }
    }
    if (node && node_override && (override_all || override_only[step.node])) {
        LOWBIT_TRY(apply_override(step, ins));
    }
    const bool timed = profile.timing() && &p == main.get();
    // The process CPU time is a system call (0.57 us here, twice a step: 0.3 ms of a 6.7 ms run
    // of the bundled INT8 model's 250 steps): only the printed profile reads it, not
    // step_times() (per-node latency), whose runs it would slow.
    const bool cpu = timed && profile.level() > 0;
    const auto t0 = timed ? Clock::now() : Clock::time_point();
    const double cpu0 = cpu ? process_cpu_ms() : 0.0;
    if (variant && step.variant_fast) {
        LOWBIT_TRY(step.variant_fast->run(ins, outs, pool));
    } else {
        LOWBIT_TRY(run_step(p, step, ins, outs));
    }
    if (timed) {
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        profile.add(si, step.label, ms, cpu ? process_cpu_ms() - cpu0 : 0.0);
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
    const auto& inputs = m.inputs;
    if (in.size() != inputs.size()) {
        return invalid("model has {} input(s), {} given", inputs.size(), in.size());
    }
    const bool hooks = observer || node_override;
    const bool use_hooked = hooks && !reference_only && !keep_tensors;
    if (use_hooked && !hooked) {
        LOWBIT_ASSIGN(hooked, build_program(m, backend.get(), pool, {true, false, true}));
    }
    Program& p = use_hooked ? *hooked : *main;
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
    if (profile.timing() && &p == main.get()) profile.end_run();
    has_run = keep_tensors;
    std::vector<Tensor> result;
    for (const auto& d : m.outputs) {
        // to_plain() already made a fresh copy for an NHWC output; clone the others.
        const bool converted = !m.constants.count(d.name) && p.layout_of(d.name) != Layout::Plain;
        result.push_back(converted ? to_plain(p, d.name) : view(p, d.name).clone());
    }
    return result;
}

Executor::Executor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Executor::~Executor() = default;

Result<std::unique_ptr<Executor>> Executor::create(const Model& model, ExecutorOptions opts) {
    return create_planned(model, opts, false);
}

Result<std::unique_ptr<Executor>> Executor::create_planned(const Model& model,
                                                           const ExecutorOptions& opts,
                                                           bool keep_tensors) {
    auto impl = std::make_unique<Impl>(opts);
    LOWBIT_TRY(impl->init(model, opts, keep_tensors));
    return std::unique_ptr<Executor>(new Executor(std::move(impl)));
}

const std::vector<TensorDesc>& Executor::inputs() const {
    return impl_->m.inputs;
}
const std::vector<TensorDesc>& Executor::outputs() const {
    return impl_->m.outputs;
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
    impl_->override_only.assign(impl_->m.graph.nodes.size(), 0);
    for (size_t n : only_nodes) {
        if (n < impl_->override_only.size()) impl_->override_only[n] = 1;
    }
}
std::vector<StepTime> Executor::step_times() const {
    std::vector<StepTime> out;
    const std::vector<double>& ms = impl_->profile.last_run_ms();
    if (ms.empty()) return out;
    const Graph& g = impl_->m.graph;
    for (size_t i = 0; i < impl_->main->steps.size() && i < ms.size(); ++i) {
        const Step& s = impl_->main->steps[i];
        StepTime t;
        if (s.node != kNoNode) t.node = g.nodes[s.node].name;
        for (size_t f : s.fused) t.fused.push_back(g.nodes[f].name);
        t.label = s.label;
        t.ms = ms[i];
        out.push_back(std::move(t));
    }
    return out;
}

const std::vector<double>& Executor::step_ms() const {
    return impl_->profile.last_run_ms();
}

const KernelReport& Executor::kernel_report() const {
    return impl_->main->report;
}

size_t Executor::peak_activation_bytes() const {
    return impl_->main->arena_bytes;
}
const std::vector<size_t>& Executor::plan_order() const {
    return impl_->m.order;
}
const Graph& Executor::graph() const {
    return impl_->m.graph;
}
const TensorDesc* Executor::tensor_desc(const std::string& name) const {
    auto it = impl_->m.descs.find(name);
    return it == impl_->m.descs.end() ? nullptr : &it->second;
}

}  // namespace lowbit
