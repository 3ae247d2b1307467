// lowbit merge DIR: the shard files of one `eval`, `sensitivity` or `candidates` job run with
// --shard I/N --shard-dir DIR combined into exactly what one process would have written
// (pipeline/merge.h). This file declares the flags; the work is run_job(pipeline::MergeJob).
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "pipeline/merge.h"

namespace lowbit::cli {

void add_merge_command(CLI::App& app, CommandFn& run) {
    auto o = std::make_shared<pipeline::MergeJob>();
    CLI::App* sub = app.add_subcommand(
        "merge",
        "Combine the shard files of one job (eval, sensitivity or candidates run with --shard "
        "I/N --shard-dir DIR) into the outputs one process would have written: metrics.json "
        "from the merged detections through the same COCOeval, the sensitivity report from the "
        "merged sums, the candidates' results files. Refuses missing, duplicated or mismatched "
        "shards (another model, configuration or shard count) and then writes nothing.");
    sub->add_option("dir", o->dir, "Folder of shard-I-of-N.json files")->required();
    sub->add_flag("-q,--quiet", o->quiet, "No note on stderr");
    sub->callback([o, &run] { run = [o] { return pipeline::run_job(*o, stdout); }; });
}

}  // namespace lowbit::cli
