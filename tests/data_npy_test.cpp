#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "core/fs.h"
#include "data/npy.h"

namespace lowbit {
namespace {

std::string temp_file(const std::string& name) {
    return (std::filesystem::temp_directory_path() /
            (name + "." + std::to_string(::testing::UnitTest::GetInstance()->random_seed())))
        .string();
}

TEST(Npy, RoundTripFloat32) {
    std::string path = temp_file("lowbit_npy_f32.npy");
    Tensor t = Tensor::from_vector<float>(DType::Float32, {2, 3}, {1, 2, 3, 4.5f, -5, 6});
    ASSERT_TRUE(write_npy(path, t).is_ok());
    auto r = read_npy(path);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(r->dtype(), DType::Float32);
    EXPECT_EQ(r->shape(), (Shape{2, 3}));
    for (int i = 0; i < 6; ++i) EXPECT_EQ(r->data<float>()[i], t.data<float>()[i]);
    // Header is padded so the data starts at a multiple of 64, as numpy does.
    auto bytes = read_file(path);
    ASSERT_TRUE(bytes.is_ok());
    EXPECT_EQ((bytes->size() - 24) % 64, 0u);
    EXPECT_NE(bytes->find("'shape': (2, 3), }"), std::string::npos);
    std::remove(path.c_str());
}

TEST(Npy, RoundTripIntegerAndScalarShapes) {
    std::string path = temp_file("lowbit_npy_i64.npy");
    Tensor t = Tensor::from_vector<int64_t>(DType::Int64, {3}, {-1, 0, 1LL << 40});
    ASSERT_TRUE(write_npy(path, t).is_ok());
    auto bytes = read_file(path);
    ASSERT_TRUE(bytes.is_ok());
    EXPECT_NE(bytes->find("'shape': (3,), }"), std::string::npos);
    auto r = read_npy(path);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(r->dtype(), DType::Int64);
    EXPECT_EQ(r->data<int64_t>()[2], 1LL << 40);

    Tensor s = Tensor::from_vector<uint8_t>(DType::UInt8, {}, {7});
    ASSERT_TRUE(write_npy(path, s).is_ok());
    auto rs = read_npy(path);
    ASSERT_TRUE(rs.is_ok()) << rs.status().message();
    EXPECT_EQ(rs->rank(), 0u);
    EXPECT_EQ(rs->data<uint8_t>()[0], 7);
    std::remove(path.c_str());
}

TEST(Npy, ReadsVersion2Header) {
    std::string path = temp_file("lowbit_npy_v2.npy");
    std::string dict = "{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}";
    std::string header = dict + std::string(64 - 12 - dict.size() % 64 - 1 + 64, ' ') + "\n";
    header = header.substr(0, (12 + header.size()) / 64 * 64 - 12 - 1) + "\n";
    std::string file = std::string("\x93NUMPY\x02\x00", 8);
    uint32_t hl = static_cast<uint32_t>(header.size());
    file.append(reinterpret_cast<const char*>(&hl), 4);
    file += header;
    float vals[2] = {0.25f, -8.0f};
    file.append(reinterpret_cast<const char*>(vals), sizeof(vals));
    ASSERT_TRUE(write_file_atomic(path, file).is_ok());
    auto r = read_npy(path);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(r->shape(), (Shape{2}));
    EXPECT_EQ(r->data<float>()[1], -8.0f);
    std::remove(path.c_str());
}

TEST(Npy, ErrorsNameTheFile) {
    std::string path = temp_file("lowbit_npy_bad.npy");
    ASSERT_TRUE(write_file_atomic(path, "not numpy at all").is_ok());
    auto r = read_npy(path);
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find(path), std::string::npos);

    Tensor t = Tensor::from_vector<float>(DType::Float32, {4}, {1, 2, 3, 4});
    ASSERT_TRUE(write_npy(path, t).is_ok());
    auto bytes = read_file(path);
    ASSERT_TRUE(bytes.is_ok());
    ASSERT_TRUE(write_file_atomic(path, bytes->substr(0, bytes->size() - 4)).is_ok());
    auto truncated = read_npy(path);
    ASSERT_FALSE(truncated.is_ok());
    EXPECT_NE(truncated.status().message().find("truncated"), std::string::npos);

    std::string big = bytes->substr(0, bytes->size());
    size_t p = big.find("'<f4'");
    big.replace(p, 5, "'>f4'");
    ASSERT_TRUE(write_file_atomic(path, big).is_ok());
    EXPECT_FALSE(read_npy(path).is_ok());

    EXPECT_FALSE(read_npy(path + ".missing").is_ok());
    std::remove(path.c_str());
}

TEST(Fs, AtomicWriteLeavesNoTempFile) {
    std::string dir = temp_file("lowbit_fs_dir");
    std::filesystem::create_directories(dir);
    std::string path = dir + "/out.json";
    ASSERT_TRUE(write_file_atomic(path, "{}\n").is_ok());
    ASSERT_TRUE(write_file_atomic(path, "{\"a\": 1}\n").is_ok());
    auto r = read_file(path);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(*r, "{\"a\": 1}\n");
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        (void)e;
        ++n;
    }
    EXPECT_EQ(n, 1);
    EXPECT_FALSE(write_file_atomic(dir + "/no/such/dir/x", "x").is_ok());
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lowbit
