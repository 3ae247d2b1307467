// Latency statistics of the seed's evaluator (research/seed-spec.md §5.9): per-image inference
// seconds, the first `skip` dropped; mean, median, p90 (NumPy linear interpolation) and
// throughput = 1 / mean.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit {

struct LatencyStats {
    double mean_ms = 0;
    double median_ms = 0;
    double p90_ms = 0;
    double throughput_fps = 0;
    int64_t samples = 0;
};

// All zeros when no sample remains after skipping.
LatencyStats latency_stats(std::vector<double> seconds, int skip);

// np.percentile(v, q) with the default 'linear' method; `v` must be sorted and non-empty.
double percentile_linear(const std::vector<double>& sorted, double q);

}  // namespace lowbit
