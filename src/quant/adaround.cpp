#include "quant/adaround.h"

#include <algorithm>
#include <cmath>

#include "core/int4.h"
#include "core/thread_pool.h"

namespace lowbit::quant {

double row_reconstruction_loss(const double* w, const double* w_hat, const std::vector<double>& H,
                               int64_t K) {
    std::vector<double> d(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) d[k] = w_hat[k] - w[k];
    double loss = 0;
    for (int64_t i = 0; i < K; ++i) {
        if (d[i] == 0) continue;
        const double* hi = &H[static_cast<size_t>(i * K)];
        double t = 0;
        for (int64_t k = 0; k < K; ++k) t += hi[k] * d[k];
        loss += d[i] * t;
    }
    return loss;
}

namespace {

constexpr double kZeta = 1.1, kGamma = -0.1;  // the rectified sigmoid's stretch (AdaRound eq. 23)

double sigmoid(double v) {
    return 1.0 / (1.0 + std::exp(-v));
}

// G = D H for D [rows4, K] (rows4 a multiple of kRows, padding rows zero) and H [K, Kp] (Kp a
// multiple of kCols, padding columns zero), float, row-major; G [rows4, Kp]. Column panels of H
// stay in cache across the row blocks; each block's kRows x kCols sums stay in registers.
constexpr int64_t kRows = 4, kCols = 64;
void gemm_dh(const float* D, const float* H, float* G, int64_t rows4, int64_t K, int64_t Kp) {
    for (int64_t c0 = 0; c0 < Kp; c0 += kCols) {
        for (int64_t r0 = 0; r0 < rows4; r0 += kRows) {
            float acc[kRows][kCols] = {};
            const float* d = D + r0 * K;
            for (int64_t i = 0; i < K; ++i) {
                const float* h = H + i * Kp + c0;
                for (int64_t r = 0; r < kRows; ++r) {
                    const float dr = d[r * K + i];
#pragma omp simd
                    for (int64_t c = 0; c < kCols; ++c) acc[r][c] += dr * h[c];
                }
            }
            for (int64_t r = 0; r < kRows; ++r) {
                std::copy(acc[r], acc[r] + kCols, G + (r0 + r) * Kp + c0);
            }
        }
    }
}

}  // namespace

Status adaround_solve_scaled(const std::vector<double>& W, int64_t rows, int64_t K,
                             const std::vector<double>& H, const std::vector<double>& scales,
                             const AdaroundOptions& o, std::vector<int8_t>& codes,
                             AdaroundStats* stats) {
    if (o.iters < 0 || !(o.lambda >= 0) || !(o.lr > 0)) {
        return invalid("AdaRound: iterations {} and lambda {} must be >= 0, lr {} > 0", o.iters,
                       o.lambda, o.lr);
    }
    const auto n = static_cast<size_t>(rows * K);
    codes.assign(n, 0);
    if (rows == 0 || K == 0) return Status::ok();
    double mean_diag = 0;
    for (int64_t i = 0; i < K; ++i) mean_diag += H[static_cast<size_t>(i * K + i)];
    mean_diag /= static_cast<double>(K);
    if (!(mean_diag > 0)) mean_diag = 1;  // a layer never excited: no loss but the regularizer
    // The loss in squared grid steps: row r's term divided by mean(s_r²) * mean(diag H).
    std::vector<double> norm(static_cast<size_t>(rows));
    std::vector<int8_t> rtn(n), lo(n);
    std::vector<char> frozen(n);
    std::vector<double> v(n), m(n, 0.0), u2(n, 0.0), sg(n);  // sg: sigmoid(v) this iteration
    for (int64_t r = 0; r < rows; ++r) {
        double s2 = 0;
        for (int64_t k = 0; k < K; ++k) {
            const size_t e = static_cast<size_t>(r * K + k);
            const double s = scales[e];
            if (!(s > 0)) return invalid("AdaRound: scale {} at ({}, {}) is not positive", s, r, k);
            s2 += s * s;
            const double x = W[e] / s;
            rtn[e] = static_cast<int8_t>(std::clamp(std::nearbyint(x), -8.0, 7.0));
            const double fl = std::floor(x);
            // Rounding up must stay on the grid [-8, 7]; otherwise the element keeps RTN's code.
            frozen[e] = !(fl >= -8 && fl + 1 <= 7);
            lo[e] = frozen[e] ? rtn[e] : static_cast<int8_t>(fl);
            // V with h(V) = the fraction: rounding starts where the weight is.
            const double rest = std::clamp(x - fl, 1e-3, 1 - 1e-3);
            v[e] = frozen[e] ? 0.0 : -std::log((kZeta - kGamma) / (rest - kGamma) - 1.0);
        }
        norm[static_cast<size_t>(r)] = 1.0 / (s2 / static_cast<double>(K) * mean_diag);
    }
    const int64_t rows4 = (rows + kRows - 1) / kRows * kRows;
    const int64_t Kp = (K + kCols - 1) / kCols * kCols;
    std::vector<float> Hf(static_cast<size_t>(K * Kp), 0.0f);
    for (int64_t i = 0; i < K; ++i) {
        for (int64_t k = 0; k < K; ++k) {
            Hf[static_cast<size_t>(i * Kp + k)] =
                static_cast<float>(H[static_cast<size_t>(i * K + k)]);
        }
    }
    std::vector<float> D(static_cast<size_t>(rows4 * K), 0.0f), G(static_cast<size_t>(rows4 * Kp));
    const int64_t warm = static_cast<int64_t>(o.warmup * static_cast<double>(o.iters));
    constexpr double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double b1t = 1, b2t = 1;
    for (int64_t it = 0; it < o.iters; ++it) {
        const bool reg = it >= warm && o.lambda > 0;
        const double t = static_cast<double>(it - warm) /
                         static_cast<double>(std::max<int64_t>(o.iters - warm, 1));
        const double beta = o.beta_end + (o.beta_start - o.beta_end) * (1 - t);
        // D = Ŵ - W with the soft rounding.
        for (size_t e = 0; e < n; ++e) {
            sg[e] = frozen[e] ? 0.0 : sigmoid(v[e]);
            const double h =
                frozen[e] ? 0.0 : std::clamp(sg[e] * (kZeta - kGamma) + kGamma, 0.0, 1.0);
            D[e] = static_cast<float>(scales[e] * (lo[e] + h) - W[e]);
        }
        gemm_dh(D.data(), Hf.data(), G.data(), rows4, K, Kp);
        b1t *= b1;
        b2t *= b2;
        for (int64_t r = 0; r < rows; ++r) {
            const double nr = norm[static_cast<size_t>(r)];
            for (int64_t k = 0; k < K; ++k) {
                const size_t e = static_cast<size_t>(r * K + k);
                if (frozen[e]) continue;
                const double s = sg[e];
                const double raw = s * (kZeta - kGamma) + kGamma;
                if (raw <= 0 || raw >= 1) continue;  // clipped: no gradient (h is 0 or 1)
                // d/dh of the loss: 2 (H d)_k s_k / norm, plus the regularizer's
                // -2 β |2h - 1|^(β-1) sign(2h - 1).
                double dh =
                    2 * nr * scales[e] * static_cast<double>(G[static_cast<size_t>(r * Kp + k)]);
                if (reg) {
                    const double a = 2 * raw - 1;
                    dh -= o.lambda * 2 * beta * std::pow(std::abs(a), beta - 1) * (a >= 0 ? 1 : -1);
                }
                const double grad = dh * (kZeta - kGamma) * s * (1 - s);
                m[e] = b1 * m[e] + (1 - b1) * grad;
                u2[e] = b2 * u2[e] + (1 - b2) * grad * grad;
                v[e] -= o.lr * (m[e] / (1 - b1t)) / (std::sqrt(u2[e] / (1 - b2t)) + eps);
            }
        }
    }
    // Hard rounding: up where h(V) >= 0.5, i.e. V >= the V of h = 0.5 (sigmoid = 0.5 exactly
    // for ζ = 1.1, γ = -0.1, so V >= 0). A row worse than RTN keeps RTN's codes.
    std::vector<double> w_ada(static_cast<size_t>(K)), w_rtn(static_cast<size_t>(K));
    for (int64_t r = 0; r < rows; ++r) {
        int8_t* cr = &codes[static_cast<size_t>(r * K)];
        const double* wr = &W[static_cast<size_t>(r * K)];
        int64_t flips = 0;
        for (int64_t k = 0; k < K; ++k) {
            const size_t e = static_cast<size_t>(r * K + k);
            cr[k] = frozen[e] ? rtn[e] : static_cast<int8_t>(lo[e] + (v[e] >= 0 ? 1 : 0));
            w_ada[static_cast<size_t>(k)] = scales[e] * cr[k];
            w_rtn[static_cast<size_t>(k)] = scales[e] * rtn[e];
            flips += cr[k] != rtn[e];
        }
        const bool keep_rtn = flips > 0 && row_reconstruction_loss(wr, w_ada.data(), H, K) >
                                               row_reconstruction_loss(wr, w_rtn.data(), H, K);
        if (keep_rtn)
            std::copy(&rtn[static_cast<size_t>(r * K)], &rtn[static_cast<size_t>(r * K)] + K, cr);
        if (stats) {
            ++stats->rows;
            stats->weights += K;
            stats->rows_kept_rtn += keep_rtn;
            stats->flipped += keep_rtn ? 0 : flips;
        }
    }
    return Status::ok();
}

namespace {

// Index of the scale of weight element (o, k) in quantize_weight_int4's scale tensor (k over
// (c, kh, kw) of o's group; blocked scales: [O, ceil(C/g / block), kh, kw]).
struct ScaleIndex {
    int64_t taps, S, block;
    int64_t operator()(int64_t o, int64_t k) const {
        return block > 0 ? (o * S + (k / taps) / block) * taps + k % taps : o;
    }
};

ScaleIndex scale_index(const Int4Weight& q, const ConvGeometry& g) {
    const int64_t cg = g.cin / g.group;
    return {g.kh * g.kw, q.block_size > 0 ? (cg + q.block_size - 1) / q.block_size : 1,
            q.block_size};
}

}  // namespace

Result<Int4Weight> adaround_conv_int4(const Tensor& w, int64_t block_size, const ConvGeometry& g,
                                      const std::vector<std::vector<double>>& gram,
                                      const AdaroundOptions& o, AdaroundStats* stats) {
    Int4Weight out = quantize_weight_int4(w, 0, block_size, DType::Float32);
    const int64_t O = g.cout, K = g.cin / g.group * g.kh * g.kw, og = O / g.group;
    const ScaleIndex si = scale_index(out, g);
    const float* scales = out.scale.data<float>();
    int8_t* codes = out.q.data<int8_t>();
    const float* src = w.data<float>();
    std::vector<int8_t> cg_codes;
    for (int64_t gi = 0; gi < g.group; ++gi) {
        std::vector<double> Wg(static_cast<size_t>(og * K));
        for (int64_t i = 0; i < og * K; ++i) Wg[static_cast<size_t>(i)] = src[gi * og * K + i];
        std::vector<double> H = gram[static_cast<size_t>(gi)];
        for (int64_t i = 0; i < K; ++i) {  // mirror the accumulated lower triangle
            for (int64_t j = 0; j < i; ++j) {
                H[static_cast<size_t>(j * K + i)] = H[static_cast<size_t>(i * K + j)];
            }
        }
        auto scale = [&](int64_t r, int64_t k) -> double {
            return static_cast<double>(scales[si(gi * og + r, k)]);
        };
        LOWBIT_TRY(adaround_solve(Wg, og, K, H, scale, o, cg_codes, stats));
        std::copy(cg_codes.begin(), cg_codes.end(), codes + gi * og * K);
    }
    return out;
}

Im2colMeanAccumulator::Im2colMeanAccumulator(const ConvGeometry& g)
    : g_(g), k_(g.cin / g.group * g.kh * g.kw) {
    sum_.assign(static_cast<size_t>(g.group), std::vector<double>(static_cast<size_t>(k_), 0.0));
}

Status Im2colMeanAccumulator::add(const Tensor& x, const ThreadPool& pool) {
    if (x.dtype() != DType::Float32 || x.shape().size() != 4 || x.dim(1) != g_.cin) {
        return invalid(
            "bias correction: Conv input {} {} does not match the weight ({} input "
            "channels)",
            dtype_name(x.dtype()), shape_str(x.shape()), g_.cin);
    }
    const int64_t N = x.dim(0), H = x.dim(2), W = x.dim(3);
    const int64_t OH = (H + g_.pt + g_.ph_end - g_.dh * (g_.kh - 1) - 1) / g_.sh + 1;
    const int64_t OW = (W + g_.pl + g_.pw_end - g_.dw * (g_.kw - 1) - 1) / g_.sw + 1;
    if (OH <= 0 || OW <= 0) return Status::ok();
    const int64_t cg = g_.cin / g_.group, taps = g_.kh * g_.kw;
    const float* px = x.data<float>();
    // Column k = (c, i, j) of group gi sums x[c][oy * sh - pt + i * dh][ox * sw - pl + j * dw]
    // over the output positions that land inside the image (padding adds zeros).
    pool.parallel_for(g_.group * k_, 4, [&](int64_t e0, int64_t e1) {
        for (int64_t e = e0; e < e1; ++e) {
            const int64_t gi = e / k_, k = e % k_;
            const int64_t c = k / taps, i = (k % taps) / g_.kw, j = k % g_.kw;
            double total = 0;
            for (int64_t n = 0; n < N; ++n) {
                const float* plane = px + ((n * g_.cin) + gi * cg + c) * H * W;
                for (int64_t oy = 0; oy < OH; ++oy) {
                    const int64_t iy = oy * g_.sh - g_.pt + i * g_.dh;
                    if (iy < 0 || iy >= H) continue;
                    const float* row = plane + iy * W;
                    float s = 0;
                    for (int64_t ox = 0; ox < OW; ++ox) {
                        const int64_t ix = ox * g_.sw - g_.pl + j * g_.dw;
                        if (ix >= 0 && ix < W) s += row[ix];
                    }
                    total += s;
                }
            }
            sum_[static_cast<size_t>(gi)][static_cast<size_t>(k)] += total;
        }
    });
    rows_ += N * OH * OW;
    samples_ += N;
    return Status::ok();
}

std::vector<std::vector<double>> Im2colMeanAccumulator::mean() const {
    std::vector<std::vector<double>> m = sum_;
    if (rows_ == 0) return m;
    for (auto& v : m) {
        for (double& x : v) x /= static_cast<double>(rows_);
    }
    return m;
}

std::vector<double> expected_output_error(const Tensor& w, const Int4Weight& q,
                                          const ConvGeometry& g,
                                          const std::vector<std::vector<double>>& mean) {
    const int64_t O = g.cout, K = g.cin / g.group * g.kh * g.kw, og = O / g.group;
    const ScaleIndex si = scale_index(q, g);
    const float* scales = q.scale.data<float>();
    const int8_t* codes = q.q.data<int8_t>();
    const float* src = w.data<float>();
    std::vector<double> err(static_cast<size_t>(O), 0.0);
    for (int64_t o = 0; o < O; ++o) {
        const std::vector<double>& mu = mean[static_cast<size_t>(o / og)];
        double e = 0;
        for (int64_t k = 0; k < K; ++k) {
            const double wq =
                static_cast<double>(codes[o * K + k]) * static_cast<double>(scales[si(o, k)]);
            e += (wq - static_cast<double>(src[o * K + k])) * mu[static_cast<size_t>(k)];
        }
        err[static_cast<size_t>(o)] = e;
    }
    return err;
}

}  // namespace lowbit::quant
