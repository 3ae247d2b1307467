// GPTQ-style INT4 weight rounding (--weight-method gptq; Frantar et al., "GPTQ", 2022): instead
// of rounding each weight to its nearest grid point (RTN), the columns of a layer's weight are
// quantized one by one and each column's rounding error is pushed onto the columns not yet
// quantized, weighted by the inverse Gram matrix of the layer's input, so the layer's output on
// the calibration data moves as little as possible.
//
// For a Conv with weight [O, C/g, kh, kw] the input is its im2col matrix X (one row per output
// position, one column per (c, kh, kw) of a group), gathered while the calibration set streams
// through the float model: H = X^T X, summed over every position of every sample (per group).
// Then per group, in double precision:
//   - columns never excited (H_ii = 0) get H_ii = 1 and weight 0;
//   - damping: H += 0.01 * mean(diag H) * I;
//   - U = the upper Cholesky factor of H^-1 (computed as the inverse of the upper factor R of
//     H = R R^T, itself the reversed lower Cholesky factor of the reversed H);
//   - columns in order, in lazy blocks of 128: q = Q(w_j), err = (w_j - q) / U_jj,
//     w_k -= err * U_jk for the later columns k (within the block at once, beyond it per block).
// The scales are RTN's (quantize_weight_int4: per output channel, or per block of input
// channels), fixed before the pass (GPTQ's "static groups"); only the codes change.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "quant/qdq_rewrite.h"

namespace lowbit {
class ThreadPool;
}

namespace lowbit::quant {

enum class WeightMethod { Rtn, Gptq, Adaround };

// Geometry of a 2-D Conv as GPTQ's im2col sees it.
struct ConvGeometry {
    int64_t cin = 0, cout = 0, group = 1;
    int64_t kh = 1, kw = 1;
    int64_t sh = 1, sw = 1, dh = 1, dw = 1;
    int64_t pt = 0, pl = 0;  // top / left padding (bottom / right follow from the output size)
    int64_t ph_end = 0, pw_end = 0;
};

// The geometry of Conv `n` with weight shape `w`, or an error when GPTQ does not handle it
// (not 2-D, auto_pad other than NOTSET/VALID).
Result<ConvGeometry> conv_geometry(const Node& n, const Shape& w);

// H = sum of X^T X over the im2col rows of every input seen, per group ([group][K * K], K =
// cin / group * kh * kw, row-major, full symmetric).
class GramAccumulator {
public:
    explicit GramAccumulator(const ConvGeometry& g);
    // x: the Conv's float32 input [N, cin, H, W].
    Status add(const Tensor& x, const ThreadPool& pool);
    int64_t k() const { return k_; }
    const std::vector<std::vector<double>>& gram() const { return h_; }
    int64_t rows() const { return rows_; }
    int64_t samples() const { return samples_; }

private:
    ConvGeometry g_;
    int64_t k_;
    std::vector<std::vector<double>> h_;
    int64_t rows_ = 0;
    int64_t samples_ = 0;
};

// GPTQ codes for Conv weight `w` (float32 [O, C/g, kh, kw]) with RTN's scales: the result has
// the same scale tensor as quantize_weight_int4(w, 0, block_size, Float32).
Result<Int4Weight> gptq_conv_int4(const Tensor& w, int64_t block_size, const ConvGeometry& g,
                                  const std::vector<std::vector<double>>& gram,
                                  double damp = 0.01, int64_t lazy_block = 128);

// The GPTQ solve for one [rows, K] matrix W (row-major, modified in place into its dequantized
// values) with Gram matrix H [K, K] and a quantizer q(row, col, value) -> dequantized value.
// Exposed for the unit tests.
template <class Quant>
Status gptq_solve(std::vector<double>& W, int64_t rows, int64_t K, std::vector<double> H,
                  double damp, int64_t lazy_block, const Quant& quant);

// Upper-triangular U with H^-1 = U^T U (H symmetric positive definite, K x K row-major).
Result<std::vector<double>> inverse_upper_cholesky(std::vector<double> H, int64_t K);

// ---------------------------------------------------------------------------------------------
// gptq_solve: the column loop with error feedback and lazy blocks.
template <class Quant>
Status gptq_solve(std::vector<double>& W, int64_t rows, int64_t K, std::vector<double> H,
                  double damp, int64_t lazy_block, const Quant& quant) {
    // Dead columns: never excited by the data; their weight does not matter (GPTQ sets it 0).
    double mean_diag = 0;
    for (int64_t i = 0; i < K; ++i) {
        if (H[static_cast<size_t>(i * K + i)] == 0) {
            H[static_cast<size_t>(i * K + i)] = 1;
            for (int64_t r = 0; r < rows; ++r) W[static_cast<size_t>(r * K + i)] = 0;
        }
        mean_diag += H[static_cast<size_t>(i * K + i)];
    }
    mean_diag /= static_cast<double>(std::max<int64_t>(K, 1));
    for (int64_t i = 0; i < K; ++i) H[static_cast<size_t>(i * K + i)] += damp * mean_diag;
    LOWBIT_ASSIGN(std::vector<double> U, inverse_upper_cholesky(std::move(H), K));
    auto u = [&](int64_t i, int64_t j) { return U[static_cast<size_t>(i * K + j)]; };
    std::vector<double> err(static_cast<size_t>(rows * lazy_block));
    for (int64_t b0 = 0; b0 < K; b0 += lazy_block) {
        const int64_t b1 = std::min(K, b0 + lazy_block);
        for (int64_t j = b0; j < b1; ++j) {
            const double d = u(j, j);
            for (int64_t r = 0; r < rows; ++r) {
                double* wr = &W[static_cast<size_t>(r * K)];
                const double w = wr[j];
                const double q = quant(r, j, w);
                wr[j] = q;
                const double e = (w - q) / d;
                err[static_cast<size_t>(r * lazy_block + (j - b0))] = e;
                for (int64_t k = j + 1; k < b1; ++k) wr[k] -= e * u(j, k);
            }
        }
        // The block's errors onto every later column at once.
        for (int64_t r = 0; r < rows; ++r) {
            double* wr = &W[static_cast<size_t>(r * K)];
            const double* er = &err[static_cast<size_t>(r * lazy_block)];
            for (int64_t j = b0; j < b1; ++j) {
                const double e = er[j - b0];
                if (e == 0) continue;
                const double* uj = &U[static_cast<size_t>(j * K)];
                for (int64_t k = b1; k < K; ++k) wr[k] -= e * uj[k];
            }
        }
    }
    return Status::ok();
}

}  // namespace lowbit::quant
