#include "runtime/layout.h"

#include <algorithm>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "core/status.h"

namespace lowbit {

const char* layout_name(Layout l) {
    return l == Layout::Nhwc ? "nhwc" : "plain";
}

namespace {

#if defined(__AVX2__)
// d[k * dld + i] = s[i * sld + k] for an 8x8 block of 4-byte elements (moved as float bits).
inline void transpose8x8_4byte(const uint32_t* s, int64_t sld, uint32_t* d, int64_t dld) {
    __m256 r[8], t[8];
    for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(reinterpret_cast<const float*>(s + k * sld));
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int h = 0; h < 8; h += 4) {  // rows 0-3, then 4-7
        r[h + 0] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(reinterpret_cast<float*>(d + k * dld),
                         _mm256_permute2f128_ps(r[k], r[k + 4], 0x20));
        _mm256_storeu_ps(reinterpret_cast<float*>(d + (k + 4) * dld),
                         _mm256_permute2f128_ps(r[k], r[k + 4], 0x31));
    }
}
#endif

// dst[j * dst_ld + i] = src[i * src_ld + j] for i < rows, j < cols, in cache-sized tiles.
// 4-byte elements (float32, the head outputs the executor hands back in plain layout) go 8x8
// through registers where a tile is whole.
template <typename T>
void transpose_tile(const T* src, int64_t src_ld, T* dst, int64_t dst_ld, int64_t rows,
                    int64_t cols) {
    constexpr int64_t kB = 16;
    for (int64_t i0 = 0; i0 < rows; i0 += kB) {
        const int64_t i1 = std::min(rows, i0 + kB);
        for (int64_t j0 = 0; j0 < cols; j0 += kB) {
            const int64_t j1 = std::min(cols, j0 + kB);
#if defined(__AVX2__)
            if constexpr (sizeof(T) == 4) {
                if (i1 - i0 == kB && j1 - j0 == kB) {
                    for (int64_t i = i0; i < i1; i += 8) {
                        for (int64_t j = j0; j < j1; j += 8) {
                            transpose8x8_4byte(src + i * src_ld + j, src_ld, dst + j * dst_ld + i,
                                               dst_ld);
                        }
                    }
                    continue;
                }
            }
#endif
            for (int64_t j = j0; j < j1; ++j) {
                T* d = dst + j * dst_ld;
                for (int64_t i = i0; i < i1; ++i) d[i] = src[i * src_ld + j];
            }
        }
    }
}

// Per batch image, transposes a [rows, cols] matrix into [cols, rows]. Work is split in chunks
// of 64 along the longer side, so every thread writes long contiguous runs of the output.
template <typename T>
void transpose_batched(const T* src, T* dst, int64_t n, int64_t rows, int64_t cols,
                       const ThreadPool& pool) {
    const int64_t per = rows * cols;
    const bool split_cols = cols >= rows;
    const int64_t split = split_cols ? cols : rows;
    const int64_t other = split_cols ? rows : cols;
    constexpr int64_t kChunk = 64;
    const int64_t chunks = (split + kChunk - 1) / kChunk;
    // Tiny tensors stay on one thread: a parallel region costs a few microseconds.
    const int64_t grain = std::max<int64_t>(1, 16384 / (kChunk * std::max<int64_t>(1, other)));
    pool.parallel_for(n * chunks, grain, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
            const int64_t b = t / chunks;
            const int64_t s0 = (t % chunks) * kChunk;
            const int64_t s1 = std::min(split, s0 + kChunk);
            const T* s = src + b * per;
            T* d = dst + b * per;
            if (split_cols) {
                transpose_tile(s + s0, cols, d + s0 * rows, rows, rows, s1 - s0);
            } else {
                transpose_tile(s + s0 * cols, cols, d + s0, rows, s1 - s0, cols);
            }
        }
    });
}

template <typename F>
void dispatch_elem(size_t elem, F&& f) {
    switch (elem) {
        case 1: f(uint8_t{}); break;
        case 2: f(uint16_t{}); break;
        case 4: f(uint32_t{}); break;
        case 8: f(uint64_t{}); break;
        default: LOWBIT_CHECK(false, "reorder of {}-byte elements", elem);
    }
}

// Three planes of 4-byte elements (an RGB image) interleaved into pixels, 16 pixels a step:
// each output vector is one two-source permute of the first two planes with the third's
// values blended in (the generic tiles above move such a 3-row matrix one element at a time;
// builds without AVX-512 keep them).
#if defined(__AVX512F__)
void interleave3_4byte(const uint32_t* src, uint32_t* dst, int64_t n, int64_t hw,
                       const ThreadPool& pool) {
    alignas(64) int32_t ab[3][16], cidx[3][16];
    __mmask16 cmask[3] = {0, 0, 0};
    for (int v = 0; v < 3; ++v) {
        for (int p = 0; p < 16; ++p) {
            const int g = 16 * v + p, pixel = g / 3, ch = g % 3;
            ab[v][p] = ch == 1 ? 16 + pixel : pixel;
            cidx[v][p] = pixel;
            if (ch == 2) cmask[v] = static_cast<__mmask16>(cmask[v] | (1u << p));
        }
    }
    const int64_t blocks = hw / 16;
    pool.parallel_for(n * blocks, 1024, [&](int64_t begin, int64_t end) {
        __m512i iab[3], ic[3];
        for (int v = 0; v < 3; ++v) {
            iab[v] = _mm512_load_si512(ab[v]);
            ic[v] = _mm512_load_si512(cidx[v]);
        }
        for (int64_t t = begin; t < end; ++t) {
            const int64_t b = t / blocks, i = (t % blocks) * 16;
            const uint32_t* s = src + b * 3 * hw + i;
            uint32_t* d = dst + (b * hw + i) * 3;
            const __m512i x0 = _mm512_loadu_si512(s);
            const __m512i x1 = _mm512_loadu_si512(s + hw);
            const __m512i x2 = _mm512_loadu_si512(s + 2 * hw);
            for (int v = 0; v < 3; ++v) {
                const __m512i two = _mm512_permutex2var_epi32(x0, iab[v], x1);
                const __m512i out = _mm512_mask_permutexvar_epi32(two, cmask[v], ic[v], x2);
                _mm512_storeu_si512(d + 16 * v, out);
            }
        }
    });
    for (int64_t b = 0; b < n; ++b) {
        for (int64_t i = blocks * 16; i < hw; ++i) {
            for (int64_t k = 0; k < 3; ++k) dst[(b * hw + i) * 3 + k] = src[(b * 3 + k) * hw + i];
        }
    }
}
#endif

}  // namespace

void reorder_nchw_to_nhwc(const void* src, void* dst, int64_t n, int64_t c, int64_t hw, size_t elem,
                          const ThreadPool& pool) {
#if defined(__AVX512F__)
    if (c == 3 && elem == 4) {
        interleave3_4byte(static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst), n, hw,
                          pool);
        return;
    }
#endif
    dispatch_elem(elem, [&](auto tag) {
        using T = decltype(tag);
        transpose_batched(static_cast<const T*>(src), static_cast<T*>(dst), n, c, hw, pool);
    });
}

void reorder_nhwc_to_nchw(const void* src, void* dst, int64_t n, int64_t c, int64_t hw, size_t elem,
                          const ThreadPool& pool) {
    dispatch_elem(elem, [&](auto tag) {
        using T = decltype(tag);
        transpose_batched(static_cast<const T*>(src), static_cast<T*>(dst), n, hw, c, pool);
    });
}

bool same_bytes_in_layouts(const Shape& shape) {
    return shape.size() == 4 && (shape[1] == 1 || (shape[2] == 1 && shape[3] == 1));
}

void convert_layout(const Tensor& src, Layout from, Tensor& dst, Layout to, const ThreadPool& pool) {
    LOWBIT_CHECK(src.dtype() == dst.dtype() && src.shape() == dst.shape(),
                 "convert_layout {} {} -> {} {}", dtype_name(src.dtype()), shape_str(src.shape()),
                 dtype_name(dst.dtype()), shape_str(dst.shape()));
    if (from == to || src.numel() == 0) {
        if (src.raw() != dst.raw() && src.nbytes()) std::memcpy(dst.raw(), src.raw(), src.nbytes());
        return;
    }
    LOWBIT_CHECK(src.rank() == 4, "layout change of a rank-{} tensor", src.rank());
    const Shape& s = src.shape();
    const size_t elem = dtype_size(src.dtype());
    if (to == Layout::Nhwc) {
        reorder_nchw_to_nhwc(src.raw(), dst.raw(), s[0], s[1], s[2] * s[3], elem, pool);
    } else {
        reorder_nhwc_to_nchw(src.raw(), dst.raw(), s[0], s[1], s[2] * s[3], elem, pool);
    }
}

}  // namespace lowbit
