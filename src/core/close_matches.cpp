#include "core/close_matches.h"

#include <algorithm>
#include <utility>

namespace lowbit {

size_t edit_distance(const std::string& a, const std::string& b) {
    // One row of the dynamic-programming table at a time.
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
            diag = up;
        }
    }
    return row[b.size()];
}

std::vector<std::string> close_matches(const std::string& name,
                                       const std::vector<std::string>& candidates, size_t max_n) {
    const size_t limit = std::max<size_t>(2, name.size() / 3);
    std::vector<std::pair<size_t, size_t>> scored;  // (distance, index)
    for (size_t i = 0; i < candidates.size(); ++i) {
        const std::string& c = candidates[i];
        const size_t len_gap =
            c.size() > name.size() ? c.size() - name.size() : name.size() - c.size();
        if (len_gap > limit) continue;  // the distance is at least the length difference
        const size_t d = edit_distance(name, c);
        if (d <= limit) scored.emplace_back(d, i);
    }
    std::stable_sort(scored.begin(), scored.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    std::vector<std::string> out;
    for (size_t k = 0; k < scored.size() && out.size() < max_n; ++k) {
        out.push_back(candidates[scored[k].second]);
    }
    return out;
}

}  // namespace lowbit
