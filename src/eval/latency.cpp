#include "eval/latency.h"

#include <algorithm>
#include <cmath>

namespace lowbit {

double percentile_linear(const std::vector<double>& v, double q) {
    const double pos = (static_cast<double>(v.size()) - 1) * q / 100.0;
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    const double t = pos - static_cast<double>(lo);
    const double a = v[lo], b = v[hi];
    // NumPy's _lerp: a + (b - a) * t, computed from the upper end when t >= 0.5.
    return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t;
}

LatencyStats latency_stats(std::vector<double> seconds, int skip) {
    LatencyStats s;
    if (skip > 0) {
        seconds.erase(
            seconds.begin(),
            seconds.begin() + std::min<size_t>(seconds.size(), static_cast<size_t>(skip)));
    }
    if (seconds.empty()) return s;
    double sum = 0;
    for (double x : seconds) sum += x;
    const double mean = sum / static_cast<double>(seconds.size());
    std::sort(seconds.begin(), seconds.end());
    s.samples = static_cast<int64_t>(seconds.size());
    s.mean_ms = 1000 * mean;
    s.median_ms = 1000 * percentile_linear(seconds, 50);
    s.p90_ms = 1000 * percentile_linear(seconds, 90);
    s.throughput_fps = mean > 0 ? 1.0 / mean : 0;
    return s;
}

}  // namespace lowbit
