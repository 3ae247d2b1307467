// Hostile inputs to the readers (issue 14): sizes, counts and offsets from a file are checked
// before anything is allocated, external data stays inside the model's folder, typed JSON is
// read with type checks, and every refusal is a Status whose message names the file and what is
// wrong (never a crash, an exception or a giant allocation).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "calib/calib_source.h"
#include "calib/ranges_file.h"
#include "core/checked.h"
#include "core/fs.h"
#include "core/json_at.h"
#include "data/coco.h"
#include "data/image_list.h"
#include "data/letterbox.h"
#include "data/npy.h"
#include "onnx/model_io.h"
#include "pipeline/run_manifest.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

bool has(const Status& st, const std::string& text) {
    return st.message().find(text) != std::string::npos;
}
#define EXPECT_ERROR(result, text)                                                  \
    do {                                                                            \
        ASSERT_FALSE((result).is_ok()) << "accepted, expected: " << (text);         \
        EXPECT_TRUE(has((result).status(), text)) << (result).status().message();   \
    } while (0)

class Scratch : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("lowbit_hostile_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string put(const std::string& name, const std::string& bytes) {
        const fs::path p = dir_ / name;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << bytes;
        return p.string();
    }
    fs::path dir_;
};

// --- protobuf wire encoding, enough for TensorProto / GraphProto / ModelProto ---------------
void varint(std::string& s, uint64_t v) {
    while (v >= 0x80) {
        s.push_back(static_cast<char>((v & 0x7F) | 0x80));
        v >>= 7;
    }
    s.push_back(static_cast<char>(v));
}
void field_varint(std::string& s, int field, uint64_t v) {
    varint(s, static_cast<uint64_t>(field) << 3);
    varint(s, v);
}
void field_bytes(std::string& s, int field, const std::string& b) {
    varint(s, (static_cast<uint64_t>(field) << 3) | 2);
    varint(s, b.size());
    s += b;
}
struct TensorSpec {
    std::vector<int64_t> dims;
    int dtype = 1;  // FLOAT
    std::string raw;
    bool has_raw = false;
    std::vector<std::pair<std::string, std::string>> external;
};
std::string tensor_proto(const TensorSpec& t) {
    std::string tp;
    for (int64_t d : t.dims) field_varint(tp, 1, static_cast<uint64_t>(d));
    field_varint(tp, 2, static_cast<uint64_t>(t.dtype));
    field_bytes(tp, 8, "w");
    if (t.has_raw) field_bytes(tp, 9, t.raw);
    for (const auto& [k, v] : t.external) {
        std::string e;
        field_bytes(e, 1, k);
        field_bytes(e, 2, v);
        field_bytes(tp, 13, e);
    }
    if (!t.external.empty()) field_varint(tp, 14, 1);  // data_location = EXTERNAL
    return tp;
}
// ModelProto { graph { initializer: t } }
std::string model_with(const TensorSpec& t) {
    std::string g;
    field_bytes(g, 5, tensor_proto(t));
    std::string m;
    field_varint(m, 1, 8);  // ir_version
    field_bytes(m, 7, g);
    return m;
}

// --- core/checked.h ---------------------------------------------------------------------------
TEST(Checked, OverflowNegativeAndRankAreErrors) {
    EXPECT_EQ(*checked_numel({2, 3, 4}, "t"), 24);
    EXPECT_EQ(*checked_numel({}, "t"), 1);
    EXPECT_ERROR(checked_numel({int64_t{1} << 32, int64_t{1} << 32}, "t"), "64 bits");
    EXPECT_ERROR(checked_numel({4, -1}, "t"), "negative dimension");
    EXPECT_ERROR(checked_numel(Shape(65, 1), "t"), "rank 65");
    EXPECT_ERROR(checked_nbytes(DType::Float32, {int64_t{1} << 40}, "t"), "limit");
    int64_t v = 0;
    EXPECT_TRUE(parse_size("4096", &v));
    EXPECT_EQ(v, 4096);
    for (const char* bad : {"", "-5", "abc", "12x", " 1", "99999999999999999999", "+1"}) {
        EXPECT_FALSE(parse_size(bad, &v)) << bad;
    }
}

TEST(Checked, AZeroDimIsAnEmptyTensorHoweverLargeTheOthers) {
    // Found by fuzz_onnx: [2^62, 0] is empty; the byte count must not overflow on the way.
    EXPECT_EQ(*checked_numel({int64_t{1} << 40, int64_t{1} << 40, 0}, "t"), 0);
    EXPECT_EQ(shape_numel({int64_t{1} << 62, 69, 0}), 0);  // no signed overflow on the way (UBSan)
    EXPECT_EQ(*checked_nbytes(DType::Float32, {int64_t{1} << 62, 0}, "t"), 0u);
    Tensor t(DType::Float32, {int64_t{1} << 62, 0});
    EXPECT_EQ(t.nbytes(), 0u);
    TensorSpec spec{{int64_t{1} << 62, 69, 0}, 1, "", false, {}};
    auto m = parse_model(model_with(spec), "", "m.onnx");
    ASSERT_TRUE(m.is_ok()) << m.status().message();
}

TEST(Checked, TensorOfImpossibleShapeThrowsBadAllocNotWraps) {
    EXPECT_THROW(Tensor(DType::Float32, {int64_t{1} << 62, 8}), std::bad_alloc);
    EXPECT_THROW(Tensor(DType::Float32, {-1}), std::bad_alloc);
}

// --- ONNX -------------------------------------------------------------------------------------
TEST(HostileOnnx, DimsWhoseProductOverflowsAreRefused) {
    // 2^32 * 2^32 wraps to 0 in int64: without a check an empty raw_data would "match".
    TensorSpec t{{int64_t{1} << 32, int64_t{1} << 32}, 1, "", true, {}};
    EXPECT_ERROR(parse_model(model_with(t), "", "m.onnx"), "more elements than fit in 64 bits");
}

TEST(HostileOnnx, HugeDimsWithLittleDataAreRefusedBeforeAllocating) {
    TensorSpec t{{1000000000000}, 1, std::string(16, '\0'), true, {}};
    auto r = parse_model(model_with(t), "", "m.onnx");
    EXPECT_ERROR(r, "limit");
    TensorSpec t2{{1000000000}, 1, std::string(16, '\0'), true, {}};  // 4 GB declared, 16 given
    EXPECT_ERROR(parse_model(model_with(t2), "", "m.onnx"), "raw_data has 16 bytes");
    TensorSpec t3{{1000000000}, 1, "", false, {}};  // typed field with no values
    EXPECT_ERROR(parse_model(model_with(t3), "", "m.onnx"), "has 0 values, expected 1000000000");
}

TEST_F(Scratch, ExternalDataInsideTheFolderLoads) {
    std::string w(64, '\0');
    const float vals[2] = {1.5f, -2.0f};
    w.append(reinterpret_cast<const char*>(vals), 8);
    put("sub/w.bin", w);
    const std::string m =
        put("m.onnx", model_with({{2}, 1, "", false,
                                  {{"location", "sub/w.bin"}, {"offset", "64"}, {"length", "8"}}}));
    auto r = load_model(m);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    const Tensor* t = r->graph.initializer("w");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->data<float>()[0], 1.5f);
    EXPECT_EQ(t->data<float>()[1], -2.0f);
}

TEST_F(Scratch, ExternalDataOutsideTheFolderIsRefused) {
    put("secret/passwd", std::string(64, 'S'));
    put("model/w.bin", std::string(64, 'W'));
    auto load = [&](const std::string& location) {
        const std::string m = put("model/m.onnx",
                                  model_with({{4}, 1, "", false, {{"location", location}}}));
        return load_model(m);
    };
    EXPECT_ERROR(load((dir_ / "secret" / "passwd").string()), "absolute path");
    EXPECT_ERROR(load("../secret/passwd"), "leaves the model's folder");
    EXPECT_ERROR(load("sub/../../secret/passwd"), "leaves the model's folder");
    fs::create_directory_symlink(dir_ / "secret", dir_ / "model" / "link");
    EXPECT_ERROR(load("link/passwd"), "outside the model's folder");
    fs::create_symlink(dir_ / "secret" / "passwd", dir_ / "model" / "file_link");
    EXPECT_ERROR(load("file_link"), "outside the model's folder");
    EXPECT_ERROR(load("w.bin/.."), "leaves the model's folder");
    EXPECT_ERROR(load("missing.bin"), "missing.bin");
    EXPECT_ERROR(load("."), "not a file");
    auto ok = load("w.bin");
    EXPECT_TRUE(ok.is_ok()) << ok.status().message();
}

TEST_F(Scratch, ExternalDataOffsetsAndLengthsAreChecked) {
    put("w.bin", std::string(32, 'W'));
    auto load = [&](std::vector<std::pair<std::string, std::string>> kv) {
        kv.insert(kv.begin(), {"location", "w.bin"});
        return load_model(put("m.onnx", model_with({{4}, 1, "", false, kv})));
    };
    EXPECT_ERROR(load({{"offset", "abc"}}), "offset 'abc' is not a non-negative integer");
    EXPECT_ERROR(load({{"offset", "-4"}}), "offset '-4' is not a non-negative integer");
    EXPECT_ERROR(load({{"offset", "99999999999999999999999"}}), "not a non-negative integer");
    EXPECT_ERROR(load({{"length", "1e3"}}), "length '1e3'");
    EXPECT_ERROR(load({{"offset", "24"}}), "holds 32 bytes; offset 24 + 16 bytes");
    EXPECT_ERROR(load({{"offset", "9223372036854775807"}}), "runs past its end");
    EXPECT_ERROR(load({{"length", "12"}}), "length 12 != 16");
    EXPECT_TRUE(load({{"offset", "16"}, {"length", "16"}}).is_ok());
}

// --- NPY --------------------------------------------------------------------------------------
std::string npy_bytes(int major, const std::string& dict, const std::string& data,
                      int64_t declared_len = -1) {
    std::string h = dict + "\n";
    std::string out("\x93NUMPY", 6);
    out += static_cast<char>(major);
    out += '\0';
    const uint64_t len = declared_len >= 0 ? static_cast<uint64_t>(declared_len) : h.size();
    const int nlen = major == 1 ? 2 : 4;
    for (int i = 0; i < nlen; ++i) out += static_cast<char>((len >> (8 * i)) & 0xff);
    return out + h + data;
}

TEST_F(Scratch, NpyDeclaredSizesAreCheckedAgainstTheFile) {
    const std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': ";
    auto both = [&](const std::string& name, const std::string& bytes) {
        const std::string p = put(name, bytes);
        auto a = read_npy(p);
        auto b = calib::open_npy_source(p);
        // One reader: both refuse (or accept) the same file.
        EXPECT_EQ(a.is_ok(), b.is_ok()) << name;
        return a;
    };
    EXPECT_ERROR(both("huge.npy", npy_bytes(1, f4 + "(1000000000000, 1), }", "")), "limit");
    EXPECT_ERROR(both("big.npy", npy_bytes(1, f4 + "(1000000, 3), }", std::string(64, '\0'))),
                 "truncated NPY data");
    EXPECT_ERROR(both("digits.npy", npy_bytes(1, f4 + "(12345678901234567890123456, 1), }", "")),
                 "does not fit in 64 bits");
    EXPECT_ERROR(both("overflow.npy",
                      npy_bytes(1, f4 + "(4294967296, 4294967296, 2), }", "")),
                 "64 bits");
    // An NPY 2.0 header length of 4 GiB - 1: refused from the length, nothing allocated.
    EXPECT_ERROR(both("hlen.npy", npy_bytes(2, f4 + "(2, 1), }", "", 0xFFFFFFFF)),
                 "header length 4294967295 is above the limit");
    EXPECT_ERROR(both("hlen2.npy", npy_bytes(2, f4 + "(2, 1), }", "", 5000)),
                 "truncated NPY header");
    EXPECT_ERROR(both("v9.npy", npy_bytes(9, f4 + "(2, 1), }", "")),
                 "NPY format version 9.0 is not supported");
    EXPECT_ERROR(both("neg.npy", npy_bytes(1, f4 + "(-2, 1), }", "")), "malformed NPY shape");
    EXPECT_ERROR(both("fortran.npy",
                      npy_bytes(1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1, 1), }",
                                std::string(4, '\0'))),
                 "fortran_order");
    EXPECT_ERROR(both("be.npy", npy_bytes(1, "{'descr': '>f4', 'fortran_order': False, "
                                             "'shape': (1, 1), }",
                                          std::string(4, '\0'))),
                 "big-endian");
    auto ok = both("ok.npy", npy_bytes(3, f4 + "(2, 1), }", std::string(8, '\0')));
    EXPECT_TRUE(ok.is_ok()) << ok.status().message();
}

TEST_F(Scratch, CalibrationNpyNamesTheDtypeItRefuses) {
    const std::string p =
        put("i4.npy", npy_bytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1), }",
                                std::string(8, '\0')));
    EXPECT_TRUE(read_npy(p).is_ok());
    EXPECT_ERROR(calib::open_npy_source(p), "must be float32 (or float16), found int32");
}

// --- JSON: ranges files and run step records ---------------------------------------------------
TEST(HostileJson, RangesWithWrongTypesNameFileAndKey) {
    const std::string head = R"({"format": "lowbit-ranges", "tensors": {"x": )";
    EXPECT_ERROR(calib::parse_ranges(head + R"({"amax": 1, "min": "zero"}}})", "r.json"),
                 "r.json: tensors.x.min: expected a number, found a string");
    EXPECT_ERROR(calib::parse_ranges(head + R"({"amax": "1"}}})", "r.json"),
                 "r.json: tensors.x.amax: expected a number, found a string");
    EXPECT_ERROR(calib::parse_ranges(head + R"({"amax": 1, "count": 1.5}}})", "r.json"),
                 "tensors.x.count: expected an integer");
    EXPECT_ERROR(calib::parse_ranges(head + R"({"amax": 1, "group": 1e12}}})", "r.json"),
                 "group");
    EXPECT_ERROR(calib::parse_ranges(head + R"({"amax": -1}}})", "r.json"), "must be >= 0");
    EXPECT_ERROR(calib::parse_ranges(head + R"(7}})", "r.json"),
                 "tensors.x: expected an object, found a number");
    EXPECT_ERROR(calib::parse_ranges(R"({"format": "lowbit-ranges", "tensors": []})", "r.json"),
                 "tensors: expected an object");
    EXPECT_ERROR(calib::parse_ranges(R"({"format": 5})", "r.json"),
                 "format: expected a string, found a number");
    EXPECT_ERROR(calib::parse_ranges("{\"format\": \"lowbit-ranges\", ", "r.json"),
                 "r.json: not valid JSON");
    EXPECT_ERROR(calib::parse_ranges("\"\\udc00\xff\"", "r.json"), "r.json: not valid JSON");
    auto ok = calib::parse_ranges(head + R"({"amax": 2, "count": 3, "group": 1}}})", "r.json");
    ASSERT_TRUE(ok.is_ok()) << ok.status().message();
    EXPECT_EQ(ok->tensors.at("x").min, -2.0);
}

TEST_F(Scratch, DamagedStepRecordIsAnErrorAndTheStepRunsAgain) {
    using namespace pipeline;
    EXPECT_ERROR(parse_step_record(R"({"input_fingerprint": "a", "output_fingerprint": "b",
                                       "seconds": "abc"})", "s.json"),
                 "s.json: seconds: expected a number, found a string");
    EXPECT_ERROR(parse_step_record(R"({"input_fingerprint": 5})", "s.json"),
                 "input_fingerprint: expected a string");
    EXPECT_ERROR(parse_step_record("[]", "s.json"), "expected an object");
    put(".lowbit-run/step.json",
        R"({"input_fingerprint": "a", "output_fingerprint": "b", "seconds": "abc"})");
    Fingerprinter fp;
    StepSpec spec{"step", {{"lowbit", "info"}}, {}, {}};
    auto state = check_step(fp, dir_.string(), spec);
    ASSERT_TRUE(state.is_ok()) << state.status().message();
    EXPECT_EQ(*state, StepState::NeverRun);
}

TEST(HostileJson, JsonAtIntegerRangeIsChecked) {
    const auto doc = nlohmann::json::parse(R"({"a": 18446744073709551615, "b": 1e300, "c": 4})");
    const JsonAt root = json_root(doc, "f.json");
    EXPECT_ERROR(root.at("a")->integer(), "f.json: a: expected an integer that fits in 64 bits");
    EXPECT_ERROR(root.at("b")->integer(), "f.json: b: expected an integer");
    EXPECT_EQ(*root.at("c")->integer(), 4);
    EXPECT_ERROR(root.at("zz"), "missing key zz");
}

// --- COCO -------------------------------------------------------------------------------------
TEST(HostileCoco, DuplicateIdsAreRefusedNamingBothRecords) {
    const std::string cats = R"("categories": [{"id": 1, "name": "a"}])";
    const std::string imgs = R"("images": [{"id": 1}, {"id": 2}])";
    const std::string ann = R"({"id": 7, "image_id": 1, "category_id": 1, "bbox": [0,0,1,1], "area": 1})";
    EXPECT_ERROR(parse_coco_gt("{" + imgs + ", " + cats + R"(, "annotations": [)" + ann + ", " +
                                   ann + "]}",
                               "gt.json"),
                 "gt.json: annotations[0] and annotations[1] have the same id 7");
    EXPECT_ERROR(parse_coco_gt(R"({"images": [{"id": 3}, {"id": 3}], )" + cats +
                                   R"(, "annotations": []})",
                               "gt.json"),
                 "images[0] and images[1] have the same id 3");
    EXPECT_ERROR(parse_coco_gt("{" + imgs + R"(, "categories": [{"id": 1}, {"id": 1}], )" +
                                   R"("annotations": []})",
                               "gt.json"),
                 "categories[0] and categories[1] have the same id 1");
    // Detections get id = index + 1 (COCO.loadRes), so their ids never collide.
    auto dt = parse_coco_results(R"([{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0,0,1,1],
                                      "score": 0.5}, {"id": 1, "image_id": 1, "category_id": 1,
                                      "bbox": [0,0,1,1], "score": 0.4}])",
                                 "dt.json");
    ASSERT_TRUE(dt.is_ok()) << dt.status().message();
    EXPECT_EQ((*dt)[1].id, 2);
}

TEST(HostileCoco, NonFiniteResultsRoundTripAsPythonWritesThem) {
    // Found by fuzz_coco: 1e400 reads as inf, and was written back as "inf" (not JSON).
    auto dt = parse_coco_results(R"([{"image_id": 1, "category_id": 1,
                                      "bbox": [1e400, -1e400, NaN, 2], "score": Infinity}])",
                                 "dt.json");
    ASSERT_TRUE(dt.is_ok()) << dt.status().message();
    const std::string text = coco_results_to_json(*dt);
    EXPECT_NE(text.find("\"bbox\":[Infinity,-Infinity,NaN,2]"), std::string::npos) << text;
    auto back = parse_coco_results(text, "again.json");
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    EXPECT_TRUE(std::isinf((*back)[0].bbox[0]) && (*back)[0].bbox[0] > 0);
    EXPECT_TRUE(std::isnan((*back)[0].bbox[2]));
    EXPECT_TRUE(std::isinf((*back)[0].score));
}

TEST(HostileCoco, BboxOfTheWrongTypeIsNamedAsSuch) {
    EXPECT_ERROR(parse_coco_results(R"([{"image_id": 1, "category_id": 1, "bbox": "0,0,1,1",
                                         "score": 0.5}])", "dt.json"),
                 "'bbox' must be an array of 4 numbers, found a string");
    EXPECT_ERROR(parse_coco_results(R"([{"image_id": 1, "category_id": 1, "bbox": 4,
                                         "score": 0.5}])", "dt.json"),
                 "found a number");
}

// --- image lists and images ---------------------------------------------------------------------
TEST_F(Scratch, ImageListNamesADirectoryAsADirectory) {
    fs::create_directories(dir_ / "sub");
    const std::string list = put("list.txt", "sub\n");
    EXPECT_ERROR(read_image_list(list), "list.txt:1: " + (dir_ / "sub").string() +
                                            " is a directory, not an image file");
    const std::string list2 = put("list2.txt", "# header\nnope.jpg\n");
    EXPECT_ERROR(read_image_list(list2), "list2.txt:2: image");
    EXPECT_ERROR(read_image_list(dir_.string()), "is a directory, not a file");
}

TEST_F(Scratch, TruncatedJpegIsRefusedByName) {
    const std::string src = std::string(LOWBIT_SOURCE_DIR) + "/assets/val/images/000000000014.jpg";
    auto bytes = read_file(src);
    ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
    std::vector<float> out(3 * 64 * 64);
    const std::string whole = put("whole.jpg", *bytes);
    EXPECT_TRUE(load_letterboxed(whole, 64, out.data()).is_ok());
    const std::string cut = put("cut.jpg", bytes->substr(0, bytes->size() * 2 / 3));
    EXPECT_ERROR(load_letterboxed(cut, 64, out.data()), "cut.jpg is a truncated JPEG");
    EXPECT_ERROR(load_letterboxed(dir_.string(), 64, out.data()), "is a directory");
}

// --- files ------------------------------------------------------------------------------------
TEST_F(Scratch, ReadFileRefusesDirectoriesAndFilesAboveItsLimit) {
    EXPECT_ERROR(read_file(dir_.string()), "is a directory, not a file");
    const std::string p = put("big.txt", std::string(100, 'x'));
    EXPECT_ERROR(read_file(p, 50), "above the limit of 50 bytes");
    EXPECT_TRUE(read_file(p, 100).is_ok());
}

TEST_F(Scratch, StaleTempFilesOfDeadProcessesAreRemovedByTheNextWrite) {
    // pid 999999999 is above Linux's largest pid_max (2^22): certainly no live process.
    const std::string stale = put(".out.json.tmp.999999999", "half");
    const std::string live = put(".out.json.tmp." + std::to_string(::getppid()), "other");
    const std::string other = put(".other.json.tmp.999999999", "not ours");
    ASSERT_TRUE(write_file_atomic((dir_ / "out.json").string(), "{}").is_ok());
    EXPECT_FALSE(fs::exists(stale));
    EXPECT_TRUE(fs::exists(live));   // a live process may still be writing it
    EXPECT_TRUE(fs::exists(other));  // another target's temp file is not this write's business
    EXPECT_EQ(*read_file((dir_ / "out.json").string()), "{}");
}

}  // namespace
}  // namespace lowbit
