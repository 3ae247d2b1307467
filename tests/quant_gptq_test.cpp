// GPTQ (quant/gptq.h): the inverse Cholesky factor, the column loop against round-to-nearest,
// and the Conv Gram matrix against an explicit im2col.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/int4.h"
#include "core/thread_pool.h"
#include "quant/gptq.h"

namespace lowbit::quant {
namespace {

std::vector<double> random_spd(int64_t K, std::mt19937& rng) {
    std::normal_distribution<double> nd;
    std::vector<double> A(static_cast<size_t>(K * K)), H(static_cast<size_t>(K * K), 0.0);
    for (auto& a : A) a = nd(rng);
    for (int64_t i = 0; i < K; ++i)
        for (int64_t j = 0; j < K; ++j)
            for (int64_t k = 0; k < K; ++k) H[i * K + j] += A[i * K + k] * A[j * K + k];
    for (int64_t i = 0; i < K; ++i) H[i * K + i] += 0.5;
    return H;
}

TEST(Gptq, InverseUpperCholeskyGivesTheInverse) {
    for (const int64_t K : {7, 45}) {  // 45: the vectorized dots' remainders and long rows
        std::mt19937 rng(3);
        const std::vector<double> H = random_spd(K, rng);
        auto U = inverse_upper_cholesky(H, K);
        ASSERT_TRUE(U.is_ok()) << U.status().message();
        for (int64_t i = 0; i < K; ++i) {
            for (int64_t j = 0; j < i; ++j) EXPECT_EQ((*U)[i * K + j], 0.0);  // upper triangular
            EXPECT_GT((*U)[i * K + i], 0.0);
        }
        // (U^T U) H = I.
        for (int64_t i = 0; i < K; ++i) {
            for (int64_t j = 0; j < K; ++j) {
                double s = 0;
                for (int64_t m = 0; m < K; ++m) {
                    double inv = 0;
                    for (int64_t k = 0; k < K; ++k) inv += (*U)[k * K + i] * (*U)[k * K + m];
                    s += inv * H[m * K + j];
                }
                EXPECT_NEAR(s, i == j ? 1.0 : 0.0, 1e-9) << K << ": " << i << "," << j;
            }
        }
        std::vector<double> bad(static_cast<size_t>(K * K), 0.0);
        EXPECT_FALSE(inverse_upper_cholesky(bad, K).is_ok());
    }
}

// Output error ||X (W - Q)^T||^2 on the data behind H.
double output_error(const std::vector<double>& X, int64_t n, const std::vector<double>& W,
                    const std::vector<double>& Q, int64_t rows, int64_t K) {
    double e = 0;
    for (int64_t p = 0; p < n; ++p) {
        for (int64_t r = 0; r < rows; ++r) {
            double d = 0;
            for (int64_t k = 0; k < K; ++k) d += X[p * K + k] * (W[r * K + k] - Q[r * K + k]);
            e += d * d;
        }
    }
    return e;
}

TEST(Gptq, ErrorFeedbackBeatsRoundToNearestOnCorrelatedInputs) {
    std::mt19937 rng(5);
    std::normal_distribution<double> nd;
    const int64_t n = 400, K = 24, rows = 6;
    std::vector<double> X(static_cast<size_t>(n * K));
    for (int64_t p = 0; p < n; ++p) {
        const double common = nd(rng);
        for (int64_t k = 0; k < K; ++k) X[p * K + k] = common + 0.3 * nd(rng);
    }
    std::vector<double> H(static_cast<size_t>(K * K), 0.0);
    for (int64_t p = 0; p < n; ++p)
        for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < K; ++j) H[i * K + j] += X[p * K + i] * X[p * K + j];
    std::vector<double> W(static_cast<size_t>(rows * K));
    for (auto& w : W) w = nd(rng);
    const float s = 0.4f;  // a coarse grid, as INT4's
    auto rtn = [&](int64_t, int64_t, double v) {
        return static_cast<double>(quantize_int4(static_cast<float>(v), s)) * s;
    };
    std::vector<double> Q_rtn(W.size());
    for (size_t i = 0; i < W.size(); ++i) Q_rtn[i] = rtn(0, 0, W[i]);
    for (int64_t lazy : {int64_t{128}, int64_t{5}}) {  // one lazy block, and several
        std::vector<double> Q = W;
        ASSERT_TRUE(gptq_solve(Q, rows, K, H, 0.01, lazy, rtn).is_ok());
        for (double q : Q) EXPECT_NEAR(std::remainder(q, s), 0.0, 1e-6);  // on the grid
        const double e_gptq = output_error(X, n, W, Q, rows, K);
        const double e_rtn = output_error(X, n, W, Q_rtn, rows, K);
        EXPECT_LT(e_gptq, 0.7 * e_rtn) << "lazy " << lazy;
    }
    // Lazy blocking is an evaluation order, not a different result.
    std::vector<double> Q1 = W, Q2 = W;
    ASSERT_TRUE(gptq_solve(Q1, rows, K, H, 0.01, 128, rtn).is_ok());
    ASSERT_TRUE(gptq_solve(Q2, rows, K, H, 0.01, 3, rtn).is_ok());
    for (size_t i = 0; i < Q1.size(); ++i) EXPECT_NEAR(Q1[i], Q2[i], 1e-9);
}

TEST(Gptq, UncorrelatedInputsGiveRoundToNearest) {
    const int64_t K = 6, rows = 2;
    std::vector<double> H(static_cast<size_t>(K * K), 0.0);
    for (int64_t i = 0; i < K; ++i) H[i * K + i] = 2.0 + i;
    H[2 * K + 2] = 0;  // a dead column: weight zeroed
    std::vector<double> W = {0.33, -1.2, 0.9, 0.05, 2.6, -0.74, 1.1, 0.2, -0.3, 0.6, -2.2, 0.49};
    auto q = [](int64_t, int64_t, double v) {
        return static_cast<double>(quantize_int4(static_cast<float>(v), 0.5f)) * 0.5;
    };
    std::vector<double> Q = W;
    ASSERT_TRUE(gptq_solve(Q, rows, K, H, 0.01, 128, q).is_ok());
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t k = 0; k < K; ++k) {
            const double want = k == 2 ? 0.0 : q(0, 0, W[r * K + k]);
            EXPECT_DOUBLE_EQ(Q[r * K + k], want) << r << "," << k;
        }
    }
}

// The accumulated lower triangle of conv `n` (weight [cout, cin / group, kh, kw]) on random x
// [N, cin, H, W], against an explicit im2col product.
void expect_gram_matches_im2col(const Node& n, const Shape& w, int64_t N, int64_t H, int64_t W) {
    auto geo = conv_geometry(n, w);
    ASSERT_TRUE(geo.is_ok()) << geo.status().message();
    const ConvGeometry& g = *geo;
    Tensor x(DType::Float32, {N, g.cin, H, W});
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> ud(-1, 1);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = ud(rng);
    GramAccumulator acc(g);
    ThreadPool pool(2);
    ASSERT_TRUE(acc.add(x, pool).is_ok());
    const int64_t cg = g.cin / g.group, K = cg * g.kh * g.kw;
    const int64_t OH = (H + g.pt + g.ph_end - g.dh * (g.kh - 1) - 1) / g.sh + 1;
    const int64_t OW = (W + g.pl + g.pw_end - g.dw * (g.kw - 1) - 1) / g.sw + 1;
    EXPECT_EQ(acc.rows(), N * OH * OW);
    for (int64_t gi = 0; gi < g.group; ++gi) {
        std::vector<double> ref(static_cast<size_t>(K * K), 0.0), row(static_cast<size_t>(K));
        for (int64_t b = 0; b < N; ++b)
            for (int64_t oy = 0; oy < OH; ++oy)
                for (int64_t ox = 0; ox < OW; ++ox) {
                    for (int64_t c = 0; c < cg; ++c)
                        for (int64_t i = 0; i < g.kh; ++i)
                            for (int64_t j = 0; j < g.kw; ++j) {
                                const int64_t iy = oy * g.sh - g.pt + i * g.dh;
                                const int64_t ix = ox * g.sw - g.pl + j * g.dw;
                                row[(c * g.kh + i) * g.kw + j] =
                                    iy >= 0 && iy < H && ix >= 0 && ix < W
                                        ? x.data<float>()[((b * g.cin + gi * cg + c) * H + iy) * W +
                                                          ix]
                                        : 0.0;
                            }
                    for (int64_t a = 0; a < K; ++a)
                        for (int64_t c = 0; c <= a; ++c) ref[a * K + c] += row[a] * row[c];
                }
        const std::vector<double>& got = acc.gram()[static_cast<size_t>(gi)];
        for (int64_t a = 0; a < K; ++a)
            for (int64_t c = 0; c <= a; ++c)
                ASSERT_NEAR(got[a * K + c], ref[a * K + c], 1e-5 * (1 + std::abs(ref[a * K + c])))
                    << gi << ":" << a << "," << c;
    }
}

// Outputs spanning several 512-position chunks that start mid-row, wide padding, strides 1 and
// 3: the row-segment im2col (padding ranges per kernel column) against the explicit one; then
// groups with K = 200 (several row blocks of the GEMM).
TEST(Gptq, GramMatrixMatchesIm2colAcrossChunks) {
    Node n;
    n.op_type = "Conv";
    n.name = "c";
    n.attrs["pads"] = Attr::make_ints({2, 3, 1, 2});
    expect_gram_matches_im2col(n, {3, 3, 5, 5}, 2, 29, 37);  // stride 1, 29 x 37 outputs
    n.attrs["strides"] = Attr::make_ints({1, 3});
    n.attrs["dilations"] = Attr::make_ints({2, 1});
    expect_gram_matches_im2col(n, {3, 3, 3, 4}, 1, 45, 50);
    n.attrs["pads"] = Attr::make_ints({0, 0, 0, 0});
    n.attrs["strides"] = Attr::make_ints({2, 2});
    n.attrs["dilations"] = Attr::make_ints({1, 1});
    expect_gram_matches_im2col(n, {2, 2, 1, 1}, 1, 70, 61);
    // K = 8 * 5 * 5 = 200 per group: the product's 64-row blocks, the last one partial.
    n.attrs["group"] = Attr::make_int(2);
    n.attrs["pads"] = Attr::make_ints({2, 2, 2, 2});
    n.attrs["strides"] = Attr::make_ints({1, 1});
    expect_gram_matches_im2col(n, {4, 8, 5, 5}, 2, 20, 31);
}

TEST(Gptq, GramMatrixIsTheIm2colProduct) {
    // Conv 4 -> 4 channels, group 2, 3x3, stride 2, pads (1, 0, 0, 1), dilation (1, 2).
    Node n;
    n.op_type = "Conv";
    n.name = "c";
    n.attrs["group"] = Attr::make_int(2);
    n.attrs["strides"] = Attr::make_ints({2, 2});
    n.attrs["pads"] = Attr::make_ints({1, 0, 0, 1});
    n.attrs["dilations"] = Attr::make_ints({1, 2});
    auto geo = conv_geometry(n, {4, 2, 3, 3});
    ASSERT_TRUE(geo.is_ok()) << geo.status().message();
    const int64_t N = 2, C = 4, H = 7, W = 8;
    Tensor x(DType::Float32, {N, C, H, W});
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> ud(-1, 1);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = ud(rng);
    GramAccumulator acc(*geo);
    ThreadPool pool(2);
    ASSERT_TRUE(acc.add(x, pool).is_ok());
    const int64_t K = 2 * 9;
    const int64_t OH = (H + 1 - 2 - 1) / 2 + 1, OW = (W + 1 - 4 - 1) / 2 + 1;
    EXPECT_EQ(acc.rows(), N * OH * OW);
    for (int64_t g = 0; g < 2; ++g) {
        std::vector<double> ref(static_cast<size_t>(K * K), 0.0);
        for (int64_t b = 0; b < N; ++b) {
            for (int64_t oy = 0; oy < OH; ++oy) {
                for (int64_t ox = 0; ox < OW; ++ox) {
                    std::vector<double> row(static_cast<size_t>(K));
                    for (int64_t c = 0; c < 2; ++c)
                        for (int64_t i = 0; i < 3; ++i)
                            for (int64_t j = 0; j < 3; ++j) {
                                const int64_t iy = oy * 2 - 1 + i, ix = ox * 2 - 0 + j * 2;
                                row[c * 9 + i * 3 + j] =
                                    iy >= 0 && iy < H && ix >= 0 && ix < W
                                        ? x.data<float>()[((b * C + g * 2 + c) * H + iy) * W + ix]
                                        : 0.0;
                            }
                    for (int64_t a = 0; a < K; ++a)
                        for (int64_t c = 0; c < K; ++c) ref[a * K + c] += row[a] * row[c];
                }
            }
        }
        const std::vector<double>& got = acc.gram()[static_cast<size_t>(g)];
        for (int64_t a = 0; a < K; ++a)
            for (int64_t c = 0; c <= a; ++c)  // the accumulator keeps the lower triangle
                EXPECT_NEAR(got[a * K + c], ref[a * K + c], 1e-4) << g << ":" << a << "," << c;
    }
    n.attrs["auto_pad"] = Attr::make_string("SAME_UPPER");
    EXPECT_FALSE(conv_geometry(n, {4, 2, 3, 3}).is_ok());
}

}  // namespace
}  // namespace lowbit::quant
