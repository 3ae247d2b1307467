// NPY format: magic "\x93NUMPY", major, minor, header length (uint16 LE for 1.0, uint32 LE for
// 2.0/3.0), then an ASCII Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)}
// padded with spaces and ending in '\n' so that the data starts at a multiple of 64 bytes.
#include "data/npy.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/checked.h"
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
        int64_t d = 0;
        if (j == i) return invalid("{}: malformed NPY shape '{}'", path, text);
        if (!parse_size(inner.substr(i, j - i), &d)) {
            return invalid("{}: NPY dimension '{}' does not fit in 64 bits", path,
                           inner.substr(i, j - i));
        }
        if (shape.size() == kMaxTensorRank) {
            return invalid("{}: NPY shape has more than {} dimensions", path, kMaxTensorRank);
        }
        shape.push_back(d);
        i = j;
        // numpy may write Python longs as "3L" in old files.
        if (i < inner.size() && inner[i] == 'L') ++i;
        if (i < inner.size() && inner[i] != ',' && inner[i] != ' ') {
            return invalid("{}: malformed NPY shape '{}'", path, text);
        }
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

Result<NpyHeader> read_npy_header(std::FILE* f, const std::string& path, uint64_t file_size) {
    unsigned char pre[12];
    if (std::fread(pre, 1, 8, f) != 8 || std::memcmp(pre, kMagic, kMagicLen) != 0) {
        return invalid("{}: not an NPY file (bad magic)", path);
    }
    const int major = pre[6];
    size_t prefix = 0;
    uint64_t header_len = 0;
    if (major == 1) {
        if (std::fread(pre + 8, 1, 2, f) != 2) return invalid("{}: truncated NPY header", path);
        header_len = pre[8] | (static_cast<uint64_t>(pre[9]) << 8);
        prefix = 10;
    } else if (major == 2 || major == 3) {
        if (std::fread(pre + 8, 1, 4, f) != 4) return invalid("{}: truncated NPY header", path);
        header_len = pre[8] | (static_cast<uint64_t>(pre[9]) << 8) |
                     (static_cast<uint64_t>(pre[10]) << 16) |
                     (static_cast<uint64_t>(pre[11]) << 24);
        prefix = 12;
    } else {
        return unsupported("{}: NPY format version {}.{} is not supported (only 1.0, 2.0 and 3.0)",
                           path, major, static_cast<int>(pre[7]));
    }
    // The header length is checked against the file and a limit before it is allocated.
    if (header_len > kMaxNpyHeaderBytes) {
        return invalid("{}: NPY header length {} is above the limit of {} bytes", path, header_len,
                       kMaxNpyHeaderBytes);
    }
    if (prefix + header_len > file_size) {
        return invalid("{}: truncated NPY header: it declares {} bytes, the file has {} after the "
                       "preamble", path, header_len, file_size - std::min<uint64_t>(file_size, prefix));
    }
    std::string header(static_cast<size_t>(header_len), '\0');
    if (std::fread(header.data(), 1, header.size(), f) != header.size()) {
        return invalid("{}: truncated NPY header", path);
    }
    std::string descr, fortran, shape_text;
    if (!find_value(header, "descr", descr) || !find_value(header, "fortran_order", fortran) ||
        !find_value(header, "shape", shape_text)) {
        std::string shown = header.substr(0, 200);
        for (char& c : shown) {
            if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
        }
        return invalid("{}: malformed NPY header '{}' (needs 'descr', 'fortran_order' and "
                       "'shape')", path, shown);
    }
    NpyHeader h;
    LOWBIT_ASSIGN(h.dtype, parse_descr(path, descr));
    if (fortran == "True") {
        return unsupported("{}: fortran_order=True NPY arrays are not supported", path);
    }
    if (fortran != "False") return invalid("{}: malformed NPY fortran_order '{}'", path, fortran);
    LOWBIT_ASSIGN(h.shape, parse_shape(path, shape_text));
    LOWBIT_ASSIGN(h.data_bytes, checked_nbytes(h.dtype, h.shape, path));
    h.data_offset = prefix + header_len;
    if (h.data_offset + h.data_bytes > file_size) {
        return invalid("{}: truncated NPY data: {} {} needs {} bytes, the file holds {}", path,
                       dtype_name(h.dtype), shape_str(h.shape), h.data_bytes,
                       file_size - h.data_offset);
    }
    return h;
}

Result<Tensor> read_npy(const std::string& path) {
    LOWBIT_ASSIGN(const uint64_t file_size, regular_file_size(path));
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) return io_error("cannot open {}: {}", path, std::strerror(errno));
    LOWBIT_ASSIGN(NpyHeader h, read_npy_header(f.get(), path, file_size));
    Tensor t(h.dtype, h.shape);
    const size_t n = static_cast<size_t>(h.data_bytes);
    if (n > 0 && std::fread(t.raw(), 1, n, f.get()) != n) {
        return invalid("{}: truncated NPY data: expected {} bytes for {} {}", path, n,
                       dtype_name(h.dtype), shape_str(h.shape));
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
