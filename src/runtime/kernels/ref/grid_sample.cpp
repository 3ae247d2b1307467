// Reference GridSample (opset 16 and 20, 4-D input: X [N, C, H, W], grid [N, Ho, Wo, 2] of
// normalized (x, y) in [-1, 1]; Y [N, C, Ho, Wo]). RT-DETR's deformable attention samples its
// value maps with it (bilinear, zeros, align_corners 0).
//
// Per output point, following the ONNX reference implementation:
//   1. denormalize: align_corners ? (g + 1) / 2 * (L - 1) : ((g + 1) * L - 1) / 2;
//   2. nearest: round half to even;
//   3. a coordinate outside [lo, hi] (align_corners ? [0, L-1] : [-0.5, L-0.5]) is clamped to
//      [0, L-1] for padding "border", reflected into [lo, hi] for "reflection";
//   4. taps: nearest one, (bi)linear floor(x) and floor(x)+1 with weights 1-f, f, (bi)cubic
//      floor(x)-1 .. floor(x)+2 with Keys' kernel (a = -0.75); a tap outside the image reads 0
//      ("zeros"), the clamped pixel ("border") or the reflected one ("reflection").
// A coordinate that is infinite or beyond int64 after step 3 (padding "zeros" keeps it as it
// is) has no pixel: each of its taps reads 0, and its weights come from the same arithmetic
// (an infinite coordinate gives NaN weights, so NaN; a huge finite one 0). Under "reflection"
// an infinite coordinate reflects to NaN, and the point is NaN. The fast kernel
// (kernels/cpu/grid_sample.cpp) gives the same results; converting such a float to int64
// would be undefined behaviour.
// float32 only.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "core/thread_pool.h"
#include "runtime/kernels/ref/op_util.h"
#include "runtime/registry.h"

namespace lowbit::ref {
namespace {

enum class GsMode { Nearest, Linear, Cubic };
enum class GsPad { Zeros, Border, Reflection };

// No pixel index: the tap of a coordinate that is infinite or beyond int64.
constexpr int64_t kNoIndex = std::numeric_limits<int64_t>::min();

int64_t index_of(float f) {
    return std::isfinite(f) && std::fabs(f) < 9.0e18f ? static_cast<int64_t>(f) : kNoIndex;
}

// i + d, or no index.
int64_t offset(int64_t i, int64_t d) { return i == kNoIndex ? kNoIndex : i + d; }

// x reflected into [lo, hi]: n = the whole ranges between x and the nearer bound, r the rest.
// Beyond 2^62 ranges (where n would not fit an int64) the parity and rest come from fmod.
float gs_reflect(float x, float lo, float hi) {
    const float range = hi - lo;
    if (range <= 0) return lo;
    if (!std::isfinite(x)) return std::nanf("");
    if (x >= lo && x <= hi) return x;
    const float dx = x < lo ? lo - x : x - hi;
    const float q = dx / range;
    bool even = true;
    float r = 0;
    if (q < 0x1p62f) {
        const auto n = static_cast<int64_t>(q);
        r = dx - static_cast<float>(n) * range;
        even = n % 2 == 0;
    } else {
        const float m = std::fmod(dx, 2 * range);
        even = m < range;
        r = even ? m : m - range;
    }
    if (x < lo) return even ? lo + r : hi - r;
    return even ? hi - r : lo + r;
}

void cubic_coeffs(float x, float c[4]) {
    constexpr float a = -0.75f;
    x = std::fabs(x);
    c[0] = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a;
    c[1] = ((a + 2) * x - (a + 3)) * x * x + 1;
    c[2] = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1;
    c[3] = ((a * (2 - x) - 5 * a) * (2 - x) + 8 * a) * (2 - x) - 4 * a;
}

class GridSampleKernel final : public Kernel {
public:
    Status prepare(PrepareContext& ctx) override {
        const Node& node = ctx.node;
        LOWBIT_TRY(check_known_attrs(node, {"mode", "padding_mode", "align_corners"}));
        LOWBIT_ASSIGN(std::string mode, string_attr(node, "mode", ctx.opset >= 20 ? "linear"
                                                                                  : "bilinear"));
        if (mode == "bilinear" || mode == "linear") {
            mode_ = GsMode::Linear;
        } else if (mode == "nearest") {
            mode_ = GsMode::Nearest;
        } else if (mode == "bicubic" || mode == "cubic") {
            mode_ = GsMode::Cubic;
        } else {
            return invalid("{}: unknown mode '{}'", node.describe(), mode);
        }
        LOWBIT_ASSIGN(std::string pad, string_attr(node, "padding_mode", "zeros"));
        if (pad == "zeros") {
            pad_ = GsPad::Zeros;
        } else if (pad == "border") {
            pad_ = GsPad::Border;
        } else if (pad == "reflection") {
            pad_ = GsPad::Reflection;
        } else {
            return invalid("{}: unknown padding_mode '{}'", node.describe(), pad);
        }
        LOWBIT_ASSIGN(int64_t ac, int_attr(node, "align_corners", 0));
        align_corners_ = ac != 0;
        const TensorInfo& x = ctx.inputs[0];
        const TensorInfo& g = ctx.inputs[1];
        LOWBIT_TRY(require_dtype(node, "X", x.dtype, {DType::Float32}));
        LOWBIT_TRY(require_dtype(node, "grid", g.dtype, {DType::Float32}));
        if (x.shape.size() != 4 || g.shape.size() != 4) {
            return unsupported("{}: only 4-D GridSample (X [N,C,H,W], grid [N,Ho,Wo,2]) is "
                               "implemented; got X {} and grid {}",
                               node.describe(), shape_str(x.shape), shape_str(g.shape));
        }
        if (g.shape[0] != x.shape[0] || g.shape[3] != 2) {
            return invalid("{}: grid {} does not fit X {} (expected [{}, Ho, Wo, 2])",
                           node.describe(), shape_str(g.shape), shape_str(x.shape), x.shape[0]);
        }
        ctx.outputs[0].dtype = DType::Float32;
        ctx.outputs[0].shape = {x.shape[0], x.shape[1], g.shape[1], g.shape[2]};
        return Status::ok();
    }

    Status run(RunContext& ctx) override {
        const Tensor& x = ctx.inputs[0];
        const Tensor& grid = ctx.inputs[1];
        Tensor& y = ctx.outputs[0];
        if (y.numel() == 0) return Status::ok();
        const Shape& xs = x.shape();
        const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
        const int64_t Ho = grid.shape()[1], Wo = grid.shape()[2];
        const float* xp = x.data<float>();
        const float* gp = grid.data<float>();
        float* yp = y.data<float>();
        ctx.pool.parallel_for(N * C, 1, [&](int64_t b, int64_t e) {
            for (int64_t nc = b; nc < e; ++nc) {
                const int64_t n = nc / C;
                const float* img = xp + nc * H * W;
                const float* g = gp + n * Ho * Wo * 2;
                float* out = yp + nc * Ho * Wo;
                for (int64_t p = 0; p < Ho * Wo; ++p) {
                    out[p] = sample(img, H, W, g[2 * p], g[2 * p + 1]);
                }
            }
        });
        return Status::ok();
    }

private:
    float denormalize(float v, int64_t len) const {
        const auto l = static_cast<float>(len);
        return align_corners_ ? (v + 1) / 2.0f * (l - 1) : ((v + 1) * l - 1) / 2.0f;
    }

    // Step 3: the coordinate itself, before taps.
    float fold(float v, int64_t len) const {
        const float lo = align_corners_ ? 0.0f : -0.5f;
        const float hi = align_corners_ ? static_cast<float>(len) - 1 : static_cast<float>(len) - 0.5f;
        if (v >= lo && v <= hi) return v;
        if (pad_ == GsPad::Border) return std::fmin(std::fmax(v, 0.0f), static_cast<float>(len - 1));
        if (pad_ == GsPad::Reflection) return gs_reflect(v, lo, hi);
        return v;
    }

    // Step 4: the index a tap reads, or -1 for a zero.
    int64_t tap(int64_t i, int64_t len) const {
        if (i == kNoIndex) return -1;
        if (i >= 0 && i < len) return i;
        if (pad_ == GsPad::Zeros) return -1;
        if (pad_ == GsPad::Border) return i < 0 ? 0 : len - 1;
        const float lo = align_corners_ ? 0.0f : -0.5f;
        const float hi = align_corners_ ? static_cast<float>(len) - 1 : static_cast<float>(len) - 0.5f;
        auto r = static_cast<int64_t>(gs_reflect(static_cast<float>(i), lo, hi));
        return r < 0 ? 0 : (r >= len ? len - 1 : r);
    }

    float pixel(const float* img, int64_t H, int64_t W, int64_t iy, int64_t ix) const {
        const int64_t ty = tap(iy, H), tx = tap(ix, W);
        return ty < 0 || tx < 0 ? 0.0f : img[ty * W + tx];
    }

    float sample(const float* img, int64_t H, int64_t W, float gx, float gy) const {
        float fx = denormalize(gx, W), fy = denormalize(gy, H);
        if (std::isnan(fx) || std::isnan(fy)) return std::nanf("");
        if (mode_ == GsMode::Nearest) {
            fx = std::nearbyint(fx);
            fy = std::nearbyint(fy);
        }
        fx = fold(fx, W);
        fy = fold(fy, H);
        if (std::isnan(fx) || std::isnan(fy)) return std::nanf("");  // an infinite one reflected
        if (mode_ == GsMode::Nearest) {
            return pixel(img, H, W, index_of(fy), index_of(fx));
        }
        const float x0f = std::floor(fx), y0f = std::floor(fy);
        const int64_t x0 = index_of(x0f), y0 = index_of(y0f);
        if (mode_ == GsMode::Linear) {
            const float dx = fx - x0f, dy = fy - y0f;
            const int64_t x1 = offset(x0, 1), y1 = offset(y0, 1);
            const float top = (1 - dx) * pixel(img, H, W, y0, x0) + dx * pixel(img, H, W, y0, x1);
            const float bot =
                (1 - dx) * pixel(img, H, W, y1, x0) + dx * pixel(img, H, W, y1, x1);
            return (1 - dy) * top + dy * bot;
        }
        float cx[4], cy[4];
        cubic_coeffs(fx - x0f, cx);
        cubic_coeffs(fy - y0f, cy);
        float acc = 0;
        for (int i = 0; i < 4; ++i) {
            float row = 0;
            for (int j = 0; j < 4; ++j) {
                row += cx[j] * pixel(img, H, W, offset(y0, i - 1), offset(x0, j - 1));
            }
            acc += cy[i] * row;
        }
        return acc;
    }

    GsMode mode_ = GsMode::Linear;
    GsPad pad_ = GsPad::Zeros;
    bool align_corners_ = false;
};

}  // namespace

void register_grid_sample_kernels(KernelRegistry& r) {
    r.add("GridSample", [] { return std::make_unique<GridSampleKernel>(); });
}

}  // namespace lowbit::ref
