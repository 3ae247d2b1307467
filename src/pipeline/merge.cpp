#include "pipeline/merge.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <regex>

#include "core/fs.h"
#include "pipeline/eval_job.h"
#include "pipeline/jobs.h"

namespace lowbit::pipeline {

namespace fs = std::filesystem;

namespace {

struct ShardFile {
    std::string name;  // file name, for messages
    nlohmann::json j;
};

// The header fields that must agree across a job's shards, and how a mismatch is told.
struct Agreement {
    const char* key;
    const char* what;
};
constexpr Agreement kAgree[] = {
    {"kind", "another command"},
    {"model_hash", "another model"},
    {"config_hash", "another configuration"},
    {"shards", "another shard count"},
};

}  // namespace

Result<std::vector<nlohmann::json>> read_shard_set(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return io_error("shard folder {} does not exist", dir);
    const std::regex re("shard-([0-9]+)-of-([0-9]+)\\.json");
    std::vector<ShardFile> files;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (!e.is_regular_file() || !std::regex_match(name, re)) continue;
        LOWBIT_ASSIGN(std::string text, read_file(e.path().string()));
        ShardFile f{name, nlohmann::json::parse(text, nullptr, false)};
        if (f.j.is_discarded() || !f.j.is_object() || !f.j.contains("lowbit_shard") ||
            !f.j.contains("shard") || !f.j.contains("partial")) {
            return invalid("{}: not a lowbit shard file (unreadable or incomplete JSON)",
                           e.path().string());
        }
        files.push_back(std::move(f));
    }
    if (ec) return io_error("cannot list {}: {}", dir, ec.message());
    if (files.empty()) return invalid("{} holds no shard files (shard-I-of-N.json)", dir);
    std::sort(files.begin(), files.end(),
              [](const ShardFile& a, const ShardFile& b) { return a.name < b.name; });
    const ShardFile& first = files.front();
    for (const ShardFile& f : files) {
        for (const Agreement& a : kAgree) {
            if (f.j.value(a.key, nlohmann::json()) != first.j.value(a.key, nlohmann::json())) {
                return invalid("{}: {} is from {} than {} ({} {} vs {}); refusing to merge", dir,
                               f.name, a.what, first.name, a.key, f.j.value(a.key, nlohmann::json()).dump(),
                               first.j.value(a.key, nlohmann::json()).dump());
            }
        }
    }
    const int n = first.j.at("shards").get<int>();
    std::map<int, std::string> seen;
    std::vector<nlohmann::json> out(static_cast<size_t>(std::max(n, 0)));
    for (ShardFile& f : files) {
        const int i = f.j.at("shard").get<int>();
        if (i < 0 || i >= n) return invalid("{}: {} says shard {} of {}", dir, f.name, i, n);
        auto [it, fresh] = seen.emplace(i, f.name);
        if (!fresh) {
            return invalid("{}: shard {} of {} is there twice ({} and {}); refusing to merge",
                           dir, i, n, it->second, f.name);
        }
        out[static_cast<size_t>(i)] = std::move(f.j);
    }
    std::vector<std::string> missing;
    for (int i = 0; i < n; ++i) {
        if (!seen.count(i)) missing.push_back(fmt::format("shard-{}-of-{}.json", i, n));
    }
    if (!missing.empty()) {
        return invalid("{}: incomplete, {} of {} shards missing: {}; refusing to merge", dir,
                       missing.size(), n, fmt::join(missing, ", "));
    }
    return out;
}

Status run_job(const MergeJob& o, std::FILE* out) {
    LOWBIT_ASSIGN(std::vector<nlohmann::json> shards, read_shard_set(o.dir));
    const std::string kind = shards.front().at("kind").get<std::string>();
    if (!o.quiet) {
        std::fprintf(stderr, "lowbit merge: %zu %s shards from %s\n", shards.size(), kind.c_str(),
                     o.dir.c_str());
    }
    if (kind == "eval") return merge_eval_shards(shards, out);
    if (kind == "sensitivity") return merge_sensitivity_shards(shards, out);
    if (kind == "candidates") return merge_candidates_shards(shards, out);
    return invalid("{}: shards of an unknown kind '{}'", o.dir, kind);
}

}  // namespace lowbit::pipeline
