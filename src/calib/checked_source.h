// A calibration source that checks every sample it hands out: a NaN or infinite value is an
// error naming the source, the sample and the element (such data would give NaN ranges, scales
// and sensitivity scores); a constant sample (an all-zero or blank image) is a named warning,
// given once per sample through a callback.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "calib/calib_source.h"

namespace lowbit::calib {

using CalibWarning = std::function<void(const std::string&)>;

// Wraps `inner`; `warn` receives the warnings (none when empty).
std::unique_ptr<CalibSource> checked_source(std::unique_ptr<CalibSource> inner, CalibWarning warn);

}  // namespace lowbit::calib
