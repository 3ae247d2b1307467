#include "quant/gptq.h"

#include <fmt/format.h>

#include <cmath>

#include "core/int4.h"
#include "core/thread_pool.h"
#include "runtime/kernels/cpu/sgemm.h"

namespace lowbit::quant {

Result<ConvGeometry> conv_geometry(const Node& n, const Shape& w) {
    if (w.size() != 4) return unsupported("{}: GPTQ handles 2-D convolutions only", n.describe());
    const std::string pad = n.attr_string("auto_pad", "NOTSET");
    if (pad != "NOTSET" && pad != "VALID") {
        return unsupported("{}: auto_pad {} is not handled by GPTQ", n.describe(), pad);
    }
    ConvGeometry g;
    g.cout = w[0];
    g.group = n.attr_int("group", 1);
    g.cin = w[1] * g.group;
    g.kh = w[2];
    g.kw = w[3];
    const auto s = n.attr_ints("strides", {1, 1});
    const auto d = n.attr_ints("dilations", {1, 1});
    const auto p =
        pad == "VALID" ? std::vector<int64_t>{0, 0, 0, 0} : n.attr_ints("pads", {0, 0, 0, 0});
    if (s.size() != 2 || d.size() != 2 || p.size() != 4 || g.group < 1 || g.cout % g.group) {
        return invalid("{}: unexpected strides / dilations / pads / group", n.describe());
    }
    g.sh = s[0];
    g.sw = s[1];
    g.dh = d[0];
    g.dw = d[1];
    g.pt = p[0];
    g.pl = p[1];
    g.ph_end = p[2];
    g.pw_end = p[3];
    return g;
}

GramAccumulator::GramAccumulator(const ConvGeometry& g) : g_(g), k_(g.cin / g.group * g.kh * g.kw) {
    h_.assign(static_cast<size_t>(g.group), std::vector<double>(static_cast<size_t>(k_ * k_)));
}

Status GramAccumulator::add(const Tensor& x, const ThreadPool& pool) {
    if (x.dtype() != DType::Float32 || x.shape().size() != 4 || x.dim(1) != g_.cin) {
        return invalid("GPTQ: Conv input {} {} does not match the weight ({} input channels)",
                       dtype_name(x.dtype()), shape_str(x.shape()), g_.cin);
    }
    const int64_t N = x.dim(0), H = x.dim(2), W = x.dim(3);
    const int64_t OH = (H + g_.pt + g_.ph_end - g_.dh * (g_.kh - 1) - 1) / g_.sh + 1;
    const int64_t OW = (W + g_.pl + g_.pw_end - g_.dw * (g_.kw - 1) - 1) / g_.sw + 1;
    if (OH <= 0 || OW <= 0) return Status::ok();
    const int64_t P = OH * OW, cg = g_.cin / g_.group, K = k_, taps = g_.kh * g_.kw;
    // 512 positions a chunk (A^T below: K rows of `len` positions), summed in float.
    constexpr int64_t kChunk = 512;
    std::vector<float> a(static_cast<size_t>(K * kChunk), 0.0f);
    // The product's row blocks and each pool thread's float result for one block.
    constexpr int64_t kRows = 64;
    const int64_t n_blocks = (K + kRows - 1) / kRows;
    std::vector<float> tile(static_cast<size_t>(pool.size()) * static_cast<size_t>(kRows * K));
    std::vector<Status> st(static_cast<size_t>(n_blocks));
    const float* px = x.data<float>();
    // Per kernel column j: the output columns ox whose input column ix = ox * sw - pl + j * dw
    // lies inside [0, W), as [lo, hi); the others read padding.
    std::vector<int64_t> ox_lo(static_cast<size_t>(g_.kw)), ox_hi(static_cast<size_t>(g_.kw));
    for (int64_t j = 0; j < g_.kw; ++j) {
        const int64_t off = j * g_.dw - g_.pl;  // ix = ox * sw + off
        const int64_t lo = off >= 0 ? 0 : (-off + g_.sw - 1) / g_.sw;
        const int64_t hi = W - off <= 0 ? 0 : (W - off - 1) / g_.sw + 1;
        ox_lo[static_cast<size_t>(j)] = std::min(lo, OW);
        ox_hi[static_cast<size_t>(j)] = std::clamp(hi, ox_lo[static_cast<size_t>(j)], OW);
    }
    for (int64_t n = 0; n < N; ++n) {
        for (int64_t gi = 0; gi < g_.group; ++gi) {
            std::vector<double>& h = h_[static_cast<size_t>(gi)];
            for (int64_t p0 = 0; p0 < P; p0 += kChunk) {
                const int64_t len = std::min(kChunk, P - p0);
                // im2col of positions [p0, p0 + len): column k = (c, i, j), walked one output
                // row segment at a time (no division per element).
                pool.parallel_for(K, 8, [&](int64_t k0, int64_t k1) {
                    for (int64_t k = k0; k < k1; ++k) {
                        const int64_t c = k / taps, i = (k % taps) / g_.kw, j = k % g_.kw;
                        const float* plane = px + ((n * g_.cin) + gi * cg + c) * H * W;
                        const int64_t lo = ox_lo[static_cast<size_t>(j)];
                        const int64_t hi = ox_hi[static_cast<size_t>(j)];
                        const int64_t off = j * g_.dw - g_.pl;
                        float* row = &a[static_cast<size_t>(k * kChunk)];
                        int64_t q = 0, oy = p0 / OW, ox0 = p0 % OW;
                        while (q < len) {
                            const int64_t seg = std::min(OW - ox0, len - q);  // [ox0, ox0 + seg)
                            float* dst = row + q;  // dst[ox - ox0]: position (oy, ox)
                            const int64_t iy = oy * g_.sh - g_.pt + i * g_.dh;
                            const int64_t end = ox0 + seg;
                            if (iy < 0 || iy >= H) {
                                std::fill(dst, dst + seg, 0.0f);
                            } else {
                                const float* src = plane + iy * W;  // src[ox * sw + off]
                                const int64_t a0 = std::clamp(lo, ox0, end);
                                const int64_t a1 = std::clamp(hi, a0, end);
                                std::fill(dst, dst + (a0 - ox0), 0.0f);
                                if (g_.sw == 1) {
                                    for (int64_t ox = a0; ox < a1; ++ox)
                                        dst[ox - ox0] = src[ox + off];
                                } else {
                                    for (int64_t ox = a0; ox < a1; ++ox)
                                        dst[ox - ox0] = src[ox * g_.sw + off];
                                }
                                std::fill(dst + (a1 - ox0), dst + seg, 0.0f);
                            }
                            q += seg;
                            ++oy;
                            ox0 = 0;
                        }
                    }
                });
                // Lower triangle of A^T A, one GEMM per block of kRows rows: block b is
                // rows [r0, r1) times columns [0, r1) (the part of the diagonal square above the
                // diagonal is computed and dropped), summed in float over the chunk and then
                // into the double Gram. Blocks are disjoint rows of h, the last (largest) first.
                pool.run(n_blocks, [&](int64_t i, int thread) {
                    const int64_t b = n_blocks - 1 - i;
                    const int64_t r0 = b * kRows, r1 = std::min(K, r0 + kRows);
                    float* c = &tile[static_cast<size_t>(thread) * static_cast<size_t>(kRows * K)];
                    const float* ar = &a[static_cast<size_t>(r0 * kChunk)];
                    Status s =
                        cpu::sgemm_abt(r1 - r0, r1, len, ar, kChunk, a.data(), kChunk, c, r1);
                    if (!s.is_ok()) {
                        st[static_cast<size_t>(i)] = std::move(s);
                        return;
                    }
                    for (int64_t r = r0; r < r1; ++r) {
                        double* hr = &h[static_cast<size_t>(r * K)];
                        const float* cr = c + (r - r0) * r1;
                        for (int64_t col = 0; col <= r; ++col) hr[col] += cr[col];
                    }
                });
                for (Status& s : st) {
                    if (!s.is_ok()) return s;
                }
            }
        }
        rows_ += P;
        ++samples_;
    }
    return Status::ok();
}

namespace {

// Sum of a[k] * b[k], k < n, vectorized (a sequential double sum is bound by the add latency;
// the Cholesky factor and its inverse are each K^3 / 6 of these products).
double dot(const double* a, const double* b, int64_t n) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < n; ++k) s += a[k] * b[k];
    return s;
}

}  // namespace

Result<std::vector<double>> inverse_upper_cholesky(std::vector<double> H, int64_t K) {
    const auto at = [K](int64_t i, int64_t j) { return static_cast<size_t>(i * K + j); };
    // Lower Cholesky M of the reversed matrix P = J H J (P_ij = H_{K-1-i, K-1-j}).
    std::vector<double> M(static_cast<size_t>(K * K), 0.0);
    for (int64_t i = 0; i < K; ++i) {
        for (int64_t j = 0; j <= i; ++j) {
            const double s = H[at(K - 1 - i, K - 1 - j)] - dot(&M[at(i, 0)], &M[at(j, 0)], j);
            if (i == j) {
                if (!(s > 0)) {
                    return invalid(
                        "GPTQ: the damped Gram matrix is not positive definite "
                        "(pivot {} at column {})",
                        s, K - 1 - i);
                }
                M[at(i, i)] = std::sqrt(s);
            } else {
                M[at(i, j)] = s / M[at(j, j)];
            }
        }
    }
    // R = J M J is upper triangular with H = R R^T; U = R^-1 (upper), H^-1 = U^T U. R is
    // stored (reusing H) so that its rows run forwards.
    std::vector<double>& R = H;
    for (int64_t i = 0; i < K; ++i) {
        for (int64_t k = 0; k < K; ++k) R[at(i, k)] = k >= i ? M[at(K - 1 - i, K - 1 - k)] : 0.0;
    }
    // Column j of U is built in row j of Ut (contiguous: a column walk of U would stride K
    // doubles per product), then transposed.
    std::vector<double> Ut(static_cast<size_t>(K * K), 0.0);
    for (int64_t j = 0; j < K; ++j) {
        double* uj = &Ut[at(j, 0)];
        uj[j] = 1.0 / R[at(j, j)];
        for (int64_t i = j - 1; i >= 0; --i) {
            uj[i] = -dot(&R[at(i, i + 1)], &uj[i + 1], j - i) / R[at(i, i)];
        }
    }
    std::vector<double> U(static_cast<size_t>(K * K), 0.0);
    for (int64_t i = 0; i < K; ++i) {
        for (int64_t j = i; j < K; ++j) U[at(i, j)] = Ut[at(j, i)];
    }
    return U;
}

Result<Int4Weight> gptq_conv_int4(const Tensor& w, int64_t block_size, const ConvGeometry& g,
                                  const std::vector<std::vector<double>>& gram, double damp,
                                  int64_t lazy_block) {
    Int4Weight out = quantize_weight_int4(w, 0, block_size, DType::Float32);
    const int64_t O = g.cout, cg = g.cin / g.group, taps = g.kh * g.kw, K = cg * taps;
    const int64_t og = O / g.group;
    const float* scales = out.scale.data<float>();
    const int64_t S = out.block_size > 0 ? (cg + out.block_size - 1) / out.block_size : 1;
    int8_t* codes = out.q.data<int8_t>();
    const float* src = w.data<float>();
    for (int64_t gi = 0; gi < g.group; ++gi) {
        std::vector<double> Wg(static_cast<size_t>(og * K));
        for (int64_t r = 0; r < og; ++r) {
            for (int64_t k = 0; k < K; ++k) {
                Wg[static_cast<size_t>(r * K + k)] = src[(gi * og + r) * K + k];
            }
        }
        std::vector<double> H = gram[static_cast<size_t>(gi)];
        for (int64_t i = 0; i < K; ++i) {  // mirror the accumulated lower triangle
            for (int64_t j = 0; j < i; ++j) {
                H[static_cast<size_t>(j * K + i)] = H[static_cast<size_t>(i * K + j)];
            }
        }
        auto quant = [&](int64_t r, int64_t k, double v) -> double {
            const int64_t o = gi * og + r;
            const int64_t e =
                out.block_size > 0 ? (o * S + (k / taps) / out.block_size) * taps + k % taps : o;
            const float s = scales[e];
            const int8_t q = quantize_int4(static_cast<float>(v), s);
            codes[o * K + k] = q;
            return static_cast<double>(q) * static_cast<double>(s);
        };
        LOWBIT_TRY(gptq_solve(Wg, og, K, std::move(H), damp, lazy_block, quant));
    }
    return out;
}

}  // namespace lowbit::quant
