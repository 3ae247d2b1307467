// IncrementalRunner: cached runs for incremental sensitivity (DESIGN.md "Beyond the seed" 2).
// Owns keep_tensors mode: every tensor of the last run() keeps its own memory (no reuse, no
// multi-node fusion), and run_nodes() re-runs a subset of the nodes into a second (scratch)
// arena: a re-run node reads what this partial run produced where it produced it, and
// everything else straight from the last full run, so nothing is copied. With
// downstream_nodes() this re-runs only the cone of a perturbed node. Also owns constant
// variants (a node planned again with other constant inputs, e.g. fake-quantized weights).
//
// Memory is the sum of all tensors (twice, once run_nodes() ran) instead of the peak of the
// live ones. The methods a normal run needs are the Executor's, forwarded with the same names.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "runtime/executor.h"

namespace lowbit {

class IncrementalRunner {
public:
    ~IncrementalRunner();
    IncrementalRunner(const IncrementalRunner&) = delete;
    IncrementalRunner& operator=(const IncrementalRunner&) = delete;

    static Result<std::unique_ptr<IncrementalRunner>> create(const Model& model,
                                                             ExecutorOptions opts = {});

    // The plain executor underneath (for what takes an Executor, e.g. node_macs()).
    const Executor& executor() const { return *ex_; }

    // As Executor's.
    const std::vector<TensorDesc>& inputs() const { return ex_->inputs(); }
    const std::vector<TensorDesc>& outputs() const { return ex_->outputs(); }
    Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) { return ex_->run(inputs); }
    void set_observer(TensorObserver obs) { ex_->set_observer(std::move(obs)); }
    void set_observer(TensorObserver obs, const std::vector<std::string>& only_tensors) {
        ex_->set_observer(std::move(obs), only_tensors);
    }
    void set_node_override(NodeOverride ov) { ex_->set_node_override(std::move(ov)); }
    void set_node_override(NodeOverride ov, const std::vector<size_t>& only_nodes,
                           TensorView view = TensorView::Plain) {
        ex_->set_node_override(std::move(ov), only_nodes, view);
    }
    size_t peak_activation_bytes() const { return ex_->peak_activation_bytes(); }
    const std::vector<size_t>& plan_order() const { return ex_->plan_order(); }
    const Graph& graph() const { return ex_->graph(); }
    const TensorDesc* tensor_desc(const std::string& name) const {
        return ex_->tensor_desc(name);
    }

    // Re-runs `nodes` (graph node indices, run in plan order) after a run(): a node reads the
    // tensors produced earlier in this call from this call, every other tensor from the last
    // run() (which stays untouched). Hooks apply as in run(). Returns the graph outputs
    // (recomputed where this call produced them, else the last run's; none with
    // with_outputs = false), then the `fetch` tensors, taken the same way (Stored: views valid
    // until the next run).
    Result<std::vector<Tensor>> run_nodes(const std::vector<size_t>& nodes,
                                          const std::vector<std::string>& fetch = {},
                                          TensorView fetch_view = TensorView::Plain,
                                          bool with_outputs = true);
    // The nodes whose result depends on any of `nodes` (them included), in plan order: the cone
    // that run_nodes() must re-run when those nodes change.
    std::vector<size_t> downstream_nodes(const std::vector<size_t>& nodes) const;
    // Plans a variant of `node` whose constant input `input` holds `value` (same dtype and
    // shape; e.g. fake-quantized weights), prepared once as planned constants are (weights
    // reordered at load), where an override replacing the input would pay that on every call.
    // use_constant_variants() picks the nodes that run their variant.
    Status add_constant_variant(size_t node, size_t input, const Tensor& value);
    void use_constant_variants(const std::vector<size_t>& nodes);
    // Tensor `name` from the last run() (or a constant): a plain copy, or with Stored a view of
    // the stored data valid until the next run().
    Result<Tensor> tensor(const std::string& name, TensorView view = TensorView::Plain) const;
    // Whether run-time tensor `name` is stored channels-last (NHWC bytes under its logical NCHW
    // shape), i.e. what tensor(name, Stored) hands over; false for plain tensors and constants.
    bool stored_channels_last(const std::string& name) const;

private:
    explicit IncrementalRunner(std::unique_ptr<Executor> ex);
    Status make_scratch_views();

    std::unique_ptr<Executor> ex_;
    Executor::Impl& m_;
    std::vector<size_t> step_of_node_;  // main-program step of each graph node
};

}  // namespace lowbit
