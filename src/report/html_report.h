// report.html: one self-contained page (inline CSS and SVG, no scripts, no external files) with
// the comparison table, mAP vs latency with the Pareto front, the recommendation, and the top
// nodes of each sensitivity report as horizontal bars.
#pragma once

#include <string>
#include <vector>

#include "report/compare.h"
#include "report/sensitivity_report.h"

namespace lowbit::report {

// Bars per sensitivity report.
inline constexpr int kSensitivityBars = 30;

std::string html_report(const Comparison& c, const CompareOptions& o,
                        const std::vector<SensitivityReport>& sensitivity);

}  // namespace lowbit::report
