// A plain float GEMM for code outside runtime/ (GPTQ's Gram matrices, quant/gptq.cpp), so that
// oneDNN's headers stay inside runtime/ (src/layers.txt).
#pragma once

#include <cstdint>

#include "core/status.h"

namespace lowbit::cpu {

// C[m, n] = A[m, k] * B[n, k]^T, all row-major with leading dimensions lda, ldb, ldc; C is
// overwritten. oneDNN's sgemm, on the calling thread only (it reads OpenMP's thread count, which
// every ThreadPool thread has set to 1: core/thread_pool.h), so run it inside pool tasks.
Status sgemm_abt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float* c, int64_t ldc);

}  // namespace lowbit::cpu
