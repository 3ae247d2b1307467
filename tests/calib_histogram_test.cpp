// Streaming statistics and calibrators: exact, order-independent histograms; the fast KL search
// against a direct implementation of TensorRT's entropy calibration; percentile and MSE.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "calib/calibrators.h"
#include "calib/histogram.h"

namespace lowbit::calib {
namespace {

std::vector<float> mixed_data(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    // A few outliers of growing magnitude, and exact zeros.
    for (size_t i = 0; i < n; i += 997) v[i] = 0.0f;
    v[n / 3] = 37.5f;
    v[n / 2] = -90.25f;
    return v;
}

void expect_same(const TensorStats& a, const TensorStats& b) {
    EXPECT_EQ(a.count(), b.count());
    EXPECT_EQ(a.amax(), b.amax());
    EXPECT_EQ(a.min(), b.min());
    EXPECT_EQ(a.max(), b.max());
    EXPECT_EQ(a.range(), b.range());
    EXPECT_TRUE(a.histogram() == b.histogram());
}

TEST(CalibHistogram, IndependentOfOrderAndChunking) {
    std::vector<float> v = mixed_data(200000, 1);
    TensorStats whole;
    whole.add(v.data(), static_cast<int64_t>(v.size()));

    // Small values first, outliers last: the range must grow (bins merge) several times.
    std::vector<float> sorted = v;
    std::sort(sorted.begin(), sorted.end(),
              [](float a, float b) { return std::fabs(a) < std::fabs(b); });
    TensorStats grown;
    for (size_t off = 0; off < sorted.size(); off += 1000) {
        grown.add(sorted.data() + off,
                  static_cast<int64_t>(std::min<size_t>(1000, sorted.size() - off)));
    }
    expect_same(whole, grown);

    std::vector<float> shuffled = v;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(9));
    TensorStats a, b, merged;
    a.add(shuffled.data(), 77777);
    b.add(shuffled.data() + 77777, static_cast<int64_t>(shuffled.size()) - 77777);
    merged.merge(b);
    merged.merge(a);
    expect_same(whole, merged);
    EXPECT_EQ(whole.amax(), 90.25);
    EXPECT_EQ(whole.range(), 128.0);  // smallest power of two above amax
}

TEST(CalibHistogram, SkipsNonFiniteValues) {
    std::vector<float> v = {1.0f, std::numeric_limits<float>::quiet_NaN(), -2.0f,
                            std::numeric_limits<float>::infinity(), 0.5f};
    TensorStats s;
    s.add(v.data(), static_cast<int64_t>(v.size()));
    EXPECT_EQ(s.count(), 3);
    EXPECT_EQ(s.nonfinite(), 2);
    EXPECT_EQ(s.amax(), 2.0);
    EXPECT_EQ(s.min(), -2.0);
}

// TensorRT's entropy calibration written directly (pytorch-quantization's form of NVIDIA's
// description): for each i, P = bins[0, i) + outliers in bin i-1, Q = 128 merged levels
// expanded over non-empty bins, KL(P || Q); returns the best i.
int64_t naive_entropy(const std::vector<double>& h) {
    const int64_t nb = static_cast<int64_t>(h.size());
    double best = std::numeric_limits<double>::infinity();
    int64_t best_i = nb;
    for (int64_t i = 128; i <= nb; ++i) {
        std::vector<double> p(h.begin(), h.begin() + i);
        double outliers = std::accumulate(h.begin() + i, h.end(), 0.0);
        p[static_cast<size_t>(i - 1)] += outliers;
        std::vector<double> q(static_cast<size_t>(i), 0.0);
        for (int64_t j = 0; j < 128; ++j) {
            int64_t lo = (j * i + 127) / 128, hi = ((j + 1) * i + 127) / 128;
            double sum = 0;
            int nz = 0;
            for (int64_t k = lo; k < hi; ++k) {
                sum += h[static_cast<size_t>(k)];
                nz += h[static_cast<size_t>(k)] > 0;
            }
            for (int64_t k = lo; k < hi; ++k) {
                if (h[static_cast<size_t>(k)] > 0) q[static_cast<size_t>(k)] = sum / nz;
            }
        }
        const double sp = std::accumulate(p.begin(), p.end(), 0.0);
        const double sq = std::accumulate(q.begin(), q.end(), 0.0);
        double kl = 0;
        for (int64_t k = 0; k < i; ++k) {
            const double pk = p[static_cast<size_t>(k)] / sp, qk = q[static_cast<size_t>(k)] / sq;
            if (pk == 0) continue;
            kl += qk == 0 ? std::numeric_limits<double>::infinity() : pk * std::log(pk / qk);
        }
        if (kl < best) {
            best = kl;
            best_i = i;
        }
    }
    return best_i;
}

TEST(CalibEntropy, FastSearchEqualsDirectKl) {
    std::mt19937 rng(4);
    for (int trial = 0; trial < 6; ++trial) {
        std::vector<double> h(700 + trial * 211, 0.0);
        std::exponential_distribution<double> ex(trial % 2 ? 8.0 : 3.0);
        for (int s = 0; s < 200000; ++s) {
            const double x = ex(rng);
            const size_t b = static_cast<size_t>(x / 2.0 * static_cast<double>(h.size()));
            if (b < h.size()) h[b] += 1;
        }
        if (trial == 3) h[h.size() - 1] += 5;  // isolated outlier bin
        EXPECT_EQ(entropy_threshold_bins(h), naive_entropy(h)) << "trial " << trial;
    }
}

TEST(CalibEntropy, GaussianClipsTheTail) {
    std::vector<float> v(400000);
    std::mt19937 rng(2);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto& x : v) x = nd(rng);
    TensorStats s;
    s.add(v.data(), static_cast<int64_t>(v.size()));
    const double t = compute_amax(s, {CalibMethod::Entropy, 99.99, QuantMode::Int8});
    EXPECT_GT(t, 2.0);
    EXPECT_LT(t, s.amax());
    EXPECT_EQ(compute_amax(s, {CalibMethod::Max, 99.99, QuantMode::Int8}), s.amax());
}

TEST(CalibPercentileMse, SensibleThresholds) {
    std::vector<float> u(300000);
    std::mt19937 rng(8);
    std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
    for (auto& x : u) x = ud(rng);
    TensorStats su;
    su.add(u.data(), static_cast<int64_t>(u.size()));
    const double p99 = compute_amax(su, {CalibMethod::Percentile, 99.0, QuantMode::Int8});
    EXPECT_NEAR(p99, 0.99, 0.002);
    // Uniform data: clipping only hurts, MSE keeps (almost) the full range.
    const double mse = compute_amax(su, {CalibMethod::Mse, 0, QuantMode::Int8});
    EXPECT_GT(mse, 0.97 * su.amax());

    // Laplacian: INT8 MSE clips the sparse tail (ACIQ's optimum for 8 bits is about 9.9 b,
    // below the max of 300k samples, about 12.6 b); FP8's relative precision keeps more range.
    std::vector<float> l(300000);
    std::exponential_distribution<float> ed(1.0f);
    for (size_t i = 0; i < l.size(); ++i) l[i] = (i % 2 ? 1.0f : -1.0f) * ed(rng);
    TensorStats sl;
    sl.add(l.data(), static_cast<int64_t>(l.size()));
    const double m8 = compute_amax(sl, {CalibMethod::Mse, 0, QuantMode::Int8});
    const double mf = compute_amax(sl, {CalibMethod::Mse, 0, QuantMode::Fp8});
    EXPECT_GT(m8, 6.0);
    EXPECT_LT(m8, 0.95 * sl.amax());
    EXPECT_GE(mf, m8);
}

TEST(CalibMse, ErrorModelMatchesDirectQuantization) {
    // One bin holding mass at its centre: the error is that of quantizing the centre.
    std::vector<double> h(256, 0.0);
    h[100] = 1.0;
    const double w = 0.01, t = 1.27;
    const double c = 100.5 * w;
    const double s = t / 127.0;
    const double q = std::min(std::nearbyint(c / s), 127.0) * s;
    EXPECT_NEAR(quantization_mse(h, w, t, QuantMode::Int8), (c - q) * (c - q), 1e-9);
}

}  // namespace
}  // namespace lowbit::calib
