// lowbit head-exclude MODEL --out FILE: the seed's head exclusion list
// (make_yolov10m_head_nodes_to_exclude.py, research/seed-spec.md §8), with the head found from
// the graph's structure when the export does not use Ultralytics' /model.23/ scope.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/fs.h"
#include "onnx/model_io.h"
#include "quant/head_exclude.h"

namespace lowbit::cli {

namespace {

struct HeadExcludeCliOptions {
    std::string model;
    std::string out;
    std::string scope;
    std::vector<std::string> op_types = {"Conv"};
};

int run_head_exclude(const HeadExcludeCliOptions& o) {
    const char* cmd = "head-exclude";
    auto path = resolve_model_path(o.model);
    if (!path) return report(cmd, path.status());
    auto model = load_model(*path);
    if (!model) return report(cmd, model.status());
    quant::HeadExcludeOptions ho;
    ho.scope = o.scope;
    ho.op_types = o.op_types;
    auto r = quant::head_exclusion_list(model->graph, ho);
    if (!r) return report(cmd, r.status().with_context(*path));
    std::string text;
    for (const auto& n : r->nodes) text += n + "\n";
    if (Status st = write_file_atomic(o.out, text); !st) return report(cmd, st);
    std::fprintf(stderr, "lowbit head-exclude: head scope %s (%s)\n",
                 r->scope.empty() ? "-" : r->scope.c_str(), r->method.c_str());
    std::printf("%zu\n", r->nodes.size());
    std::fprintf(stderr, "lowbit head-exclude: wrote %zu node names to %s\n", r->nodes.size(),
                 o.out.c_str());
    return 0;
}

}  // namespace

void add_head_exclude_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<HeadExcludeCliOptions>();
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
    sub->callback([o, &run] { run = [o] { return run_head_exclude(*o); }; });
}

}  // namespace lowbit::cli
