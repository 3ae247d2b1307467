#include "calib/histogram.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>

#include "core/half.h"

namespace lowbit::calib {

namespace {

constexpr int64_t kChunk = 4096;
// Values below 2^-100 all land in bin 0; keeps the binning factor a finite float.
constexpr int kMinExponent = -100;

}  // namespace

TensorStats::TensorStats(bool with_histogram) : with_histogram_(with_histogram) {
    if (with_histogram_) hist_.assign(static_cast<size_t>(kFineBins), 0);
}

double TensorStats::range() const {
    return exponent_ == kNoRange ? 0.0 : std::ldexp(1.0, exponent_);
}

void TensorStats::grow_to(int exponent) {
    if (exponent_ == kNoRange) {
        exponent_ = exponent;
        return;
    }
    const int shift = exponent - exponent_;
    if (shift <= 0) return;
    if (shift >= kFineBinsLog2) {
        uint64_t total = 0;
        for (uint64_t c : hist_) total += c;
        std::fill(hist_.begin(), hist_.end(), 0);
        hist_[0] = total;
    } else {
        // Bins [i * 2^shift, (i + 1) * 2^shift) of the old histogram form bin i of the new one.
        const int64_t group = int64_t{1} << shift;
        const int64_t kept = kFineBins >> shift;
        for (int64_t i = 0; i < kept; ++i) {
            uint64_t s = 0;
            for (int64_t j = 0; j < group; ++j) s += hist_[static_cast<size_t>(i * group + j)];
            hist_[static_cast<size_t>(i)] = s;
        }
        std::fill(hist_.begin() + kept, hist_.end(), 0);
    }
    exponent_ = exponent;
}

namespace {

// Order-preserving map of float bits to int32 (negative floats get their magnitude bits
// flipped); an involution, so the same function maps back. Lets min/max run as integer
// reductions, which vectorize without -ffast-math.
inline int32_t order_key(uint32_t bits) {
    return static_cast<int32_t>(
        bits ^ (static_cast<uint32_t>(static_cast<int32_t>(bits) >> 31) & 0x7FFFFFFFu));
}
inline float key_to_float(int32_t key) {
    return std::bit_cast<float>(static_cast<uint32_t>(order_key(static_cast<uint32_t>(key))));
}

using ChunkScan = TensorStats::ChunkScan;

// Extremes of a chunk from its bits. Non-finite values are only counted here (their bits would
// dominate the extremes); a chunk holding any is rescanned by the caller.
ChunkScan scan_chunk(const float* __restrict p, int64_t m) {
    int32_t kmin = INT32_MAX, kmax = INT32_MIN, bad = 0;
    uint32_t abits = 0;
    for (int64_t i = 0; i < m; ++i) {
        uint32_t b;
        std::memcpy(&b, p + i, 4);
        const uint32_t ab = b & 0x7FFFFFFFu;
        bad += ab >= 0x7F800000u;
        const int32_t key = order_key(b);
        kmin = std::min(kmin, key);
        kmax = std::max(kmax, key);
        abits = std::max(abits, ab);
    }
    return {kmin, kmax, bad, abits};
}

}  // namespace

void TensorStats::add(const float* x, int64_t n) {
    if (n <= 0) return;
    // Pass 1, vectorized: extremes of the whole input and a count of non-finite values.
    ChunkScan sc{INT32_MAX, INT32_MIN, 0, 0};
    int64_t bad = 0;
    for (int64_t off = 0; off < n; off += kChunk) {
        const ChunkScan c = scan_chunk(x + off, std::min(kChunk, n - off));
        sc.kmin = std::min(sc.kmin, c.kmin);
        sc.kmax = std::max(sc.kmax, c.kmax);
        sc.abits = std::max(sc.abits, c.abits);
        bad += c.bad;
    }
    if (bad > 0) {
        // Rare path: keep only the finite values, chunk by chunk.
        nonfinite_ += bad;
        float staged[kChunk];
        for (int64_t off = 0; off < n; off += kChunk) {
            const int64_t m = std::min(kChunk, n - off);
            int64_t good = 0;
            for (int64_t i = 0; i < m; ++i) {
                if (std::fabs(x[off + i]) <= FLT_MAX) staged[good++] = x[off + i];
            }
            if (good > 0) add_finite(staged, good, scan_chunk(staged, good));
        }
        return;
    }
    add_finite(x, n, sc);
}

void TensorStats::add_finite(const float* x, int64_t n, const ChunkScan& sc) {
    const float mn = key_to_float(sc.kmin), mx = key_to_float(sc.kmax);
    const float am = std::bit_cast<float>(sc.abits);
    if (!any_) {
        min_ = mn;
        max_ = mx;
        any_ = true;
    } else {
        min_ = std::min(min_, static_cast<double>(mn));
        max_ = std::max(max_, static_cast<double>(mx));
    }
    amax_ = std::max(amax_, static_cast<double>(am));
    count_ += n;
    if (!with_histogram_) return;
    if (am > 0) {
        // Smallest power of two strictly above am.
        const int e = std::max(std::ilogb(am) + 1, kMinExponent);
        if (exponent_ == kNoRange || e > exponent_) grow_to(e);
    }
    if (exponent_ == kNoRange) {  // only zeros so far: they all belong to bin 0
        hist_[0] += static_cast<uint64_t>(n);
        return;
    }
    // Pass 2: bin index = floor(|x| * 2^(15 - exponent)). The factor is a power of two, so the
    // product is exact and a value's bin never depends on the range current when it arrived.
    const float f = std::ldexp(1.0f, kFineBinsLog2 - exponent_);
    int32_t idx[kChunk];
    uint64_t* h = hist_.data();
    for (int64_t off = 0; off < n; off += kChunk) {
        const int64_t m = std::min(kChunk, n - off);
        for (int64_t i = 0; i < m; ++i) idx[i] = static_cast<int32_t>(std::fabs(x[off + i]) * f);
        for (int64_t i = 0; i < m; ++i) ++h[idx[i]];
    }
}

void TensorStats::add_half(const uint16_t* x, int64_t n) {
    float buf[kChunk];
    for (int64_t off = 0; off < n; off += kChunk) {
        const int64_t m = std::min(kChunk, n - off);
        for (int64_t i = 0; i < m; ++i) buf[i] = half_to_float(x[off + i]);
        add(buf, m);
    }
}

void TensorStats::merge(const TensorStats& other) {
    if (other.count_ == 0 && other.nonfinite_ == 0) return;
    nonfinite_ += other.nonfinite_;
    if (other.count_ == 0) return;
    if (!any_) {
        min_ = other.min_;
        max_ = other.max_;
        any_ = true;
    } else {
        min_ = std::min(min_, other.min_);
        max_ = std::max(max_, other.max_);
    }
    amax_ = std::max(amax_, other.amax_);
    count_ += other.count_;
    if (!with_histogram_ || !other.with_histogram_) return;
    TensorStats o = other;
    if (o.exponent_ != kNoRange && (exponent_ == kNoRange || o.exponent_ > exponent_)) {
        grow_to(o.exponent_);
    }
    if (exponent_ != kNoRange && o.exponent_ != kNoRange && o.exponent_ < exponent_) {
        o.grow_to(exponent_);
    }
    for (size_t i = 0; i < hist_.size(); ++i) hist_[i] += o.hist_[i];
}

}  // namespace lowbit::calib
