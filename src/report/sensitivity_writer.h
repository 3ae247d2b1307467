// Writing a sensitivity sweep's result (quant/sensitivity/sensitivity.h) as the two report files
// `lowbit sensitivity --out` writes: report.json (schema in docs / issue 6: tool,
// lowbit_version, model, mode, metric, all_but_one, images, calibration, cost, score,
// reference, val, nodes, notes) and the markdown table beside it. Reading such reports back is
// report/sensitivity_report.h.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "quant/sensitivity/sensitivity.h"

namespace lowbit::report {

struct SensitivityRunInfo {
    std::string model;
    std::string mode;
    std::string calib_source;
};

nlohmann::ordered_json sensitivity_json(const SensitivityRunInfo& info,
                                        const quant::SensitivityOptions& opts,
                                        const quant::SensitivityReport& r);
std::string sensitivity_markdown(const SensitivityRunInfo& info,
                                 const quant::SensitivityOptions& opts,
                                 const quant::SensitivityReport& r);

}  // namespace lowbit::report
