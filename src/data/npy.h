// NPY files (numpy's .npy format, versions 1.0/2.0/3.0): little-endian, C-order arrays of the
// numeric dtypes lowbit::Tensor holds. Writing produces version 1.0 (2.0 only when the header
// would not fit in 64 KiB), atomically.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/status.h"
#include "core/tensor.h"

namespace lowbit {

// Largest NPY header accepted (numpy itself refuses headers above 10,000 bytes by default).
inline constexpr uint64_t kMaxNpyHeaderBytes = uint64_t{1} << 20;

// What an NPY header says, checked: a supported dtype, a shape whose byte size fits (core/
// checked.h), and a file that holds every data byte.
struct NpyHeader {
    DType dtype = DType::Undefined;
    Shape shape;
    uint64_t data_offset = 0;  // where the data starts
    uint64_t data_bytes = 0;   // numel * dtype size
};

// Reads and checks the header of the open .npy file `f` (at its start) whose size is
// `file_size`; leaves `f` at the first data byte. The one NPY header reader: read_npy and the
// streaming calibration source both use it, so they accept and refuse the same files.
Result<NpyHeader> read_npy_header(std::FILE* f, const std::string& path, uint64_t file_size);

// Reads a whole .npy file. Supported descr: <f2 <f4 <f8 <i2 <i4 <i8 <u2 <u4 <u8 |i1 |u1 |b1
// (also '=' byte order). Big-endian data and fortran_order=True are rejected with a message
// naming the file.
Result<Tensor> read_npy(const std::string& path);

// Writes `t` as .npy (C order, little-endian). float8 dtypes have no numpy descr and are
// rejected; bfloat16 too.
Status write_npy(const std::string& path, const Tensor& t);

// The numpy descr string for a dtype ("<f4"), or "" when numpy has none.
std::string npy_descr(DType dtype);

}  // namespace lowbit
