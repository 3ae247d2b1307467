#include "calib/calib_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/fs.h"
#include "core/half.h"
#include "data/image_list.h"
#include "data/npy.h"
#include "data/letterbox.h"

namespace lowbit::calib {

namespace {

namespace fs = std::filesystem;

// Streams samples of an .npy array [N, ...] from disk, one per read().
class NpySource : public CalibSource {
public:
    NpySource(std::string path, std::FILE* f, size_t data_offset, DType dtype, int64_t n,
              Shape sample)
        : path_(std::move(path)),
          f_(f),
          offset_(data_offset),
          dtype_(dtype),
          n_(n),
          sample_(std::move(sample)) {}
    ~NpySource() override {
        if (f_) std::fclose(f_);
    }
    int64_t size() const override { return n_; }
    const Shape& sample_shape() const override { return sample_; }
    std::string describe() const override {
        return fmt::format("{} ({} samples of {})", path_, n_, shape_str(sample_));
    }
    Status read(int64_t index, float* dst) override {
        if (index < 0 || index >= n_) return invalid("{}: sample {} out of range", path_, index);
        const int64_t count = shape_numel(sample_);
        const size_t elem = dtype_size(dtype_);
        const size_t bytes = static_cast<size_t>(count) * elem;
        const long long pos = static_cast<long long>(offset_ + bytes * static_cast<size_t>(index));
        if (fseeko(f_, static_cast<off_t>(pos), SEEK_SET) != 0) {
            return io_error("{}: cannot seek to sample {}", path_, index);
        }
        if (dtype_ == DType::Float32) {
            if (std::fread(dst, 1, bytes, f_) != bytes) {
                return io_error("{}: file ends inside sample {}", path_, index);
            }
            return Status::ok();
        }
        buf_.resize(bytes);
        if (std::fread(buf_.data(), 1, bytes, f_) != bytes) {
            return io_error("{}: file ends inside sample {}", path_, index);
        }
        const uint16_t* h = reinterpret_cast<const uint16_t*>(buf_.data());
        for (int64_t i = 0; i < count; ++i) dst[i] = half_to_float(h[i]);
        return Status::ok();
    }

private:
    std::string path_;
    std::FILE* f_;
    size_t offset_;
    DType dtype_;
    int64_t n_;
    Shape sample_;
    std::vector<char> buf_;
};

class ImageSource : public CalibSource {
public:
    ImageSource(std::vector<std::string> images, int64_t size)
        : images_(std::move(images)), size_(size), sample_{3, size, size} {}
    int64_t size() const override { return static_cast<int64_t>(images_.size()); }
    const Shape& sample_shape() const override { return sample_; }
    std::string describe() const override {
        return fmt::format("{} images letterboxed to {}x{}", images_.size(), size_, size_);
    }
    Status read(int64_t index, float* dst) override {
        auto lb =
            load_letterboxed(images_.at(static_cast<size_t>(index)), static_cast<int>(size_), dst);
        return lb.is_ok() ? Status::ok() : lb.status();
    }

private:
    std::vector<std::string> images_;
    int64_t size_;
    Shape sample_;
};

}  // namespace

Result<std::unique_ptr<CalibSource>> open_npy_source(const std::string& path) {
    // The header goes through data/npy.h's one reader (sizes checked against the file), so a
    // calibration file is accepted or refused exactly as `read_npy` would.
    LOWBIT_ASSIGN(const uint64_t file_size, regular_file_size(path));
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return io_error("cannot open calibration file '{}': {}", path, std::strerror(errno));
    auto header = read_npy_header(f, path, file_size);
    if (!header) {
        std::fclose(f);
        return header.status();
    }
    const NpyHeader& h = *header;
    if (h.dtype != DType::Float32 && h.dtype != DType::Float16) {
        std::fclose(f);
        return invalid("{}: calibration data must be float32 (or float16), found {}", path,
                       dtype_name(h.dtype));
    }
    if (h.shape.size() < 2) {
        std::fclose(f);
        return invalid("{}: expected an array [N, ...] of calibration samples, found shape {}",
                       path, shape_str(h.shape));
    }
    const int64_t n = h.shape[0];
    Shape sample(h.shape.begin() + 1, h.shape.end());
    return std::unique_ptr<CalibSource>(
        new NpySource(path, f, static_cast<size_t>(h.data_offset), h.dtype, n, sample));
}

Result<std::unique_ptr<CalibSource>> open_image_source(std::vector<std::string> images,
                                                       int64_t imgsz) {
    if (images.empty()) return invalid("no calibration images given");
    if (imgsz <= 0) return invalid("--imgsz must be positive, got {}", imgsz);
    return std::unique_ptr<CalibSource>(new ImageSource(std::move(images), imgsz));
}

Result<std::vector<std::string>> collect_images(const std::vector<std::string>& paths) {
    std::vector<std::string> out;
    for (const auto& p : paths) {
        std::error_code ec;
        if (p.empty()) return invalid("empty calibration image path");
        if (fs::is_directory(p, ec)) {
            LOWBIT_ASSIGN(std::vector<std::string> found, list_image_dir(p));
            out.insert(out.end(), found.begin(), found.end());
        } else if (fs::is_regular_file(p, ec)) {
            out.push_back(p);
        } else {
            return io_error("calibration image path '{}' does not exist", p);
        }
    }
    if (out.empty()) return invalid("no calibration images found");
    return out;
}

}  // namespace lowbit::calib
