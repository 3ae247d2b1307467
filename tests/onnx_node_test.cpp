// Conformance: runs the ONNX backend node tests shipped in Debian's libonnx-testdata
// (/usr/share/libonnx-testdata/data/node/test_*/{model.onnx,test_data_set_*/}) through the
// executor. A test whose model uses an op lowbit has no kernel for is skipped (not implemented);
// every test of an implemented op must pass, except the few listed in kKnownRejections, which
// exercise features lowbit deliberately rejects at load with a clear message (checked too).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "core/fs.h"
#include "onnx/model_io.h"
#include "runtime/executor.h"
#include "runtime/registry.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

std::string testdata_dir() {
    if (const char* e = std::getenv("LOWBIT_ONNX_TESTDATA")) return e;
    return "/usr/share/libonnx-testdata/data/node";
}

// Tests of implemented ops that exercise a feature lowbit rejects on purpose (each must fail at
// load with an Unsupported/InvalidArgument status rather than give a wrong answer).
const std::map<std::string, std::string>& known_rejections() {
    static const std::map<std::string, std::string> m = {};
    return m;
}

std::vector<std::string> list_tests() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(testdata_dir(), ec)) {
        if (e.is_directory() && fs::exists(e.path() / "model.onnx")) {
            names.push_back(e.path().filename().string());
        }
    }
    std::sort(names.begin(), names.end());
    if (names.empty()) names.push_back("no_testdata_found");
    return names;
}

bool close_enough(const Tensor& got, const Tensor& want, std::string* why) {
    if (got.dtype() != want.dtype() || got.shape() != want.shape()) {
        *why = fmt::format("got {} {}, want {} {}", dtype_name(got.dtype()), shape_str(got.shape()),
                           dtype_name(want.dtype()), shape_str(want.shape()));
        return false;
    }
    // The ONNX backend test defaults: rtol 1e-3, atol 1e-7.
    constexpr double kRtol = 1e-3, kAtol = 1e-7;
    const bool fp = dtype_is_float(want.dtype());
    for (int64_t i = 0; i < want.numel(); ++i) {
        double a = tensor_get_f64(got, i), b = tensor_get_f64(want, i);
        if (std::isnan(a) && std::isnan(b)) continue;
        bool ok = fp ? (a == b || std::fabs(a - b) <= kAtol + kRtol * std::fabs(b))
                     : tensor_get_i64(got, i) == tensor_get_i64(want, i);
        if (!ok) {
            *why = fmt::format("element {} of {}: got {}, want {}", i, shape_str(want.shape()), a, b);
            return false;
        }
    }
    return true;
}

class OnnxNodeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(OnnxNodeTest, Run) {
    const std::string name = GetParam();
    if (name == "no_testdata_found") GTEST_SKIP() << "libonnx-testdata not installed";
    const fs::path dir = fs::path(testdata_dir()) / name;
    auto model = load_model((dir / "model.onnx").string());
    ASSERT_TRUE(model.is_ok()) << model.status().message();
    const KernelRegistry& reg = KernelRegistry::builtin();
    for (const auto& n : model->graph.nodes) {
        if (!reg.has(n.op_type)) GTEST_SKIP() << "op " << n.op_type << " not implemented";
    }
    auto ex = Executor::create(*model, {.n_threads = 2});
    auto rej = known_rejections().find(name);
    if (rej != known_rejections().end()) {
        ASSERT_FALSE(ex.is_ok()) << "expected a load-time rejection: " << rej->second;
        return;
    }
    ASSERT_TRUE(ex.is_ok()) << ex.status().message();
    int sets = 0;
    for (int k = 0;; ++k) {
        fs::path ds = dir / fmt::format("test_data_set_{}", k);
        if (!fs::exists(ds)) break;
        ++sets;
        std::vector<Tensor> inputs;
        for (size_t i = 0; i < (*ex)->inputs().size(); ++i) {
            auto bytes = read_file((ds / fmt::format("input_{}.pb", i)).string());
            ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
            auto t = parse_tensor(*bytes);
            ASSERT_TRUE(t.is_ok()) << t.status().message();
            inputs.push_back(*t);
        }
        auto out = (*ex)->run(inputs);
        ASSERT_TRUE(out.is_ok()) << out.status().message();
        for (size_t o = 0; o < out->size(); ++o) {
            auto bytes = read_file((ds / fmt::format("output_{}.pb", o)).string());
            ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
            auto want = parse_tensor(*bytes);
            ASSERT_TRUE(want.is_ok()) << want.status().message();
            std::string why;
            EXPECT_TRUE(close_enough((*out)[o], *want, &why))
                << "data set " << k << ", output " << o << " ('" << (*ex)->outputs()[o].name
                << "'): " << why;
        }
    }
    EXPECT_GT(sets, 0);
}

INSTANTIATE_TEST_SUITE_P(Node, OnnxNodeTest, ::testing::ValuesIn(list_tests()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                             std::string s = info.param;
                             for (char& c : s) {
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             }
                             return s;
                         });

}  // namespace
}  // namespace lowbit
