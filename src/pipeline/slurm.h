// `lowbit run --scheduler slurm|print`: the run's step graph (pipeline/step_graph.h) as Slurm
// jobs. Each step that is due becomes one job running `lowbit run ... --step NAME` (the step,
// with the local run's resume check and record); a step that can be split (evaluations,
// sensitivity, candidates) with --shards N > 1 becomes a job array of N tasks (`--step NAME
// --step-shard $SLURM_ARRAY_TASK_ID/N`, each writing a shard file) followed by a merge job
// (`--step NAME --step-merge`). Dependencies are `afterok` and mirror the graph: a step waits for
// the steps that write what it reads (compare for all). The sbatch scripts and submit.sh (which
// submits them all with their dependencies) are written into <root>/slurm/, so a user can read
// or resubmit them; `print` stops there. `slurm` runs submit.sh, waits with a progress line and
// reports failed steps with their logs. A killed or failed run resumes like the local one: run it
// again, and only the steps not up to date are submitted.
#pragma once

#include <string>
#include <vector>

namespace lowbit::pipeline {

struct SlurmOptions {
    std::string partition;
    std::string account;
    std::string time;  // --time of every job, e.g. 01:00:00
    int cpus_per_task = 0;
    int gpus_per_task = 0;
    std::vector<std::string> sbatch_args;  // extra #SBATCH lines, e.g. --qos=high
    double poll_seconds = 5;
    std::string sbatch = "sbatch";  // commands (tests may point them elsewhere)
    std::string squeue = "squeue";
};

}  // namespace lowbit::pipeline
