// A small, strict, streaming JSON reader for large data files (COCO annotations and results,
// tens of MB): it walks the text once without building a DOM and reports values to a handler.
// Grammar: RFC 8259, plus the NaN / Infinity / -Infinity literals Python's json module writes
// and reads. Numbers are converted exactly as Python does: integers as int64 (larger ones as the
// nearest double), everything else to the correctly rounded double (std::from_chars).
//
// Handler interface (return false to stop; the reader then reports `stopped`):
//   bool null(); bool boolean(bool); bool number_integer(int64_t); bool number_float(double);
//   bool string(std::string&); bool key(std::string&);
//   bool start_object(); bool end_object(); bool start_array(); bool end_array();
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct JsonSaxResult {
    bool ok = true;
    bool stopped = false;  // the handler returned false
    size_t position = 0;   // byte offset of a syntax error
    std::string message;   // what was wrong
};

namespace json_detail {

inline bool is_ws(char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

inline void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

class Reader {
public:
    explicit Reader(std::string_view s) : s_(s) {}

    template <typename Handler>
    JsonSaxResult run(Handler& h) {
        enum Ctx : uint8_t { kObj, kArr };
        std::vector<Ctx> stack;
        bool need_value = true;
        while (true) {
            skip_ws();
            if (need_value) {
                if (i_ >= s_.size()) return error("unexpected end of input");
                const char c = s_[i_];
                if (c == '{') {
                    ++i_;
                    if (!h.start_object()) return stopped();
                    skip_ws();
                    if (i_ < s_.size() && s_[i_] == '}') {
                        ++i_;
                        if (!h.end_object()) return stopped();
                        need_value = false;
                        continue;
                    }
                    stack.push_back(kObj);
                    if (!read_key(h)) return result_;
                    continue;
                }
                if (c == '[') {
                    ++i_;
                    if (!h.start_array()) return stopped();
                    skip_ws();
                    if (i_ < s_.size() && s_[i_] == ']') {
                        ++i_;
                        if (!h.end_array()) return stopped();
                        need_value = false;
                        continue;
                    }
                    stack.push_back(kArr);
                    continue;
                }
                if (!read_scalar(h)) return result_;
                need_value = false;
                continue;
            }
            if (stack.empty()) {
                if (i_ != s_.size()) return error("extra data after the JSON value");
                return result_;
            }
            if (i_ >= s_.size()) return error("unexpected end of input");
            const char c = s_[i_];
            if (c == ',') {
                ++i_;
                if (stack.back() == kObj) {
                    skip_ws();
                    if (!read_key(h)) return result_;
                }
                need_value = true;
            } else if (c == '}' && stack.back() == kObj) {
                ++i_;
                stack.pop_back();
                if (!h.end_object()) return stopped();
            } else if (c == ']' && stack.back() == kArr) {
                ++i_;
                stack.pop_back();
                if (!h.end_array()) return stopped();
            } else {
                return error(stack.back() == kObj ? "expected ',' or '}'" : "expected ',' or ']'");
            }
        }
    }

private:
    void skip_ws() {
        while (i_ < s_.size() && is_ws(s_[i_])) ++i_;
    }

    JsonSaxResult error(const char* msg) {
        result_.ok = false;
        result_.position = i_;
        result_.message = msg;
        return result_;
    }
    JsonSaxResult stopped() {
        result_.ok = false;
        result_.stopped = true;
        result_.position = i_;
        return result_;
    }
    bool fail(const char* msg) {
        error(msg);
        return false;
    }

    template <typename Handler>
    bool read_key(Handler& h) {
        if (i_ >= s_.size() || s_[i_] != '"') return fail("expected a string key");
        if (!read_string()) return false;
        skip_ws();
        if (i_ >= s_.size() || s_[i_] != ':') return fail("expected ':'");
        ++i_;
        if (!h.key(buf_)) {
            stopped();
            return false;
        }
        return true;
    }

    // Reads the string starting at s_[i_] == '"' into buf_.
    bool read_string() {
        ++i_;
        buf_.clear();
        while (true) {
            size_t start = i_;
            while (i_ < s_.size() && s_[i_] != '"' && s_[i_] != '\\' &&
                   static_cast<unsigned char>(s_[i_]) >= 0x20) {
                ++i_;
            }
            buf_.append(s_.data() + start, i_ - start);
            if (i_ >= s_.size()) return fail("unterminated string");
            const char c = s_[i_];
            if (c == '"') {
                ++i_;
                return true;
            }
            if (c != '\\') return fail("control character in string");
            if (++i_ >= s_.size()) return fail("unterminated string");
            const char e = s_[i_++];
            switch (e) {
                case '"': buf_ += '"'; break;
                case '\\': buf_ += '\\'; break;
                case '/': buf_ += '/'; break;
                case 'b': buf_ += '\b'; break;
                case 'f': buf_ += '\f'; break;
                case 'n': buf_ += '\n'; break;
                case 'r': buf_ += '\r'; break;
                case 't': buf_ += '\t'; break;
                case 'u': {
                    uint32_t cp = 0;
                    if (!hex4(cp)) return false;
                    if (cp >= 0xD800 && cp <= 0xDBFF && i_ + 1 < s_.size() && s_[i_] == '\\' &&
                        s_[i_ + 1] == 'u') {
                        size_t save = i_;
                        i_ += 2;
                        uint32_t lo = 0;
                        if (!hex4(lo)) return false;
                        if (lo >= 0xDC00 && lo <= 0xDFFF) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        } else {
                            i_ = save;
                        }
                    }
                    append_utf8(buf_, cp);
                    break;
                }
                default: --i_; return fail("invalid escape in string");
            }
        }
    }

    bool hex4(uint32_t& v) {
        if (i_ + 4 > s_.size()) return fail("truncated \\u escape");
        v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s_[i_++];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= static_cast<uint32_t>(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= static_cast<uint32_t>(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                v |= static_cast<uint32_t>(c - 'A' + 10);
            } else {
                return fail("invalid \\u escape");
            }
        }
        return true;
    }

    bool literal(const char* word) {
        size_t n = std::strlen(word);
        if (s_.compare(i_, n, word) != 0) return false;
        i_ += n;
        return true;
    }

    template <typename Handler>
    bool read_scalar(Handler& h) {
        const char c = s_[i_];
        bool ok = true;
        if (c == '"') {
            if (!read_string()) return false;
            ok = h.string(buf_);
        } else if (c == 't' && literal("true")) {
            ok = h.boolean(true);
        } else if (c == 'f' && literal("false")) {
            ok = h.boolean(false);
        } else if (c == 'n' && literal("null")) {
            ok = h.null();
        } else if (c == 'N' && literal("NaN")) {
            ok = h.number_float(std::numeric_limits<double>::quiet_NaN());
        } else if (c == 'I' && literal("Infinity")) {
            ok = h.number_float(std::numeric_limits<double>::infinity());
        } else if (c == '-' && s_.compare(i_, 9, "-Infinity") == 0) {
            i_ += 9;
            ok = h.number_float(-std::numeric_limits<double>::infinity());
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            return read_number(h);
        } else {
            return fail("expected a value");
        }
        if (!ok) stopped();
        return ok;
    }

    template <typename Handler>
    bool read_number(Handler& h) {
        const size_t start = i_;
        auto digit = [&](size_t k) { return k < s_.size() && s_[k] >= '0' && s_[k] <= '9'; };
        if (s_[i_] == '-') ++i_;
        if (!digit(i_)) return fail("invalid number");
        if (s_[i_] == '0') {
            ++i_;
        } else {
            while (digit(i_)) ++i_;
        }
        bool integral = true;
        if (i_ < s_.size() && s_[i_] == '.') {
            integral = false;
            ++i_;
            if (!digit(i_)) return fail("invalid number");
            while (digit(i_)) ++i_;
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            integral = false;
            ++i_;
            if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (!digit(i_)) return fail("invalid number");
            while (digit(i_)) ++i_;
        }
        const char* b = s_.data() + start;
        const char* e = s_.data() + i_;
        bool ok = true;
        if (integral) {
            int64_t v = 0;
            auto r = std::from_chars(b, e, v);
            if (r.ec == std::errc() && r.ptr == e) {
                ok = h.number_integer(v);
                if (!ok) stopped();
                return ok;
            }
        }
        double d = 0;
        auto r = std::from_chars(b, e, d);
        if (r.ptr != e) return fail("invalid number");
        // Out of range: Python's float() gives +-inf (or 0 for underflow), as from_chars' value
        // would be left untouched; reproduce that.
        if (r.ec == std::errc::result_out_of_range) {
            bool neg = *b == '-';
            bool tiny = false;
            for (const char* p = b; p < e; ++p) {
                if (*p == 'e' || *p == 'E') tiny = p[1] == '-';
            }
            d = tiny ? (neg ? -0.0 : 0.0)
                     : (neg ? -std::numeric_limits<double>::infinity()
                            : std::numeric_limits<double>::infinity());
        }
        ok = h.number_float(d);
        if (!ok) stopped();
        return ok;
    }

    std::string_view s_;
    size_t i_ = 0;
    std::string buf_;
    JsonSaxResult result_;
};

}  // namespace json_detail

// Parses `text`, reporting values to `handler` in document order.
template <typename Handler>
JsonSaxResult parse_json_sax(std::string_view text, Handler& handler) {
    json_detail::Reader r(text);
    return r.run(handler);
}

}  // namespace lowbit
