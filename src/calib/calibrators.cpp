#include "calib/calibrators.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lowbit::calib {

namespace {

constexpr int64_t kKlBins = 2048;
constexpr int64_t kStartBin = 128;

// The KL histogram: the fine histogram's used part regrouped into at most 2048 equal bins.
struct Coarse {
    std::vector<double> hist;
    double width = 0;
};

Coarse coarse_histogram(const TensorStats& s) {
    Coarse c;
    const auto& h = s.histogram();
    int64_t used = 0;
    for (int64_t i = static_cast<int64_t>(h.size()) - 1; i >= 0; --i) {
        if (h[static_cast<size_t>(i)] != 0) {
            used = i + 1;
            break;
        }
    }
    if (used == 0) return c;
    const int64_t g = (used + kKlBins - 1) / kKlBins;
    const int64_t nb = (used + g - 1) / g;
    c.hist.assign(static_cast<size_t>(nb), 0.0);
    for (int64_t i = 0; i < used; ++i) {
        c.hist[static_cast<size_t>(i / g)] += static_cast<double>(h[static_cast<size_t>(i)]);
    }
    c.width = s.bin_width() * static_cast<double>(g);
    return c;
}

}  // namespace

Result<CalibMethod> parse_calib_method(const std::string& s) {
    if (s == "max" || s == "minmax") return CalibMethod::Max;
    if (s == "entropy") return CalibMethod::Entropy;
    if (s == "percentile") return CalibMethod::Percentile;
    if (s == "mse") return CalibMethod::Mse;
    return invalid("unknown calibration method '{}' (expected entropy, max, percentile or mse)", s);
}

const char* calib_method_name(CalibMethod m) {
    switch (m) {
        case CalibMethod::Max: return "max";
        case CalibMethod::Entropy: return "entropy";
        case CalibMethod::Percentile: return "percentile";
        case CalibMethod::Mse: return "mse";
    }
    return "?";
}

bool needs_histogram(CalibMethod m) {
    return m != CalibMethod::Max;
}

int64_t entropy_threshold_bins(const std::vector<double>& hist, int64_t start, int64_t levels) {
    const int64_t nb = static_cast<int64_t>(hist.size());
    if (nb <= start) return nb;
    // Prefix sums: counts, count*ln(count), number of non-empty bins.
    std::vector<double> C(static_cast<size_t>(nb) + 1, 0.0), A(static_cast<size_t>(nb) + 1, 0.0);
    std::vector<int64_t> Z(static_cast<size_t>(nb) + 1, 0);
    for (int64_t k = 0; k < nb; ++k) {
        const double c = hist[static_cast<size_t>(k)];
        C[static_cast<size_t>(k) + 1] = C[static_cast<size_t>(k)] + c;
        A[static_cast<size_t>(k) + 1] = A[static_cast<size_t>(k)] + (c > 0 ? c * std::log(c) : 0);
        Z[static_cast<size_t>(k) + 1] = Z[static_cast<size_t>(k)] + (c > 0 ? 1 : 0);
    }
    const double total = C[static_cast<size_t>(nb)];
    if (total <= 0) return nb;
    const double log_total = std::log(total);
    double best_kl = std::numeric_limits<double>::infinity();
    int64_t best = nb;
    for (int64_t i = start; i <= nb; ++i) {
        const size_t iu = static_cast<size_t>(i);
        const double kept = C[iu];  // mass of bins [0, i): Q's total
        if (kept <= 0) continue;
        const double outliers = total - kept;
        const double last = hist[iu - 1];
        if (last == 0 && outliers > 0) continue;  // P > 0 where Q = 0: infinite divergence
        const double p_last = last + outliers;
        const double log_ratio = std::log(kept) - log_total;  // ln(SQ / T)
        // Sum over k < i-1 of c_k [ln c_k - ln T + ln SQ - ln q_group(k)], then bin i-1.
        double acc = A[iu - 1] + C[iu - 1] * log_ratio;
        double q_last = 0;
        for (int64_t j = 0; j < levels; ++j) {
            const int64_t lo = (j * i + levels - 1) / levels;
            const int64_t hi = ((j + 1) * i + levels - 1) / levels;
            const double s = C[static_cast<size_t>(hi)] - C[static_cast<size_t>(lo)];
            const int64_t nz = Z[static_cast<size_t>(hi)] - Z[static_cast<size_t>(lo)];
            if (s <= 0 || nz == 0) continue;
            const double q = s / static_cast<double>(nz);
            const double own = j == levels - 1 ? s - last : s;
            if (own > 0) acc -= own * std::log(q);
            if (j == levels - 1) q_last = q;
        }
        if (p_last > 0) acc += p_last * (std::log(p_last) + log_ratio - std::log(q_last));
        const double kl = acc / total;
        if (kl < best_kl) {
            best_kl = kl;
            best = i;
        }
    }
    return best;
}

double quantization_mse(const std::vector<double>& hist, double w, double t,
                        QuantMode target) {
    if (t <= 0) return 0;
    const double qmax = quant_max(target);
    const float inv_s = static_cast<float>(qmax / t);
    const float s = static_cast<float>(t / qmax);
    double err = 0, total = 0;
    for (size_t k = 0; k < hist.size(); ++k) {
        const double c = hist[k];
        if (c == 0) continue;
        const float x = static_cast<float>((static_cast<double>(k) + 0.5) * w);
        float q;
        if (target == QuantMode::Int8) {
            q = std::min(std::nearbyint(x * inv_s), 127.0f) * s;
        } else {
            q = round_to_e4m3(x * inv_s) * s;
        }
        const double d = static_cast<double>(x) - static_cast<double>(q);
        err += c * d * d;
        total += c;
    }
    return total > 0 ? err / total : 0;
}

double compute_amax(const TensorStats& stats, const CalibConfig& cfg) {
    if (stats.count() == 0 || stats.amax() <= 0) return 0;
    const double amax = stats.amax();
    if (cfg.method == CalibMethod::Max || !stats.with_histogram()) return amax;
    if (cfg.method == CalibMethod::Percentile) {
        const auto& h = stats.histogram();
        const double target = cfg.percentile / 100.0 * static_cast<double>(stats.count());
        double cum = 0;
        for (size_t k = 0; k < h.size(); ++k) {
            cum += static_cast<double>(h[k]);
            if (cum >= target) {
                return std::min(static_cast<double>(k + 1) * stats.bin_width(), amax);
            }
        }
        return amax;
    }
    Coarse c = coarse_histogram(stats);
    const int64_t nb = static_cast<int64_t>(c.hist.size());
    if (nb <= kStartBin) return amax;
    if (cfg.method == CalibMethod::Entropy) {
        const int64_t i = entropy_threshold_bins(c.hist, kStartBin, 128);
        return std::min(static_cast<double>(i) * c.width, amax);
    }
    // MSE over the entropy candidates.
    double best_t = amax, best_err = std::numeric_limits<double>::infinity();
    for (int64_t i = kStartBin; i <= nb; ++i) {
        const double t = std::min(static_cast<double>(i) * c.width, amax);
        const double e = quantization_mse(c.hist, c.width, t, cfg.target);
        if (e < best_err) {
            best_err = e;
            best_t = t;
        }
    }
    return best_t;
}

}  // namespace lowbit::calib
