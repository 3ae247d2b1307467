// NPY format: magic "\x93NUMPY", major, minor, header length (uint16 LE for 1.0, uint32 LE for
// 2.0/3.0), then an ASCII Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)}
// padded with spaces and ending in '\n' so that the data starts at a multiple of 64 bytes.
#include "data/npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/fs.h"

namespace lowbit {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

struct DescrEntry {
    const char* code;  // without the byte-order character
    DType dtype;
};

constexpr DescrEntry kDescrs[] = {
    {"f2", DType::Float16}, {"f4", DType::Float32}, {"f8", DType::Float64}, {"i1", DType::Int8},
    {"i2", DType::Int16},   {"i4", DType::Int32},   {"i8", DType::Int64},   {"u1", DType::UInt8},
    {"u2", DType::UInt16},  {"u4", DType::UInt32},  {"u8", DType::UInt64},  {"b1", DType::Bool},
};

// Minimal parser for the header dict: finds the value after 'key': and returns it raw.
// numpy writes the keys in a fixed order, but other writers may not, so keys are searched.
bool find_value(const std::string& header, const std::string& key, std::string& value) {
    std::string quoted1 = "'" + key + "'";
    std::string quoted2 = "\"" + key + "\"";
    size_t pos = header.find(quoted1);
    size_t len = quoted1.size();
    if (pos == std::string::npos) {
        pos = header.find(quoted2);
        len = quoted2.size();
    }
    if (pos == std::string::npos) return false;
    pos = header.find(':', pos + len);
    if (pos == std::string::npos) return false;
    ++pos;
    while (pos < header.size() && header[pos] == ' ') ++pos;
    if (pos >= header.size()) return false;
    size_t end = pos;
    if (header[pos] == '(') {
        end = header.find(')', pos);
        if (end == std::string::npos) return false;
        ++end;
    } else if (header[pos] == '\'' || header[pos] == '"') {
        end = header.find(header[pos], pos + 1);
        if (end == std::string::npos) return false;
        ++end;
    } else {
        while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
    }
    value = header.substr(pos, end - pos);
    while (!value.empty() && value.back() == ' ') value.pop_back();
    return true;
}

Result<DType> parse_descr(const std::string& path, std::string descr) {
    if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"')) {
        descr = descr.substr(1, descr.size() - 2);
    }
    if (descr.size() != 3) return unsupported("{}: unsupported NPY descr '{}'", path, descr);
    char order = descr[0];
    std::string code = descr.substr(1);
    for (const DescrEntry& e : kDescrs) {
        if (code != e.code) continue;
        bool single_byte = dtype_size(e.dtype) == 1;
        if (order == '<' || order == '=' || (order == '|' && single_byte)) return e.dtype;
        if (order == '>' && single_byte) return e.dtype;
        return unsupported("{}: big-endian NPY data ('{}') is not supported", path, descr);
    }
    return unsupported("{}: unsupported NPY descr '{}'", path, descr);
}

Result<Shape> parse_shape(const std::string& path, const std::string& text) {
    if (text.size() < 2 || text.front() != '(' || text.back() != ')') {
        return invalid("{}: malformed NPY shape '{}'", path, text);
    }
    Shape shape;
    std::string inner = text.substr(1, text.size() - 2);
    size_t i = 0;
    while (i < inner.size()) {
        while (i < inner.size() && (inner[i] == ' ' || inner[i] == ',')) ++i;
        if (i >= inner.size()) break;
        size_t j = i;
        while (j < inner.size() && inner[j] >= '0' && inner[j] <= '9') ++j;
        // numpy may write Python longs as "3L" in old files.
        if (j == i) return invalid("{}: malformed NPY shape '{}'", path, text);
        shape.push_back(std::stoll(inner.substr(i, j - i)));
        i = j;
        if (i < inner.size() && inner[i] == 'L') ++i;
    }
    return shape;
}

}  // namespace

std::string npy_descr(DType dtype) {
    for (const DescrEntry& e : kDescrs) {
        if (e.dtype == dtype) return (dtype_size(dtype) == 1 ? "|" : "<") + std::string(e.code);
    }
    return "";
}

Result<Tensor> read_npy(const std::string& path) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) return io_error("cannot open {}: {}", path, std::strerror(errno));
    unsigned char pre[10];
    if (std::fread(pre, 1, 8, f.get()) != 8 || std::memcmp(pre, kMagic, kMagicLen) != 0) {
        return invalid("{}: not an NPY file (bad magic)", path);
    }
    int major = pre[6];
    size_t header_len = 0;
    if (major == 1) {
        if (std::fread(pre + 8, 1, 2, f.get()) != 2)
            return invalid("{}: truncated NPY header", path);
        header_len = pre[8] | (static_cast<size_t>(pre[9]) << 8);
    } else if (major == 2 || major == 3) {
        unsigned char l4[4];
        if (std::fread(l4, 1, 4, f.get()) != 4) return invalid("{}: truncated NPY header", path);
        header_len = l4[0] | (static_cast<size_t>(l4[1]) << 8) |
                     (static_cast<size_t>(l4[2]) << 16) | (static_cast<size_t>(l4[3]) << 24);
    } else {
        return unsupported("{}: NPY version {}.{} is not supported", path, major, pre[7]);
    }
    std::string header(header_len, '\0');
    if (std::fread(header.data(), 1, header_len, f.get()) != header_len) {
        return invalid("{}: truncated NPY header", path);
    }
    std::string descr, fortran, shape_text;
    if (!find_value(header, "descr", descr) || !find_value(header, "fortran_order", fortran) ||
        !find_value(header, "shape", shape_text)) {
        return invalid("{}: malformed NPY header '{}'", path, header);
    }
    LOWBIT_ASSIGN(DType dtype, parse_descr(path, descr));
    if (fortran != "False") {
        return unsupported("{}: fortran_order={} NPY arrays are not supported", path, fortran);
    }
    LOWBIT_ASSIGN(Shape shape, parse_shape(path, shape_text));
    for (int64_t d : shape) {
        if (d < 0) return invalid("{}: negative NPY dimension in {}", path, shape_str(shape));
    }
    Tensor t(dtype, shape);
    size_t n = t.nbytes();
    if (n > 0 && std::fread(t.raw(), 1, n, f.get()) != n) {
        return invalid("{}: truncated NPY data: expected {} bytes for {} {}", path, n,
                       dtype_name(dtype), shape_str(shape));
    }
    return t;
}

Status write_npy(const std::string& path, const Tensor& t) {
    std::string descr = npy_descr(t.dtype());
    if (descr.empty()) {
        return unsupported("{}: dtype {} has no NPY representation", path, dtype_name(t.dtype()));
    }
    std::string shape = "(";
    for (size_t i = 0; i < t.rank(); ++i) {
        shape += std::to_string(t.dim(i));
        if (t.rank() == 1 || i + 1 < t.rank()) shape += t.rank() == 1 ? "," : ", ";
    }
    shape += ")";
    std::string dict =
        "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    // Pad with spaces so that magic + version + length + header (incl. '\n') is a multiple of 64.
    size_t prefix = kMagicLen + 2 + 2;
    bool v2 = false;
    size_t total = prefix + dict.size() + 1;
    size_t padded = (total + 63) / 64 * 64;
    if (padded - prefix > 65535) {
        v2 = true;
        prefix = kMagicLen + 2 + 4;
        total = prefix + dict.size() + 1;
        padded = (total + 63) / 64 * 64;
    }
    std::string header = dict + std::string(padded - total, ' ') + "\n";
    std::string head(kMagic, kMagicLen);
    head += static_cast<char>(v2 ? 2 : 1);
    head += static_cast<char>(0);
    size_t hl = header.size();
    head += static_cast<char>(hl & 0xff);
    head += static_cast<char>((hl >> 8) & 0xff);
    if (v2) {
        head += static_cast<char>((hl >> 16) & 0xff);
        head += static_cast<char>((hl >> 24) & 0xff);
    }
    head += header;
    return write_file_atomic_with(path, [&](std::FILE* f) -> Status {
        size_t n = t.nbytes();
        if (std::fwrite(head.data(), 1, head.size(), f) != head.size() ||
            (n > 0 && std::fwrite(t.raw(), 1, n, f) != n)) {
            return io_error("cannot write {}: {}", path, std::strerror(errno));
        }
        return Status::ok();
    });
}

}  // namespace lowbit
