#include "report/compare.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <unordered_set>

#include "eval/latency.h"
#include "onnx/model_io.h"
#include "report/json_read.h"
#include "report/paired_bootstrap.h"

namespace lowbit::report {

namespace {

namespace fs = std::filesystem;

// Evaluation parameters shown in "Datasets", in the eval --out key order (seed-spec §5.10).
const char* const kParamKeys[] = {"data_root", "instances",  "images_dir",  "providers",
                                  "imgsz",     "max_images", "warmup_runs", "skip_latency",
                                  "conf",      "iou",        "max_det",     "pre_nms_topk",
                                  "threads",   "backend",    "head"};

// The ONNX file of a results file: as written (relative to the current folder), else relative to
// the results file's folder or the one above it (results/ inside a run root).
std::optional<std::string> find_onnx(const std::string& onnx_path, const std::string& results) {
    if (onnx_path.empty()) return std::nullopt;
    std::error_code ec;
    fs::path p(onnx_path);
    if (fs::is_regular_file(p, ec)) return p.string();
    if (p.is_absolute()) return std::nullopt;
    fs::path dir = fs::path(results).parent_path();
    for (fs::path base : {dir, dir.parent_path()}) {
        if (fs::is_regular_file(base / p, ec)) return (base / p).string();
    }
    return std::nullopt;
}

std::string guess_mode(const std::string& name) {
    std::string low = name;
    for (char& ch : low) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (low.find("fp8") != std::string::npos) return "fp8";
    if (low.find("int8") != std::string::npos) return "int8";
    return "";
}

std::string param_text(const nlohmann::ordered_json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_array()) {
        std::string s;
        for (const auto& e : v) s += (s.empty() ? "" : " ") + param_text(e);
        return s;
    }
    return v.dump();
}

std::string fmt_opt(const std::optional<int64_t>& v) {
    return v ? std::to_string(*v) : "-";
}

}  // namespace

int64_t count_quantized_nodes(const Graph& graph) {
    // Dequantized tensors: DequantizeLinear outputs, and their Casts (fp16 high precision puts a
    // Cast between DQ and the consumer).
    std::unordered_set<std::string> dq_outputs;
    for (const Node& n : graph.nodes) {
        if (n.op_type == "DequantizeLinear") {
            for (const std::string& out : n.outputs) dq_outputs.insert(out);
        }
    }
    for (const Node& n : graph.nodes) {
        if (n.op_type == "Cast" && !n.inputs.empty() && dq_outputs.count(n.inputs[0])) {
            for (const std::string& out : n.outputs) dq_outputs.insert(out);
        }
    }
    int64_t count = 0;
    for (const Node& n : graph.nodes) {
        if (n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear" ||
            n.op_type == "Cast") {
            continue;
        }
        count += std::any_of(n.inputs.begin(), n.inputs.end(),
                             [&](const std::string& in) { return dq_outputs.count(in) > 0; });
    }
    return count;
}

Result<int64_t> count_quantized_nodes(const std::string& onnx_path) {
    LOWBIT_ASSIGN(Model model, load_model(onnx_path));
    return count_quantized_nodes(model.graph);
}

std::optional<std::string> variant_onnx_file(const Variant& v) {
    return find_onnx(v.onnx_path, v.file);
}

Result<Variant> load_variant(const std::string& path) {
    LOWBIT_ASSIGN(nlohmann::json doc, read_json_file(path));
    JsonAt root = json_root(doc, path);
    LOWBIT_TRY(root.expect_object());
    Variant v;
    v.file = path;
    v.name = fs::path(path).stem().string();
    LOWBIT_ASSIGN(JsonAt onnx, root.at("onnx_path"));
    LOWBIT_ASSIGN(v.onnx_path, onnx.string());
    LOWBIT_ASSIGN(JsonAt metrics, root.at("metrics"));
    LOWBIT_ASSIGN(JsonAt m5095, metrics.at("mAP_50_95"));
    LOWBIT_ASSIGN(v.map50_95, m5095.number());
    LOWBIT_ASSIGN(JsonAt m50, metrics.at("mAP_50"));
    LOWBIT_ASSIGN(v.map50, m50.number());
    LOWBIT_ASSIGN(JsonAt latency, root.at("latency"));
    LOWBIT_ASSIGN(JsonAt mean, latency.at("mean_ms"));
    LOWBIT_ASSIGN(v.mean_ms, mean.number());
    LOWBIT_ASSIGN(JsonAt p90, latency.at("p90_ms"));
    LOWBIT_ASSIGN(v.p90_ms, p90.number());
    v.median_ms = v.mean_ms;
    if (auto x = latency.find("median_ms")) {
        LOWBIT_ASSIGN(v.median_ms, x->number());
    }
    if (auto x = latency.find("spread_ms")) {
        LOWBIT_ASSIGN(v.spread_ms, x->number());
        if (*v.spread_ms < 0) return x->type_error("a non-negative number");
    }
    if (auto x = latency.find("p10_ms")) {
        LOWBIT_ASSIGN(v.p10_ms, x->number());
    }
    if (doc.is_object() && doc.contains("bootstrap")) {
        const nlohmann::json& bs = doc["bootstrap"];
        try {
            v.bootstrap = bs.at("map50_95").get<std::vector<double>>();
            v.bootstrap_images = bs.at("image_ids").get<std::vector<int64_t>>();
            v.bootstrap_seed = bs.at("seed").get<int64_t>();
            const auto ci = bs.at("map50_95_ci95").get<std::vector<double>>();
            if (ci.size() != 2)
                return invalid("{}: bootstrap.map50_95_ci95: expected 2 numbers", path);
            v.bootstrap_ci = std::make_pair(ci[0], ci[1]);
        } catch (const nlohmann::json::exception& e) {
            return invalid("{}: bootstrap: {}", path, e.what());
        }
    }
    if (auto x = latency.find("samples")) {
        LOWBIT_ASSIGN(v.latency_samples, x->integer());
    }
    if (auto x = latency.find("median_ci_ms")) {
        LOWBIT_TRY(x->expect_array());
        if (x->v->size() != 2) return x->type_error("[low, high]");
        LOWBIT_ASSIGN(double lo, x->index(0).number());
        LOWBIT_ASSIGN(double hi, x->index(1).number());
        v.median_ci_ms = std::make_pair(lo, hi);
    }
    if (auto x = latency.find("median_ci_level")) {
        LOWBIT_ASSIGN(v.median_ci_level, x->number());
    }
    for (const char* key : kParamKeys) {
        if (auto it = doc.find(key); it != doc.end()) v.params[key] = *it;
    }

    if (auto var = root.find("variant")) {
        LOWBIT_TRY(var->expect_object());
        if (auto x = var->find("name")) {
            LOWBIT_ASSIGN(v.name, x->string());
        }
        if (auto x = var->find("mode")) {
            LOWBIT_ASSIGN(v.mode, x->string());
        }
        if (auto x = var->find("k")) {
            LOWBIT_ASSIGN(int64_t k, x->integer());
            v.k = static_cast<int>(k);
        }
        if (auto x = var->find("excluded_nodes")) {
            LOWBIT_ASSIGN(v.excluded_nodes, x->integer());
        }
        if (auto x = var->find("quantized_nodes")) {
            LOWBIT_ASSIGN(v.quantized_nodes, x->integer());
        }
        if (auto x = var->find("calibration_method")) {
            LOWBIT_ASSIGN(v.calibration_method, x->string());
        }
        if (auto x = var->find("model_bytes")) {
            LOWBIT_ASSIGN(v.model_bytes, x->integer());
        }
    }
    if (v.mode.empty()) v.mode = guess_mode(v.name);

    if (!v.model_bytes || !v.quantized_nodes) {
        if (auto onnx_file = find_onnx(v.onnx_path, path)) {
            std::error_code ec;
            auto bytes = fs::file_size(*onnx_file, ec);
            if (!ec && !v.model_bytes) v.model_bytes = static_cast<int64_t>(bytes);
            if (!v.quantized_nodes) {
                LOWBIT_ASSIGN(v.quantized_nodes, count_quantized_nodes(*onnx_file));
            }
        }
    }
    return v;
}

bool natural_less(const std::string& a, const std::string& b) {
    size_t i = 0, j = 0;
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    while (i < a.size() && j < b.size()) {
        if (digit(a[i]) && digit(b[j])) {
            size_t i2 = i, j2 = j;
            while (i2 < a.size() && digit(a[i2])) ++i2;
            while (j2 < b.size() && digit(b[j2])) ++j2;
            // Compare without leading zeros: longer run = larger number.
            std::string_view x(a.data() + i, i2 - i), y(b.data() + j, j2 - j);
            while (x.size() > 1 && x[0] == '0') x.remove_prefix(1);
            while (y.size() > 1 && y[0] == '0') y.remove_prefix(1);
            if (x.size() != y.size()) return x.size() < y.size();
            if (x != y) return x < y;
            i = i2;
            j = j2;
        } else {
            if (a[i] != b[j]) return a[i] < b[j];
            ++i;
            ++j;
        }
    }
    return a.size() - i < b.size() - j;
}

std::vector<size_t> pareto_front(const std::vector<std::pair<double, double>>& points) {
    std::vector<size_t> order(points.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    // By x ascending, then y descending: a point is on the front when its y beats every y
    // before it (those are at least as fast).
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (points[a].first != points[b].first) return points[a].first < points[b].first;
        return points[a].second > points[b].second;
    });
    std::vector<size_t> front;
    for (size_t i : order) {
        if (front.empty() || points[i].second > points[front.back()].second) front.push_back(i);
    }
    return front;
}

std::optional<double> Comparison::drop(size_t i) const {
    if (!baseline) return std::nullopt;
    return variants[*baseline].map50_95 - variants[i].map50_95;
}

double spread_of(const Variant& v) {
    return v.spread_ms.value_or(0.0);
}

std::optional<PairedDifference> paired_difference(const Variant& a, const Variant& b) {
    if (a.round_ms.empty() || a.round_ms.size() != b.round_ms.size()) return std::nullopt;
    std::vector<double> d(a.round_ms.size());
    for (size_t r = 0; r < d.size(); ++r) d[r] = a.round_ms[r] - b.round_ms[r];
    const LatencyStats s = latency_stats_ms(std::move(d));
    return PairedDifference{s.median_ms, s.median_ci_low_ms, s.median_ci_high_ms,
                            s.median_ci_level, s.samples};
}

Speed speed_against(const Variant& a, const Variant& b) {
    if (auto p = paired_difference(a, b)) {
        if (p->high_ms < 0) return Speed::Faster;
        if (p->low_ms > 0) return Speed::Slower;
        return Speed::Same;
    }
    const double noise = spread_of(a) + spread_of(b);
    if (b.median_ms - a.median_ms > noise) return Speed::Faster;
    if (a.median_ms - b.median_ms > noise) return Speed::Slower;
    return Speed::Same;
}

std::string latency_rule() {
    return "Latency: a variant counts as faster than another only when its median latency is "
           "lower by more than the sum of the two spreads (spread = half the p10-p90 range of "
           "the per-image times, or the wider side of the median's 95% confidence interval if "
           "larger); two variants timed in the same interleaved rounds (compare "
           "--interleave-rounds) are compared round by round instead: faster only when the 95% "
           "confidence interval of the median per-round difference lies below 0";
}

namespace {

// Why a and b got their verdict: the paired interval, or the gap against the spreads.
std::string speed_evidence(const Variant& a, const Variant& b) {
    if (auto p = paired_difference(a, b)) {
        return fmt::format(
            "paired over {} rounds: median difference {:+.3f} ms, {:.0f}% interval "
            "{:+.3f}..{:+.3f} ms",
            p->rounds, p->median_ms, 100 * p->level, p->low_ms, p->high_ms);
    }
    return fmt::format("{:.3f} ms of spreads", spread_of(a) + spread_of(b));
}

}  // namespace

Result<Comparison> compare_variants(std::vector<Variant> variants, const CompareOptions& o) {
    if (variants.empty()) return invalid("no results files given");
    Comparison c;
    std::optional<size_t> base;
    for (size_t i = 0; i < variants.size(); ++i) {
        const Variant& v = variants[i];
        bool hit = o.baseline.empty() ? v.name.rfind("baseline", 0) == 0
                                      : (v.name == o.baseline || v.file == o.baseline);
        if (hit) {
            base = i;
            break;
        }
    }
    if (!o.baseline.empty() && !base) {
        return invalid("--baseline '{}' is neither a results file given nor a variant name",
                       o.baseline);
    }
    for (size_t i = 0; i < variants.size(); ++i) variants[i].baseline = base && i == *base;
    std::stable_sort(variants.begin(), variants.end(), [](const Variant& a, const Variant& b) {
        if (a.baseline != b.baseline) return a.baseline;
        return natural_less(a.name, b.name);
    });
    c.variants = std::move(variants);
    if (base) c.baseline = 0;

    Recommendation& r = c.recommendation;
    r.rule = fmt::format(
        "among the quantized variants (every variant but the baseline) whose mAP_50_95 drop "
        "against the baseline is at most {:.4f}, those not measurably slower than the fastest of "
        "them (lowest median latency; measurably = the medians differ by more than the sum of "
        "the two latency spreads, or for variants timed in the same interleaved rounds the 95% "
        "interval of their median per-round difference excludes 0), and of these the most "
        "accurate; if none is within that tolerance, the most accurate quantized variant",
        o.max_drop);
    std::vector<size_t> pool;
    for (size_t i = 0; i < c.variants.size(); ++i) {
        if (!c.variants[i].baseline) pool.push_back(i);
    }
    if (pool.empty()) {
        r.reason = "only the baseline was given; there is nothing to recommend";
        return c;
    }
    auto faster = [&](size_t a, size_t b) {
        const Variant &x = c.variants[a], &y = c.variants[b];
        if (x.median_ms != y.median_ms) return x.median_ms < y.median_ms;
        return x.map50_95 > y.map50_95;
    };
    auto more_accurate = [&](size_t a, size_t b) {
        const Variant &x = c.variants[a], &y = c.variants[b];
        if (x.map50_95 != y.map50_95) return x.map50_95 > y.map50_95;
        return x.median_ms < y.median_ms;
    };
    if (!c.baseline) {
        r.index = *std::min_element(pool.begin(), pool.end(), more_accurate);
        r.reason =
            "no baseline (no --baseline and no variant named baseline*), so the drop is unknown: "
            "this is the most accurate variant";
        return c;
    }
    std::vector<size_t> within;
    for (size_t i : pool) {
        if (*c.drop(i) <= o.max_drop + 1e-12) within.push_back(i);
    }
    const Variant& b = c.variants[*c.baseline];
    if (!within.empty()) {
        const size_t fastest = *std::min_element(within.begin(), within.end(), faster);
        std::vector<size_t> tied;
        for (size_t i : within) {
            if (speed_against(c.variants[i], c.variants[fastest]) != Speed::Slower) {
                tied.push_back(i);
            }
        }
        const size_t best = *std::min_element(tied.begin(), tied.end(), more_accurate);
        const Variant& v = c.variants[best];
        r.index = best;
        r.reason = fmt::format(
            "{} of the {} quantized variants are within the tolerance and {} of those are not "
            "measurably slower than the fastest ({}, median {:.3f} +/- {:.3f} ms); this one is "
            "the most accurate of them: mAP_50_95 {:.4f}, drop {:.4f}, median {:.3f} +/- {:.3f} "
            "ms",
            within.size(), pool.size(), tied.size(), c.variants[fastest].name,
            c.variants[fastest].median_ms, spread_of(c.variants[fastest]), v.map50_95,
            *c.drop(best), v.median_ms, spread_of(v));
        const double gap = b.median_ms - v.median_ms, noise = spread_of(v) + spread_of(b);
        const Speed speed = speed_against(v, b);
        if (paired_difference(v, b)) {
            r.reason += fmt::format(
                "; {} the baseline ({:.3f} ms; {})",
                speed == Speed::Faster   ? "measurably faster than"
                : speed == Speed::Slower ? "measurably slower than"
                                         : "not measurably faster than",
                b.median_ms, speed_evidence(v, b));
            return c;
        }
        switch (speed) {
            case Speed::Faster:
                r.reason += fmt::format(
                    "; measurably faster than the baseline ({:.3f} ms): by {:.3f} ms, more than "
                    "the {:.3f} ms of their spreads",
                    b.median_ms, gap, noise);
                break;
            case Speed::Same:
                r.reason += fmt::format(
                    "; not measurably faster than the baseline ({:.3f} ms): the medians differ "
                    "by {:.3f} ms, within the {:.3f} ms of their spreads",
                    b.median_ms, std::abs(gap), noise);
                break;
            case Speed::Slower:
                r.reason += fmt::format(
                    "; measurably slower than the baseline ({:.3f} ms, by {:.3f} ms > {:.3f} ms "
                    "of spreads): where a Q/DQ graph runs as float simulation (no low-precision "
                    "kernel for a node) quantization costs time",
                    b.median_ms, -gap, noise);
                break;
        }
    } else {
        size_t best = *std::min_element(pool.begin(), pool.end(), more_accurate);
        const Variant& v = c.variants[best];
        r.index = best;
        r.reason = fmt::format(
            "no quantized variant is within the tolerance; this is the most accurate one: "
            "mAP_50_95 {:.4f}, drop {:.4f} (> {:.4f}), median {:.3f} +/- {:.3f} ms",
            v.map50_95, *c.drop(best), o.max_drop, v.median_ms, spread_of(v));
    }
    return c;
}

std::string markdown_table(const Comparison& c) {
    std::string md =
        "| variant | mAP_50_95 | mAP_50 | drop | mean_ms | p90_ms | size MB | quantized nodes | "
        "onnx |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for (size_t i = 0; i < c.variants.size(); ++i) {
        const Variant& v = c.variants[i];
        auto drop = c.drop(i);
        md += fmt::format(
            "| {} | {:.4f} | {:.4f} | {} | {:.3f} | {:.3f} | {} | {} | {} |\n", v.name, v.map50_95,
            v.map50, v.baseline ? "-" : (drop ? fmt::format("{:.4f}", *drop) : "-"), v.mean_ms,
            v.p90_ms, v.model_bytes ? fmt::format("{:.2f}", *v.model_bytes / 1e6) : "-",
            fmt_opt(v.quantized_nodes), v.onnx_path);
    }
    return md;
}

std::string median_ci_text(const Variant& v) {
    if (!v.median_ci_ms) return "-";
    std::string ci = fmt::format("{:.3f}..{:.3f}", v.median_ci_ms->first, v.median_ci_ms->second);
    if (v.median_ci_level) ci += fmt::format(" ({:.1f}%)", 100 * *v.median_ci_level);
    return ci;
}

std::string latency_verdict(const Comparison& c, size_t i) {
    if (!c.baseline || i == *c.baseline) return "-";
    const Variant &v = c.variants[i], &b = c.variants[*c.baseline];
    if (auto p = paired_difference(v, b)) {
        switch (speed_against(v, b)) {
            case Speed::Faster:
                return fmt::format("faster by {:.3f} ms ({})", -p->median_ms, speed_evidence(v, b));
            case Speed::Slower:
                return fmt::format("slower by {:.3f} ms ({})", p->median_ms, speed_evidence(v, b));
            case Speed::Same: break;
        }
        return fmt::format("no measurable difference ({})", speed_evidence(v, b));
    }
    const double gap = b.median_ms - v.median_ms, noise = spread_of(v) + spread_of(b);
    switch (speed_against(v, b)) {
        case Speed::Faster:
            return fmt::format("faster by {:.3f} ms (> {:.3f} ms of spreads)", gap, noise);
        case Speed::Slower:
            return fmt::format("slower by {:.3f} ms (> {:.3f} ms of spreads)", -gap, noise);
        case Speed::Same: break;
    }
    return fmt::format("no measurable difference ({:+.3f} ms, within {:.3f} ms of spreads)", -gap,
                       noise);
}

namespace {

std::string opt_ms(const std::optional<double>& v) {
    return v ? fmt::format("{:.3f}", *v) : "-";
}

}  // namespace

std::string latency_markdown(const Comparison& c) {
    std::string md =
        "| variant | median_ms | spread_ms | median CI ms | p10_ms | p90_ms | samples | "
        "against the baseline |\n|---|---:|---:|---|---:|---:|---:|---|\n";
    for (size_t i = 0; i < c.variants.size(); ++i) {
        const Variant& v = c.variants[i];
        const std::string ci = median_ci_text(v);
        md += fmt::format("| {} | {:.3f} | {} | {} | {} | {:.3f} | {} | {} |\n", v.name,
                          v.median_ms, opt_ms(v.spread_ms), ci, opt_ms(v.p10_ms), v.p90_ms,
                          v.latency_samples ? std::to_string(*v.latency_samples) : "-",
                          latency_verdict(c, i));
    }
    return md;
}

std::string latency_lines(const Comparison& c) {
    std::string out = latency_rule() + ".\n";
    if (!c.variants.empty() && !c.variants.front().latency_source.empty()) {
        out += "Latencies measured here: " + c.variants.front().latency_source + ".\n";
    }
    size_t width = 0;
    for (const Variant& v : c.variants) width = std::max(width, v.name.size());
    for (size_t i = 0; i < c.variants.size(); ++i) {
        const Variant& v = c.variants[i];
        out += fmt::format("  {:<{}}  median {:.3f} +/- {} ms", v.name, width, v.median_ms,
                           v.spread_ms ? fmt::format("{:.3f}", *v.spread_ms) : "? (no spread)");
        if (c.baseline && i != *c.baseline)
            out += "  against the baseline: " + latency_verdict(c, i);
        out += "\n";
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> dataset_lines(const Comparison& c) {
    std::vector<std::pair<std::string, std::string>> lines;
    for (const char* key : kParamKeys) {
        // value text -> variants that have it, in table order.
        std::vector<std::pair<std::string, std::vector<std::string>>> values;
        for (const Variant& v : c.variants) {
            auto it = v.params.find(key);
            if (it == v.params.end()) continue;
            std::string text = param_text(*it);
            if (text.empty()) text = "-";
            auto same = std::find_if(values.begin(), values.end(),
                                     [&](const auto& p) { return p.first == text; });
            if (same == values.end()) {
                values.push_back({text, {v.name}});
            } else {
                same->second.push_back(v.name);
            }
        }
        if (values.empty()) continue;
        if (values.size() == 1) {
            lines.emplace_back(key, values[0].first);
            continue;
        }
        std::vector<std::string> parts;
        for (const auto& [text, names] : values) {
            parts.push_back(fmt::format("{} ({})", text, fmt::join(names, ", ")));
        }
        lines.emplace_back(key, fmt::format("differs: {}", fmt::join(parts, "; ")));
    }
    std::vector<std::string> calib;
    for (const Variant& v : c.variants) {
        if (!v.calibration_method.empty()) {
            calib.push_back(fmt::format("{} ({})", v.calibration_method, v.name));
        }
    }
    if (!calib.empty())
        lines.emplace_back("calibration", fmt::format("{}", fmt::join(calib, ", ")));
    return lines;
}

std::string summary_markdown(const Comparison& c, const CompareOptions& o) {
    std::string md = "# Low-bit candidates: summary\n\n";
    md += fmt::format(
        "Generated by `lowbit compare` from {} results files. mAP is COCO mAP (pycocotools-exact) "
        "on the evaluated images; latency is per image, as measured by `lowbit eval`.\n\n",
        c.variants.size());
    md += markdown_table(c);
    md += "\n";
    if (c.baseline) {
        md += fmt::format("drop = mAP_50_95 of the baseline (`{}`) - mAP_50_95 of the variant. ",
                          c.variants[*c.baseline].name);
    }
    md +=
        "size MB = ONNX file size / 10^6. quantized nodes = nodes that read a "
        "DequantizeLinear output.\n";

    bool schemes = std::any_of(c.variants.begin(), c.variants.end(), [](const Variant& v) {
        return v.k || v.excluded_nodes || !v.calibration_method.empty();
    });
    if (schemes) {
        md +=
            "\n## Schemes\n\n| variant | mode | K | excluded nodes | calibration |\n"
            "|---|---|---:|---:|---|\n";
        for (const Variant& v : c.variants) {
            md += fmt::format("| {} | {} | {} | {} | {} |\n", v.name,
                              v.mode.empty() ? (v.baseline ? "fp32" : "-") : v.mode,
                              v.k ? std::to_string(*v.k) : "-", fmt_opt(v.excluded_nodes),
                              v.calibration_method.empty() ? "-" : v.calibration_method);
        }
    }

    md += "\n## Accuracy against the baseline (paired bootstrap)\n\n";
    md += accuracy_markdown(c);

    md += "\n## Latency\n\n";
    md += latency_rule() + ".\n\n";
    if (!c.variants.empty() && !c.variants.front().latency_source.empty()) {
        md += "Latencies measured by compare: " + c.variants.front().latency_source + ".\n\n";
    }
    md += latency_markdown(c);
    std::vector<std::string> no_spread;
    for (const Variant& v : c.variants) {
        if (!v.spread_ms) no_spread.push_back(v.name);
    }
    md += fmt::format(
        "\nmedian CI = the {:.0f}% confidence interval of the median from binomial order "
        "statistics (its achieved level in brackets; fewer than 6 samples reach less).{}\n",
        100 * kMedianCiLevel,
        no_spread.empty()
            ? ""
            : fmt::format(" No spread recorded for {} (results written before lowbit stated "
                          "one): counted as 0.",
                          fmt::join(no_spread, ", ")));

    md += "\n## Recommendation\n\n";
    md += "Rule: " + c.recommendation.rule + ".\n\n";
    if (c.recommendation.index) {
        md += fmt::format("**Recommended: `{}`**: {}.\n", c.variants[*c.recommendation.index].name,
                          c.recommendation.reason);
    } else {
        md += "No recommendation: " + c.recommendation.reason + ".\n";
    }

    md += "\n## Datasets\n\n";
    for (const auto& [key, text] : dataset_lines(c)) md += fmt::format("- {}: {}\n", key, text);
    md += fmt::format("- recommendation tolerance (--max-drop): {:.4f} mAP_50_95\n", o.max_drop);
    return md;
}

}  // namespace lowbit::report
