#include "calib/checked_source.h"

#include <fmt/format.h>

#include <cmath>

namespace lowbit::calib {

namespace {

class CheckedSource : public CalibSource {
public:
    CheckedSource(std::unique_ptr<CalibSource> inner, CalibWarning warn)
        : inner_(std::move(inner)), warn_(std::move(warn)) {}

    int64_t size() const override { return inner_->size(); }
    const Shape& sample_shape() const override { return inner_->sample_shape(); }
    std::string describe() const override { return inner_->describe(); }

    Status read(int64_t index, float* dst) override {
        LOWBIT_TRY(inner_->read(index, dst));
        const int64_t n = shape_numel(inner_->sample_shape());
        int64_t bad = 0, first_bad = -1;
        for (int64_t i = 0; i < n; ++i) {
            if (!std::isfinite(dst[i])) {
                if (bad++ == 0) first_bad = i;
            }
        }
        if (bad > 0) {
            return invalid(
                "{}: sample {} has {} NaN or infinite value(s) (the first at element {}: {}); "
                "calibration data must be finite",
                inner_->describe(), index, bad, first_bad, dst[first_bad]);
        }
        bool constant = n > 0;
        for (int64_t i = 1; constant && i < n; ++i) constant = dst[i] == dst[0];
        if (constant && warn_ && warned_.insert(index).second) {
            if (warned_.size() <= kMaxWarnings) {
                warn_(fmt::format(
                    "{}: sample {} is constant (every value {}): it adds no range "
                    "information{}",
                    inner_->describe(), index, dst[0],
                    warned_.size() == kMaxWarnings ? "; further constant samples are not reported"
                                                   : ""));
            }
        }
        return Status::ok();
    }

private:
    static constexpr size_t kMaxWarnings = 5;
    std::unique_ptr<CalibSource> inner_;
    CalibWarning warn_;
    std::set<int64_t> warned_;
};

}  // namespace

std::unique_ptr<CalibSource> checked_source(std::unique_ptr<CalibSource> inner, CalibWarning warn) {
    return std::make_unique<CheckedSource>(std::move(inner), std::move(warn));
}

}  // namespace lowbit::calib
