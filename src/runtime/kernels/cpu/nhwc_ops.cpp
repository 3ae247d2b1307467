// Data movement on NHWC-stored 4-D tensors, so that YOLO's C2f/SPPF/FPN blocks (Split, Concat,
// MaxPool, nearest Upsample) never leave channels-last. A logical [N, C, H, W] tensor stored
// NHWC is a [pixels, C] matrix; channel-axis Concat/Split copy row segments, MaxPool and Resize
// move whole channel rows.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {

bool window_2d(const Node& node, const Shape& x, const Shape& y, const std::vector<int64_t>& kernel,
               Window& h, Window& w) {
    if (x.size() != 4 || y.size() != 4 || kernel.size() != 2) return false;
    const std::vector<int64_t> strides = node.attr_ints("strides", {1, 1});
    const std::vector<int64_t> dilations = node.attr_ints("dilations", {1, 1});
    const std::vector<int64_t> pads = node.attr_ints("pads", {0, 0, 0, 0});
    const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
    if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4) return false;
    Window* axes[2] = {&h, &w};
    for (size_t i = 0; i < 2; ++i) {
        Window& a = *axes[i];
        a.in = x[2 + i];
        a.out = y[2 + i];
        a.k = kernel[i];
        a.stride = strides[i];
        a.dilation = dilations[i];
        if (a.k < 1 || a.stride < 1 || a.dilation < 1) return false;
        const int64_t extent = (a.k - 1) * a.dilation + 1;
        if (auto_pad == "NOTSET") {
            a.pad_begin = pads[i];
            a.pad_end = pads[i + 2];
        } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
            const int64_t total = std::max<int64_t>(0, (a.out - 1) * a.stride + extent - a.in);
            a.pad_begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
            a.pad_end = total - a.pad_begin;
        } else if (auto_pad != "VALID") {
            return false;
        }
        if (a.pad_begin < 0 || a.pad_end < 0) return false;
    }
    return true;
}

void copy_channel_rows(const void* src, int64_t src_stride, void* dst, int64_t dst_stride,
                       int64_t pixels, int64_t c, size_t elem) {
    const auto* s = static_cast<const char*>(src);
    auto* d = static_cast<char*>(dst);
    const auto ss = src_stride * static_cast<int64_t>(elem);
    const auto ds = dst_stride * static_cast<int64_t>(elem);
    const auto row = static_cast<size_t>(c) * elem;
    for (int64_t p = 0; p < pixels; ++p) std::memcpy(d + p * ds, s + p * ss, row);
}

namespace {

constexpr int64_t kGrainBytes = 64 * 1024;

// y = max(x, y) over n floats (a MaxPool tap folded into the output row).
void max_f32(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > y[i] ? x[i] : y[i];
}

// Where an op writes one NHWC output: the dense tensor and/or channel slices of concat buffers
// (FastOp::add_concat_slice). The first destination is computed into, the others are copied
// from it band by band while the band is in cache.
class Destinations {
public:
    explicit Destinations(size_t n_outputs) : dense_(n_outputs, true), slices_(n_outputs) {}

    bool add(const ConcatSlice& s, bool keep_dense) {
        if (s.out >= dense_.size()) return false;
        slices_[s.out].push_back(s);
        if (!keep_dense) dense_[s.out] = false;
        return true;
    }
    bool has_slices() const {
        for (const auto& v : slices_) {
            if (!v.empty()) return true;
        }
        return false;
    }

    // Base pointer (at pixel 0) and pixel stride, in elements, of output k's first destination.
    std::pair<char*, int64_t> primary(size_t k, std::span<Tensor> out, int64_t c,
                                      size_t elem) const {
        if (dense_[k] || slices_[k].empty()) return {static_cast<char*>(out[k].raw()), c};
        const ConcatSlice& s = slices_[k][0];
        return {static_cast<char*>(out[s.slot].raw()) + s.offset * static_cast<int64_t>(elem),
                s.total};
    }
    // Copies pixels [p0, p1) of output k from its first destination to the others.
    void fan_out(size_t k, std::span<Tensor> out, int64_t c, size_t elem, int64_t p0,
                 int64_t p1) const {
        const auto [base, stride] = primary(k, out, c, elem);
        const auto e = static_cast<int64_t>(elem);
        for (size_t i = dense_[k] ? 0 : 1; i < slices_[k].size(); ++i) {
            const ConcatSlice& s = slices_[k][i];
            char* d = static_cast<char*>(out[s.slot].raw()) + (p0 * s.total + s.offset) * e;
            copy_channel_rows(base + p0 * stride * e, stride, d, s.total, p1 - p0, c, elem);
        }
    }

private:
    std::vector<bool> dense_;
    std::vector<std::vector<ConcatSlice>> slices_;
};

// Concat along the channels of NHWC tensors: per pixel, each input's run of channels. A plain
// Concat along any axis is the same copy (make_concat_plain): per index of the dims before the
// axis ("pixels"), each input's block of its axis extent times the dims after it ("channels");
// `plain_axis` >= 0 names that axis for the profile.
class ConcatNhwcOp final : public FastOp {
public:
    ConcatNhwcOp(std::vector<int64_t> channels, int64_t pixels, size_t elem,
                 int64_t plain_axis = -1)
        : channels_(std::move(channels)),
          pixels_(pixels),
          elem_(elem),
          plain_axis_(plain_axis),
          in_place_(channels_.size(), false) {
        for (int64_t c : channels_) total_ += c;
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        if (std::all_of(in_place_.begin(), in_place_.end(), [](bool b) { return b; })) {
            return Status::ok();
        }
        auto* y = static_cast<char*>(out[0].raw());
        const int64_t row = total_ * static_cast<int64_t>(elem_);
        pool.parallel_for(pixels_, std::max<int64_t>(1, kGrainBytes / std::max<int64_t>(1, row)),
                          [&](int64_t p0, int64_t p1) {
                              int64_t off = 0;
                              for (size_t k = 0; k < channels_.size(); ++k) {
                                  // (An empty input's tensor may have no buffer.)
                                  if (!in_place_[k] && channels_[k] > 0) {
                                      copy_channel_rows(
                                          static_cast<const char*>(in[k].raw()) +
                                              p0 * channels_[k] * static_cast<int64_t>(elem_),
                                          channels_[k],
                                          y + (p0 * total_ + off) * static_cast<int64_t>(elem_),
                                          total_, p1 - p0, channels_[k], elem_);
                                  }
                                  off += channels_[k];
                              }
                          });
        return Status::ok();
    }

    bool set_input_in_place(size_t in) override {
        if (in >= in_place_.size() || plain_axis_ >= 0) return false;
        in_place_[in] = true;
        return true;
    }

    std::string describe() const override {
        if (plain_axis_ >= 0) {
            return fmt::format("Concat axis {} x{} [plain]", plain_axis_, channels_.size());
        }
        const auto n = std::count(in_place_.begin(), in_place_.end(), false);
        return fmt::format(
            "Concat(C) x{} [nhwc]{}", channels_.size(),
            n == 0 ? " in place"
                   : (n < static_cast<int64_t>(channels_.size()) ? fmt::format(" {} copied", n)
                                                                 : std::string()));
    }

private:
    std::vector<int64_t> channels_;
    int64_t pixels_;
    size_t elem_;
    int64_t plain_axis_;
    int64_t total_ = 0;
    std::vector<bool> in_place_;
};

class SplitNhwcOp final : public FastOp {
public:
    SplitNhwcOp(std::vector<int64_t> channels, int64_t pixels, size_t elem)
        : channels_(std::move(channels)), pixels_(pixels), elem_(elem), dest_(channels_.size()) {
        for (int64_t c : channels_) total_ += c;
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const auto* x = static_cast<const char*>(in[0].raw());
        const auto e = static_cast<int64_t>(elem_);
        pool.parallel_for(
            pixels_, std::max<int64_t>(1, kGrainBytes / std::max<int64_t>(1, total_ * e)),
            [&](int64_t p0, int64_t p1) {
                int64_t off = 0;
                for (size_t k = 0; k < channels_.size(); ++k) {
                    const auto [base, stride] = dest_.primary(k, out, channels_[k], elem_);
                    if (base != nullptr) {
                        copy_channel_rows(x + (p0 * total_ + off) * e, total_,
                                          base + p0 * stride * e, stride, p1 - p0, channels_[k],
                                          elem_);
                        dest_.fan_out(k, out, channels_[k], elem_, p0, p1);
                    }
                    off += channels_[k];
                }
            });
        return Status::ok();
    }

    bool add_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total,
                          bool keep_dense) override {
        return dest_.add({out, slot, offset, total}, keep_dense);
    }

    std::string describe() const override {
        return fmt::format("Split(C) x{} [nhwc]{}", channels_.size(),
                           dest_.has_slices() ? " +concat" : "");
    }

private:
    std::vector<int64_t> channels_;
    int64_t pixels_;
    size_t elem_;
    int64_t total_ = 0;
    Destinations dest_;
};

// MaxPool: each output pixel is the elementwise max of the valid window rows; padded
// positions never win and the first of equal values is kept, as in the reference.
class MaxPoolNhwcOp final : public FastOp {
public:
    MaxPoolNhwcOp(int64_t n, int64_t c, Window h, Window w)
        : n_(n), c_(c), h_(h), w_(w), dest_(1) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* x = in[0].data<float>();
        const auto [base, stride] = dest_.primary(0, out, c_, sizeof(float));
        auto* y = reinterpret_cast<float*>(base);
        const int64_t rows = n_ * h_.out;
        pool.parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t b = r / h_.out;
                const int64_t oh = r % h_.out;
                const float* xb = x + b * h_.in * w_.in * c_;
                for (int64_t ow = 0; ow < w_.out; ++ow) {
                    float* yo = y + (r * w_.out + ow) * stride;
                    if (!window_max_nhwc(xb, yo, c_, h_, w_, oh, ow, max_f32)) {
                        std::fill_n(yo, c_, std::numeric_limits<float>::lowest());
                    }
                }
            }
            dest_.fan_out(0, out, c_, sizeof(float), r0 * w_.out, r1 * w_.out);
        });
        return Status::ok();
    }

    bool add_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total,
                          bool keep_dense) override {
        return dest_.add({out, slot, offset, total}, keep_dense);
    }

    std::string describe() const override {
        return fmt::format("MaxPool {}x{} s{} [nhwc]{}", h_.k, w_.k, h_.stride,
                           dest_.has_slices() ? " +concat" : "");
    }

private:
    int64_t n_, c_;
    Window h_, w_;
    Destinations dest_;
};

// GlobalAveragePool: the mean of each channel over the H*W pixel rows, summed in double. The
// output [N, C, 1, 1] has the same bytes in NHWC and plain order. Tasks are blocks of 64
// channels (a row of double sums in registers/L1) times ranges of kGapPixels pixels, so that a
// large map with few channels (EfficientNet-B0's first squeeze-excitation, 112x112x32: one
// channel block) is shared by the threads too; the ranges' partial sums are then added in
// range order. The cut depends only on the shape, so every thread count gives the same bits.
// With one range (maps up to kGapPixels pixels) each channel is summed in pixel order, as the
// reference sums its plane, so the result is the reference's bit for bit; with more, the
// partial sums in double round to the same float but for a rare last-bit tie.
class GlobalAvgPoolNhwcOp final : public FastOp {
public:
    static constexpr int64_t kBlock = 64;
    static constexpr int64_t kGapPixels = 1024;

    GlobalAvgPoolNhwcOp(int64_t n, int64_t c, int64_t pixels)
        : n_(n), c_(c), pixels_(pixels), ranges_((pixels + kGapPixels - 1) / kGapPixels) {
        if (ranges_ > 1) partial_.resize(static_cast<size_t>(n_ * ranges_ * c_));
    }

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* x = in[0].data<float>();
        float* y = out[0].data<float>();
        const int64_t blocks = (c_ + kBlock - 1) / kBlock;
        const double count = static_cast<double>(pixels_);
        // Task t: image b, channel block, pixel range r (r fastest).
        pool.parallel_for(n_ * blocks * ranges_, 1, [&](int64_t t0, int64_t t1) {
            double acc[kBlock];
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t r = t % ranges_;
                const int64_t b = t / ranges_ / blocks;
                const int64_t c0 = (t / ranges_ % blocks) * kBlock;
                const int64_t nc = std::min(kBlock, c_ - c0);
                const int64_t p0 = r * kGapPixels;
                const int64_t p1 = std::min(pixels_, p0 + kGapPixels);
                sum_pixels(x + (b * pixels_ + p0) * c_ + c0, c_, p1 - p0, nc, acc);
                if (ranges_ == 1) {
                    for (int64_t ch = 0; ch < nc; ++ch) {
                        y[b * c_ + c0 + ch] = static_cast<float>(acc[ch] / count);
                    }
                } else {
                    double* part = partial_.data() + (b * ranges_ + r) * c_ + c0;
                    std::copy_n(acc, nc, part);
                }
            }
        });
        if (ranges_ == 1) return Status::ok();
        for (int64_t b = 0; b < n_; ++b) {
            for (int64_t ch = 0; ch < c_; ++ch) {
                double s = 0.0;
                for (int64_t r = 0; r < ranges_; ++r) {
                    s += partial_[static_cast<size_t>((b * ranges_ + r) * c_ + ch)];
                }
                y[b * c_ + ch] = static_cast<float>(s / count);
            }
        }
        return Status::ok();
    }

    std::string describe() const override { return "GlobalAveragePool [nhwc]"; }

    // acc[0, nc) = the sums over `pixels` rows (`stride` floats apart) of x's first nc values,
    // each added in pixel order.
    static void sum_pixels(const float* x, int64_t stride, int64_t pixels, int64_t nc,
                           double* acc) {
        switch (nc) {
            case 16: return sum_pixels_fixed<16>(x, stride, pixels, acc);
            case 32: return sum_pixels_fixed<32>(x, stride, pixels, acc);
            case 48: return sum_pixels_fixed<48>(x, stride, pixels, acc);
            case 64: return sum_pixels_fixed<64>(x, stride, pixels, acc);
            default: break;
        }
        std::fill_n(acc, nc, 0.0);
        for (int64_t p = 0; p < pixels; ++p) {
            const float* row = x + p * stride;
            for (int64_t ch = 0; ch < nc; ++ch) acc[ch] += row[ch];
        }
    }

    // The same for a channel count known at compile time: the sums stay in registers.
    template <int kN>
    static void sum_pixels_fixed(const float* x, int64_t stride, int64_t pixels, double* acc) {
        double a[kN] = {};
        for (int64_t p = 0; p < pixels; ++p) {
            const float* row = x + p * stride;
            for (int ch = 0; ch < kN; ++ch) a[ch] += row[ch];
        }
        std::copy_n(a, kN, acc);
    }

private:
    int64_t n_, c_, pixels_, ranges_;
    std::vector<double> partial_;  // [n][ranges][c] partial sums (more than one range)
};

// BatchNormalization (inference) on NHWC data: per channel y = x * a + b with the reference's
// a = scale / sqrt(var + epsilon) and b = B - mean * a, computed the same way, so the result is
// the reference's. The parameters are read at run time (they need not be constants).
class BatchNormNhwcOp final : public FastOp {
public:
    BatchNormNhwcOp(int64_t pixels, int64_t c, float epsilon)
        : pixels_(pixels),
          c_(c),
          epsilon_(epsilon),
          a_(static_cast<size_t>(c)),
          b_(static_cast<size_t>(c)) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const float* scale = in[1].data<float>();
        const float* bias = in[2].data<float>();
        const float* mean = in[3].data<float>();
        const float* var = in[4].data<float>();
        for (int64_t ch = 0; ch < c_; ++ch) {
            a_[ch] = scale[ch] / std::sqrt(var[ch] + epsilon_);
            b_[ch] = bias[ch] - mean[ch] * a_[ch];
        }
        const float* x = in[0].data<float>();
        float* y = out[0].data<float>();
        const float* a = a_.data();
        const float* b = b_.data();
        pool.parallel_for(pixels_, 64, [&](int64_t p0, int64_t p1) {
            for (int64_t p = p0; p < p1; ++p) {
                const float* xr = x + p * c_;
                float* yr = y + p * c_;
                for (int64_t ch = 0; ch < c_; ++ch) yr[ch] = xr[ch] * a[ch] + b[ch];
            }
        });
        return Status::ok();
    }

    std::string describe() const override { return "BatchNormalization [nhwc]"; }

private:
    int64_t pixels_, c_;
    float epsilon_;
    std::vector<float> a_, b_;
};

// Pad, mode constant, of H and W only (non-negative pads), on an NHWC tensor: each output row
// is fill, the input row's pixels (all channels, one contiguous run), fill. Any dtype; the fill
// is the constant_value's bytes (zeros when absent). Shapes: x [N, C, H, W] ->
// y [N, C, H + top + bottom, W + left + right], both stored NHWC.
class PadNhwcOp final : public FastOp {
public:
    PadNhwcOp(const Shape& x, int64_t top, int64_t left, int64_t oh, int64_t ow,
              std::vector<char> fill)
        : n_(x[0]),
          c_(x[1]),
          ih_(x[2]),
          iw_(x[3]),
          top_(top),
          left_(left),
          oh_(oh),
          ow_(ow),
          fill_(std::move(fill)) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const auto* x = static_cast<const char*>(in[0].raw());
        auto* y = static_cast<char*>(out[0].raw());
        const size_t elem = fill_.size();
        const size_t pixel = static_cast<size_t>(c_) * elem;  // bytes per NHWC pixel
        const bool zero = std::all_of(fill_.begin(), fill_.end(), [](char b) { return b == 0; });
        // Fills `pixels` output pixels from d with the constant.
        auto fill = [&](char* d, int64_t pixels) {
            const size_t bytes = static_cast<size_t>(pixels) * pixel;
            if (zero) {
                std::memset(d, 0, bytes);
                return;
            }
            for (size_t i = 0; i < bytes; i += elem) std::memcpy(d + i, fill_.data(), elem);
        };
        pool.parallel_for(n_ * oh_, 4, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t b = r / oh_;
                const int64_t ih = r % oh_ - top_;
                char* d = y + static_cast<size_t>(r * ow_) * pixel;
                if (ih < 0 || ih >= ih_) {
                    fill(d, ow_);
                    continue;
                }
                fill(d, left_);
                std::memcpy(d + static_cast<size_t>(left_) * pixel,
                            x + static_cast<size_t>((b * ih_ + ih) * iw_) * pixel,
                            static_cast<size_t>(iw_) * pixel);
                fill(d + static_cast<size_t>(left_ + iw_) * pixel, ow_ - left_ - iw_);
            }
        });
        return Status::ok();
    }

    std::string describe() const override { return "Pad constant H/W [nhwc]"; }

private:
    int64_t n_, c_, ih_, iw_, top_, left_, oh_, ow_;
    std::vector<char> fill_;  // one element of the fill value
};

// Nearest Resize by integer factors on H and W: output pixel (oh, ow) copies the channel row
// of input pixel (map_h[oh], map_w[ow]); the maps are computed at plan time with the node's
// coordinate transformation and rounding mode.
class ResizeNhwcOp final : public FastOp {
public:
    ResizeNhwcOp(int64_t n, int64_t c, int64_t ih, int64_t iw, std::vector<int64_t> map_h,
                 std::vector<int64_t> map_w, size_t elem)
        : n_(n),
          c_(c),
          ih_(ih),
          iw_(iw),
          map_h_(std::move(map_h)),
          map_w_(std::move(map_w)),
          elem_(elem),
          dest_(1) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const auto* x = static_cast<const char*>(in[0].raw());
        const auto [y, stride] = dest_.primary(0, out, c_, elem_);
        const int64_t oh = static_cast<int64_t>(map_h_.size());
        const int64_t ow = static_cast<int64_t>(map_w_.size());
        const auto e = static_cast<int64_t>(elem_);
        const size_t row = static_cast<size_t>(c_) * elem_;
        pool.parallel_for(n_ * oh, 1, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t b = r / oh;
                const int64_t h = r % oh;
                const char* src = x + (b * ih_ + map_h_[static_cast<size_t>(h)]) * iw_ * c_ * e;
                char* dst = y + r * ow * stride * e;
                for (int64_t w = 0; w < ow; ++w) {
                    std::memcpy(dst + w * stride * e, src + map_w_[static_cast<size_t>(w)] * c_ * e,
                                row);
                }
            }
            dest_.fan_out(0, out, c_, elem_, r0 * ow, r1 * ow);
        });
        return Status::ok();
    }

    bool add_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total,
                          bool keep_dense) override {
        return dest_.add({out, slot, offset, total}, keep_dense);
    }

    std::string describe() const override {
        return fmt::format("Resize nearest x{} [nhwc]{}",
                           static_cast<int64_t>(map_h_.size()) / std::max<int64_t>(1, ih_),
                           dest_.has_slices() ? " +concat" : "");
    }

private:
    int64_t n_, c_, ih_, iw_;
    std::vector<int64_t> map_h_, map_w_;
    size_t elem_;
    Destinations dest_;
};

// Source index for each output coordinate (ONNX Resize, opset 11+), integer `scale`. The
// coordinate is computed in float, as the reference kernel and ONNX Runtime do, so that
// rounding ties resolve identically.
bool nearest_map(const std::string& ctm, const std::string& mode, int64_t in, int64_t out,
                 int64_t scale, std::vector<int64_t>& map) {
    map.resize(static_cast<size_t>(out));
    const auto s = static_cast<float>(scale);
    for (int64_t o = 0; o < out; ++o) {
        const auto xo = static_cast<float>(o);
        float x;
        if (ctm == "asymmetric") {
            x = xo / s;
        } else if (ctm == "half_pixel" || (ctm == "pytorch_half_pixel" && out > 1)) {
            x = (xo + 0.5f) / s - 0.5f;
        } else {
            return false;
        }
        int64_t i;
        if (mode == "floor") {
            i = static_cast<int64_t>(std::floor(x));
        } else if (mode == "ceil") {
            i = static_cast<int64_t>(std::ceil(x));
        } else if (mode == "round_prefer_floor") {
            i = static_cast<int64_t>(x == std::floor(x) + 0.5f ? std::floor(x) : std::round(x));
        } else if (mode == "round_prefer_ceil") {
            i = static_cast<int64_t>(std::round(x));
        } else {
            return false;
        }
        map[static_cast<size_t>(o)] = std::clamp<int64_t>(i, 0, in - 1);
    }
    return true;
}

}  // namespace

std::unique_ptr<FastOp> make_concat_nhwc(const Node& node, std::span<const Operand> ins,
                                         const Operand& out) {
    if (out.shape.size() != 4 || ins.empty()) return nullptr;
    int64_t axis = node.attr_int("axis", 1);
    if (axis < 0) axis += 4;
    if (axis != 1) return nullptr;
    std::vector<int64_t> channels;
    for (const Operand& o : ins) {
        if (o.dtype != out.dtype || o.shape.size() != 4) return nullptr;
        channels.push_back(o.shape[1]);
    }
    const size_t elem = dtype_size(out.dtype);
    if (elem == 0) return nullptr;
    return std::make_unique<ConcatNhwcOp>(std::move(channels),
                                          out.shape[0] * out.shape[2] * out.shape[3], elem);
}

std::unique_ptr<FastOp> make_concat_plain(const Node& node, std::span<const Operand> ins,
                                          const Operand& out) {
    const auto rank = static_cast<int64_t>(out.shape.size());
    if (rank == 0 || ins.empty() || !node.has_attr("axis")) return nullptr;
    int64_t axis = node.attr_int("axis", 0);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return nullptr;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= out.shape[static_cast<size_t>(d)];
    // With only 1s before the axis each input is one block of the output: the reference step,
    // which memory_plan.cpp alias_concat_inputs turns into producers writing their blocks in
    // place, is better there.
    if (outer == 1) return nullptr;
    for (int64_t d = axis + 1; d < rank; ++d) inner *= out.shape[static_cast<size_t>(d)];
    std::vector<int64_t> blocks;
    int64_t extent = 0;
    for (const Operand& o : ins) {
        if (o.dtype != out.dtype || static_cast<int64_t>(o.shape.size()) != rank) return nullptr;
        for (int64_t d = 0; d < rank; ++d) {
            if (d != axis && o.shape[static_cast<size_t>(d)] != out.shape[static_cast<size_t>(d)]) {
                return nullptr;
            }
        }
        extent += o.shape[static_cast<size_t>(axis)];
        blocks.push_back(o.shape[static_cast<size_t>(axis)] * inner);
    }
    const size_t elem = dtype_size(out.dtype);
    if (elem == 0 || extent != out.shape[static_cast<size_t>(axis)]) return nullptr;
    return std::make_unique<ConcatNhwcOp>(std::move(blocks), outer, elem, axis);
}

std::unique_ptr<FastOp> make_split_nhwc(const Node& node, std::span<const Operand> ins,
                                        std::span<const Operand> outs) {
    if (ins.empty() || ins[0].shape.size() != 4) return nullptr;
    int64_t axis = node.attr_int("axis", 0);
    if (axis < 0) axis += 4;
    if (axis != 1) return nullptr;
    std::vector<int64_t> channels;
    int64_t total = 0;
    for (const Operand& o : outs) {
        if (o.shape.size() != 4 || o.dtype != ins[0].dtype) return nullptr;
        channels.push_back(o.shape[1]);
        total += o.shape[1];
    }
    const size_t elem = dtype_size(ins[0].dtype);
    if (total != ins[0].shape[1] || elem == 0) return nullptr;
    const Shape& s = ins[0].shape;
    return std::make_unique<SplitNhwcOp>(std::move(channels), s[0] * s[2] * s[3], elem);
}

std::unique_ptr<FastOp> make_maxpool_nhwc(const Node& node, std::span<const Operand> ins,
                                          std::span<const Operand> outs) {
    if (ins.size() != 1 || ins[0].dtype != DType::Float32 || outs.size() != 1) return nullptr;
    const std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
    Window h, w;
    if (!window_2d(node, ins[0].shape, outs[0].shape, kernel, h, w)) return nullptr;
    return std::make_unique<MaxPoolNhwcOp>(ins[0].shape[0], ins[0].shape[1], h, w);
}

std::unique_ptr<FastOp> make_pad_nhwc(const Node& node, int64_t opset, std::span<const Operand> ins,
                                      const Operand& out) {
    // Opset 11+ (pads as an input), no axes input, mode constant, every operand known.
    if (opset < 11 || ins.size() < 2 || ins.size() > 3 || ins[0].shape.size() != 4 ||
        out.shape.size() != 4 || node.attr_string("mode", "constant") != "constant" ||
        ins[1].constant == nullptr || ins[1].constant->numel() != 8) {
        return nullptr;
    }
    const size_t elem = dtype_size(ins[0].dtype);
    if (elem == 0 || out.dtype != ins[0].dtype) return nullptr;
    int64_t pads[8];
    for (int i = 0; i < 8; ++i) pads[i] = tensor_get_i64(*ins[1].constant, i);
    // Begins [N, C, H, W] then ends: only H and W padded, none cropped.
    if (pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0) return nullptr;
    if (pads[2] < 0 || pads[3] < 0 || pads[6] < 0 || pads[7] < 0) return nullptr;
    const Shape& x = ins[0].shape;
    if (out.shape != Shape{x[0], x[1], x[2] + pads[2] + pads[6], x[3] + pads[3] + pads[7]}) {
        return nullptr;
    }
    std::vector<char> fill(elem, 0);
    if (ins.size() > 2 && ins[2].present()) {
        if (ins[2].constant == nullptr || ins[2].constant->numel() != 1 ||
            ins[2].dtype != ins[0].dtype) {
            return nullptr;
        }
        std::memcpy(fill.data(), ins[2].constant->raw(), elem);
    }
    return std::make_unique<PadNhwcOp>(x, pads[2], pads[3], out.shape[2], out.shape[3],
                                       std::move(fill));
}

std::unique_ptr<FastOp> make_global_avgpool_nhwc(std::span<const Operand> ins,
                                                 std::span<const Operand> outs) {
    if (ins.size() != 1 || outs.size() != 1 || ins[0].dtype != DType::Float32 ||
        ins[0].shape.size() != 4) {
        return nullptr;
    }
    const Shape& x = ins[0].shape;
    if (outs[0].shape != Shape{x[0], x[1], 1, 1}) return nullptr;
    return std::make_unique<GlobalAvgPoolNhwcOp>(x[0], x[1], x[2] * x[3]);
}

std::unique_ptr<FastOp> make_batchnorm_nhwc(const Node& node, std::span<const Operand> ins,
                                            std::span<const Operand> outs) {
    if (ins.size() != 5 || outs.size() != 1 || ins[0].dtype != DType::Float32 ||
        ins[0].shape.size() != 4 || node.attr_int("training_mode", 0) != 0) {
        return nullptr;
    }
    const Shape& x = ins[0].shape;
    for (size_t i = 1; i < 5; ++i) {
        if (ins[i].dtype != DType::Float32 || ins[i].shape != Shape{x[1]}) return nullptr;
    }
    return std::make_unique<BatchNormNhwcOp>(x[0] * x[2] * x[3], x[1],
                                             node.attr_float("epsilon", 1e-5f));
}

bool nearest_resize_maps(const Node& node, int64_t opset, std::span<const Operand> ins,
                         const Operand& out, std::vector<int64_t>& map_h,
                         std::vector<int64_t>& map_w) {
    if (opset < 11 || ins.empty() || ins[0].shape.size() != 4 || out.shape.size() != 4) {
        return false;
    }
    if (node.attr_string("mode", "nearest") != "nearest" || node.attr_int("antialias", 0) != 0 ||
        node.has_attr("axes") ||
        node.attr_string("keep_aspect_ratio_policy", "stretch") != "stretch") {
        return false;
    }
    const Shape& x = ins[0].shape;
    if (out.shape[0] != x[0] || out.shape[1] != x[1]) return false;
    int64_t scale[2];
    for (int i = 0; i < 2; ++i) {
        if (x[2 + i] == 0 || out.shape[2 + i] % x[2 + i] != 0) return false;
        scale[i] = out.shape[2 + i] / x[2 + i];
    }
    // With a `scales` input, ONNX maps coordinates by that scale, not by out / in; accept it
    // only when the two agree.
    if (ins.size() > 2 && ins[2].present() && shape_numel(ins[2].shape) > 0) {
        if (ins[2].constant == nullptr || ins[2].constant->numel() != 4) return false;
        for (int i = 0; i < 4; ++i) {
            const double s = tensor_get_f64(*ins[2].constant, i);
            const double want = i < 2 ? 1.0 : static_cast<double>(scale[i - 2]);
            if (s != want) return false;
        }
    }
    const std::string ctm = node.attr_string("coordinate_transformation_mode", "half_pixel");
    const std::string mode = node.attr_string("nearest_mode", "round_prefer_floor");
    return nearest_map(ctm, mode, x[2], out.shape[2], scale[0], map_h) &&
           nearest_map(ctm, mode, x[3], out.shape[3], scale[1], map_w);
}

std::unique_ptr<FastOp> make_resize_nhwc(const Node& node, int64_t opset,
                                         std::span<const Operand> ins, const Operand& out) {
    std::vector<int64_t> map_h, map_w;
    if (!nearest_resize_maps(node, opset, ins, out, map_h, map_w)) return nullptr;
    const size_t elem = dtype_size(out.dtype);
    if (elem == 0) return nullptr;
    const Shape& x = ins[0].shape;
    return std::make_unique<ResizeNhwcOp>(x[0], x[1], x[2], x[3], std::move(map_h),
                                          std::move(map_w), elem);
}

}  // namespace lowbit::cpu
