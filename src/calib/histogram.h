// Streaming statistics of one calibrated tensor (or of one Concat group, whose members pool
// their statistics): signed min/max, |x| maximum, and a histogram of |x|.
//
// The histogram has kFineBins equal bins over [0, R) where R is a power of two, the smallest one
// above every |x| seen so far. When a larger value arrives, R doubles and pairs of bins merge.
// Because R is a power of two, a value's bin index is floor(|x| * 2^k) for an exact power-of-two
// factor, and merging pairs gives exactly the histogram that binning all the data over the new
// range would have given. The final histogram therefore depends only on the multiset of values
// seen: not on their order, not on how they were split into batches (the TensorRT-style entropy
// calibrator in calib/calibrators.h relies on this; ModelOpt's first-batch-defined bins do not
// have it, research/modelopt.md §3.8.5).
//
// Non-finite values are counted and left out of every statistic.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit::calib {

class TensorStats {
public:
    static constexpr int kFineBinsLog2 = 15;
    static constexpr int64_t kFineBins = int64_t{1} << kFineBinsLog2;

    explicit TensorStats(bool with_histogram = true);

    // Accumulates n float32 / float16 values.
    void add(const float* x, int64_t n);
    void add_half(const uint16_t* x, int64_t n);
    // Adds everything `other` has seen (exact: the result equals having seen both streams).
    void merge(const TensorStats& other);

    bool with_histogram() const { return with_histogram_; }
    int64_t count() const { return count_; }  // finite values seen
    int64_t nonfinite() const { return nonfinite_; }
    double min() const { return min_; }
    double max() const { return max_; }
    double amax() const { return amax_; }
    // Upper end R of the histogram range (0 before any non-zero value).
    double range() const;
    double bin_width() const { return range() / static_cast<double>(kFineBins); }
    // Counts per fine bin (empty when constructed without a histogram).
    const std::vector<uint64_t>& histogram() const { return hist_; }

    // Extremes of a block of values as order-preserving integer keys (see histogram.cpp).
    struct ChunkScan {
        int32_t kmin, kmax, bad;
        uint32_t abits;
    };

private:
    void grow_to(int exponent);
    void add_finite(const float* x, int64_t n, const ChunkScan& sc);

    bool with_histogram_;
    int64_t count_ = 0;
    int64_t nonfinite_ = 0;
    double min_ = 0, max_ = 0, amax_ = 0;
    bool any_ = false;
    // R = 2^exponent_; kNoRange before the first non-zero |x|.
    static constexpr int kNoRange = -1000;
    int exponent_ = kNoRange;
    std::vector<uint64_t> hist_;
};

}  // namespace lowbit::calib
