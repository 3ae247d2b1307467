#include "data/letterbox.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace lowbit {

namespace {

// v / 255.0f for every byte value: the same float32 division NumPy performs on the uint8 image
// cast to float32 (research/seed-spec.md §3.3), looked up instead of recomputed.
const std::array<float, 256>& unit_lut() {
    static const std::array<float, 256> lut = [] {
        std::array<float, 256> t{};
        for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = static_cast<float>(i) / 255.0f;
        return t;
    }();
    return lut;
}

}  // namespace

Letterbox letterbox_geometry(int orig_h, int orig_w, int size) {
    Letterbox lb;
    lb.orig_h = orig_h;
    lb.orig_w = orig_w;
    lb.size = size;
    // Python: r = min(S / h, S / w) in double; new = int(round(w * r)) rounds half to even,
    // which std::nearbyint does in the default rounding mode (std::round would not).
    lb.scale = std::min(static_cast<double>(size) / orig_h, static_cast<double>(size) / orig_w);
    lb.new_w = static_cast<int>(std::nearbyint(orig_w * lb.scale));
    lb.new_h = static_cast<int>(std::nearbyint(orig_h * lb.scale));
    // A 1-pixel-wide sliver of a huge image would round to 0 (cv2 would throw): keep 1 pixel.
    lb.new_w = std::clamp(lb.new_w, 1, size);
    lb.new_h = std::clamp(lb.new_h, 1, size);
    int pad_w = size - lb.new_w;
    int pad_h = size - lb.new_h;
    // Ultralytics: left = round(dw/2 - 0.1), right = round(dw/2 + 0.1): floor / ceil of a .5.
    lb.pad_left = pad_w / 2;
    lb.pad_right = pad_w - lb.pad_left;
    lb.pad_top = pad_h / 2;
    lb.pad_bottom = pad_h - lb.pad_top;
    return lb;
}

Status letterbox_bgr(const uint8_t* bgr, int h, int w, size_t stride, int size, float* out,
                     Letterbox* info) {
    if (h <= 0 || w <= 0) return invalid("cannot letterbox an empty image ({}x{})", w, h);
    if (size <= 0) return invalid("letterbox size must be positive, got {}", size);
    Letterbox lb = letterbox_geometry(h, w, size);
    cv::Mat src(h, w, CV_8UC3, const_cast<uint8_t*>(bgr), stride);
    cv::Mat resized;
    try {
        // cv::resize copies when the size does not change, as the seed's always-called resize.
        cv::resize(src, resized, cv::Size(lb.new_w, lb.new_h), 0, 0, cv::INTER_LINEAR);
    } catch (const cv::Exception& e) {
        return invalid("OpenCV resize {}x{} -> {}x{} failed: {}", w, h, lb.new_w, lb.new_h,
                       e.what());
    }
    const auto& lut = unit_lut();
    const float pad = lut[114];
    const size_t plane = static_cast<size_t>(size) * size;
    for (int c = 0; c < 3; ++c) std::fill(out + c * plane, out + (c + 1) * plane, pad);
    for (int y = 0; y < lb.new_h; ++y) {
        const uint8_t* row = resized.ptr<uint8_t>(y);
        size_t o = static_cast<size_t>(y + lb.pad_top) * size + lb.pad_left;
        float* r = out + o;              // RGB plane 0 <- BGR channel 2
        float* g = out + plane + o;      // plane 1 <- channel 1
        float* b = out + 2 * plane + o;  // plane 2 <- channel 0
        for (int x = 0; x < lb.new_w; ++x) {
            b[x] = lut[row[3 * x + 0]];
            g[x] = lut[row[3 * x + 1]];
            r[x] = lut[row[3 * x + 2]];
        }
    }
    if (info) *info = lb;
    return Status::ok();
}

namespace {

// libjpeg decodes a truncated JPEG (grey below the cut) with only an unnamed warning on stderr
// ("Premature end of JPEG file"). A complete baseline or progressive JPEG has an EOI marker
// (FF D9) after its last start-of-scan (FF DA); one without is refused with its name.
Status check_jpeg_complete(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return io_error("cannot open image {}: {}", path, std::strerror(errno));
    unsigned char soi[3] = {0, 0, 0};
    const bool jpeg = std::fread(soi, 1, 3, f) == 3 && soi[0] == 0xFF && soi[1] == 0xD8 &&
                      soi[2] == 0xFF;
    if (!jpeg) {
        std::fclose(f);
        return Status::ok();  // not a JPEG: OpenCV's decoders report their own errors
    }
    std::string bytes("\xFF\xD8\xFF", 3);
    char buf[1 << 16];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) bytes.append(buf, n);
    std::fclose(f);
    const size_t sos = bytes.rfind("\xFF\xDA");
    if (sos == std::string::npos || bytes.find("\xFF\xD9", sos + 2) == std::string::npos) {
        return invalid("image {} is a truncated JPEG (no end-of-image marker after its last scan; "
                       "{} bytes)", path, bytes.size());
    }
    return Status::ok();
}

}  // namespace

Result<Letterbox> load_letterboxed(const std::string& path, int size, float* out) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        return io_error("image {} is a directory, not an image file", path);
    }
    if (!std::filesystem::is_regular_file(path, ec)) {
        return io_error("image {} does not exist or is not a file", path);
    }
    LOWBIT_TRY(check_jpeg_complete(path));
    cv::Mat img;
    try {
        // IMREAD_COLOR: 8-bit BGR, EXIF orientation applied, gray and alpha mapped to 3
        // channels, exactly cv2.imread's default.
        img = cv::imread(path, cv::IMREAD_COLOR);
    } catch (const cv::Exception& e) {
        return invalid("cannot decode image {}: {}", path, e.what());
    }
    if (img.empty()) return invalid("cannot decode image {} (corrupt or unsupported format)", path);
    Letterbox lb;
    Status st = letterbox_bgr(img.ptr<uint8_t>(0), img.rows, img.cols, img.step[0], size, out, &lb);
    if (!st.is_ok()) return st.with_context(path);
    return lb;
}

void unletterbox_xyxy(const Letterbox& lb, float box[4]) {
    const float scale = static_cast<float>(lb.scale);
    const float pl = static_cast<float>(lb.pad_left);
    const float pt = static_cast<float>(lb.pad_top);
    const float w = static_cast<float>(lb.orig_w);
    const float h = static_cast<float>(lb.orig_h);
    box[0] = std::clamp((box[0] - pl) / scale, 0.0f, w);
    box[2] = std::clamp((box[2] - pl) / scale, 0.0f, w);
    box[1] = std::clamp((box[1] - pt) / scale, 0.0f, h);
    box[3] = std::clamp((box[3] - pt) / scale, 0.0f, h);
}

}  // namespace lowbit
