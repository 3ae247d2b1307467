#include "report/mixed_pareto.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "core/json_at.h"
#include "report/svg_plot.h"

namespace lowbit::report {

Result<MixedPareto> load_mixed_pareto(const std::string& path) {
    LOWBIT_ASSIGN(nlohmann::json j, read_json_file(path));
    auto bad = [&](const std::string& what) {
        return invalid("{}: not a `lowbit mixed` Pareto file ({})", path, what);
    };
    if (!j.is_object() || j.value("tool", "") != "lowbit mixed") return bad("tool");
    if (!j.contains("points") || !j["points"].is_array()) return bad("points");
    if (!j.contains("int8") || !j["int8"].contains("weight_bytes")) return bad("int8");
    if (!j.contains("fp32_map50_95") || !j["fp32_map50_95"].is_number()) return bad("fp32");
    for (const auto& p : j["points"]) {
        if (!p.is_object() || !p.contains("weight_bytes") || !p["weight_bytes"].is_number() ||
            !p.contains("map50_95") || !p["map50_95"].is_number() || !p.contains("source")) {
            return bad("a point lacks weight_bytes, map50_95 or source");
        }
    }
    return MixedPareto{path, std::move(j)};
}

namespace {

std::string label(const nlohmann::json& p) {
    if (p.value("source", "") == "int8") return "all INT8";
    return fmt::format("{:.0f}% INT4", 100 * p.value("int4w_weight_share", 0.0));
}

// How the file's latencies were measured: files written before the per-step-median rule
// (pipeline/node_latency.h) say "median" (of whole runs).
std::string latency_statistic(const nlohmann::json& j) {
    if (j.contains("latency") && j["latency"].is_object() && j["latency"].contains("statistic") &&
        j["latency"]["statistic"].is_string()) {
        return j["latency"]["statistic"].get<std::string>();
    }
    return "median";
}

// Files written before latencies were measured have no latency_ms.
bool has_latency(const nlohmann::json& j) {
    if (!j.contains("fp32_latency_ms") || !j["fp32_latency_ms"].is_number() ||
        j["fp32_latency_ms"].get<double>() <= 0) {
        return false;
    }
    for (const auto& q : j["points"]) {
        if (!q.contains("latency_ms") || !q["latency_ms"].is_number()) return false;
    }
    return true;
}

// mAP50-95 against x(point), the points with `front_key` joined.
std::string scatter(const nlohmann::json& j, const std::string& front_key,
                    const std::function<double(const nlohmann::json&)>& x,
                    const std::string& x_label) {
    std::vector<ScatterPoint> pts;
    std::vector<std::pair<double, size_t>> front;
    for (const auto& q : j["points"]) {
        ScatterPoint sp;
        sp.x = x(q);
        sp.y = q["map50_95"].get<double>();
        sp.label = label(q);
        sp.highlight = q.value("chosen", false);
        if (q.value(front_key, false)) front.push_back({sp.x, pts.size()});
        pts.push_back(sp);
    }
    std::sort(front.begin(), front.end());
    std::vector<size_t> fi;
    for (const auto& f : front) fi.push_back(f.second);
    return svg_scatter(pts, fi, x_label, "mAP50-95");
}

}  // namespace

std::string mixed_pareto_markdown(const MixedPareto& p) {
    const auto& j = p.j;
    std::string s = fmt::format(
        "\n## Mixed precision ({})\n\nFP32 mAP50-95 {:.4f}; weight bytes against the all-INT8 "
        "model ({} bytes); measured by quantize + eval.{}\n\n| weight bytes | x INT8 | INT4 share "
        "| mAP50-95 | drop | Pareto | chosen |{}\n|---|---|---|---|---|---|---|{}\n",
        p.path, j["fp32_map50_95"].get<double>(), j["int8"]["weight_bytes"].get<int64_t>(),
        has_latency(j) ? fmt::format(" Latency: ms per image ({}) on the machine that ran "
                                     "the search (FP32 {:.3f} ms).",
                                     latency_statistic(j), j["fp32_latency_ms"].get<double>())
                       : "",
        has_latency(j) ? " ms | Pareto (latency) |" : "", has_latency(j) ? "---|---|" : "");
    for (const auto& q : j["points"]) {
        s += fmt::format("| {} | {:.3f} | {} | {:.4f} | {:.4f} | {} | {} |",
                         q["weight_bytes"].get<int64_t>(), q.value("ratio_vs_int8", 0.0), label(q),
                         q["map50_95"].get<double>(), q.value("drop", 0.0),
                         q.value("on_front", false) ? "yes" : "",
                         q.value("chosen", false) ? "yes" : "");
        if (has_latency(j)) {
            s += fmt::format(" {:.3f} | {} |", q["latency_ms"].get<double>(),
                             q.value("on_front_latency", false) ? "yes" : "");
        }
        s += "\n";
    }
    return s;
}

std::string mixed_pareto_html(const MixedPareto& p) {
    const auto& j = p.j;
    std::string out = fmt::format(
        "<h2>Mixed precision</h2>\n<p>{}: FP32 mAP50-95 {:.4f}; measured points of the search "
        "(the chosen one larger), the Pareto front joined.</p>\n{}\n",
        html_escape(p.path), j["fp32_map50_95"].get<double>(),
        scatter(
            j, "on_front", [](const nlohmann::json& q) { return q.value("ratio_vs_int8", 0.0); },
            "weight bytes / all-INT8 model"));
    if (has_latency(j)) {
        const double fp32_ms = j["fp32_latency_ms"].get<double>();
        out += fmt::format(
            "<h3>Accuracy against latency</h3>\n<p>Median latency per image on the machine that "
            "ran the search, against the FP32 model's {:.3f} ms; the front against latency "
            "joined.</p>\n{}\n",
            fp32_ms,
            scatter(
                j, "on_front_latency",
                [fp32_ms](const nlohmann::json& q) {
                    return q["latency_ms"].get<double>() / fp32_ms;
                },
                "latency / FP32 model"));
    }
    return out;
}

}  // namespace lowbit::report
