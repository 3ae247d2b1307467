#include "data/calib_tensor.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/fs.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "data/letterbox.h"

namespace lowbit {

namespace {

// NPY v1.0 header for float32 C-order [n, 3, s, s], padded so the data starts at a multiple of
// 64 (what numpy.save writes).
std::string npy_header_f32(int64_t n, int64_t s) {
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) +
                       ", 3, " + std::to_string(s) + ", " + std::to_string(s) + "), }";
    size_t total = 10 + dict.size() + 1;
    size_t padded = (total + 63) / 64 * 64;
    std::string header = dict + std::string(padded - total, ' ') + "\n";
    std::string out("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>((header.size() >> 8) & 0xff);
    return out + header;
}

}  // namespace

Status write_calib_npy(const std::vector<std::string>& images, const std::string& out_path,
                       const CalibOptions& opts, Progress* progress) {
    if (images.empty()) return invalid("no calibration images");
    if (opts.imgsz <= 0) return invalid("--imgsz must be positive, got {}", opts.imgsz);
    const int64_t s = opts.imgsz;
    const size_t per_image = static_cast<size_t>(3 * s * s);
    ThreadPool pool(opts.n_threads);
    const size_t batch = static_cast<size_t>(std::max(1, pool.size())) * 2;
    std::vector<float> buf(batch * per_image);
    std::vector<Status> status(batch);

    return write_file_atomic_with(out_path, [&](std::FILE* f) -> Status {
        std::string header = npy_header_f32(static_cast<int64_t>(images.size()), s);
        if (std::fwrite(header.data(), 1, header.size(), f) != header.size()) {
            return io_error("cannot write {}: {}", out_path, std::strerror(errno));
        }
        for (size_t b0 = 0; b0 < images.size(); b0 += batch) {
            const size_t nb = std::min(batch, images.size() - b0);
            pool.parallel_for(static_cast<int64_t>(nb), 1, [&](int64_t i0, int64_t i1) {
                for (int64_t i = i0; i < i1; ++i) {
                    auto r = load_letterboxed(images[b0 + static_cast<size_t>(i)], opts.imgsz,
                                              buf.data() + i * per_image);
                    status[static_cast<size_t>(i)] = r.status();
                    if (progress && r.is_ok()) progress->advance();
                }
            });
            for (size_t i = 0; i < nb; ++i) LOWBIT_TRY(status[i]);
            size_t bytes = nb * per_image * sizeof(float);
            if (std::fwrite(buf.data(), 1, bytes, f) != bytes) {
                return io_error("cannot write {}: {}", out_path, std::strerror(errno));
            }
        }
        return Status::ok();
    });
}

}  // namespace lowbit
