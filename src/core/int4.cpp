#include "core/int4.h"

namespace lowbit {

void pack_int4(const uint8_t* values, int64_t n, uint8_t* packed) {
    for (int64_t k = 0; k < n / 2; ++k) {
        const uint8_t lo = values[2 * k] & 0x0F;
        const uint8_t hi = values[2 * k + 1] & 0x0F;
        packed[k] = static_cast<uint8_t>(lo | (hi << 4));
    }
    if (n % 2) packed[n / 2] = values[n - 1] & 0x0F;
}

std::string pack_int4(const uint8_t* values, int64_t n) {
    std::string out(int4_packed_bytes(n), '\0');
    pack_int4(values, n, reinterpret_cast<uint8_t*>(out.data()));
    return out;
}

void unpack_int4(const uint8_t* packed, int64_t n, bool is_signed, uint8_t* values) {
    for (int64_t i = 0; i < n; ++i) {
        uint8_t v = (packed[i / 2] >> ((i % 2) * 4)) & 0x0F;
        if (is_signed && (v & 0x08)) v = static_cast<uint8_t>(v | 0xF0);  // sign-extend
        values[i] = v;
    }
}

}  // namespace lowbit
