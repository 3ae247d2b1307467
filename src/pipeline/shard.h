// Shards: one job (`eval`, `sensitivity`, `candidates`) split across processes or machines.
// `--shard I/N --shard-dir DIR` makes the job do its part I of N and write, instead of its
// outputs, one shard file DIR/shard-I-of-N.json (atomically): a manifest naming the whole job
// (kind, the job's options, their hash, the model's content hash, I, N) and the partial result
// (detections and per-image times; per-image per-node sums; candidate results). `lowbit merge
// DIR` (pipeline/merge.h) turns a complete set into exactly what one process would have written.
//
// The split is deterministic: eval splits the selected image ids into N contiguous blocks,
// sensitivity the compared images (i % N == I; for --metric map the measured nodes), candidates
// the schemes (in K order, i % N == I).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace lowbit::pipeline {

struct ShardOptions {
    int index = 0;  // I
    int count = 1;  // N
    std::string dir;
    bool active() const { return !dir.empty(); }
};

// Parses "I/N" (0 <= I < N) into `o`; errors name the flag.
Status parse_shard_spec(const std::string& spec, ShardOptions& o);
// Checks the pair of flags: both or neither; fills `o` from `spec`.
Status resolve_shard_options(const std::string& spec, ShardOptions& o);

// DIR/shard-I-of-N.json
std::string shard_file(const std::string& dir, int index, int count);

// What names the whole job in every shard file.
struct ShardHeader {
    std::string kind;     // "eval", "sensitivity", "candidates"
    nlohmann::ordered_json job;  // the job's options (those that decide its results and outputs)
    std::string config_hash;     // hash of `job`
    std::string model_hash;      // content hash of the model (and, for candidates, the schemes)
    int index = 0;
    int count = 1;
};

// The header for a job: config_hash from `job`, model_hash from the content of `inputs`.
Result<ShardHeader> make_shard_header(const std::string& kind, nlohmann::ordered_json job,
                                      const std::vector<std::string>& inputs,
                                      const ShardOptions& shard);

// Writes {"lowbit_shard": 1, header..., "partial": partial} to shard_file(), atomically (the
// folder is made).
Status write_shard(const ShardOptions& shard, const ShardHeader& h,
                   const nlohmann::ordered_json& partial);

}  // namespace lowbit::pipeline
