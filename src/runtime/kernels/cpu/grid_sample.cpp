// GridSample, bilinear, padding "zeros" or "border", float32, 4-D (RT-DETR's deformable
// attention samples its value maps with it). The reference kernel (ref/grid_sample.cpp)
// recomputes a point's coordinates, taps and weights for every channel; here they are computed
// once per point, for a block of points, and applied to every channel's plane. Each output
// value is the reference's expression on the same operands in the same order,
//   (1 - dy) * ((1 - dx) * v00 + dx * v01) + dy * ((1 - dx) * v10 + dx * v11),
// with a tap outside the image reading 0 ("zeros") or the clamped pixel ("border"); only the
// compiler's contraction of those products into fused multiply-adds may differ (lowbit_ops
// compares with a 1e-6 tolerance). Points with a NaN coordinate give NaN, as in the reference;
// points whose coordinate is infinite or beyond 2^24 take the reference's scalar path.
// Nearest and cubic modes and "reflection" padding stay on the reference kernel.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "runtime/kernels/cpu/ops.h"

namespace lowbit::cpu {
namespace {

// Points whose taps are computed together (then applied to every channel).
constexpr int64_t kBlock = 256;
// Beyond this a coordinate's integer part no longer fits the fast path's int32 offsets.
constexpr float kMaxCoord = 16777216.0f;

class GridSampleOp final : public FastOp {
public:
    GridSampleOp(bool border, bool align_corners) : border_(border), align_(align_corners) {}

    Status run(std::span<const Tensor> in, std::span<Tensor> out, const ThreadPool& pool) override {
        const Shape& xs = in[0].shape();
        const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
        const int64_t P = in[1].shape()[1] * in[1].shape()[2];
        if (out[0].numel() == 0) return Status::ok();
        const float* x = in[0].data<float>();
        const float* grid = in[1].data<float>();
        float* y = out[0].data<float>();
        const int64_t blocks = (P + kBlock - 1) / kBlock;
        pool.parallel_for(N * blocks, 1, [&](int64_t begin, int64_t end) {
            Taps t;
            for (int64_t task = begin; task < end; ++task) {
                const int64_t n = task / blocks;
                const int64_t p0 = (task % blocks) * kBlock;
                const int64_t np = std::min(kBlock, P - p0);
                const float* g = grid + (n * P + p0) * 2;
                for (int64_t k = 0; k < np; ++k) taps(g[2 * k], g[2 * k + 1], H, W, t, k);
                for (int64_t c = 0; c < C; ++c) {
                    const float* img = x + (n * C + c) * H * W;
                    float* o = y + (n * C + c) * P + p0;
                    for (int64_t k = 0; k < np; ++k) {
                        if (t.kind[k] == kNormal) {
                            const float v00 = t.ok[0][k] ? img[t.off[0][k]] : 0.0f;
                            const float v01 = t.ok[1][k] ? img[t.off[1][k]] : 0.0f;
                            const float v10 = t.ok[2][k] ? img[t.off[2][k]] : 0.0f;
                            const float v11 = t.ok[3][k] ? img[t.off[3][k]] : 0.0f;
                            const float dx = t.dx[k], dy = t.dy[k];
                            const float top = (1 - dx) * v00 + dx * v01;
                            const float bot = (1 - dx) * v10 + dx * v11;
                            o[k] = (1 - dy) * top + dy * bot;
                        } else if (t.kind[k] == kNan) {
                            o[k] = std::numeric_limits<float>::quiet_NaN();
                        } else {
                            o[k] = sample_scalar(img, H, W, g[2 * k], g[2 * k + 1]);
                        }
                    }
                }
            }
        });
        return Status::ok();
    }

    std::string describe() const override {
        return std::string("GridSample bilinear ") + (border_ ? "border" : "zeros") +
               (align_ ? " align_corners" : "") + " (taps once per point)";
    }

private:
    enum Kind : uint8_t { kNormal, kNan, kScalar };

    struct Taps {
        std::array<std::array<int32_t, kBlock>, 4> off{};
        std::array<std::array<uint8_t, kBlock>, 4> ok{};
        std::array<float, kBlock> dx{}, dy{};
        std::array<uint8_t, kBlock> kind{};
    };

    // The reference's steps 1 and 3 (denormalize, then fold a coordinate outside [lo, hi]).
    float coord(float v, int64_t len) const {
        const auto l = static_cast<float>(len);
        float f = align_ ? (v + 1) / 2.0f * (l - 1) : ((v + 1) * l - 1) / 2.0f;
        if (std::isnan(f)) return f;
        const float lo = align_ ? 0.0f : -0.5f;
        const float hi = align_ ? l - 1 : l - 0.5f;
        if (border_ && !(f >= lo && f <= hi)) f = std::fmin(std::fmax(f, 0.0f), l - 1);
        return f;
    }

    // Step 4: the index a tap reads, or -1 for a zero.
    int64_t tap(int64_t i, int64_t len) const {
        if (i >= 0 && i < len) return i;
        if (!border_) return -1;
        return i < 0 ? 0 : len - 1;
    }

    void taps(float gx, float gy, int64_t H, int64_t W, Taps& t, int64_t k) const {
        const float fx = coord(gx, W), fy = coord(gy, H);
        if (std::isnan(fx) || std::isnan(fy)) {
            t.kind[k] = kNan;
            return;
        }
        if (!(std::fabs(fx) < kMaxCoord && std::fabs(fy) < kMaxCoord)) {
            t.kind[k] = kScalar;
            return;
        }
        t.kind[k] = kNormal;
        const float x0f = std::floor(fx), y0f = std::floor(fy);
        const auto x0 = static_cast<int64_t>(x0f), y0 = static_cast<int64_t>(y0f);
        t.dx[k] = fx - x0f;
        t.dy[k] = fy - y0f;
        const int64_t tx[2] = {tap(x0, W), tap(x0 + 1, W)};
        const int64_t ty[2] = {tap(y0, H), tap(y0 + 1, H)};
        for (int j = 0; j < 4; ++j) {
            const int64_t ix = tx[j & 1], iy = ty[j >> 1];
            t.ok[static_cast<size_t>(j)][k] = ix >= 0 && iy >= 0;
            t.off[static_cast<size_t>(j)][k] =
                ix >= 0 && iy >= 0 ? static_cast<int32_t>(iy * W + ix) : 0;
        }
    }

    // The reference's arithmetic for a point off the fast path (infinite or huge coordinate).
    float sample_scalar(const float* img, int64_t H, int64_t W, float gx, float gy) const {
        const float fx = coord(gx, W), fy = coord(gy, H);
        const float x0f = std::floor(fx), y0f = std::floor(fy);
        auto index = [](float f) {
            return std::isfinite(f) && std::fabs(f) < 9.0e18f ? static_cast<int64_t>(f)
                                                                : std::numeric_limits<int64_t>::min();
        };
        const int64_t x0 = index(x0f), y0 = index(y0f);
        auto pixel = [&](int64_t iy, int64_t ix) {
            const int64_t ty = iy == std::numeric_limits<int64_t>::min() ? -1 : tap(iy, H);
            const int64_t tx = ix == std::numeric_limits<int64_t>::min() ? -1 : tap(ix, W);
            return ty < 0 || tx < 0 ? 0.0f : img[ty * W + tx];
        };
        const auto next = [](int64_t i) {
            return i == std::numeric_limits<int64_t>::min() ? i : i + 1;
        };
        const float dx = fx - x0f, dy = fy - y0f;
        const float top = (1 - dx) * pixel(y0, x0) + dx * pixel(y0, next(x0));
        const float bot = (1 - dx) * pixel(next(y0), x0) + dx * pixel(next(y0), next(x0));
        return (1 - dy) * top + dy * bot;
    }

    bool border_, align_;
};

}  // namespace

std::unique_ptr<FastOp> make_grid_sample(const Node& node, int64_t opset,
                                         std::span<const Operand> ins, const Operand& out) {
    if (node.op_type != "GridSample" || ins.size() != 2 || ins[0].dtype != DType::Float32 ||
        ins[1].dtype != DType::Float32 || out.dtype != DType::Float32 ||
        ins[0].shape.size() != 4 || ins[1].shape.size() != 4 || ins[1].shape[3] != 2 ||
        ins[1].shape[0] != ins[0].shape[0] ||
        ins[0].shape[2] * ins[0].shape[3] > std::numeric_limits<int32_t>::max()) {
        return nullptr;
    }
    const std::string mode = node.attr_string("mode", opset >= 20 ? "linear" : "bilinear");
    const std::string pad = node.attr_string("padding_mode", "zeros");
    if ((mode != "bilinear" && mode != "linear") || (pad != "zeros" && pad != "border")) {
        return nullptr;
    }
    return std::make_unique<GridSampleOp>(pad == "border", node.attr_int("align_corners", 0) != 0);
}

}  // namespace lowbit::cpu
