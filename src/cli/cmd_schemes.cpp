// lowbit schemes --report R --ks 0 5 10 20 --out-dir DIR: top-K exclusion lists from a
// sensitivity report, lowbit's own or the seed's Torch one (make_yolov10m_candidate_schemes.py,
// research/seed-spec.md §10).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "calib/calibrators.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "onnx/model_io.h"
#include "report/schemes.h"

namespace lowbit::cli {

namespace {

namespace fs = std::filesystem;

struct SchemesCliOptions {
    std::string report;
    std::vector<int> ks = {0, 5, 10, 20};
    std::string out_dir;
    std::string model;
    int top_n_md = 25;
    std::string mode;
    std::string calibration_method = calib::calib_method_name(calib::kDefaultCalibMethod);
    std::string high_precision = "fp32";
};

Status run_schemes(const SchemesCliOptions& o) {
    LOWBIT_ASSIGN(report::SensitivityReport rep, report::load_sensitivity_report(o.report));
    const bool torch = rep.kind == report::SensitivityReport::Kind::Torch;

    report::SchemeOptions so;
    so.ks = o.ks;
    so.top_n_md = o.top_n_md;
    so.calibration_method = o.calibration_method;
    so.high_precision = o.high_precision;
    so.mode = o.mode;
    if (so.mode.empty()) so.mode = (rep.mode == "int8" || rep.mode == "fp8") ? rep.mode : "fp8";
    if (so.mode != "fp8" && so.mode != "int8") {
        return invalid("--mode '{}': expected fp8 or int8", so.mode);
    }

    // The model the names refer to: --model, else (lowbit reports) the report's own model when
    // that file is there.
    std::string model_path = o.model;
    std::error_code ec;
    if (model_path.empty() && !torch && !rep.model.empty()) {
        // As written (relative to the current folder), else relative to the report's folder.
        fs::path beside = fs::path(o.report).parent_path() / rep.model;
        if (fs::is_regular_file(rep.model, ec)) {
            model_path = rep.model;
        } else if (fs::path(rep.model).is_relative() && fs::is_regular_file(beside, ec)) {
            model_path = beside.string();
        }
    }
    if (torch && model_path.empty()) {
        return invalid(
            "{} is the seed's Torch layer-sensitivity report: pass --model MODEL.onnx, the graph "
            "whose Conv nodes its module paths map to",
            o.report);
    }
    so.onnx_path = model_path.empty() ? rep.model : model_path;
    std::optional<report::NodeList> nodes;
    if (!model_path.empty()) {
        LOWBIT_ASSIGN(Model model, load_model(model_path));
        nodes.emplace();
        for (const Node& n : model.graph.nodes) nodes->emplace_back(n.name, n.op_type);
    } else {
        std::fprintf(stderr,
                     "lowbit schemes: note: no --model and the report's model (%s) is not there; "
                     "node names are not checked\n",
                     rep.model.empty() ? "none" : rep.model.c_str());
    }

    LOWBIT_ASSIGN(report::SchemeSet set, report::make_schemes(rep, nodes ? &*nodes : nullptr, so));
    for (const std::string& w : set.warnings) {
        std::fprintf(stderr, "lowbit schemes: warning: %s\n", w.c_str());
    }
    LOWBIT_ASSIGN(std::vector<std::string> written, report::write_schemes(o.out_dir, rep, set, so));
    std::printf("| K | nodes kept in high precision | passed over |\n|---:|---:|---:|\n");
    for (const report::Scheme& s : set.schemes) {
        std::printf("| %d | %zu | %zu |\n", s.k, s.excluded_onnx_nodes.size(),
                    s.missing_layers.size() + s.missing_onnx_nodes.size());
    }
    std::fprintf(stderr, "lowbit schemes: %s report, %zu entries; wrote %zu files to %s\n",
                 torch ? "Torch" : "lowbit", rep.entries.size(), written.size(), o.out_dir.c_str());
    return Status::ok();
}

}  // namespace

void add_schemes_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<SchemesCliOptions>();
    CLI::App* sub = app.add_subcommand(
        "schemes",
        "Top-K exclusion schemes from a sensitivity report (lowbit's, or the seed's Torch "
        "layer-sensitivity-report.json mapped to ONNX Convs, head included): "
        "nodes_to_exclude_k{K}.txt, scheme_k{K}.json, candidates.md.");
    sub->add_option("--report,--report-json", o->report, "Sensitivity report JSON")
        ->required()
        ->check(CLI::ExistingFile);
    sub->add_option("--ks", o->ks, "Values of K")->capture_default_str();
    sub->add_option("--out-dir", o->out_dir, "Output folder")->required();
    sub->add_option("--model,--onnx-path", o->model,
                    "ONNX model the names refer to (required for a Torch report; default for a "
                    "lowbit report: its own model, when present)");
    sub->add_option("--top-n-md", o->top_n_md, "Rows in candidates.md")->capture_default_str();
    sub->add_option("--mode", o->mode,
                    "Quantization mode recorded in the schemes (default: the report's, else fp8)");
    sub->add_option("--calibration-method", o->calibration_method,
                    "Calibration method recorded in the schemes (default: quantize's)")
        ->capture_default_str();
    sub->add_option("--high-precision", o->high_precision,
                    "High-precision dtype recorded in the schemes")
        ->capture_default_str();
    sub->callback([o, &run] { run = [o] { return report("schemes", run_schemes(*o)); }; });
}

}  // namespace lowbit::cli
