#include "quant/adaround.h"

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
