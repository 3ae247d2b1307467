// lowbit head-exclude MODEL --out FILE: the seed's head exclusion list
// (make_yolov10m_head_nodes_to_exclude.py, research/seed-spec.md §8), with the head found from
// the graph's structure when the export does not use Ultralytics' /model.23/ scope.
// This file declares the flags; the work is run_job(pipeline::HeadExcludeJob) (pipeline/jobs.h).
#include <memory>

#include "cli/commands.h"
#include "pipeline/jobs.h"

namespace lowbit::cli {

void add_head_exclude_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::HeadExcludeJob>();
    CLI::App* sub = app.add_subcommand(
        "head-exclude",
        "Write the detection head's node names (Conv by default), sorted, one per line: the "
        "exclusion list that keeps the head in high precision (`quantize --exclude-nodes-file`).");
    sub->add_option("model", o->model, "ONNX model (default: the bundled model)");
    sub->add_option("--onnx-path", o->model, "Same as MODEL (the seed's spelling)");
    sub->add_option("--out", o->out, "Output text file")->required();
    sub->add_option("--scope,--prefix", o->scope,
                    "Head scope prefix (default: found from the graph, /model.23/ for "
                    "Ultralytics YOLOv10)");
    sub->add_option("--op-types", o->op_types, "Op types to list")->capture_default_str();
    sub->callback([o, &run] { run = [o] { return pipeline::run_job(*o, stdout); }; });
}

}  // namespace lowbit::cli
