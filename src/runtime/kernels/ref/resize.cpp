// Reference Resize (opset 10-19) and Upsample (opset 7-9).
//
// Interpolation is separable for every mode ONNX defines here (nearest, N-linear, N-cubic), so
// the kernel resizes one axis at a time. Along an axis, output index o maps to an input
// coordinate x (coordinate_transformation_mode, computed in float as ONNX Runtime does) and then
// to taps (input index, weight):
//   nearest: one tap, x rounded by nearest_mode and clamped to [0, in - 1];
//   linear:  x clamped to [0, in - 1], taps floor(x) and floor(x) + 1 (edge-clamped);
//   cubic:   taps floor(x) - 1 .. floor(x) + 2 with the Keys kernel (cubic_coeff_a), edge-clamped,
//            or, with exclude_outside, outside taps dropped and the weights renormalised.
// Nearest moves bytes (any dtype); linear and cubic compute in float32.
// Ultralytics YOLO upsampling exports as nearest, asymmetric, floor, scales [1, 1, 2, 2].
// The axes to resize, their taps and the buffers between axes are planned in prepare(); run()
// allocates nothing.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/kernels/ref/op_util.h"
#include "runtime/registry.h"

namespace lowbit::ref {
namespace {

enum class Mode { Nearest, Linear, Cubic };
enum class Coord {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn
};
// Simple: the pre-opset-11 rule (ORT's): floor when upsampling, ceil when downsampling.
enum class Nearest { RoundPreferFloor, RoundPreferCeil, Floor, Ceil, Simple };

struct Tap {
    int64_t index;
    float weight;
};

class ResizeKernel final : public Kernel {
public:
    explicit ResizeKernel(bool upsample) : upsample_(upsample) {}

    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        const bool legacy = upsample_ || ctx.opset < 11;  // Upsample-7/9 and Resize-10
        if (legacy) {
            LOWBIT_TRY(read_legacy(ctx));
        } else {
            LOWBIT_TRY(read_attrs(ctx));
        }
        const TensorInfo& x = ctx.inputs[0];
        if (mode_ != Mode::Nearest) {
            LOWBIT_TRY(require_dtype(node, "X", x.dtype, {DType::Float32}));
        } else {
            LOWBIT_TRY(require_movable(node, "X", x.dtype));
        }
        in_ = x.shape;
        for (size_t a = 0; a < in_.size(); ++a) {
            if (in_[a] == 0 && out_[a] > 0) {
                return invalid("{}: cannot resize the empty axis {} of {} to {}", node.describe(),
                               a, shape_str(in_), out_[a]);
            }
        }
        ctx.outputs[0].dtype = x.dtype;
        ctx.outputs[0].shape = out_;
        plan_axes(dtype_size(x.dtype));
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        Tensor& y = ctx.outputs[0];
        if (y.numel() == 0) return Status::ok();
        const size_t elem = dtype_size(x.dtype());
        if (work_.empty()) {
            std::memcpy(y.raw(), x.raw(), y.nbytes());
            return Status::ok();
        }
        // Ping-pong between the two scratch buffers; the last axis writes into y.
        Shape cur_shape = in_;
        const char* cur = static_cast<const char*>(x.raw());
        for (size_t step = 0; step < work_.size(); ++step) {
            const size_t a = work_[step];
            char* next = step + 1 == work_.size() ? static_cast<char*>(y.raw())
                                                  : buf_[step % 2].data();
            resize_axis(ctx.pool, cur, cur_shape, next, a, taps_[step], elem);
            cur = next;
            cur_shape[a] = out_[a];
        }
        return Status::ok();
    }

private:
    // The axes that change (size differs or the coordinate map is not the identity), in order,
    // their taps, and the scratch buffers between axes (all but the last step write one).
    void plan_axes(size_t elem) {
        work_.clear();
        taps_.clear();
        if (shape_numel(out_) == 0) return;  // run() writes nothing
        for (size_t a = 0; a < in_.size(); ++a) {
            if (out_[a] != in_[a] || scales_[a] != 1.0f) work_.push_back(a);
        }
        Shape shape = in_;
        size_t bytes[2] = {0, 0};
        for (size_t step = 0; step < work_.size(); ++step) {
            const size_t a = work_[step];
            std::vector<std::vector<Tap>>& taps = taps_.emplace_back(static_cast<size_t>(out_[a]));
            for (int64_t o = 0; o < out_[a]; ++o) {
                taps_for(o, a, in_[a], out_[a], taps[static_cast<size_t>(o)]);
            }
            shape[a] = out_[a];
            if (step + 1 < work_.size()) {
                const size_t n = static_cast<size_t>(shape_numel(shape)) * elem;
                bytes[step % 2] = std::max(bytes[step % 2], n);
            }
        }
        for (int i = 0; i < 2; ++i) buf_[i].assign(bytes[i], 0);
    }

    // Resize-11..19 inputs X, roi?, scales?, sizes? and attributes.
    Status read_attrs(PrepareContext& ctx) {
        const Node& node = ctx.node;
        LOWBIT_TRY(
            check_known_attrs(node, {"antialias", "axes", "coordinate_transformation_mode",
                                     "cubic_coeff_a", "exclude_outside", "extrapolation_value",
                                     "keep_aspect_ratio_policy", "mode", "nearest_mode"}));
        LOWBIT_TRY(check_input_count(ctx, 1, 4));
        LOWBIT_ASSIGN(std::string mode, string_attr(node, "mode", "nearest"));
        LOWBIT_TRY(set_mode(node, mode));
        LOWBIT_ASSIGN(std::string coord,
                      string_attr(node, "coordinate_transformation_mode", "half_pixel"));
        if (coord == "half_pixel") {
            coord_ = Coord::HalfPixel;
        } else if (coord == "half_pixel_symmetric") {
            coord_ = Coord::HalfPixelSymmetric;
        } else if (coord == "pytorch_half_pixel") {
            coord_ = Coord::PytorchHalfPixel;
        } else if (coord == "align_corners") {
            coord_ = Coord::AlignCorners;
        } else if (coord == "asymmetric") {
            coord_ = Coord::Asymmetric;
        } else if (coord == "tf_half_pixel_for_nn") {
            coord_ = Coord::TfHalfPixelForNn;
        } else {
            return unsupported(
                "{}: attribute 'coordinate_transformation_mode' value '{}' is not "
                "supported (roi-based crops are not implemented)",
                node.describe(), coord);
        }
        LOWBIT_ASSIGN(std::string nearest, string_attr(node, "nearest_mode", "round_prefer_floor"));
        if (nearest == "round_prefer_floor") {
            nearest_ = Nearest::RoundPreferFloor;
        } else if (nearest == "round_prefer_ceil") {
            nearest_ = Nearest::RoundPreferCeil;
        } else if (nearest == "floor") {
            nearest_ = Nearest::Floor;
        } else if (nearest == "ceil") {
            nearest_ = Nearest::Ceil;
        } else {
            return unsupported("{}: attribute 'nearest_mode' value '{}' is not supported",
                               node.describe(), nearest);
        }
        LOWBIT_ASSIGN(cubic_a_, float_attr(node, "cubic_coeff_a", -0.75f));
        LOWBIT_ASSIGN(int64_t exclude, int_attr(node, "exclude_outside", 0));
        exclude_outside_ = exclude != 0;
        LOWBIT_ASSIGN(std::string policy, string_attr(node, "keep_aspect_ratio_policy", "stretch"));
        if (policy != "stretch") {
            return unsupported(
                "{}: attribute 'keep_aspect_ratio_policy' value '{}' is not "
                "supported",
                node.describe(), policy);
        }
        const Shape& x = ctx.inputs[0].shape;
        const auto rank = static_cast<int64_t>(x.size());
        std::vector<int64_t> axes;
        LOWBIT_ASSIGN(axes, ints_attr(node, "axes"));
        if (axes.empty()) {
            for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
        } else {
            LOWBIT_ASSIGN(axes, normalize_axis_list(node, "axes", axes, rank));
        }
        const bool has_scales = ctx.has_input(2) && shape_numel(ctx.inputs[2].shape) > 0;
        const bool has_sizes = ctx.has_input(3) && shape_numel(ctx.inputs[3].shape) > 0;
        if (has_scales == has_sizes) {
            return invalid("{}: exactly one of 'scales' and 'sizes' must be given",
                           node.describe());
        }
        out_ = x;
        scales_.assign(x.size(), 1.0f);
        length_.assign(x.begin(), x.end());
        if (has_scales) {
            LOWBIT_ASSIGN(std::vector<float> s, plan_time_scales(ctx, 2));
            if (s.size() != axes.size()) {
                return invalid("{}: scales has {} entries for {} axes", node.describe(), s.size(),
                               axes.size());
            }
            for (size_t i = 0; i < axes.size(); ++i) {
                const auto a = static_cast<size_t>(axes[i]);
                scales_[a] = s[i];
                out_[a] = static_cast<int64_t>(
                    std::floor(static_cast<double>(x[a]) * static_cast<double>(s[i])));
                length_[a] = static_cast<float>(x[a]) * s[i];
            }
        } else {
            LOWBIT_ASSIGN(std::vector<int64_t> sizes, plan_time_ints(ctx, 3, "sizes"));
            if (sizes.size() != axes.size()) {
                return invalid("{}: sizes has {} entries for {} axes", node.describe(),
                               sizes.size(), axes.size());
            }
            for (size_t i = 0; i < axes.size(); ++i) {
                const auto a = static_cast<size_t>(axes[i]);
                if (sizes[i] < 0) {
                    return invalid("{}: sizes {} has a negative entry", node.describe(),
                                   shape_str(sizes));
                }
                out_[a] = sizes[i];
                length_[a] = static_cast<float>(sizes[i]);
                scales_[a] =
                    x[a] > 0 ? static_cast<float>(sizes[i]) / static_cast<float>(x[a]) : 1.0f;
            }
        }
        LOWBIT_ASSIGN(int64_t antialias, int_attr(node, "antialias", 0));
        for (size_t a = 0; a < x.size(); ++a) {
            if (antialias != 0 && mode_ != Mode::Nearest && scales_[a] < 1.0f) {
                return unsupported(
                    "{}: attribute 'antialias' (downsampling with an "
                    "anti-aliasing filter) is not supported",
                    node.describe());
            }
        }
        return Status::ok();
    }

    // Upsample-7 (scales attribute), Upsample-9 and Resize-10 (scales input): asymmetric
    // coordinates, nearest picks floor (ceil when downsampling), linear as above.
    Status read_legacy(PrepareContext& ctx) {
        const Node& node = ctx.node;
        const bool scales_attr = upsample_ && ctx.opset < 9;
        if (scales_attr) {
            LOWBIT_TRY(check_known_attrs(node, {"mode", "scales"}));
            LOWBIT_TRY(check_input_count(ctx, 1, 1));
        } else {
            LOWBIT_TRY(check_known_attrs(node, {"mode"}));
            LOWBIT_TRY(check_input_count(ctx, 2, 2));
        }
        LOWBIT_ASSIGN(std::string mode, string_attr(node, "mode", "nearest"));
        if (upsample_ && mode == "bilinear") mode = "linear";
        if (mode == "cubic") {
            return unsupported("{}: attribute 'mode' value 'cubic' needs Resize opset >= 11",
                               node.describe());
        }
        LOWBIT_TRY(set_mode(node, mode));
        coord_ = Coord::Asymmetric;
        nearest_ = Nearest::Simple;
        std::vector<float> s;
        if (scales_attr) {
            LOWBIT_ASSIGN(s, floats_attr(node, "scales"));
        } else {
            LOWBIT_ASSIGN(s, plan_time_scales(ctx, 1));
        }
        const Shape& x = ctx.inputs[0].shape;
        if (s.size() != x.size()) {
            return invalid("{}: scales has {} entries for input {}", node.describe(), s.size(),
                           shape_str(x));
        }
        out_ = x;
        scales_ = s;
        length_.resize(x.size());
        for (size_t a = 0; a < x.size(); ++a) {
            if (s[a] <= 0) {
                return invalid("{}: scales must be positive", node.describe());
            }
            out_[a] = static_cast<int64_t>(
                std::floor(static_cast<double>(x[a]) * static_cast<double>(s[a])));
            length_[a] = static_cast<float>(x[a]) * s[a];
        }
        return Status::ok();
    }

    Status set_mode(const Node& node, const std::string& mode) {
        if (mode == "nearest") {
            mode_ = Mode::Nearest;
        } else if (mode == "linear") {
            mode_ = Mode::Linear;
        } else if (mode == "cubic") {
            mode_ = Mode::Cubic;
        } else {
            return unsupported("{}: attribute 'mode' value '{}' is not supported", node.describe(),
                               mode);
        }
        return Status::ok();
    }

    Result<std::vector<float>> plan_time_scales(const PrepareContext& ctx, size_t i) const {
        const TensorInfo& info = ctx.inputs[i];
        if (info.dtype != DType::Float32) {
            return invalid("{}: input 'scales' must be float32, got {}", ctx.node.describe(),
                           dtype_name(info.dtype));
        }
        if (!info.value) {
            return unsupported("{}: input 'scales' must be known at plan time",
                               ctx.node.describe());
        }
        std::vector<float> s(info.value->data<float>(),
                             info.value->data<float>() + info.value->numel());
        for (float v : s) {
            if (!(v > 0)) {
                return invalid("{}: scales {} must be positive", ctx.node.describe(),
                               fmt::join(s, ","));
            }
        }
        return s;
    }

    // Input coordinate of output index o on an axis (float, as ORT computes it). `length` is
    // in * scale, the unrounded resized length that half_pixel_symmetric needs. align_corners
    // and pytorch_half_pixel use the integer output size, as ONNX Runtime and PyTorch do; the
    // ONNX reference implementation uses in * scale there, which differs when it is not an
    // integer (onnx/onnx#2462; its node tests *_downsample_scales_{linear,cubic}_align_corners
    // encode that and ORT does not pass them either).
    float source_coord(int64_t o, float scale, int64_t in, int64_t out, float length) const {
        const auto xo = static_cast<float>(o);
        switch (coord_) {
            case Coord::HalfPixel: return (xo + 0.5f) / scale - 0.5f;
            case Coord::HalfPixelSymmetric: {
                const float adjustment = static_cast<float>(out) / length;
                const float center = static_cast<float>(in) / 2.0f;
                const float offset = center * (1.0f - adjustment);
                return offset + (xo + 0.5f) / scale - 0.5f;
            }
            case Coord::PytorchHalfPixel: return out > 1 ? (xo + 0.5f) / scale - 0.5f : 0.0f;
            case Coord::AlignCorners:
                return out == 1 ? 0.0f
                                : xo * static_cast<float>(in - 1) / static_cast<float>(out - 1);
            case Coord::Asymmetric: return xo / scale;
            case Coord::TfHalfPixelForNn: return (xo + 0.5f) / scale;
        }
        return 0.0f;
    }

    int64_t nearest_index(float x, float scale) const {
        switch (nearest_) {
            case Nearest::RoundPreferFloor:
                return static_cast<int64_t>(x == std::floor(x) + 0.5f ? std::floor(x)
                                                                      : std::round(x));
            case Nearest::RoundPreferCeil: return static_cast<int64_t>(std::round(x));
            case Nearest::Floor: return static_cast<int64_t>(std::floor(x));
            case Nearest::Ceil: return static_cast<int64_t>(std::ceil(x));
            case Nearest::Simple:
                return static_cast<int64_t>(scale < 1.0f ? std::ceil(x) : std::floor(x));
        }
        return 0;
    }

    // The taps of output index o on axis a (input size in, output size out).
    void taps_for(int64_t o, size_t a, int64_t in, int64_t out, std::vector<Tap>& taps) const {
        taps.clear();
        const float x = source_coord(o, scales_[a], in, out, length_[a]);
        auto clamp_index = [in](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
        if (mode_ == Mode::Nearest) {
            taps.push_back({clamp_index(nearest_index(x, scales_[a])), 1.0f});
            return;
        }
        if (mode_ == Mode::Linear) {
            const float xc = std::clamp(x, 0.0f, static_cast<float>(in - 1));
            const auto x0 = static_cast<int64_t>(std::floor(xc));
            const float t = xc - static_cast<float>(x0);
            taps.push_back({x0, 1.0f - t});
            taps.push_back({clamp_index(x0 + 1), t});
            return;
        }
        const auto x0 = static_cast<int64_t>(std::floor(x));
        const float t = x - static_cast<float>(x0);
        const float a_ = cubic_a_;
        // Keys cubic convolution weights for distances 1 + t, t, 1 - t, 2 - t.
        const float w[4] = {
            ((a_ * (t + 1) - 5 * a_) * (t + 1) + 8 * a_) * (t + 1) - 4 * a_,
            ((a_ + 2) * t - (a_ + 3)) * t * t + 1,
            ((a_ + 2) * (1 - t) - (a_ + 3)) * (1 - t) * (1 - t) + 1,
            ((a_ * (2 - t) - 5 * a_) * (2 - t) + 8 * a_) * (2 - t) - 4 * a_,
        };
        float sum = 0;
        for (int k = 0; k < 4; ++k) {
            const int64_t i = x0 - 1 + k;
            if (exclude_outside_ && (i < 0 || i >= in)) continue;
            taps.push_back({clamp_index(i), w[k]});
            sum += w[k];
        }
        if (exclude_outside_ && sum != 0) {
            for (Tap& tp : taps) tp.weight /= sum;
        }
    }

    // Resizes axis a of `src` (shape `shape`) into `dst` with the planned taps of each output
    // index.
    void resize_axis(ThreadPool& pool, const char* src, const Shape& shape, char* dst, size_t a,
                     const std::vector<std::vector<Tap>>& taps, size_t elem) const {
        const int64_t in = shape[a];
        const int64_t out = out_[a];
        const int64_t outer = dims_product(shape, 0, a);
        const int64_t inner = dims_product(shape, a + 1, shape.size());
        const int64_t block = inner * static_cast<int64_t>(elem);
        pool.parallel_for(
            outer * out, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, inner)),
            [&](int64_t begin, int64_t end) {
                for (int64_t r = begin; r < end; ++r) {
                    const int64_t b = r / out;
                    const int64_t o = r % out;
                    const std::vector<Tap>& tp = taps[static_cast<size_t>(o)];
                    char* d = dst + r * block;
                    const char* s = src + b * in * block;
                    if (mode_ == Mode::Nearest) {
                        std::memcpy(d, s + tp[0].index * block, static_cast<size_t>(block));
                        continue;
                    }
                    auto* df = reinterpret_cast<float*>(d);
                    std::fill_n(df, inner, 0.0f);
                    for (const Tap& t : tp) {
                        const auto* sf = reinterpret_cast<const float*>(s + t.index * block);
                        for (int64_t j = 0; j < inner; ++j) df[j] += t.weight * sf[j];
                    }
                }
            });
    }

    bool upsample_ = false;
    Mode mode_ = Mode::Nearest;
    Coord coord_ = Coord::HalfPixel;
    Nearest nearest_ = Nearest::RoundPreferFloor;
    float cubic_a_ = -0.75f;
    bool exclude_outside_ = false;
    Shape in_, out_;
    std::vector<float> scales_;
    std::vector<float> length_;  // unrounded resized length per axis, see source_coord()
    std::vector<size_t> work_;   // planned in prepare(), see plan_axes()
    std::vector<std::vector<std::vector<Tap>>> taps_;  // per work_ step, per output index
    std::vector<char> buf_[2];
};

}  // namespace

void register_resize_kernels(KernelRegistry& r) {
    r.add("Resize", [] { return std::make_unique<ResizeKernel>(false); });
    r.add("Upsample", [] { return std::make_unique<ResizeKernel>(true); });
}

}  // namespace lowbit::ref
