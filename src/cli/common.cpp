#include "cli/common.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace lowbit::cli {

namespace fs = std::filesystem;

int report(const std::string& command, const Status& st) {
    if (st.is_ok()) return 0;
    std::fprintf(stderr, "lowbit %s: error: %s\n", command.c_str(), st.message().c_str());
    return st.code() == StatusCode::InvalidArgument ? 2 : 1;
}

std::string assets_dir() {
    if (const char* env = std::getenv("LOWBIT_ASSETS"); env && *env) return env;
    // The binary lives in <repo>/build/ (or an install prefix's bin/); assets/ sits beside.
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
             dir = dir.parent_path()) {
            if (fs::is_directory(dir / "assets", ec)) return (dir / "assets").string();
            if (fs::is_directory(dir / "share" / "lowbit" / "assets", ec)) {
                return (dir / "share" / "lowbit" / "assets").string();
            }
        }
    }
    return {};
}

std::string default_model_path() {
    const std::string dir = assets_dir();
    if (dir.empty()) return {};
    fs::path p = fs::path(dir) / kDefaultModelFile;
    std::error_code ec;
    return fs::exists(p, ec) ? p.string() : std::string();
}

}  // namespace lowbit::cli

#include <sstream>

#include "onnx/model_io.h"

namespace lowbit::cli {

Result<std::map<std::string, Shape>> parse_input_shapes(const std::vector<std::string>& specs) {
    std::map<std::string, Shape> out;
    for (const auto& spec : specs) {
        auto colon = spec.rfind(':');
        if (colon == std::string::npos || colon == 0) {
            return invalid("--input-shape '{}': expected NAME:D0,D1,... (e.g. images:1,3,640,640)",
                           spec);
        }
        Shape shape;
        std::stringstream ss(spec.substr(colon + 1));
        std::string tok;
        while (std::getline(ss, tok, ',')) {
            try {
                size_t used = 0;
                long long v = std::stoll(tok, &used);
                if (used != tok.size() || v <= 0) throw std::invalid_argument(tok);
                shape.push_back(v);
            } catch (const std::exception&) {
                return invalid("--input-shape '{}': '{}' is not a positive integer", spec, tok);
            }
        }
        if (shape.empty()) return invalid("--input-shape '{}': no dimensions", spec);
        out[spec.substr(0, colon)] = shape;
    }
    return out;
}

Result<std::string> resolve_model_path(const std::string& given) {
    if (!given.empty()) return given;
    std::string p = default_model_path();
    if (p.empty()) {
        return invalid("no MODEL given and the bundled default model ({}) was not found; pass a "
                       "model path or set LOWBIT_ASSETS to the assets folder",
                       kDefaultModelFile);
    }
    return p;
}

namespace {

// LOWBIT_PROFILE: unset, empty or "0" is off; a number above 1 is level 2; anything else 1.
int env_profile_level() {
    const char* e = std::getenv("LOWBIT_PROFILE");
    if (e == nullptr || *e == '\0' || std::string(e) == "0") return 0;
    return std::atoi(e) > 1 ? 2 : 1;
}

bool env_conv_winograd() {
    const char* e = std::getenv("LOWBIT_CONV_WINOGRAD");
    return e == nullptr || std::string(e) != "0";
}

}  // namespace

void apply_env_switches(ExecutorOptions& eo) {
    eo.profile = env_profile_level();
    eo.conv_winograd = env_conv_winograd();
}

void apply_env_switches(calib::CalibRunOptions& ro) {
    ro.profile = env_profile_level();
    ro.conv_winograd = env_conv_winograd();
}

Result<LoadedModel> open_model(const std::string& path, const ExecutorOptions& opts) {
    LoadedModel lm;
    lm.path = path;
    LOWBIT_ASSIGN(lm.model, load_model(path));
    ExecutorOptions eo = opts;
    apply_env_switches(eo);
    auto ex = Executor::create(lm.model, eo);
    if (!ex) return ex.status().with_context(path);
    lm.executor = std::move(ex).value();
    return lm;
}

}  // namespace lowbit::cli
