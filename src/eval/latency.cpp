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

double binomial_half_cdf(int64_t n, int64_t k) {
    if (k < 0) return 0;
    if (k >= n) return 1;
    // Terms in log space: C(n, i) / 2^n overflows doubles long before n gets large.
    const double log_half_n = static_cast<double>(n) * std::log(0.5);
    const double lg_n1 = std::lgamma(static_cast<double>(n) + 1);
    double sum = 0;
    for (int64_t i = 0; i <= k; ++i) {
        const double log_c = lg_n1 - std::lgamma(static_cast<double>(i) + 1) -
                             std::lgamma(static_cast<double>(n - i) + 1);
        sum += std::exp(log_c + log_half_n);
    }
    return std::min(sum, 1.0);
}

int64_t median_ci_rank(int64_t n, double level) {
    if (n <= 0) return 0;
    const double tail = (1 - level) / 2;
    const double log_half_n = static_cast<double>(n) * std::log(0.5);
    const double lg_n1 = std::lgamma(static_cast<double>(n) + 1);
    // cdf = P(B <= l) summed as l grows; the interval needs l + 1 <= n + 1 - (l + 1).
    int64_t l = 1;
    double cdf = std::exp(log_half_n);  // P(B <= 0)
    while (l + 1 <= (n + 1) / 2) {
        cdf += std::exp(lg_n1 - std::lgamma(static_cast<double>(l) + 1) -
                        std::lgamma(static_cast<double>(n - l) + 1) + log_half_n);
        if (cdf > tail) break;
        ++l;
    }
    return l;
}

LatencyStats latency_stats_ms(std::vector<double> times_ms) {
    LatencyStats s;
    if (times_ms.empty()) return s;
    s.times_ms = times_ms;
    double sum = 0;
    for (double x : times_ms) sum += x;
    const double mean = sum / static_cast<double>(times_ms.size());
    std::vector<double>& v = times_ms;
    std::sort(v.begin(), v.end());
    const int64_t n = static_cast<int64_t>(v.size());
    s.samples = n;
    s.mean_ms = mean;
    s.median_ms = percentile_linear(v, 50);
    s.p90_ms = percentile_linear(v, 90);
    s.p10_ms = percentile_linear(v, 10);
    s.throughput_fps = mean > 0 ? 1000.0 / mean : 0;
    const int64_t l = median_ci_rank(n, kMedianCiLevel);
    s.median_ci_low_ms = v[static_cast<size_t>(l - 1)];
    s.median_ci_high_ms = v[static_cast<size_t>(n - l)];
    s.median_ci_level = 1 - 2 * binomial_half_cdf(n, l - 1);
    s.spread_ms = std::max({(s.p90_ms - s.p10_ms) / 2, s.median_ms - s.median_ci_low_ms,
                            s.median_ci_high_ms - s.median_ms});
    return s;
}

LatencyStats latency_stats(std::vector<double> seconds, int skip) {
    if (skip > 0) {
        seconds.erase(
            seconds.begin(),
            seconds.begin() + std::min<size_t>(seconds.size(), static_cast<size_t>(skip)));
    }
    for (double& x : seconds) x *= 1000;
    return latency_stats_ms(std::move(seconds));
}

nlohmann::ordered_json latency_json(const LatencyStats& s) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    set_latency_fields(j, s);
    return j;
}

}  // namespace lowbit
