// `lowbit mixed`'s Pareto JSON in compare's outputs (`compare --mixed FILE`): a markdown section
// for summary.md and an HTML section (mAP50-95 against weight bytes, measured points, the front
// joined) for report.html.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace lowbit::report {

struct MixedPareto {
    std::string path;
    nlohmann::json j;
};

// Reads and checks the fields the sections use.
Result<MixedPareto> load_mixed_pareto(const std::string& path);
std::string mixed_pareto_markdown(const MixedPareto& p);
std::string mixed_pareto_html(const MixedPareto& p);

}  // namespace lowbit::report
