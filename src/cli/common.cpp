#include "cli/common.h"

#include <cstdio>

#include "onnx/model_io.h"

namespace lowbit::cli {

int report(const std::string& command, const Status& st) {
    if (st.is_ok()) return 0;
    std::fprintf(stderr, "lowbit %s: error: %s\n", command.c_str(), st.message().c_str());
    return st.code() == StatusCode::InvalidArgument ? 2 : 1;
}

Result<LoadedModel> open_model(const std::string& path, const ExecutorOptions& opts) {
    LoadedModel lm;
    lm.path = path;
    LOWBIT_ASSIGN(lm.model, load_model(path));
    auto ex = Executor::create(lm.model, opts);
    if (!ex) return ex.status().with_context(path);
    lm.executor = std::move(ex).value();
    return lm;
}

}  // namespace lowbit::cli
