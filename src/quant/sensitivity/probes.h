// local-sqnr's fast paths ("probes"): a node's quantized output measured without a run through
// the executor, where it can be had more cheaply and is the same up to float rounding:
//  - Conv: a Conv whose only quantized activation is its data input runs on oneDNN's exact
//    low-precision kernels (QuantConv: INT8 codes, or FP8 values as bfloat16). Its input is
//    quantized once per image (shared by the Convs reading it at the same scale); scales and
//    bias are applied with the sums.
//  - Select: MaxPool and nearest Resize only pick input values, and fake quantization is
//    monotonic, so quantizing the input and then picking equals picking and then quantizing:
//    the quantized output is the fake-quantized float32 output, bit for bit.
//  - Add (same shapes and storage, no broadcast): fake-quantized inputs added elementwise, as
//    the executor's kernel adds them.
// Probes read only the float32 pass and write only their own sums, so they run as pool tasks
// over the nodes. Other nodes keep the run through the executor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "quant/sensitivity/setup.h"
#include "core/thread_pool.h"

namespace lowbit::quant {

// sum(a^2) and sum((b - a)^2) of a reference `a` and its quantized `b`: the SQNR's terms.
struct SumSquares {
    double signal = 0, noise = 0;
};

// In double, over 8 independent lanes so that the loop vectorizes.
SumSquares sum_squares(const float* a, const float* b, int64_t n);

class ProbeSet {
public:
    // Plans a probe for every measured node of `s` that has one; a note on the Conv kernels used
    // (or why none could be) goes to `notes`.
    static Result<std::unique_ptr<ProbeSet>> plan(const SweepSetup& s, int n_threads,
                                                  std::vector<std::string>& notes);
    ~ProbeSet();
    ProbeSet(const ProbeSet&) = delete;
    ProbeSet& operator=(const ProbeSet&) = delete;

    bool has(size_t k) const;  // k: index into SweepSetup::nodes
    size_t size() const { return probed_.size(); }
    int64_t conv_nodes() const { return n_conv_; }  // Convs on QuantConv kernels
    // Per graph node: nonzero when a probe holds the node's quantized weights.
    std::vector<char> own_weights() const;

    // Measures every probed node on the executor's last float32 pass (of image `image`, for
    // messages), adding its sums to sums[k].
    Status run(int64_t image, std::vector<SumSquares>& sums);

    struct Probe;
    struct CodeInput;

private:
    explicit ProbeSet(const SweepSetup& s, int n_threads);
    const SweepSetup& s_;
    std::vector<CodeInput> code_inputs_;
    std::vector<std::unique_ptr<Probe>> probes_;  // per k; null: a run through the executor
    std::vector<size_t> probed_;                  // k with a probe
    int64_t n_conv_ = 0;
    int n_threads_ = 0;
    std::unique_ptr<ThreadPool> pool_;
    std::vector<std::vector<float>> out_;  // per pool thread: work buffer
};

}  // namespace lowbit::quant
