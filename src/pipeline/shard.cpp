#include "pipeline/shard.h"

#include <fmt/format.h>

#include <filesystem>

#include "core/fs.h"
#include "pipeline/run_manifest.h"

namespace lowbit::pipeline {

namespace fs = std::filesystem;

Status parse_shard_spec(const std::string& spec, ShardOptions& o) {
    const size_t slash = spec.find('/');
    int i = -1, n = 0;
    try {
        if (slash == std::string::npos) throw std::invalid_argument(spec);
        size_t used = 0;
        const std::string a = spec.substr(0, slash), b = spec.substr(slash + 1);
        i = std::stoi(a, &used);
        if (used != a.size()) throw std::invalid_argument(spec);
        n = std::stoi(b, &used);
        if (used != b.size()) throw std::invalid_argument(spec);
    } catch (const std::exception&) {
        return invalid("--shard '{}': expected I/N (e.g. 0/4)", spec);
    }
    if (n < 1 || i < 0 || i >= n) {
        return invalid("--shard {}: expected 0 <= I < N", spec);
    }
    o.index = i;
    o.count = n;
    return Status::ok();
}

Status resolve_shard_options(const std::string& spec, ShardOptions& o) {
    if (spec.empty() && o.dir.empty()) return Status::ok();
    if (spec.empty()) return invalid("--shard-dir needs --shard I/N");
    if (o.dir.empty()) return invalid("--shard {} needs --shard-dir DIR", spec);
    return parse_shard_spec(spec, o);
}

std::string shard_file(const std::string& dir, int index, int count) {
    return (fs::path(dir) / fmt::format("shard-{}-of-{}.json", index, count)).string();
}

Result<ShardHeader> make_shard_header(const std::string& kind, nlohmann::ordered_json job,
                                      const std::vector<std::string>& inputs,
                                      const ShardOptions& shard) {
    ShardHeader h;
    h.kind = kind;
    h.job = std::move(job);
    const std::string text = h.job.dump();
    h.config_hash = hash_bytes(text.data(), text.size());
    Fingerprinter fp;
    std::string all;
    for (const std::string& p : inputs) {
        LOWBIT_ASSIGN(std::string hash, fp.path_hash(p));
        if (hash == "missing") return io_error("{} does not exist", p);
        all += hash;
    }
    h.model_hash = hash_bytes(all.data(), all.size());
    h.index = shard.index;
    h.count = shard.count;
    return h;
}

Status write_shard(const ShardOptions& shard, const ShardHeader& h,
                   const nlohmann::ordered_json& partial) {
    std::error_code ec;
    fs::create_directories(shard.dir, ec);
    if (ec) return io_error("cannot create shard folder {}: {}", shard.dir, ec.message());
    nlohmann::ordered_json j;
    j["lowbit_shard"] = 1;
    j["kind"] = h.kind;
    j["shard"] = h.index;
    j["shards"] = h.count;
    j["config_hash"] = h.config_hash;
    j["model_hash"] = h.model_hash;
    j["lowbit_version"] = LOWBIT_VERSION;
    j["job"] = h.job;
    j["partial"] = partial;
    return write_file_atomic(shard_file(shard.dir, shard.index, shard.count), j.dump() + "\n");
}

}  // namespace lowbit::pipeline
