// Latency statistics of the seed's evaluator (research/seed-spec.md §5.9): per-image inference
// seconds, the first `skip` dropped; mean, median, p90 (NumPy linear interpolation) and
// throughput = 1 / mean. Beyond the seed: p10, a distribution-free confidence interval of the
// median, a spread that says how far apart two medians must be before one variant is faster,
// and the raw times, so that a reader can recompute any of it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace lowbit {

struct LatencyStats {
    double mean_ms = 0;
    double median_ms = 0;
    double p90_ms = 0;
    double throughput_fps = 0;
    int64_t samples = 0;
    double p10_ms = 0;
    // [x_(l), x_(n+1-l)] of the sorted times, the order statistics whose binomial coverage of the
    // true median is at least `median_ci_level_target`; `median_ci_level` is the coverage
    // achieved (below the target only when there are too few samples: then min..max).
    double median_ci_low_ms = 0;
    double median_ci_high_ms = 0;
    double median_ci_level = 0;
    // max((p90 - p10) / 2, the wider side of the median's interval): two variants differ in
    // latency only when their medians are further apart than the sum of their spreads.
    double spread_ms = 0;
    std::vector<double> times_ms;  // the samples kept, in the order they were measured
};

inline constexpr double kMedianCiLevel = 0.95;

// All zeros when no sample remains after skipping.
LatencyStats latency_stats(std::vector<double> seconds, int skip);

// The same from times already in milliseconds, none skipped.
LatencyStats latency_stats_ms(std::vector<double> times_ms);

// np.percentile(v, q) with the default 'linear' method; `v` must be sorted and non-empty.
double percentile_linear(const std::vector<double>& sorted, double q);

// 1-based rank l of the lower end of the median's interval [x_(l), x_(n+1-l)] for n samples: the
// largest l with P(B <= l-1) <= (1 - level) / 2, B ~ Binomial(n, 1/2) the number of samples below
// the true median; 1 when even min..max falls short of `level` (n < 6 at 95%), 0 when n == 0.
int64_t median_ci_rank(int64_t n, double level);

// P(B <= k) for B ~ Binomial(n, 1/2).
double binomial_half_cdf(int64_t n, int64_t k);

// Sets the fields of a "latency" object on `j` (nlohmann::json or ordered_json): the seed's
// mean_ms, median_ms, p90_ms, throughput_fps first, then samples, p10_ms, median_ci_ms
// [low, high], median_ci_level, spread_ms, times_ms.
template <class Json>
void set_latency_fields(Json& j, const LatencyStats& s) {
    j["mean_ms"] = s.mean_ms;
    j["median_ms"] = s.median_ms;
    j["p90_ms"] = s.p90_ms;
    j["throughput_fps"] = s.throughput_fps;
    j["samples"] = s.samples;
    j["p10_ms"] = s.p10_ms;
    j["median_ci_ms"] = {s.median_ci_low_ms, s.median_ci_high_ms};
    j["median_ci_level"] = s.median_ci_level;
    j["spread_ms"] = s.spread_ms;
    j["times_ms"] = s.times_ms;
}

// The "latency" object of metrics.json (set_latency_fields, in that order).
nlohmann::ordered_json latency_json(const LatencyStats& s);

}  // namespace lowbit
