// Per-node quantization sensitivity, measured on the ONNX graph itself (issue 6, DESIGN.md
// "Beyond the seed" 1-2): for every node that `quantize` would quantize (Placement::selected),
// fake-quantize that node alone -- its placed activation inputs and its weights, with exactly
// the numerics `quantize` writes (INT8: scale amax/127, round half to even, saturate; FP8 E4M3FN:
// scale amax/448, saturating round to nearest even; weights per output channel) -- and measure
// how the model changes against float32.
//
// Incremental: per image the float32 pass runs once with every tensor kept
// (runtime/incremental_runner.h); for node n only n's cone (the nodes downstream of it) is
// re-run (IncrementalRunner::run_nodes), reading every other tensor from the float32 pass. Inputs are
// replaced through the executor's node override, so no model is ever re-serialized.
//
// Metrics (`score` ranks, higher = more sensitive):
//   output-mse  mean squared error of all float graph outputs (concatenated), mean over images;
//   cosine      1 - cosine similarity of the concatenated outputs, mean over images;
//   local-sqnr  SQNR (dB) of n's own first output with n quantized and float32 inputs: the
//               float32 pass plus one single-node run per node (<= 2 passes per image; Convs
//               run on low-precision kernels, SensitivityOptions::local_probes);
//               score = -SQNR;
//   map         mAP50-95 drop on a validation subset (score = the drop);
//   detection   task-aware: the first output decoded (boxes after the DFL expectation, class
//               scores after the sigmoid, end-to-end rows matched) against float32, squared
//               differences weighted by confidence (eval/detection_error.h), mean over images.
// With all_but_one every placed node except n is quantized; the reference is the all-quantized
// run, and score = error(all quantized) - error(all but n) (the error recovered by keeping n in
// high precision). Only the cone of n differs from the all-quantized pass, so it is incremental
// too.
//
// This folder: setup.h (calibration, placement, what quantizing a node means, the sweep's
// executor), probes.h (local-sqnr's fast paths), metric.h (the Metric interface; metrics.cpp
// implements the four), fake_quant.h (the fake-quantization numerics), sweep.cpp (the per-image
// loop, costs and ranking). The report files are written by report/sensitivity_writer.h.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calib/calib_source.h"
#include "core/status.h"
#include "eval/evaluator.h"
#include "ir/graph.h"
#include "quant/quantize_model.h"

namespace lowbit::quant {

enum class SensitivityMetric { OutputMse, Cosine, LocalSqnr, Map, Detection };

Result<SensitivityMetric> parse_sensitivity_metric(const std::string& s);
const char* sensitivity_metric_name(SensitivityMetric m);  // "output-mse", ...

struct SensitivityOptions {
    QuantizeOptions quant;  // placement (mode, exclusions), calibration method, calib run
    SensitivityMetric metric = SensitivityMetric::OutputMse;
    bool all_but_one = false;
    int64_t images = 32;  // compared images: the first ones of the calibration source
    // Measure the naive cost instead: one full pass per node (same results, for comparison).
    bool naive = false;
    // local-sqnr fast paths ("probes", probes.h): Convs on oneDNN's exact low-precision
    // kernels (QuantConv: int8, or bf16 holding the FP8 values), MaxPool / nearest Resize /
    // Add computed directly from the float32 pass. Equal up to float rounding (tested).
    // Off: every node is re-run through the executor on fake-quantized float32 inputs.
    bool local_probes = true;
    int n_threads = 0;
    bool progress = true;
    // metric map: validation data (ann_path, images_dir, max_images, decode, head, ...).
    EvalOptions eval;
    // Shard `shard_index` of `shard_count` (`lowbit sensitivity --shard`): compared images i with
    // i % shard_count == shard_index, or for map the measured nodes k with k % shard_count ==
    // shard_index. A shard's report is partial; merge_sensitivity() combines a complete set.
    int shard_index = 0;
    int shard_count = 1;
};

// Whether a sweep with these options splits its measured nodes (map) rather than its images.
bool shards_split_nodes(const SensitivityOptions& opts);

struct NodeSensitivity {
    size_t node = 0;  // index in the prepared float graph (prepare_float_model)
    std::string name, op_type, scope;
    int64_t macs = 0;
    double macs_share = 0;
    size_t cone_nodes = 0;  // nodes re-run per image for this node
    size_t measured = 0;    // index among the measured nodes (plan order; ties rank by it)
    int rank = 0;
    double score = 0;
    nlohmann::ordered_json metrics;  // metric name -> value
};

struct SensitivityCost {
    double full_pass_ms = 0;            // median float32 pass (the sweep's own program)
    double fused_full_pass_ms = 0;      // the default (fused) program, for reference
    double fused_passes_per_image = 0;  // the sweep in units of that pass
    double sweep_seconds = 0;
    double passes_per_image = 0;
    double naive_passes_per_image = 0;  // nodes (estimated) or measured with naive
    double ratio_vs_naive = 0;
    bool naive_measured = false;
    int64_t quant_kernel_nodes = 0;  // local-sqnr: Convs measured on QuantConv kernels
};

// Per-image values of a metric that adds up over images (output-mse, cosine, local-sqnr): row r
// holds compared image images[r]: `width` values per measured node, then `extra` more (the
// all-quantized error). Scores come from the column sums taken in row order, so the rows of
// several shards put back in image order give exactly the sums of one process.
struct ImageSums {
    size_t nodes = 0, width = 0, extra = 0;
    std::vector<int64_t> images;
    std::vector<std::vector<double>> rows;
    std::vector<double> totals() const;
};

struct SensitivityReport {
    std::vector<NodeSensitivity> nodes;  // by rank
    SensitivityCost cost;
    int64_t images = 0;
    int64_t calib_samples = 0;
    double calib_seconds = 0;
    std::string method;  // calibration method name
    // all_but_one: the all-quantized error; map: float32 (and all-quantized) mAP50-95.
    nlohmann::ordered_json reference;
    std::vector<std::string> notes;
    // Metrics summed over images: every image's values (what shards merge); empty for map.
    ImageSums sums;
};

// `model` as loaded; `source` gives the calibration samples and the compared images.
Result<SensitivityReport> run_sensitivity(const Model& model, calib::CalibSource& source,
                                          const SensitivityOptions& opts);

// The report one process would have made, from the reports of the complete set of shards of one
// sweep (shards[i] run with shard_index i, all with `opts` otherwise): summed metrics re-scored
// from the image rows put in image order; map takes each node from the shard that measured it.
// Costs are the first shard's with the sweep seconds added up.
Result<SensitivityReport> merge_sensitivity(const SensitivityOptions& opts,
                                            std::vector<SensitivityReport> shards);

// The torch-module scope of a node name: the last path component (the op) removed, and a
// trailing "/conv" (Ultralytics' Conv wrapper around nn.Conv2d) too:
// "/model.23/cv3.0/cv3.0.0/conv/Conv" -> "/model.23/cv3.0/cv3.0.0".
std::string node_scope(const std::string& node_name);

}  // namespace lowbit::quant
