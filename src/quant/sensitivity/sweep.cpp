// run_sensitivity: setup (setup.h), then per image the float32 pass, the all-quantized pass
// (--all-but-one) and one run per measured node (its cone, the node alone for a local metric, or
// a full pass with --naive), each handed to the Metric (metric.h); then costs and the ranking.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>

#include "core/progress.h"
#include "eval/latency.h"
#include "quant/sensitivity/metric.h"
#include "quant/sensitivity/sensitivity.h"
#include "quant/sensitivity/setup.h"
#include "runtime/model_info.h"

namespace lowbit::quant {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return percentile_linear(v, 50);
}

// What the loop measured, for the cost.
struct SweepTimes {
    std::vector<double> full_ms;  // float32 passes
    double sweep = 0;             // seconds, image loading aside
    int64_t images = 0;           // images swept (this shard's)
};

// Node k's run of image `i` with its active nodes quantized, handed to the metric.
Status measure_node(SweepSetup& s, Metric& metric, FakeQuantOverride& fq,
                    const SensitivityOptions& opts, size_t k, int64_t i, const Sample& smp) {
    IncrementalRunner& ex = *s.ex;
    ex.set_node_override(fq.hook(), s.active[k], TensorView::Stored);
    ex.use_constant_variants(s.active[k]);
    Result<std::vector<Tensor>> outs = invalid("not run");
    if (metric.local()) {
        // Only the node's own output: copying the graph outputs (unchanged here) would cost as
        // much as the sums.
        outs = ex.run_nodes({s.nodes[k]}, {s.first_output[k]}, TensorView::Stored, false);
    } else if (opts.naive) {
        outs = ex.run({smp.input});
    } else {
        outs = ex.run_nodes(s.cones[k]);
    }
    if (!outs) {
        return outs.status().with_context(
            fmt::format("image {}, node {}", i, s.graph().nodes[s.nodes[k]].describe()));
    }
    return metric.node(k, smp, *outs);
}

// Whether this shard measures image i / node k.
bool shard_has(const SensitivityOptions& opts, int64_t i) {
    return opts.shard_count <= 1 || i % opts.shard_count == opts.shard_index;
}
bool shard_has_image(const SensitivityOptions& opts, int64_t i) {
    return shards_split_nodes(opts) || shard_has(opts, i);
}
bool shard_has_node(const SensitivityOptions& opts, size_t k) {
    return !shards_split_nodes(opts) || shard_has(opts, static_cast<int64_t>(k));
}

// The per-image loop over `n_images` compared images (this shard's).
Status sweep_images(SweepSetup& s, Metric& metric, FakeQuantOverride& fq,
                    const SensitivityOptions& opts, int64_t n_images, SweepTimes& times) {
    IncrementalRunner& ex = *s.ex;
    const size_t N = s.size();
    int64_t swept_images = 0, swept_nodes = 0;
    for (int64_t i = 0; i < n_images; ++i) swept_images += shard_has_image(opts, i) ? 1 : 0;
    for (size_t k = 0; k < N; ++k) swept_nodes += shard_has_node(opts, k) ? 1 : 0;
    Progress progress("sensitivity", swept_images * swept_nodes, "run",
                      opts.progress && Progress::stderr_is_terminal());
    for (int64_t i = 0; i < n_images; ++i) {
        if (!shard_has_image(opts, i)) continue;
        Sample smp;
        LOWBIT_TRY(metric.load(i, smp));
        metric.begin_image(i);
        const auto t_image = Clock::now();
        fq.new_image();
        ex.set_node_override(nullptr);
        ex.use_constant_variants({});
        const auto t0 = Clock::now();
        auto fp32 = ex.run({smp.input});
        if (!fp32) return fp32.status().with_context(fmt::format("float32 pass, image {}", i));
        times.full_ms.push_back(seconds_since(t0) * 1e3);
        LOWBIT_TRY(metric.reference(smp, *fp32));
        if (opts.all_but_one) {
            // The base pass of all-but-one: every placed node quantized.
            ex.set_node_override(fq.hook(), s.nodes, TensorView::Stored);
            ex.use_constant_variants(s.nodes);
            auto allq = ex.run({smp.input});
            if (!allq)
                return allq.status().with_context(fmt::format("quantized pass, image {}", i));
            LOWBIT_TRY(metric.all_quantized(smp, *allq));
        }
        LOWBIT_ASSIGN(const int64_t direct, metric.measure_direct(i));
        if (direct > 0) progress.advance(direct);
        for (size_t k = 0; k < N; ++k) {
            if (metric.measured_directly(k) || !shard_has_node(opts, k)) continue;
            LOWBIT_TRY(measure_node(s, metric, fq, opts, k, i, smp));
            progress.advance();
        }
        metric.end_image();
        times.sweep += seconds_since(t_image);
        times.images += 1;
    }
    progress.finish();
    ex.set_node_override(nullptr);
    ex.use_constant_variants({});
    return Status::ok();
}

// Cost in full-pass equivalents per image, and the default (fused) program's pass for
// reference (overrides cannot use it).
Status measure_cost(SweepSetup& s, Metric& metric, const SensitivityOptions& opts, int64_t n_images,
                    const SweepTimes& times, SensitivityCost& cost) {
    const double N = static_cast<double>(s.size());
    cost.full_pass_ms = median(times.full_ms);
    cost.sweep_seconds = times.sweep;
    const double per_image_pass = cost.full_pass_ms * 1e-3 * static_cast<double>(times.images);
    cost.passes_per_image = per_image_pass > 0 ? times.sweep / per_image_pass : 0;
    cost.naive_passes_per_image = metric.local() ? 1.0 + N : N;
    cost.naive_measured = opts.naive;
    if (opts.naive) cost.naive_passes_per_image = cost.passes_per_image;
    cost.ratio_vs_naive =
        cost.naive_passes_per_image > 0 ? cost.passes_per_image / cost.naive_passes_per_image : 0;
    ExecutorOptions fo = s.exec_options;
    auto fused = Executor::create(s.model, fo);
    if (!fused) return Status::ok();
    Sample smp;
    LOWBIT_TRY(metric.load(0, smp));
    std::vector<double> ms;
    for (int r = 0; r < 9; ++r) {
        const auto t0 = Clock::now();
        auto out = (*fused)->run({smp.input});
        if (!out) break;
        if (r > 0) ms.push_back(seconds_since(t0) * 1e3);
    }
    cost.fused_full_pass_ms = median(ms);
    if (cost.fused_full_pass_ms > 0) {
        cost.fused_passes_per_image =
            times.sweep / (cost.fused_full_pass_ms * 1e-3 * static_cast<double>(times.images));
    }
    return Status::ok();
}

// Score descending; ties keep plan order (stable), so the ranking is deterministic.
void rank_by_score(std::vector<NodeSensitivity>& nodes) {
    std::stable_sort(
        nodes.begin(), nodes.end(),
        [](const NodeSensitivity& a, const NodeSensitivity& b) { return a.score > b.score; });
    for (size_t r = 0; r < nodes.size(); ++r) nodes[r].rank = static_cast<int>(r) + 1;
}

// Every measured node (of this shard) with its metrics and score, ranked. A score that is not
// finite (NaN or infinite outputs, zero-width calibration ranges) is an error naming the nodes: a
// ranking built from it would be meaningless.
Status rank_nodes(const SweepSetup& s, Metric& metric, const SensitivityOptions& opts,
                  int64_t n_images, SensitivityReport& rep) {
    const Graph& g = s.graph();
    const IncrementalRunner& ex = *s.ex;
    LOWBIT_TRY(metric.finish(n_images, rep.reference));
    int64_t total_macs = 0;
    for (size_t idx : ex.plan_order()) total_macs += node_macs(g.nodes[idx], ex.executor());
    std::vector<std::string> bad;
    for (size_t k = 0; k < s.size(); ++k) {
        if (!shard_has_node(opts, k)) continue;
        const Node& node = g.nodes[s.nodes[k]];
        NodeSensitivity ns;
        ns.measured = k;
        ns.node = s.nodes[k];
        ns.name = node.name;
        ns.op_type = node.op_type;
        ns.scope = node_scope(node.name);
        ns.macs = node_macs(node, ex.executor());
        ns.macs_share =
            total_macs > 0 ? static_cast<double>(ns.macs) / static_cast<double>(total_macs) : 0;
        ns.cone_nodes = metric.local() ? 1 : s.cones[k].size();
        LOWBIT_TRY(metric.score(k, ns));
        if (!std::isfinite(ns.score)) bad.push_back(fmt::format("'{}' ({})", ns.name, ns.score));
        rep.nodes.push_back(std::move(ns));
    }
    if (!bad.empty()) {
        std::string list;
        for (size_t i = 0; i < bad.size() && i < 5; ++i) list += "\n  " + bad[i];
        if (bad.size() > 5) list += fmt::format("\n  ... and {} more", bad.size() - 5);
        return invalid(
            "the sensitivity of {} of {} nodes is not a finite number:{}\nthe model's outputs "
            "are NaN or infinite with these nodes quantized (or in float32); check the "
            "calibration data (NaN, constant or all-zero images give zero-width ranges) and the "
            "model; no ranking is written",
            bad.size(), s.size(), list);
    }
    rank_by_score(rep.nodes);
    return Status::ok();
}

}  // namespace

bool shards_split_nodes(const SensitivityOptions& opts) {
    return opts.metric == SensitivityMetric::Map;
}

Result<SensitivityReport> merge_sensitivity(const SensitivityOptions& opts,
                                            std::vector<SensitivityReport> shards) {
    if (shards.empty()) return invalid("no sensitivity shards to merge");
    SensitivityReport rep = shards.front();
    for (size_t i = 1; i < shards.size(); ++i) rep.cost.sweep_seconds += shards[i].cost.sweep_seconds;
    rep.nodes.clear();
    if (shards_split_nodes(opts)) {
        // Each node was measured (and scored) whole by one shard.
        for (SensitivityReport& sh : shards) {
            for (NodeSensitivity& n : sh.nodes) rep.nodes.push_back(std::move(n));
        }
        std::sort(rep.nodes.begin(), rep.nodes.end(),
                  [](const NodeSensitivity& a, const NodeSensitivity& b) {
                      return a.measured < b.measured;
                  });
        for (size_t k = 0; k < rep.nodes.size(); ++k) {
            if (rep.nodes[k].measured != k) {
                return invalid("sensitivity shards: node {} measured twice or not at all",
                               rep.nodes[k].measured);
            }
        }
        rank_by_score(rep.nodes);
        return rep;
    }
    // Summed metrics: the image rows in image order, then the scores of the totals.
    ImageSums& all = rep.sums;
    std::vector<std::pair<int64_t, std::vector<double>>> rows;
    for (const SensitivityReport& sh : shards) {
        if (sh.sums.nodes != all.nodes || sh.sums.width != all.width ||
            sh.sums.extra != all.extra || sh.sums.images.size() != sh.sums.rows.size()) {
            return invalid("sensitivity shards: image sums of different shapes");
        }
        for (size_t r = 0; r < sh.sums.rows.size(); ++r) {
            rows.emplace_back(sh.sums.images[r], sh.sums.rows[r]);
        }
    }
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    all.images.clear();
    all.rows.clear();
    for (auto& [i, row] : rows) {
        if (static_cast<int64_t>(all.images.size()) != i) {
            return invalid("sensitivity shards: image {} measured twice or not at all",
                           static_cast<int64_t>(all.images.size()));
        }
        all.images.push_back(i);
        all.rows.push_back(std::move(row));
    }
    if (static_cast<int64_t>(all.images.size()) != rep.images) {
        return invalid("sensitivity shards: {} of {} images measured", all.images.size(),
                       rep.images);
    }
    std::vector<NodeSensitivity> nodes = shards.front().nodes;
    std::sort(nodes.begin(), nodes.end(), [](const NodeSensitivity& a, const NodeSensitivity& b) {
        return a.measured < b.measured;
    });
    if (nodes.size() != all.nodes) {
        return invalid("sensitivity shards: {} nodes reported, {} measured", nodes.size(),
                       all.nodes);
    }
    rep.reference = nlohmann::ordered_json();
    for (NodeSensitivity& n : nodes) n.metrics = nlohmann::ordered_json();
    LOWBIT_TRY(score_image_sums(opts, all, rep.images, rep.reference, nodes));
    for (NodeSensitivity& n : nodes) {
        if (!std::isfinite(n.score)) n.score = std::numeric_limits<double>::max();
    }
    rank_by_score(nodes);
    rep.nodes = std::move(nodes);
    return rep;
}

Result<SensitivityMetric> parse_sensitivity_metric(const std::string& s) {
    if (s == "output-mse" || s == "mse") return SensitivityMetric::OutputMse;
    if (s == "cosine") return SensitivityMetric::Cosine;
    if (s == "local-sqnr" || s == "sqnr") return SensitivityMetric::LocalSqnr;
    if (s == "map") return SensitivityMetric::Map;
    if (s == "detection") return SensitivityMetric::Detection;
    return invalid("--metric '{}': expected output-mse, cosine, local-sqnr, detection or map", s);
}

const char* sensitivity_metric_name(SensitivityMetric m) {
    switch (m) {
        case SensitivityMetric::OutputMse: return "output-mse";
        case SensitivityMetric::Cosine: return "cosine";
        case SensitivityMetric::LocalSqnr: return "local-sqnr";
        case SensitivityMetric::Map: return "map";
        case SensitivityMetric::Detection: return "detection";
    }
    return "?";
}

std::string node_scope(const std::string& name) {
    auto slash = name.rfind('/');
    if (slash == std::string::npos || slash == 0) return name;
    std::string scope = name.substr(0, slash);
    const std::string conv = "/conv";
    if (scope.size() > conv.size() &&
        scope.compare(scope.size() - conv.size(), conv.size(), conv) == 0) {
        scope.resize(scope.size() - conv.size());
    }
    return scope;
}

Result<SensitivityReport> run_sensitivity(const Model& input, calib::CalibSource& source,
                                          const SensitivityOptions& opts) {
    SensitivityReport rep;
    SweepSetup s;
    const std::unique_ptr<Metric> metric = make_metric(opts.metric, {s, source, opts, rep});
    LOWBIT_TRY(metric->check(opts));
    if (opts.images <= 0) return invalid("--images {}: must be at least 1", opts.images);
    if (opts.quant.zero_point) return invalid("sensitivity uses symmetric quantization only");
    if (opts.shard_count < 1 || opts.shard_index < 0 || opts.shard_index >= opts.shard_count) {
        return invalid("shard {}/{}: expected 0 <= I < N", opts.shard_index, opts.shard_count);
    }

    LOWBIT_TRY(setup_sweep(input, source, opts, s, rep));
    FakeQuantOverride fq(s.node_quant, s.mode, metric->local());
    const size_t per_sample = static_cast<size_t>(shape_numel(source.sample_shape()));
    if (static_cast<size_t>(shape_numel(s.input.shape)) != per_sample) {
        return invalid("input '{}' is {} but calibration samples are {}", s.input.name,
                       shape_str(s.input.shape), shape_str(source.sample_shape()));
    }
    LOWBIT_ASSIGN(const int64_t n_images, metric->prepare());
    // Fake-quantized weights are prepared once, as a constant variant of each node that runs
    // through the executor.
    LOWBIT_TRY(add_weight_variants(s, metric->own_weights()));
    rep.images = n_images;

    SweepTimes times;
    LOWBIT_TRY(sweep_images(s, *metric, fq, opts, n_images, times));
    LOWBIT_TRY(measure_cost(s, *metric, opts, n_images, times, rep.cost));
    LOWBIT_TRY(rank_nodes(s, *metric, opts, n_images, rep));
    if (const ImageSums* sums = metric->image_sums()) rep.sums = *sums;
    return rep;
}

}  // namespace lowbit::quant
