// Accuracy differences that are real (issue 15 item 4): each variant against the baseline by a
// paired bootstrap over images. `lowbit eval` records mAP50-95 for 1000 resamples of its images
// (metrics.json "bootstrap", seeded); two files with the same images, seed and resample count
// were resampled with the same image sets, so the per-resample differences are the paired
// bootstrap of the difference. A difference is called only when its 95 % interval excludes 0.
#pragma once

#include <optional>
#include <string>

#include "report/compare.h"

namespace lowbit::report {

struct PairedDiff {
    double diff = 0;        // variant - baseline mAP50-95 (the full-set values)
    double lo = 0, hi = 0;  // 95 % interval of the per-resample differences
    int resamples = 0;
    bool different() const { return lo > 0 || hi < 0; }
};

// nullopt when either file has no bootstrap, or they were resampled differently (other images,
// seed or count): then no paired interval exists.
std::optional<PairedDiff> paired_bootstrap(const Variant& v, const Variant& baseline);

// Variant i against the baseline: "lower by 0.0123 (95% CI -0.0200..-0.0050)", "higher by ...",
// "no measurable difference (-0.0010, 95% CI -0.0040..0.0020)", "-" for the baseline or without
// one, "no paired bootstrap (...)" when the files cannot be paired.
std::string accuracy_verdict(const Comparison& c, size_t i);

// The summary.md section: the rule, then variant | mAP_50_95 95% CI | difference | verdict.
std::string accuracy_markdown(const Comparison& c);

}  // namespace lowbit::report
