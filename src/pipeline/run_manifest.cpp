#include "pipeline/run_manifest.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>

#include "core/fs.h"
#include "core/json_at.h"

namespace lowbit::pipeline {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

uint64_t fnv1a(uint64_t h, const unsigned char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= kFnvPrime;
    }
    return h;
}

std::string hex(uint64_t h) {
    return fmt::format("{:016x}", h);
}

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

std::string hash_bytes(const void* data, size_t n, uint64_t seed) {
    return hex(fnv1a(kFnvOffset ^ seed, static_cast<const unsigned char*>(data), n));
}

Result<std::string> Fingerprinter::file_hash(const std::string& path) {
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    if (ec) return io_error("cannot read the size of {}: {}", path, ec.message());
    const int64_t mtime = static_cast<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                   fs::last_write_time(path, ec).time_since_epoch())
                                                   .count());
    if (ec) return io_error("cannot read the time of {}: {}", path, ec.message());
    auto it = cache_.find(path);
    if (it != cache_.end() && it->second.size == size && it->second.mtime_ns == mtime) {
        return it->second.hash;
    }
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
    if (!f) return io_error("cannot open {}", path);
    std::vector<unsigned char> buf(size_t{1} << 20);
    uint64_t h = kFnvOffset;
    size_t got = 0;
    while ((got = std::fread(buf.data(), 1, buf.size(), f.get())) > 0)
        h = fnv1a(h, buf.data(), got);
    if (std::ferror(f.get())) return io_error("error reading {}", path);
    std::string hash = hex(h);
    cache_[path] = {size, mtime, hash};
    return hash;
}

Result<std::string> Fingerprinter::path_hash(const std::string& path) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (!fs::exists(st)) return std::string("missing");
    if (!fs::is_directory(st)) return file_hash(path);
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(path, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file()) files.push_back(it->path().string());
    }
    if (ec) return io_error("cannot list {}: {}", path, ec.message());
    std::sort(files.begin(), files.end());
    std::string listing;
    for (const std::string& f : files) {
        LOWBIT_ASSIGN(std::string h, file_hash(f));
        listing += fs::path(f).lexically_relative(path).string() + '\0' + h + '\n';
    }
    return "dir:" + hash_bytes(listing.data(), listing.size());
}

Result<std::string> Fingerprinter::fingerprint(const std::vector<std::vector<std::string>>& argv,
                                               const std::vector<std::string>& paths,
                                               nlohmann::ordered_json* detail) {
    std::string text;
    for (const auto& cmd : argv) {
        for (const std::string& a : cmd) text += a + '\0';
        text += '\n';
    }
    for (const std::string& p : paths) {
        LOWBIT_ASSIGN(std::string h, path_hash(p));
        text += p + '\0' + h + '\n';
        if (detail) (*detail)[p] = h;
    }
    return hash_bytes(text.data(), text.size());
}

const char* step_state_name(StepState s) {
    switch (s) {
        case StepState::UpToDate: return "up to date";
        case StepState::NeverRun: return "not run yet";
        case StepState::InputsChanged: return "inputs changed";
        case StepState::OutputsMissing: return "outputs missing";
        case StepState::OutputsChanged: return "outputs changed";
    }
    return "?";
}

std::string manifest_path(const std::string& root, const std::string& step) {
    return (fs::path(root) / ".lowbit-run" / (step + ".json")).string();
}

nlohmann::json read_manifest(const std::string& root, const std::string& step) {
    auto text = read_file(manifest_path(root, step));
    if (!text) return nullptr;
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return nullptr;
    return j;
}

Result<std::optional<StepRecord>> read_step_record(const std::string& root,
                                                   const std::string& step) {
    const std::string path = manifest_path(root, step);
    std::error_code ec;
    if (!fs::exists(path, ec)) return std::optional<StepRecord>();
    LOWBIT_ASSIGN(std::string text, read_file(path, kMaxJsonDocumentBytes));
    LOWBIT_ASSIGN(StepRecord r, parse_step_record(text, path));
    return std::optional<StepRecord>(std::move(r));
}

Result<StepRecord> parse_step_record(const std::string& text, const std::string& path) {
    LOWBIT_ASSIGN(nlohmann::json doc, parse_json_text(text, path));
    const JsonAt m = json_root(doc, path);
    LOWBIT_TRY(m.expect_object());
    StepRecord r;
    LOWBIT_ASSIGN(JsonAt in, m.at("input_fingerprint"));
    LOWBIT_ASSIGN(r.input_fingerprint, in.string());
    LOWBIT_ASSIGN(JsonAt out, m.at("output_fingerprint"));
    LOWBIT_ASSIGN(r.output_fingerprint, out.string());
    LOWBIT_ASSIGN(r.seconds, m.number_or("seconds", 0.0));
    if (r.seconds < 0) return invalid("{}: seconds: must be >= 0, found {}", path, r.seconds);
    return r;
}

Result<StepState> check_step(Fingerprinter& fp, const std::string& root, const StepSpec& step) {
    // A missing or damaged record (bad JSON, a value of the wrong type) means: run it again.
    auto rec = read_step_record(root, step.name);
    if (!rec || !rec->has_value()) return StepState::NeverRun;
    const StepRecord& m = **rec;
    std::error_code ec;
    for (const std::string& out : step.outputs) {
        if (!fs::exists(out, ec)) return StepState::OutputsMissing;
    }
    LOWBIT_ASSIGN(std::string in, fp.fingerprint(step.argv, step.inputs));
    if (m.input_fingerprint != in) return StepState::InputsChanged;
    LOWBIT_ASSIGN(std::string out, fp.fingerprint({}, step.outputs));
    if (m.output_fingerprint != out) return StepState::OutputsChanged;
    return StepState::UpToDate;
}

Status clear_step(const std::string& root, const std::string& step) {
    std::error_code ec;
    fs::remove(manifest_path(root, step), ec);
    if (ec) return io_error("cannot remove {}: {}", manifest_path(root, step), ec.message());
    return Status::ok();
}

Status record_step(Fingerprinter& fp, const std::string& root, const StepSpec& step,
                   double seconds) {
    nlohmann::ordered_json inputs = nlohmann::ordered_json::object();
    nlohmann::ordered_json outputs = nlohmann::ordered_json::object();
    LOWBIT_ASSIGN(std::string in, fp.fingerprint(step.argv, step.inputs, &inputs));
    LOWBIT_ASSIGN(std::string out, fp.fingerprint({}, step.outputs, &outputs));
    for (const auto& [path, hash] : outputs.items()) {
        if (hash == "missing") return invalid("step {} did not write {}", step.name, path);
    }
    nlohmann::ordered_json m = {{"step", step.name},  {"argv", step.argv},
                                {"inputs", inputs},   {"input_fingerprint", in},
                                {"outputs", outputs}, {"output_fingerprint", out},
                                {"seconds", seconds}, {"finished", utc_now()}};
    const std::string path = manifest_path(root, step.name);
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    if (ec)
        return io_error("cannot create {}: {}", fs::path(path).parent_path().string(),
                        ec.message());
    return write_file_atomic(path, m.dump(2) + "\n");
}

}  // namespace lowbit::pipeline
