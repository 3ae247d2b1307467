#include "report/sensitivity_writer.h"

#include <fmt/format.h>

#include <vector>

namespace lowbit::report {

using Metric = quant::SensitivityMetric;

nlohmann::ordered_json sensitivity_json(const SensitivityRunInfo& info,
                                        const quant::SensitivityOptions& opts,
                                        const quant::SensitivityReport& r) {
    nlohmann::ordered_json j;
    j["tool"] = "lowbit sensitivity";
    j["lowbit_version"] = LOWBIT_VERSION;
    j["model"] = info.model;
    j["mode"] = info.mode;
    j["metric"] = quant::sensitivity_metric_name(opts.metric);
    j["all_but_one"] = opts.all_but_one;
    j["images"] = r.images;
    j["calibration"] = {{"method", r.method},
                        {"source", info.calib_source},
                        {"samples", r.calib_samples},
                        {"seconds", r.calib_seconds}};
    j["cost"] = {{"full_pass_ms", r.cost.full_pass_ms},
                 {"sweep_seconds", r.cost.sweep_seconds},
                 {"passes_per_image", r.cost.passes_per_image},
                 {"naive_passes_per_image", r.cost.naive_passes_per_image},
                 {"ratio_vs_naive", r.cost.ratio_vs_naive},
                 {"naive_measured", r.cost.naive_measured},
                 {"fused_full_pass_ms", r.cost.fused_full_pass_ms},
                 {"fused_passes_per_image", r.cost.fused_passes_per_image},
                 {"quant_kernel_nodes", r.cost.quant_kernel_nodes}};
    const char* score_is = "";
    switch (opts.metric) {
        case Metric::OutputMse: score_is = "output_mse"; break;
        case Metric::Cosine: score_is = "1 - cosine similarity"; break;
        case Metric::LocalSqnr: score_is = "-local_sqnr_db"; break;
        case Metric::Map: score_is = "mAP50-95 drop"; break;
        case Metric::Detection: score_is = "detection_error"; break;
    }
    j["score"] = opts.all_but_one
                     ? fmt::format(
                           "recovery: error with every node quantized minus error with "
                           "all but this node ({})",
                           score_is)
                     : std::string(score_is);
    if (!r.reference.empty()) j["reference"] = r.reference;
    if (opts.metric == Metric::Map) {
        j["val"] = {{"ann", opts.eval.ann_path},
                    {"images_dir", opts.eval.images_dir},
                    {"images", r.images}};
    }
    nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
    for (const quant::NodeSensitivity& n : r.nodes) {
        nodes.push_back({{"rank", n.rank},
                         {"node", n.name},
                         {"op_type", n.op_type},
                         {"scope", n.scope},
                         {"macs", n.macs},
                         {"macs_share", n.macs_share},
                         {"score", n.score},
                         {"metrics", n.metrics},
                         {"cone_nodes", n.cone_nodes}});
    }
    j["nodes"] = nodes;
    if (!r.notes.empty()) j["notes"] = r.notes;
    return j;
}

std::string sensitivity_markdown(const SensitivityRunInfo& info,
                                 const quant::SensitivityOptions& opts,
                                 const quant::SensitivityReport& r) {
    std::string md;
    md += fmt::format("# lowbit sensitivity: {} ({}, {}{})\n\n", info.model, info.mode,
                      quant::sensitivity_metric_name(opts.metric),
                      opts.all_but_one ? ", all but one" : "");
    md += fmt::format(
        "{} images; calibration {} on {}. Each quantizable node is fake-quantized {} (INT8 "
        "amax/127 or FP8 E4M3FN amax/448, weights per channel) and the model compared with "
        "float32.\n\n",
        r.images, r.method, info.calib_source,
        opts.all_but_one ? "with every other placed node (all but this one)" : "alone");
    switch (opts.metric) {
        case Metric::OutputMse: md += "Score: mean squared error of the graph outputs"; break;
        case Metric::Cosine: md += "Score: 1 - cosine similarity of the graph outputs"; break;
        case Metric::LocalSqnr:
            md += "Score: -SQNR (dB) of the node's own output from float32 inputs";
            break;
        case Metric::Map: md += "Score: mAP50-95 drop on the validation subset"; break;
        case Metric::Detection:
            md += "Score: confidence-weighted squared error of the decoded detections (boxes "
                  "and class scores)";
            break;
    }
    md += opts.all_but_one ? " recovered by keeping the node in high precision (error with all "
                             "quantized minus error with all but this node).\n"
                           : "; higher = more sensitive.\n";
    md += fmt::format(
        "\nCost: {:.2f} full-pass equivalents per image ({:.1f} s sweep, full pass {:.2f} ms, "
        "the sweep's own float32 pass that keeps every tensor; {:.2f} passes of the default "
        "fused program, {:.2f} ms); naive {:.1f} ({}); ratio {:.3f}.\n",
        r.cost.passes_per_image, r.cost.sweep_seconds, r.cost.full_pass_ms,
        r.cost.fused_passes_per_image, r.cost.fused_full_pass_ms, r.cost.naive_passes_per_image,
        r.cost.naive_measured ? "measured" : "one full pass per node", r.cost.ratio_vs_naive);
    if (!r.notes.empty()) md += "\nNotes:\n";
    for (const std::string& n : r.notes) md += "- " + n + "\n";
    md += "\n";
    std::vector<std::string> keys;
    if (!r.nodes.empty()) {
        for (auto it = r.nodes[0].metrics.begin(); it != r.nodes[0].metrics.end(); ++it) {
            keys.push_back(it.key());
        }
    }
    md += "| rank | node | op | scope | MACs % | score |";
    for (const auto& k : keys) md += " " + k + " |";
    md += "\n|---:|---|---|---|---:|---:|";
    for (size_t k = 0; k < keys.size(); ++k) md += "---:|";
    md += "\n";
    for (const quant::NodeSensitivity& n : r.nodes) {
        md += fmt::format("| {} | `{}` | {} | `{}` | {:.2f} | {:.4g} |", n.rank, n.name, n.op_type,
                          n.scope, 100.0 * n.macs_share, n.score);
        for (const auto& k : keys) {
            const auto& v = n.metrics[k];
            md += v.is_number() ? fmt::format(" {:.4g} |", v.get<double>()) : " |";
        }
        md += "\n";
    }
    return md;
}

}  // namespace lowbit::report
