// lowbit schemes --report R --ks 0 5 10 20 --out-dir DIR: top-K exclusion lists from a
// sensitivity report, lowbit's own or the seed's Torch one (make_yolov10m_candidate_schemes.py,
// research/seed-spec.md §10).
// This file declares the flags; the work is run_job(pipeline::SchemesJob) (pipeline/jobs.h).
#include <memory>

#include "cli/commands.h"
#include "pipeline/jobs.h"

namespace lowbit::cli {

void add_schemes_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::SchemesJob>();
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
    sub->callback([o, &run] { run = [o] { return pipeline::run_job(*o, stdout); }; });
}

}  // namespace lowbit::cli
