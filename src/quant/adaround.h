// AdaRound-style INT4 weight rounding (--weight-method adaround; Nagel et al., "Up or Down?
// Adaptive Rounding for Post-Training Quantization", 2020) and bias correction
// (--bias-correction; Nagel et al., "Data-Free Quantization", 2019, section 4.2, here with the
// empirical input mean of the calibration data).
//
// AdaRound learns, per weight, whether to round down or up (never further than one grid step
// from the weight) so that the layer's output on the calibration data moves as little as
// possible. The layer reconstruction loss ||W X - Ŵ X||² over the im2col rows X of a Conv's
// input equals tr((W - Ŵ) H (W - Ŵ)^T) with H = X^T X, the Gram matrix GPTQ already gathers
// (quant/gptq.h, GramAccumulator), so no activations are stored. Per output-channel row, with
// the RTN scale s fixed:
//   Ŵ = s * (floor(W / s) + h(V)),  h(V) = clip(sigmoid(V) * (ζ - γ) + γ, 0, 1), ζ 1.1, γ -0.1
//   loss = (W - Ŵ) H (W - Ŵ)^T / (mean(s²) * mean(diag H))     (in units of squared steps)
//        + λ Σ (1 - |2 h(V) - 1|^β)
// V starts at the RTN fractions; the first 20 % of the iterations run without the regularizer,
// then β anneals 20 -> 2 and the regularizer drives every h(V) to 0 or 1; Adam (lr 0.05) on V.
// Hard rounding at the end: up where h(V) >= 0.5. A row whose hard rounding ends with a larger
// reconstruction loss than RTN's keeps RTN's codes (rare; counted).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "quant/gptq.h"
#include "quant/qdq_rewrite.h"

namespace lowbit {
class ThreadPool;
}

namespace lowbit::quant {

struct AdaroundOptions {
    int64_t iters = 500;
    double lambda = 1.0;  // regularizer weight, in the loss's squared-step units
    double lr = 0.05;
    double warmup = 0.2;  // fraction of the iterations without the regularizer
    double beta_start = 20, beta_end = 2;
};

struct AdaroundStats {
    int64_t rows = 0;
    int64_t rows_kept_rtn = 0;  // rows whose learned rounding lost to RTN
    int64_t flipped = 0;        // codes that differ from RTN's
    int64_t weights = 0;
};

// The AdaRound solve for one [rows, K] matrix. W: the float weights (row-major); H: the Gram
// matrix [K, K], full symmetric; scale(r, k): the fixed scale of element (r, k) (> 0). Writes
// the integer codes (in [-8, 7]) into `codes` [rows * K]. Exposed for the unit tests.
template <class Scale>
Status adaround_solve(const std::vector<double>& W, int64_t rows, int64_t K,
                      const std::vector<double>& H, const Scale& scale, const AdaroundOptions& o,
                      std::vector<int8_t>& codes, AdaroundStats* stats = nullptr);

// Reconstruction loss (W - Ŵ) H (W - Ŵ)^T of one row (K values), H full symmetric.
double row_reconstruction_loss(const double* w, const double* w_hat, const std::vector<double>& H,
                               int64_t K);

// AdaRound codes for Conv weight `w` (float32 [O, C/g, kh, kw]) with RTN's scales (the same
// scale tensor as quantize_weight_int4(w, 0, block_size, Float32)); `gram` as
// GramAccumulator::gram() (lower triangle accumulated).
Result<Int4Weight> adaround_conv_int4(const Tensor& w, int64_t block_size, const ConvGeometry& g,
                                      const std::vector<std::vector<double>>& gram,
                                      const AdaroundOptions& o, AdaroundStats* stats = nullptr);

// Mean of the im2col rows of a Conv's input, per group ([group][K], K = cin / group * kh * kw,
// padding counted as zeros): E[x] for bias correction.
class Im2colMeanAccumulator {
public:
    explicit Im2colMeanAccumulator(const ConvGeometry& g);
    // x: the Conv's float32 input [N, cin, H, W].
    Status add(const Tensor& x, const ThreadPool& pool);
    int64_t rows() const { return rows_; }
    int64_t samples() const { return samples_; }
    // The means (sums / rows); all zero before any add.
    std::vector<std::vector<double>> mean() const;

private:
    ConvGeometry g_;
    int64_t k_;
    std::vector<std::vector<double>> sum_;  // [group][K]
    int64_t rows_ = 0;
    int64_t samples_ = 0;
};

// Bias correction: the expected output error of each output channel o, E[(Ŵ - W) x]_o =
// Σ_k (Ŵ - W)_{o,k} mean_k over the im2col columns of o's group, to be subtracted from the
// bias. w: float32 [O, C/g, kh, kw]; q: its INT4 weight (codes and scales).
std::vector<double> expected_output_error(const Tensor& w, const Int4Weight& q,
                                          const ConvGeometry& g,
                                          const std::vector<std::vector<double>>& mean);

// ---------------------------------------------------------------------------------------------
namespace adaround_detail {
constexpr double kZeta = 1.1, kGamma = -0.1;
inline double sigmoid(double v) {
    return 1.0 / (1.0 + std::exp(-v));
}
inline double rect_sigmoid(double v) {
    return std::clamp(sigmoid(v) * (kZeta - kGamma) + kGamma, 0.0, 1.0);
}
}  // namespace adaround_detail

template <class Scale>
Status adaround_solve(const std::vector<double>& W, int64_t rows, int64_t K,
                      const std::vector<double>& H, const Scale& scale, const AdaroundOptions& o,
                      std::vector<int8_t>& codes, AdaroundStats* stats) {
    using namespace adaround_detail;
    if (o.iters < 0 || !(o.lambda >= 0) || !(o.lr > 0)) {
        return invalid("AdaRound: iterations {} and lambda {} must be >= 0, lr {} > 0", o.iters,
                       o.lambda, o.lr);
    }
    const auto K_ = static_cast<size_t>(K);
    codes.assign(static_cast<size_t>(rows) * K_, 0);
    double mean_diag = 0;
    for (int64_t i = 0; i < K; ++i) mean_diag += H[static_cast<size_t>(i) * K_ + i];
    mean_diag /= static_cast<double>(std::max<int64_t>(K, 1));
    if (!(mean_diag > 0)) mean_diag = 1;  // a layer never excited: RTN (rec loss is zero)
    const int64_t warm = static_cast<int64_t>(o.warmup * static_cast<double>(o.iters));
    std::vector<double> s(K_), base(K_), v(K_), m(K_), u2(K_), d(K_), g(K_), h(K_);
    std::vector<double> w_rtn(K_), w_ada(K_);
    std::vector<int8_t> rtn(K_), lo(K_);
    std::vector<char> frozen(K_);
    for (int64_t r = 0; r < rows; ++r) {
        const double* wr = &W[static_cast<size_t>(r) * K_];
        double s2 = 0;
        for (int64_t k = 0; k < K; ++k) {
            s[k] = scale(r, k);
            s2 += s[k] * s[k];
            const double x = wr[k] / s[k];
            rtn[k] = static_cast<int8_t>(std::clamp(std::nearbyint(x), -8.0, 7.0));
            const double fl = std::floor(x);
            // Rounding up must stay on the grid; otherwise the element keeps RTN's code.
            frozen[k] = !(fl >= -8 && fl + 1 <= 7);
            lo[k] = frozen[k] ? rtn[k] : static_cast<int8_t>(fl);
            const double rest = std::clamp(x - fl, 1e-3, 1 - 1e-3);
            v[k] = frozen[k] ? 0.0 : -std::log((kZeta - kGamma) / (rest - kGamma) - 1.0);
            m[k] = u2[k] = 0;
        }
        const double norm = 1.0 / (s2 / static_cast<double>(K) * mean_diag);
        double b1t = 1, b2t = 1;
        for (int64_t it = 0; it < o.iters; ++it) {
            const bool reg = it >= warm;
            const double t = reg ? static_cast<double>(it - warm) /
                                       static_cast<double>(std::max<int64_t>(o.iters - warm, 1))
                                 : 0.0;
            const double beta = o.beta_end + (o.beta_start - o.beta_end) * (1 - t);
            for (int64_t k = 0; k < K; ++k) {
                h[k] = frozen[k] ? 0.0 : rect_sigmoid(v[k]);
                d[k] = s[k] * (frozen[k] ? rtn[k] : lo[k] + h[k]) - wr[k];
            }
            // g = H d (H symmetric: a sum of its rows).
            std::fill(g.begin(), g.end(), 0.0);
            for (int64_t i = 0; i < K; ++i) {
                const double di = d[i];
                if (di == 0) continue;
                const double* hi = &H[static_cast<size_t>(i) * K_];
#pragma omp simd
                for (int64_t k = 0; k < K; ++k) g[k] += di * hi[k];
            }
            constexpr double b1 = 0.9, b2 = 0.999, eps = 1e-8;
            b1t *= b1;
            b2t *= b2;
            for (int64_t k = 0; k < K; ++k) {
                if (frozen[k]) continue;
                const double sg = sigmoid(v[k]);
                const double raw = sg * (kZeta - kGamma) + kGamma;
                if (raw <= 0 || raw >= 1) continue;  // clipped: no gradient
                double dh = 2 * norm * s[k] * g[k];
                if (reg) {
                    const double a = 2 * h[k] - 1;
                    dh += o.lambda * -beta * std::pow(std::abs(a), beta - 1) * 2 *
                          (a >= 0 ? 1.0 : -1.0);
                }
                const double grad = dh * (kZeta - kGamma) * sg * (1 - sg);
                m[k] = b1 * m[k] + (1 - b1) * grad;
                u2[k] = b2 * u2[k] + (1 - b2) * grad * grad;
                v[k] -= o.lr * (m[k] / (1 - b1t)) / (std::sqrt(u2[k] / (1 - b2t)) + eps);
            }
        }
        int8_t* cr = &codes[static_cast<size_t>(r) * K_];
        int64_t flips = 0;
        for (int64_t k = 0; k < K; ++k) {
            cr[k] = frozen[k] ? rtn[k] : static_cast<int8_t>(lo[k] + (rect_sigmoid(v[k]) >= 0.5));
            w_ada[k] = s[k] * cr[k];
            w_rtn[k] = s[k] * rtn[k];
            flips += cr[k] != rtn[k];
        }
        const bool keep_rtn = flips > 0 && row_reconstruction_loss(wr, w_ada.data(), H, K) >
                                               row_reconstruction_loss(wr, w_rtn.data(), H, K);
        if (keep_rtn) std::copy(rtn.begin(), rtn.end(), cr);
        if (stats) {
            ++stats->rows;
            stats->weights += K;
            stats->rows_kept_rtn += keep_rtn;
            stats->flipped += keep_rtn ? 0 : flips;
        }
    }
    return Status::ok();
}

}  // namespace lowbit::quant
