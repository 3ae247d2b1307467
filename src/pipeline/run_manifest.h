// Step manifests of `lowbit run`, so that a killed run resumes where it stopped.
//
// After a step finishes, <root>/.lowbit-run/<step>.json records what it ran (its argv lists) and
// two fingerprints: one over its inputs (the argv, plus the content of every input file or
// folder) and one over its outputs (their content). On the next run the step is skipped when the
// manifest is there, every output exists, and both fingerprints still match; otherwise it runs
// again. The manifest is written (atomically) only after all outputs are, and removed before the
// step starts, so a step killed half way never looks finished.
//
// Content, not timestamps, decides: a file rewritten with the same bytes keeps its fingerprint,
// a file changed within the same second does not. Hashes are cached per path by size and mtime
// for the life of one Fingerprinter, so each large file is read once per run.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace lowbit::pipeline {

// 64-bit FNV-1a over the bytes, returned as 16 hex digits (change detection, not security).
std::string hash_bytes(const void* data, size_t n, uint64_t seed = 0);

class Fingerprinter {
public:
    // Hash of a file's content, or of a folder (every regular file below it, by relative path
    // and content, in name order); "missing" when the path does not exist.
    Result<std::string> path_hash(const std::string& path);

    // Fingerprint of argv + the paths' hashes; `detail` (when given) receives path -> hash.
    Result<std::string> fingerprint(const std::vector<std::vector<std::string>>& argv,
                                    const std::vector<std::string>& paths,
                                    nlohmann::ordered_json* detail = nullptr);

private:
    Result<std::string> file_hash(const std::string& path);
    struct Cached {
        uintmax_t size = 0;
        int64_t mtime_ns = 0;
        std::string hash;
    };
    std::map<std::string, Cached> cache_;
};

struct StepSpec {
    std::string name;
    std::vector<std::vector<std::string>> argv;  // what the step runs, in order
    std::vector<std::string> inputs;             // files/folders it reads (beside argv)
    std::vector<std::string> outputs;            // files/folders it writes
};

enum class StepState {
    UpToDate,        // skip
    NeverRun,        // no (readable) manifest
    InputsChanged,   // argv or an input differs from the recorded run
    OutputsMissing,  // an output is gone
    OutputsChanged,  // an output differs from what the step wrote
};
const char* step_state_name(StepState s);

// <root>/.lowbit-run/<step>.json
std::string manifest_path(const std::string& root, const std::string& step);

// Compares the step against its manifest under `root`.
Result<StepState> check_step(Fingerprinter& fp, const std::string& root, const StepSpec& step);

// Removes the step's manifest (before running it).
Status clear_step(const std::string& root, const std::string& step);

// Writes the manifest of a step that just finished (`seconds` of wall time).
Status record_step(Fingerprinter& fp, const std::string& root, const StepSpec& step,
                   double seconds);

// The recorded manifest, or a null json when there is none (untyped; for tests and debugging).
nlohmann::json read_manifest(const std::string& root, const std::string& step);

// A step's manifest read with its types checked (core/json_at.h).
struct StepRecord {
    std::string input_fingerprint;
    std::string output_fingerprint;
    double seconds = 0;
};
// nullopt when the step has no manifest; an error naming the file and the key when the
// manifest is there but is not valid JSON or has a value of the wrong type (a step whose record
// is damaged is run again: check_step reports it as NeverRun).
Result<std::optional<StepRecord>> read_step_record(const std::string& root,
                                                   const std::string& step);
// Parses a record's text; `path` names it in errors.
Result<StepRecord> parse_step_record(const std::string& text, const std::string& path);

}  // namespace lowbit::pipeline
