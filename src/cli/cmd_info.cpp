// lowbit info MODEL: what the model is (I/O, parameters, MACs, ops, opset, peak activations).
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/model_info.h"

namespace lowbit::cli {

namespace {
struct InfoOptions {
    std::string model;
    bool json = false;
    std::vector<std::string> input_shapes;
};

Status run_info(const InfoOptions& o) {
    LOWBIT_ASSIGN(const std::string path, pipeline::resolve_model_path(o.model));
    ExecutorOptions eo;
    eo.n_threads = 1;
    LOWBIT_ASSIGN(eo.input_shapes, pipeline::parse_input_shapes(o.input_shapes));
    LOWBIT_ASSIGN(LoadedModel lm, open_model(path, eo));
    ModelInfo info = model_info(lm.model, *lm.executor, lm.path);
    if (o.json)
        std::printf("%s\n", to_json(info).dump(2).c_str());
    else
        std::printf("%s", to_text(info).c_str());
    return Status::ok();
}
}  // namespace

void add_info_command(CLI::App& app, CommandFn& run) {
    auto opts = std::make_shared<InfoOptions>();
    CLI::App* sub = app.add_subcommand(
        "info",
        "Describe a model: inputs/outputs, parameters, MACs, op histogram, opset and the "
        "peak activation memory of lowbit's execution plan.");
    sub->add_option("model", opts->model, "ONNX model (default: the bundled model)");
    sub->add_flag("--json", opts->json, "Print JSON instead of text");
    sub->add_option("--input-shape", opts->input_shapes,
                    "Fix an input's shape, NAME:D0,D1,... (for symbolic dims)");
    sub->callback([opts, &run] { run = [opts] { return run_info(*opts); }; });
}

}  // namespace lowbit::cli
