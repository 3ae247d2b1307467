#include "report/html_report.h"

#include <fmt/format.h>

#include <algorithm>

#include "report/paired_bootstrap.h"
#include "report/svg_plot.h"

namespace lowbit::report {

namespace {

std::string accuracy_table_html(const Comparison& c) {
    std::string h =
        "<p>A difference from the baseline is called only when the 95% interval of the paired "
        "bootstrap over images excludes 0.</p>\n<table><tr><th>variant</th><th>mAP_50_95</th>"
        "<th>95% CI</th><th>against the baseline</th></tr>\n";
    for (size_t i = 0; i < c.variants.size(); ++i) {
        const Variant& v = c.variants[i];
        h += fmt::format(
            "<tr><td>{}</td><td class=\"num\">{:.4f}</td><td class=\"num\">{}</td><td>{}</td>"
            "</tr>\n",
            html_escape(v.name), v.map50_95,
            v.bootstrap_ci
                ? fmt::format("{:.4f}..{:.4f}", v.bootstrap_ci->first, v.bootstrap_ci->second)
                : "-",
            html_escape(accuracy_verdict(c, i)));
    }
    return h + "</table>\n";
}

const char* const kStyle =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;"
    "max-width:1200px;padding:0 1em;color:#222}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}"
    "table{border-collapse:collapse;font-size:.9em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em}th{background:#f1f3f5}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.rec td{background:#fff4e6;font-weight:600}tr.base td{color:#555}"
    "code,.node{font-family:ui-monospace,Menlo,Consolas,monospace}"
    ".plot{display:block;margin:1em 0;max-width:100%;height:auto}"
    ".plot .tick{font-size:11px;fill:#444}.plot .axis{font-size:13px;fill:#222}"
    ".plot .label{font-size:12px;fill:#111}.plot .node{font-size:11px;fill:#222}"
    ".note{color:#555;font-size:.9em}";

std::string table_html(const Comparison& c) {
    std::string h =
        "<table>\n<tr><th>variant</th><th>mAP_50_95</th><th>mAP_50</th><th>drop</th>"
        "<th>mean_ms</th><th>p90_ms</th><th>size MB</th><th>quantized nodes</th><th>onnx</th>"
        "</tr>\n";
    for (size_t i = 0; i < c.variants.size(); ++i) {
        const Variant& v = c.variants[i];
        auto drop = c.drop(i);
        const char* cls = c.recommendation.index && *c.recommendation.index == i ? " class=\"rec\""
                          : v.baseline                                           ? " class=\"base\""
                                                                                 : "";
        h += fmt::format(
            "<tr{}><td>{}</td><td class=\"num\">{:.4f}</td><td class=\"num\">{:.4f}</td>"
            "<td class=\"num\">{}</td><td class=\"num\">{:.3f}</td><td class=\"num\">{:.3f}</td>"
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td><code>{}</code></td></tr>\n",
            cls, html_escape(v.name), v.map50_95, v.map50,
            v.baseline ? "-" : (drop ? fmt::format("{:.4f}", *drop) : "-"), v.mean_ms, v.p90_ms,
            v.model_bytes ? fmt::format("{:.2f}", *v.model_bytes / 1e6) : "-",
            v.quantized_nodes ? std::to_string(*v.quantized_nodes) : "-", html_escape(v.onnx_path));
    }
    return h + "</table>\n";
}

std::string latency_table_html(const Comparison& c) {
    std::string h =
        "<table>\n<tr><th>variant</th><th>median_ms</th><th>spread_ms</th><th>median CI ms</th>"
        "<th>p10_ms</th><th>p90_ms</th><th>samples</th><th>against the baseline</th></tr>\n";
    auto ms = [](const std::optional<double>& v) {
        return v ? fmt::format("{:.3f}", *v) : std::string("-");
    };
    for (size_t i = 0; i < c.variants.size(); ++i) {
        const Variant& v = c.variants[i];
        const std::string ci = median_ci_text(v);
        h += fmt::format(
            "<tr><td>{}</td><td class=\"num\">{:.3f}</td><td class=\"num\">{}</td>"
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3f}</td>"
            "<td class=\"num\">{}</td><td>{}</td></tr>\n",
            html_escape(v.name), v.median_ms, ms(v.spread_ms), ci, ms(v.p10_ms), v.p90_ms,
            v.latency_samples ? std::to_string(*v.latency_samples) : "-",
            html_escape(latency_verdict(c, i)));
    }
    return h + "</table>\n";
}

std::string sensitivity_html(const SensitivityReport& r) {
    std::vector<const SensitivityEntry*> top;
    for (const SensitivityEntry& e : r.entries) top.push_back(&e);
    std::stable_sort(
        top.begin(), top.end(),
        [](const SensitivityEntry* a, const SensitivityEntry* b) { return a->score > b->score; });
    if (top.size() > static_cast<size_t>(kSensitivityBars)) top.resize(kSensitivityBars);
    std::vector<Bar> bars;
    for (const SensitivityEntry* e : top) {
        std::string label = e->name;
        if (!e->op_type.empty()) label += " (" + e->op_type + ")";
        bars.push_back({label, e->score});
    }
    bool torch = r.kind == SensitivityReport::Kind::Torch;
    std::string what =
        torch ? fmt::format("Torch layer sensitivity{}", r.mode.empty() ? "" : ", " + r.mode)
              : fmt::format("lowbit per-node sensitivity, metric {}, mode {}",
                            r.metric.empty() ? "-" : r.metric, r.mode.empty() ? "-" : r.mode);
    return fmt::format(
        "<h3><code>{}</code></h3>\n<p class=\"note\">{}; top {} of {} {} by score (higher = "
        "more sensitive).</p>\n{}",
        html_escape(r.path), html_escape(what), bars.size(), r.entries.size(),
        torch ? "layers" : "nodes", svg_hbars(bars, torch ? "sensitivity" : "score"));
}

}  // namespace

std::string html_report(const Comparison& c, const CompareOptions& o,
                        const std::vector<SensitivityReport>& sensitivity) {
    std::string h = fmt::format(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>lowbit: low-bit candidates</title>\n<style>{}</style>\n</head>\n<body>\n"
        "<h1>Low-bit candidates</h1>\n<p class=\"note\">Generated by <code>lowbit compare</code> "
        "from {} results files. mAP is COCO mAP on the evaluated images; latency is per image, "
        "as measured by <code>lowbit eval</code>.</p>\n",
        kStyle, c.variants.size());

    h += "<h2>Variants</h2>\n" + table_html(c);
    if (c.baseline) {
        h += fmt::format(
            "<p class=\"note\">drop = mAP_50_95 of the baseline (<code>{}</code>) minus the "
            "variant's. size MB = ONNX file size / 10<sup>6</sup>.</p>\n",
            html_escape(c.variants[*c.baseline].name));
    }

    h += "<h2>Recommendation</h2>\n";
    h += "<p>Rule: " + html_escape(c.recommendation.rule) + ".</p>\n";
    if (c.recommendation.index) {
        h += fmt::format("<p><strong>Recommended: <code>{}</code></strong>: {}.</p>\n",
                         html_escape(c.variants[*c.recommendation.index].name),
                         html_escape(c.recommendation.reason));
    } else {
        h += "<p>No recommendation: " + html_escape(c.recommendation.reason) + ".</p>\n";
    }

    h += "<h2>mAP vs latency</h2>\n";
    std::vector<std::pair<double, double>> xy;
    std::vector<ScatterPoint> points;
    for (size_t i = 0; i < c.variants.size(); ++i) {
        const Variant& v = c.variants[i];
        xy.emplace_back(v.median_ms, v.map50_95);
        points.push_back({v.median_ms, v.map50_95, v.name,
                          c.recommendation.index && *c.recommendation.index == i, spread_of(v)});
    }
    std::vector<size_t> front = pareto_front(xy);
    h += svg_scatter(points, front, "median latency (ms), bars: +/- spread", "mAP_50_95");
    std::string names;
    for (size_t i : front) names += (names.empty() ? "" : ", ") + c.variants[i].name;
    h += fmt::format(
        "<p class=\"note\">Pareto front (no other variant is both faster and more accurate): "
        "{}. The larger point is the recommended variant (tolerance {:.4f} mAP_50_95). The "
        "horizontal bars are each variant's latency spread.</p>\n",
        html_escape(names), o.max_drop);
    h += "<h2>Accuracy against the baseline (paired bootstrap)</h2>\n" + accuracy_table_html(c);
    h += "<h2>Latency</h2>\n<p>" + html_escape(latency_rule()) + ".</p>\n" + latency_table_html(c);

    h += "<h2>Datasets</h2>\n<ul>\n";
    for (const auto& [key, text] : dataset_lines(c)) {
        h += fmt::format("<li>{}: <code>{}</code></li>\n", html_escape(key), html_escape(text));
    }
    h += "</ul>\n";

    if (!sensitivity.empty()) {
        h += "<h2>Per-node sensitivity</h2>\n";
        for (const SensitivityReport& r : sensitivity) h += sensitivity_html(r);
    }
    return h + "</body>\n</html>\n";
}

}  // namespace lowbit::report
