#include "calib/calib_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/half.h"
#include "data/image_list.h"
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

// Minimal parser for the .npy header dict: {'descr': '<f4', 'fortran_order': False,
// 'shape': (N, C, H, W), }.
std::string dict_value(const std::string& header, const std::string& key) {
    auto k = header.find("'" + key + "'");
    if (k == std::string::npos) return {};
    auto colon = header.find(':', k);
    if (colon == std::string::npos) return {};
    size_t s = colon + 1;
    while (s < header.size() && std::isspace(static_cast<unsigned char>(header[s]))) ++s;
    if (s >= header.size()) return {};
    if (header[s] == '(') {
        auto e = header.find(')', s);
        return e == std::string::npos ? std::string() : header.substr(s, e - s + 1);
    }
    if (header[s] == '\'') {
        auto e = header.find('\'', s + 1);
        return e == std::string::npos ? std::string() : header.substr(s + 1, e - s - 1);
    }
    auto e = header.find_first_of(",}", s);
    return header.substr(s, e - s);
}

}  // namespace

Result<std::unique_ptr<CalibSource>> open_npy_source(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return io_error("cannot open calibration file '{}'", path);
    auto fail = [&](Status st) -> Result<std::unique_ptr<CalibSource>> {
        std::fclose(f);
        return st;
    };
    unsigned char magic[8];
    if (std::fread(magic, 1, 8, f) != 8 || std::memcmp(magic, "\x93NUMPY", 6) != 0) {
        return fail(invalid("'{}' is not a .npy file", path));
    }
    size_t header_len = 0;
    if (magic[6] == 1) {
        unsigned char b[2];
        if (std::fread(b, 1, 2, f) != 2) return fail(invalid("{}: truncated header", path));
        header_len = b[0] | (static_cast<size_t>(b[1]) << 8);
    } else {
        unsigned char b[4];
        if (std::fread(b, 1, 4, f) != 4) return fail(invalid("{}: truncated header", path));
        header_len = b[0] | (static_cast<size_t>(b[1]) << 8) | (static_cast<size_t>(b[2]) << 16) |
                     (static_cast<size_t>(b[3]) << 24);
    }
    std::string header(header_len, '\0');
    if (std::fread(header.data(), 1, header_len, f) != header_len) {
        return fail(invalid("{}: truncated header", path));
    }
    const size_t offset = (magic[6] == 1 ? 10 : 12) + header_len;
    const std::string descr = dict_value(header, "descr");
    DType dt;
    if (descr == "<f4" || descr == "=f4")
        dt = DType::Float32;
    else if (descr == "<f2" || descr == "=f2")
        dt = DType::Float16;
    else {
        return fail(invalid("{}: calibration data must be float32 (or float16), found dtype '{}'",
                            path, descr));
    }
    if (dict_value(header, "fortran_order").find("True") != std::string::npos) {
        return fail(invalid("{}: fortran_order arrays are not supported", path));
    }
    std::string shape_txt = dict_value(header, "shape");
    Shape shape;
    for (size_t i = 0; i < shape_txt.size();) {
        if (std::isdigit(static_cast<unsigned char>(shape_txt[i]))) {
            size_t j = i;
            while (j < shape_txt.size() && std::isdigit(static_cast<unsigned char>(shape_txt[j])))
                ++j;
            shape.push_back(std::stoll(shape_txt.substr(i, j - i)));
            i = j;
        } else {
            ++i;
        }
    }
    if (shape.size() < 2) {
        return fail(invalid("{}: expected an array [N, ...] of calibration samples, found shape {}",
                            path, shape_str(shape)));
    }
    const int64_t n = shape[0];
    Shape sample(shape.begin() + 1, shape.end());
    std::error_code ec;
    const auto fsize = fs::file_size(path, ec);
    const auto need = offset + static_cast<size_t>(shape_numel(shape)) * dtype_size(dt);
    if (ec || fsize < need) {
        return fail(invalid("{}: file holds {} bytes, shape {} needs {}", path, ec ? 0 : fsize,
                            shape_str(shape), need));
    }
    return std::unique_ptr<CalibSource>(new NpySource(path, f, offset, dt, n, sample));
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
