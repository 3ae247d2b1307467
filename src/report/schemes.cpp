#include "report/schemes.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <unordered_set>

#include "core/fs.h"
#include "report/torch_names.h"

namespace lowbit::report {

namespace {

bool is_torch(const SensitivityReport& r) {
    return r.kind == SensitivityReport::Kind::Torch;
}

// YOLOv10's Detect head has a one2many branch (cv2/cv3) used for training only; the export
// keeps its one2one twin (one2one_cv2/one2one_cv3). Returns the twin's name for a one2many path.
std::optional<std::string> one2one_twin(const std::string& torch_name) {
    for (const char* branch : {".cv2.", ".cv3."}) {
        size_t p = torch_name.find(branch);
        if (p == std::string::npos) continue;
        std::string twin = torch_name;
        twin.insert(p + 1, "one2one_");
        return twin;
    }
    return std::nullopt;
}

std::vector<ResolvedEntry> resolve(const SensitivityReport& report, const NodeList* model) {
    std::vector<ResolvedEntry> out;
    if (is_torch(report)) {
        TorchNameIndex index(*model);
        for (const SensitivityEntry& e : report.entries) {
            ResolvedEntry r{e, index.find(e.name), ""};
            if (!r.onnx_node) {
                auto twin = one2one_twin(e.name);
                std::optional<std::string> twin_node = twin ? index.find(*twin) : std::nullopt;
                r.note = twin_node ? fmt::format(
                                         "YOLOv10 one2many head branch, not exported; its "
                                         "one2one twin is {}",
                                         *twin_node)
                                   : "no Conv of the model belongs to this module";
            }
            out.push_back(std::move(r));
        }
        return out;
    }
    std::unordered_set<std::string> names;
    if (model) {
        for (const auto& n : *model) names.insert(n.first);
    }
    for (const SensitivityEntry& e : report.entries) {
        ResolvedEntry r{e, e.name, ""};
        if (model && !names.count(e.name)) {
            r.onnx_node.reset();
            r.note = "not a node of the model";
        }
        out.push_back(std::move(r));
    }
    return out;
}

std::string md_code(const std::string& s) {
    return "`" + s + "`";
}

}  // namespace

Result<SchemeSet> make_schemes(const SensitivityReport& report, const NodeList* model,
                               const SchemeOptions& o) {
    if (is_torch(report) && !model) {
        return invalid(
            "{}: a Torch layer-sensitivity report names Torch modules; pass --model with the ONNX "
            "graph they map to",
            report.path);
    }
    if (report.entries.empty()) return invalid("{}: the report lists no layers", report.path);
    std::set<int> ks;
    for (int k : o.ks) {
        if (k < 0) return invalid("--ks: K must be >= 0, got {}", k);
        ks.insert(k);
    }
    if (ks.empty()) return invalid("--ks: no K given");

    SchemeSet set;
    set.entries = resolve(report, model);
    size_t resolvable = 0;
    for (const ResolvedEntry& r : set.entries) resolvable += r.onnx_node.has_value();
    if (resolvable == 0) {
        return invalid("{}: none of the report's {} entries names a {} of {}", report.path,
                       set.entries.size(), is_torch(report) ? "Conv" : "node",
                       o.onnx_path.empty() ? "the model" : o.onnx_path);
    }

    for (int k : ks) {
        Scheme s;
        s.k = k;
        for (const ResolvedEntry& r : set.entries) {
            if (static_cast<int>(s.excluded_onnx_nodes.size()) >= k) break;
            if (r.onnx_node) {
                s.excluded_layers.push_back(r.entry.name);
                s.excluded_onnx_nodes.push_back(*r.onnx_node);
            } else if (is_torch(report)) {
                s.missing_layers.push_back(r.entry.name);
            } else {
                s.missing_onnx_nodes.push_back(r.entry.name);
            }
        }
        const auto& passed = is_torch(report) ? s.missing_layers : s.missing_onnx_nodes;
        if (!passed.empty()) {
            std::string list;
            for (const std::string& name : passed) {
                for (const ResolvedEntry& r : set.entries) {
                    if (r.entry.name != name) continue;
                    list += fmt::format("\n  {} ({})", name, r.note);
                    break;
                }
            }
            set.warnings.push_back(fmt::format(
                "k={}: passed over {} {} ranked above the nodes "
                "kept:{}",
                k, passed.size(), is_torch(report) ? "Torch layers" : "node names", list));
        }
        if (static_cast<int>(s.excluded_onnx_nodes.size()) < k) {
            set.warnings.push_back(fmt::format("k={}: the report names only {} nodes of the model",
                                               k, s.excluded_onnx_nodes.size()));
        }
        set.schemes.push_back(std::move(s));
    }
    return set;
}

nlohmann::ordered_json scheme_json(const SensitivityReport& report, const Scheme& s,
                                   const SchemeOptions& o) {
    nlohmann::ordered_json j;
    j["source_report"] = report.path;
    j["onnx_path"] = o.onnx_path;
    j["k"] = s.k;
    j["excluded_layers"] = s.excluded_layers;
    j["excluded_onnx_nodes"] = s.excluded_onnx_nodes;
    j["missing_onnx_nodes"] = s.missing_onnx_nodes;
    j["missing_layers"] = s.missing_layers;
    j["materialization"] = {
        {"path", "lowbit_quantize"},
        {"quantize_mode", o.mode},
        {"calibration_method", o.calibration_method},
        {"high_precision_dtype", o.high_precision},
        {"notes",
         fmt::format("{} PTQ keeping the {} listed nodes in {}: lowbit quantize --mode {} "
                     "--exclude-nodes-file nodes_to_exclude_k{}.txt; K counts nodes of "
                     "the model, report entries that name none are passed over",
                     o.mode, s.excluded_onnx_nodes.size(), o.high_precision, o.mode, s.k)}};
    return j;
}

std::string exclusion_list_text(const Scheme& s) {
    std::string text;
    for (const std::string& n : s.excluded_onnx_nodes) text += n + "\n";
    return text;
}

std::string candidates_markdown(const SensitivityReport& report, const SchemeSet& set,
                                const SchemeOptions& o) {
    std::string md = "# YOLOv10m sensitivity \u2192 candidate scheme mapping\n\n";
    if (is_torch(report)) {
        md += fmt::format(
            "Generated by `lowbit schemes` (the seed's make_yolov10m_candidate_schemes.py) from "
            "the Torch layer-sensitivity report `{}`{}; Torch module paths are mapped to the "
            "Conv nodes of `{}` by the exporter's scope rule (head convs included).\n\n",
            report.path, report.mode.empty() ? "" : " (" + report.mode + ")", o.onnx_path);
        md += "| Rank | Torch layer | Sensitivity | ONNX node |\n|---:|---|---:|---|\n";
    } else {
        md += fmt::format(
            "Generated by `lowbit schemes` (the seed's make_yolov10m_candidate_schemes.py) from "
            "the lowbit sensitivity report `{}` (metric {}, mode {}) for `{}`.\n\n",
            report.path, report.metric.empty() ? "-" : report.metric,
            report.mode.empty() ? "-" : report.mode, o.onnx_path.empty() ? "-" : o.onnx_path);
        md += "| Rank | ONNX node | Op | Score | MACs share |\n|---:|---|---|---:|---:|\n";
    }
    int shown = 0;
    for (const ResolvedEntry& r : set.entries) {
        if (shown++ >= o.top_n_md) break;
        const SensitivityEntry& e = r.entry;
        if (is_torch(report)) {
            md += fmt::format("| {} | {} | {:.6f} | {} |\n", e.rank, md_code(e.name), e.score,
                              r.onnx_node ? md_code(*r.onnx_node) : "- (" + r.note + ")");
        } else {
            std::string name = md_code(e.name);
            if (!r.onnx_node) name += " (" + r.note + ")";
            md += fmt::format("| {} | {} | {} | {:.6g} | {} |\n", e.rank, name,
                              e.op_type.empty() ? "-" : e.op_type, e.score,
                              e.macs_share ? fmt::format("{:.4f}", *e.macs_share) : "-");
        }
    }
    md +=
        "\n## Schemes\n\n| K | nodes kept in high precision | passed over | list |\n"
        "|---:|---:|---:|---|\n";
    for (const Scheme& s : set.schemes) {
        md += fmt::format("| {} | {} | {} | nodes_to_exclude_k{}.txt |\n", s.k,
                          s.excluded_onnx_nodes.size(),
                          s.missing_layers.size() + s.missing_onnx_nodes.size(), s.k);
    }
    md += fmt::format(
        "\nEach scheme keeps the first K report entries that name a node of the model out of {} "
        "quantization (calibration {}, high precision {}); entries passed over are listed in "
        "scheme_k{{K}}.json.\n",
        o.mode, o.calibration_method, o.high_precision);
    return md;
}

Result<std::vector<std::string>> write_schemes(const std::string& out_dir,
                                               const SensitivityReport& report,
                                               const SchemeSet& set, const SchemeOptions& o) {
    namespace fs = std::filesystem;
    std::vector<std::pair<std::string, std::string>> files;
    for (const Scheme& s : set.schemes) {
        files.emplace_back(fmt::format("nodes_to_exclude_k{}.txt", s.k), exclusion_list_text(s));
        files.emplace_back(fmt::format("scheme_k{}.json", s.k),
                           scheme_json(report, s, o).dump(2) + "\n");
    }
    files.emplace_back("candidates.md", candidates_markdown(report, set, o));
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec) return io_error("cannot create {}: {}", out_dir, ec.message());
    std::vector<std::string> written;
    for (const auto& [name, text] : files) {
        std::string path = (fs::path(out_dir) / name).string();
        LOWBIT_TRY(write_file_atomic(path, text));
        written.push_back(path);
    }
    return written;
}

}  // namespace lowbit::report
