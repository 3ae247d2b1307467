// Executor::Impl: the state behind Executor and IncrementalRunner (internal to runtime/): the
// planned model, its programs, threads, hooks and profile, and running steps with the hooks.
// Planning lives in runtime/plan.h, program building in runtime/program_builder.h, cached
// partial runs in runtime/incremental_runner.cpp.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/executor.h"
#include "runtime/kernels/cpu/fast_ops.h"
#include "runtime/plan.h"
#include "runtime/profile.h"
#include "runtime/program.h"

namespace lowbit {

struct Executor::Impl {
    PlannedModel m;
    ThreadPool pool;    // every parallel loop: constant folding, programs, layout reorders
    bool reference_only = false;

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

    // IncrementalRunner: every tensor keeps its memory; run_nodes() re-runs steps of `main`.
    bool keep_tensors = false;
    bool has_run = false;          // keep_tensors: the main arena holds a full run
    std::vector<char> variant_on;  // by graph node index: run the constant variant

    StepProfile profile;

    Impl(const ExecutorOptions& opts);
    ~Impl();

    Status init(const Model& model, const ExecutorOptions& opts, bool keep);
    Result<std::vector<Tensor>> run(const std::vector<Tensor>& in);
    Tensor view(const Program& p, const std::string& name) const;
    Tensor to_plain(const Program& p, const std::string& name) const;
    Tensor plain_copy(const Tensor& stored, Layout layout) const;
    Status run_step(Program& p, Step& s, std::span<const Tensor> ins, std::span<Tensor> outs);
    // One step with the hooks: the override may replace the inputs of the step's node, the
    // observer sees its outputs. `ins`/`outs` are the stored tensors the step reads and writes.
    Status exec_step(Program& p, size_t si, std::vector<Tensor>& ins, std::vector<Tensor>& outs);
    Status apply_override(const Step& step, std::vector<Tensor>& ins);
};

}  // namespace lowbit
