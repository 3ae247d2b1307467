#include "runtime/kernels/cpu/sgemm.h"

#include <oneapi/dnnl/dnnl.h>

namespace lowbit::cpu {

Status sgemm_abt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float* c, int64_t ldc) {
    if (m <= 0 || n <= 0) return Status::ok();
    const dnnl_status_t st = dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    if (st != dnnl_success) {
        return error(StatusCode::Internal, "oneDNN sgemm {} x {} x {} failed (status {})", m, n, k,
                     static_cast<int>(st));
    }
    return Status::ok();
}

}  // namespace lowbit::cpu
