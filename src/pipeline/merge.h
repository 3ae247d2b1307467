// `lowbit merge DIR`: the shard files of one job (pipeline/shard.h) combined into exactly what
// one process would have written: eval's metrics.json (and detections) through the same
// COCOeval on the merged detections and latency from the concatenated per-image times;
// sensitivity's report.json + report.md from the merged per-image sums (or per-node results);
// candidates' results files. A set that is incomplete (a shard missing), has a shard twice, or
// mixes jobs (another kind, model, configuration or shard count) is refused with an error that
// names the files; nothing is written then. Outputs are written atomically.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace lowbit::pipeline {

struct MergeJob {
    std::string dir;
    bool quiet = false;
};

// The shard files of `dir`, read and checked to form one complete job; ordered by shard index.
Result<std::vector<nlohmann::json>> read_shard_set(const std::string& dir);

Status run_job(const MergeJob& o, std::FILE* out);

}  // namespace lowbit::pipeline
