#include "report/paired_bootstrap.h"

#include <fmt/format.h>

#include <vector>

#include "eval/cocoeval.h"

namespace lowbit::report {

std::optional<PairedDiff> paired_bootstrap(const Variant& v, const Variant& b) {
    if (v.bootstrap.empty() || b.bootstrap.empty()) return std::nullopt;
    if (v.bootstrap.size() != b.bootstrap.size() || v.bootstrap_seed != b.bootstrap_seed ||
        v.bootstrap_images != b.bootstrap_images) {
        return std::nullopt;
    }
    std::vector<double> d(v.bootstrap.size());
    for (size_t r = 0; r < d.size(); ++r) d[r] = v.bootstrap[r] - b.bootstrap[r];
    PairedDiff p;
    p.diff = v.map50_95 - b.map50_95;
    p.lo = percentile(d, 2.5);
    p.hi = percentile(d, 97.5);
    p.resamples = static_cast<int>(d.size());
    return p;
}

std::string accuracy_verdict(const Comparison& c, size_t i) {
    if (!c.baseline || i == *c.baseline) return "-";
    const Variant &v = c.variants[i], &b = c.variants[*c.baseline];
    auto p = paired_bootstrap(v, b);
    if (!p) {
        if (v.bootstrap.empty() || b.bootstrap.empty()) {
            return "no paired bootstrap (a results file has none)";
        }
        return "no paired bootstrap (evaluated on other images or resamples)";
    }
    const std::string ci = fmt::format("95% CI {:+.4f}..{:+.4f}", p->lo, p->hi);
    if (!p->different()) return fmt::format("no measurable difference ({:+.4f}, {})", p->diff, ci);
    return fmt::format("{} by {:.4f} ({})", p->hi < 0 ? "lower" : "higher",
                       p->diff < 0 ? -p->diff : p->diff, ci);
}

std::string accuracy_markdown(const Comparison& c) {
    std::string md =
        "A difference from the baseline is called only when the 95% interval of the paired "
        "bootstrap (the same resampled image sets for both, as recorded by `lowbit eval`) "
        "excludes 0.\n\n| variant | mAP_50_95 | 95% CI (images resampled) | against the "
        "baseline |\n|---|---:|---|---|\n";
    for (size_t i = 0; i < c.variants.size(); ++i) {
        const Variant& v = c.variants[i];
        md += fmt::format("| {} | {:.4f} | {} | {} |\n", v.name, v.map50_95,
                          v.bootstrap_ci ? fmt::format("{:.4f}..{:.4f}", v.bootstrap_ci->first,
                                                       v.bootstrap_ci->second)
                                         : "-",
                          accuracy_verdict(c, i));
    }
    return md;
}

}  // namespace lowbit::report
