#include "cli/common.h"

#include <cstdio>
#include <cstdlib>

#include "onnx/model_io.h"

namespace lowbit::cli {

int report(const std::string& command, const Status& st) {
    if (st.is_ok()) return 0;
    std::fprintf(stderr, "lowbit %s: error: %s\n", command.c_str(), st.message().c_str());
    return st.code() == StatusCode::InvalidArgument ? 2 : 1;
}

namespace {

// LOWBIT_PROFILE: unset, empty or "0" is off; a number above 1 is level 2; anything else 1.
int env_profile_level() {
    const char* e = std::getenv("LOWBIT_PROFILE");
    if (e == nullptr || *e == '\0' || std::string(e) == "0") return 0;
    return std::atoi(e) > 1 ? 2 : 1;
}

// An on/off switch that only "0" turns off.
bool env_on(const char* name) {
    const char* e = std::getenv(name);
    return e == nullptr || std::string(e) != "0";
}

}  // namespace

pipeline::EngineSwitches engine_switches_from_env() {
    return {env_profile_level(), env_on("LOWBIT_CONV_WINOGRAD"), env_on("LOWBIT_LOWP_KERNELS"),
            env_on("LOWBIT_QCONV_DIRECT")};
}

Result<LoadedModel> open_model(const std::string& path, const ExecutorOptions& opts) {
    LoadedModel lm;
    lm.path = path;
    LOWBIT_ASSIGN(lm.model, load_model(path));
    ExecutorOptions eo = opts;
    pipeline::apply_engine_switches(engine_switches_from_env(), eo);
    auto ex = Executor::create(lm.model, eo);
    if (!ex) return ex.status().with_context(path);
    lm.executor = std::move(ex).value();
    return lm;
}

}  // namespace lowbit::cli
