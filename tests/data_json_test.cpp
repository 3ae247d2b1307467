#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "data/json_sax.h"

namespace lowbit {
namespace {

// Records the events as a compact trace.
struct Trace {
    std::string out;
    bool null() { return out += "n ", true; }
    bool boolean(bool b) { return out += b ? "T " : "F ", true; }
    bool number_integer(int64_t v) { return out += "i" + std::to_string(v) + " ", true; }
    bool number_float(double v) {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "d%.17g ", v);
        return out += buf, true;
    }
    bool string(std::string& s) { return out += "s<" + s + "> ", true; }
    bool key(std::string& s) { return out += "k<" + s + "> ", true; }
    bool start_object() { return out += "{ ", true; }
    bool end_object() { return out += "} ", true; }
    bool start_array() { return out += "[ ", true; }
    bool end_array() { return out += "] ", true; }
};

std::string trace(const std::string& text, JsonSaxResult* res = nullptr) {
    Trace t;
    JsonSaxResult r = parse_json_sax(text, t);
    if (res) *res = r;
    return r.ok ? t.out : "ERR@" + std::to_string(r.position) + ":" + r.message;
}

TEST(JsonSax, Values) {
    EXPECT_EQ(trace(R"( {"a": [1, -2, 3.5, 1e2, true, false, null, "x"], "b": {}, "c": []} )"),
              "{ k<a> [ i1 i-2 d3.5 d100 T F n s<x> ] k<b> { } k<c> [ ] } ");
    EXPECT_EQ(trace(R"(["\u00e9\ud83d\ude00\n\"\\\/"])"),
              "[ s<\xc3\xa9\xf0\x9f\x98\x80\n\"\\/> ] ");
    EXPECT_EQ(trace("[NaN, Infinity, -Infinity]"), "[ dnan dinf d-inf ] ");
    // Correct rounding, as Python's float().
    EXPECT_EQ(trace("[0.1, 123456789012345678901234567890]"),
              "[ d0.10000000000000001 d1.2345678901234568e+29 ] ");
    EXPECT_EQ(trace("[-0, 9223372036854775807]"), "[ i0 i9223372036854775807 ] ");
}

TEST(JsonSax, Errors) {
    EXPECT_EQ(trace("[1, 2"), "ERR@5:unexpected end of input");
    EXPECT_EQ(trace("{\"a\" 1}"), "ERR@5:expected ':'");
    EXPECT_EQ(trace("[1 2]"), "ERR@3:expected ',' or ']'");
    EXPECT_EQ(trace("[01]"), "ERR@2:expected ',' or ']'");
    EXPECT_EQ(trace("[1.]"), "ERR@3:invalid number");
    EXPECT_EQ(trace("[tru]"), "ERR@1:expected a value");
    EXPECT_EQ(trace("[\"a\x01\"]"), "ERR@3:control character in string");
    EXPECT_EQ(trace("[\"\\q\"]"), "ERR@3:invalid escape in string");
    EXPECT_EQ(trace("[] x"), "ERR@3:extra data after the JSON value");
    EXPECT_EQ(trace("{1: 2}"), "ERR@1:expected a string key");
    EXPECT_EQ(trace(""), "ERR@0:unexpected end of input");
}

}  // namespace
}  // namespace lowbit
