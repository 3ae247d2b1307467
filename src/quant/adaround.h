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
    double lambda =
        5.0;  // regularizer weight, in the loss's squared-step units (1, 5, 20 measured)
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

// adaround_solve with the scales given as a [rows * K] array.
Status adaround_solve_scaled(const std::vector<double>& W, int64_t rows, int64_t K,
                             const std::vector<double>& H, const std::vector<double>& scales,
                             const AdaroundOptions& o, std::vector<int8_t>& codes,
                             AdaroundStats* stats);

template <class Scale>
Status adaround_solve(const std::vector<double>& W, int64_t rows, int64_t K,
                      const std::vector<double>& H, const Scale& scale, const AdaroundOptions& o,
                      std::vector<int8_t>& codes, AdaroundStats* stats) {
    std::vector<double> s(static_cast<size_t>(rows * K));
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t k = 0; k < K; ++k) s[static_cast<size_t>(r * K + k)] = scale(r, k);
    }
    return adaround_solve_scaled(W, rows, K, H, s, o, codes, stats);
}

}  // namespace lowbit::quant
