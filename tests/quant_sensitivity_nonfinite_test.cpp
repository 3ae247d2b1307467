// Sensitivity never ranks non-finite scores (quant/sensitivity/sweep.cpp): when the measured
// outputs are NaN the sweep is an error naming the nodes, not a ranking of 1.8e308s.
#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "onnx/model_io.h"
#include "quant/sensitivity/sensitivity.h"

namespace lowbit {
namespace {

const std::string kModel =
    std::string(LOWBIT_SOURCE_DIR) + "/assets/shapes-yolov10m-w0p1875-raw.onnx";

// Finite samples the first time each is read (calibration), NaN everywhere afterwards (the
// sweep's reference and perturbed runs): a stand-in for a model or data that yields NaN outputs.
class TurningSource : public calib::CalibSource {
public:
    int64_t size() const override { return 2; }
    const Shape& sample_shape() const override { return shape_; }
    Status read(int64_t i, float* dst) override {
        const int64_t n = shape_numel(shape_);
        const bool first = reads_[i]++ == 0;
        std::mt19937 rng(static_cast<uint32_t>(7 + i));
        std::uniform_real_distribution<float> u(0.0f, 1.0f);
        for (int64_t k = 0; k < n; ++k) {
            dst[k] = first ? u(rng) : std::numeric_limits<float>::quiet_NaN();
        }
        return Status::ok();
    }
    std::string describe() const override { return "turning"; }

private:
    Shape shape_{3, 320, 320};
    int reads_[2] = {0, 0};
};

TEST(SensitivityNonFinite, NanScoresAreAnErrorNamingNodes) {
    auto m = load_model(kModel);
    ASSERT_TRUE(m) << m.status().message();
    quant::SensitivityOptions so;
    so.quant.placement.mode = quant::QuantMode::Int8;
    so.quant.method = calib::CalibMethod::Max;
    so.images = 1;
    so.n_threads = 2;
    so.progress = false;
    so.quant.run.progress = false;
    so.quant.run.n_threads = 2;
    TurningSource src;
    auto rep = quant::run_sensitivity(*m, src, so);
    ASSERT_FALSE(rep) << "a ranking was built from NaN scores";
    const std::string& msg = rep.status().message();
    EXPECT_NE(msg.find("not a finite number"), std::string::npos) << msg;
    EXPECT_NE(msg.find("/model."), std::string::npos) << msg;  // names nodes
}

}  // namespace
}  // namespace lowbit
