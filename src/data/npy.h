// NPY files (numpy's .npy format, versions 1.0/2.0/3.0): little-endian, C-order arrays of the
// numeric dtypes lowbit::Tensor holds. Writing produces version 1.0 (2.0 only when the header
// would not fit in 64 KiB), atomically.
#pragma once

#include <string>

#include "core/status.h"
#include "core/tensor.h"

namespace lowbit {

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
