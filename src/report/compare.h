// Comparing evaluated variants (the seed's summary.md, research/seed-spec.md §12): one row per
// results/<variant>.json (the `eval --out` schema, src/eval/evaluator.cpp eval_metrics_json),
// the accuracy drop against a baseline, a recommendation, and the evaluation parameters.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace lowbit::report {

struct Variant {
    std::string name;  // the "variant"."name" of the file, else the file stem ("fp8_k5")
    std::string file;  // the results file read
    std::string onnx_path;
    double map50_95 = 0;
    double map50 = 0;
    double mean_ms = 0;
    double p90_ms = 0;
    double median_ms = 0;             // latency.median_ms; mean_ms where a file has none
    std::optional<double> spread_ms;  // latency.spread_ms (src/eval/latency.h); older files: none
    std::optional<std::pair<double, double>> median_ci_ms;
    std::optional<double> median_ci_level;
    std::optional<double> p10_ms;
    std::optional<int64_t> latency_samples;
    // Where the latency numbers come from: "" = the results file (its evaluation); else how
    // compare measured them (--interleave-rounds).
    std::string latency_source;
    // compare --interleave-rounds: this variant's run time in each round, in round order; the
    // rounds are the same for every variant, so two variants compare round by round (paired).
    std::vector<double> round_ms;
    std::string mode;  // "fp8" / "int8" / "" (unknown or float)
    std::optional<int> k;
    std::optional<int64_t> excluded_nodes;
    std::optional<int64_t> quantized_nodes;
    std::optional<int64_t> model_bytes;
    std::string calibration_method;
    bool baseline = false;
    // metrics.json "bootstrap" (paired_bootstrap.h): mAP50-95 per resample, the resampled
    // images and seed, the 95 % interval; empty / none in files without it.
    std::vector<double> bootstrap;
    std::vector<int64_t> bootstrap_images;
    int64_t bootstrap_seed = 0;
    std::optional<std::pair<double, double>> bootstrap_ci;
    // Evaluation parameters (data_root, instances, max_images, imgsz, conf, ...) as written.
    nlohmann::ordered_json params = nlohmann::ordered_json::object();
};

// Reads one results file; errors name the file and the key. Size and quantized-node count come
// from the file's "variant" object when present, else from the ONNX file when it can be found
// (as written, or relative to the results file's folder or the folder above it).
Result<Variant> load_variant(const std::string& path);

// The variant's ONNX file: onnx_path as written, else relative to the results file's folder or
// the folder above it; nullopt when none exists.
std::optional<std::string> variant_onnx_file(const Variant& v);

// Number of nodes, other than Q/DQ and Cast, that read a DequantizeLinear output (directly or
// through a Cast): the nodes the model runs on quantized inputs.
int64_t count_quantized_nodes(const Graph& graph);
// The same, of the model in an ONNX file.
Result<int64_t> count_quantized_nodes(const std::string& onnx_path);

struct CompareOptions {
    std::string baseline;    // a results file or a variant name; "" = the variant named baseline*
    double max_drop = 0.01;  // mAP50-95 tolerance of the recommendation
};

struct Recommendation {
    std::optional<size_t> index;  // into Comparison::variants
    std::string rule;             // the rule, stated
    std::string reason;           // why this variant
};

struct Comparison {
    std::vector<Variant> variants;  // baseline first, then by name (numbers compared as numbers)
    std::optional<size_t> baseline;
    Recommendation recommendation;

    // baseline mAP50-95 - variant mAP50-95; nullopt without a baseline.
    std::optional<double> drop(size_t i) const;
};

// Latency verdicts: variant a is faster than b only when b's median exceeds a's by more than
// the sum of their spreads (a variant without a recorded spread counts 0). Two variants timed
// in the same interleaved rounds (round_ms of equal, non-zero length) are compared round by
// round instead: a is faster when the 95% confidence interval of the median of the per-round
// differences a - b lies below 0, slower when it lies above 0. A slow phase of the machine then
// moves both times of a round and cancels out of the difference.
enum class Speed { Faster, Same, Slower };
Speed speed_against(const Variant& a, const Variant& b);
double spread_of(const Variant& v);

// The per-round differences a - b of two variants timed in the same rounds: their median and
// its confidence interval (binomial order statistics, eval/latency.h); nullopt otherwise.
struct PairedDifference {
    double median_ms = 0, low_ms = 0, high_ms = 0, level = 0;
    int64_t rounds = 0;
};
std::optional<PairedDifference> paired_difference(const Variant& a, const Variant& b);
// The rule above, stated for the outputs.
std::string latency_rule();

// Orders the variants, finds the baseline and applies the recommendation rule: among the
// quantized variants (all but the baseline) whose mAP50-95 drop is at most max_drop, those not
// measurably slower (speed_against) than the fastest of them (lowest median); of these the most
// accurate. When none is within the tolerance, the most accurate quantized variant.
Result<Comparison> compare_variants(std::vector<Variant> variants, const CompareOptions& o);

// Indices of the points (x = latency, lower is better; y = accuracy, higher is better) that no
// other point beats on both, ordered by x. Of equal points the first is kept.
std::vector<size_t> pareto_front(const std::vector<std::pair<double, double>>& points);

// "fp8_k5" < "fp8_k10": digit runs compare as numbers.
bool natural_less(const std::string& a, const std::string& b);

// The table: variant | mAP_50_95 | mAP_50 | drop | mean_ms | p90_ms | size MB | quantized
// nodes | onnx; mAP and drop with 4 decimals, ms with 3.
std::string markdown_table(const Comparison& c);

// The "Datasets" lines: each evaluation parameter with its value, or "differs: value (variants);
// ..." when the variants disagree, then the calibration methods.
std::vector<std::pair<std::string, std::string>> dataset_lines(const Comparison& c);

// The "Latency" table: variant | median_ms | spread_ms | median CI (level) | p10_ms | p90_ms |
// samples | against the baseline (faster / no measurable difference / slower, with the numbers).
std::string latency_markdown(const Comparison& c);
// "12.100..13.400 (97.9%)": the median's interval and its level; "-" when the file has none.
std::string median_ci_text(const Variant& v);
// Variant i against the baseline: "faster by 3.100 ms (> 0.800 ms of spreads)", "slower by ...",
// "no measurable difference (+0.400 ms, within 0.800 ms of spreads)"; "-" for the baseline itself
// or without a baseline.
std::string latency_verdict(const Comparison& c, size_t i);
// One line per variant for the terminal: median +/- spread and the verdict against the baseline.
std::string latency_lines(const Comparison& c);

// summary.md: title, table, "Latency", "Recommendation" and "Datasets" sections.
std::string summary_markdown(const Comparison& c, const CompareOptions& o);

}  // namespace lowbit::report
