// ONNX reading/writing and executor load-time errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/fs.h"
#include "onnx/model_io.h"
#include "runtime/executor.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

// y = Relu(x + b), x: [1, 3, 4, 5] float32, b: initializer [3, 1, 1].
Model tiny_model() {
    Model m;
    m.ir_version = 8;
    m.opsets = {{"", 13}};
    m.producer_name = "lowbit-test";
    m.metadata = {{"author", "test"}, {"purpose", "round trip"}};
    Graph& g = m.graph;
    g.name = "tiny";
    ValueInfo x{"x", DType::Float32, true, {{1, ""}, {3, ""}, {4, ""}, {5, ""}}, "", ""};
    ValueInfo y{"y", DType::Float32, true, {{1, ""}, {3, ""}, {4, ""}, {5, ""}}, "", ""};
    g.inputs = {x};
    g.outputs = {y};
    g.initializers.emplace_back("b", Tensor::from_vector<float>(DType::Float32, {3, 1, 1},
                                                                 {0.5f, -1.0f, 2.0f}));
    Node add{"add0", "Add", "", {"x", "b"}, {"s"}, {}, ""};
    Node relu{"relu0", "Relu", "", {"s"}, {"y"}, {}, ""};
    g.nodes = {add, relu};
    return m;
}

std::string temp_path(const std::string& name) {
    return (fs::temp_directory_path() / ("lowbit_io_test_" + name)).string();
}

Tensor ramp(const Shape& s) {
    Tensor t(DType::Float32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i % 7) - 3.0f;
    return t;
}

TEST(OnnxIo, WriteReadRunRoundTrip) {
    Model m = tiny_model();
    const std::string p = temp_path("tiny.onnx");
    ASSERT_TRUE(save_model(m, p).is_ok());
    auto r = load_model(p);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(r->graph.nodes.size(), 2u);
    EXPECT_EQ(r->default_opset(), 13);
    EXPECT_EQ(r->metadata, m.metadata);
    EXPECT_EQ(r->producer_name, "lowbit-test");
    ASSERT_NE(r->graph.initializer("b"), nullptr);

    auto e1 = Executor::create(m);
    auto e2 = Executor::create(*r);
    ASSERT_TRUE(e1.is_ok()) << e1.status().message();
    ASSERT_TRUE(e2.is_ok()) << e2.status().message();
    Tensor x = ramp({1, 3, 4, 5});
    auto o1 = (*e1)->run({x});
    auto o2 = (*e2)->run({x});
    ASSERT_TRUE(o1.is_ok() && o2.is_ok());
    ASSERT_EQ((*o1)[0].nbytes(), (*o2)[0].nbytes());
    EXPECT_EQ(std::memcmp((*o1)[0].raw(), (*o2)[0].raw(), (*o1)[0].nbytes()), 0);
    // Channel 2 adds 2.0 then Relu: element (0,2,0,0) has x = (40 % 7) - 3 = 2 -> 4.
    EXPECT_FLOAT_EQ((*o1)[0].data<float>()[40], 4.0f);
    // Serializing the re-read model gives the same bytes (the writer is deterministic).
    auto b1 = serialize_model(m);
    auto b2 = serialize_model(*r);
    ASSERT_TRUE(b1.is_ok() && b2.is_ok());
    EXPECT_EQ(*b1, *b2);
    fs::remove(p);
}

TEST(OnnxIo, AllAttributeKindsAndDtypesSurvive) {
    Model m = tiny_model();
    Node& n = m.graph.nodes[1];
    n.attrs["f"] = Attr::make_float(1.5f);
    n.attrs["i"] = Attr::make_int(-7);
    n.attrs["s"] = Attr::make_string("hello");
    n.attrs["fs"] = Attr::make_floats({1, 2});
    n.attrs["is"] = Attr::make_ints({3, 4, 5});
    Attr strs;
    strs.kind = Attr::Kind::Strings;
    strs.strings = {"a", "b"};
    n.attrs["ss"] = strs;
    n.attrs["t"] = Attr::make_tensor(Tensor::from_vector<uint16_t>(DType::Float16, {2}, {0x3C00, 0xC000}));
    for (DType dt : {DType::Float16, DType::BFloat16, DType::Float8E4M3FN, DType::Float8E4M3FNUZ,
                     DType::Float8E5M2, DType::Float8E5M2FNUZ, DType::Int8, DType::UInt8,
                     DType::Int32, DType::Int64, DType::Bool, DType::Float64}) {
        Tensor t(dt, {2, 3});
        for (size_t k = 0; k < t.nbytes(); ++k) static_cast<uint8_t*>(t.raw())[k] = static_cast<uint8_t>(k * 3 + 1);
        if (dt == DType::Bool) for (size_t k = 0; k < t.nbytes(); ++k) static_cast<uint8_t*>(t.raw())[k] &= 1;
        m.graph.initializers.emplace_back("init_" + dtype_name(dt), t);
    }
    auto bytes = serialize_model(m);
    ASSERT_TRUE(bytes.is_ok());
    auto r = parse_model(*bytes);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    const Node& rn = r->graph.nodes[1];
    EXPECT_FLOAT_EQ(rn.attr("f")->f, 1.5f);
    EXPECT_EQ(rn.attr("i")->i, -7);
    EXPECT_EQ(rn.attr("s")->s, "hello");
    EXPECT_EQ(rn.attr("fs")->floats, (std::vector<float>{1, 2}));
    EXPECT_EQ(rn.attr("is")->ints, (std::vector<int64_t>{3, 4, 5}));
    EXPECT_EQ(rn.attr("ss")->strings, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(rn.attr("t")->t.dtype(), DType::Float16);
    for (const auto& [name, t] : m.graph.initializers) {
        const Tensor* rt = r->graph.initializer(name);
        ASSERT_NE(rt, nullptr) << name;
        EXPECT_EQ(rt->dtype(), t.dtype()) << name;
        EXPECT_EQ(rt->shape(), t.shape()) << name;
        EXPECT_EQ(std::memcmp(rt->raw(), t.raw(), t.nbytes()), 0) << name;
    }
}

TEST(OnnxIo, TruncatedFileIsAnErrorNamingTheFile) {
    auto bytes = serialize_model(tiny_model());
    ASSERT_TRUE(bytes.is_ok());
    const std::string p = temp_path("truncated.onnx");
    ASSERT_TRUE(write_file_atomic(p, bytes->substr(0, bytes->size() / 2)).is_ok());
    auto r = load_model(p);
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find(p), std::string::npos) << r.status().message();
    fs::remove(p);
    auto missing = load_model(temp_path("does_not_exist.onnx"));
    ASSERT_FALSE(missing.is_ok());
    EXPECT_NE(missing.status().message().find("does_not_exist.onnx"), std::string::npos);
}

TEST(OnnxIo, ExternalDataIsLoaded) {
    const fs::path dir = fs::temp_directory_path() / "lowbit_io_ext";
    fs::create_directories(dir);
    const std::vector<float> vals = {0.25f, -0.5f, 1.0f};
    {
        std::ofstream f(dir / "weights.bin", std::ios::binary);
        float pad = 0;
        f.write(reinterpret_cast<const char*>(&pad), 4);  // data starts at offset 4
        f.write(reinterpret_cast<const char*>(vals.data()), 12);
    }
    // Build the proto by hand: the writer always inlines, so write then patch is not possible;
    // instead serialize a model whose initializer is external via a TensorProto we construct.
    Model m = tiny_model();
    m.graph.initializers.clear();
    auto bytes = serialize_model(m);
    ASSERT_TRUE(bytes.is_ok());
    // Append an initializer field (GraphProto.initializer = 5) inside ModelProto.graph (= 7) is
    // awkward by hand; use parse_tensor/serialize_tensor-free path: a raw TensorProto encoding.
    std::string tp;
    auto varint = [](std::string& s, uint64_t v) {
        while (v >= 0x80) {
            s.push_back(static_cast<char>((v & 0x7F) | 0x80));
            v >>= 7;
        }
        s.push_back(static_cast<char>(v));
    };
    auto field_bytes = [&](std::string& s, int field, const std::string& b) {
        varint(s, (static_cast<uint64_t>(field) << 3) | 2);
        varint(s, b.size());
        s += b;
    };
    auto kv = [&](const std::string& k, const std::string& v) {
        std::string e;
        field_bytes(e, 1, k);
        field_bytes(e, 2, v);
        return e;
    };
    varint(tp, (1 << 3) | 0);  // dims = 3
    varint(tp, 3);
    varint(tp, (2 << 3) | 0);  // data_type = FLOAT
    varint(tp, 1);
    field_bytes(tp, 8, "b");  // name
    field_bytes(tp, 13, kv("location", "weights.bin"));
    field_bytes(tp, 13, kv("offset", "4"));
    field_bytes(tp, 13, kv("length", "12"));
    varint(tp, (14 << 3) | 0);  // data_location = EXTERNAL
    varint(tp, 1);
    std::string graph_field;
    field_bytes(graph_field, 5, tp);  // GraphProto.initializer
    // Protobuf merges repeated occurrences of an embedded message field: appending a second
    // ModelProto.graph (7) with only the initializer merges it into the graph.
    std::string extra;
    field_bytes(extra, 7, graph_field);
    ASSERT_TRUE(write_file_atomic((dir / "ext.onnx").string(), *bytes + extra).is_ok());
    auto r = load_model((dir / "ext.onnx").string());
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    const Tensor* b = r->graph.initializer("b");
    ASSERT_NE(b, nullptr);
    ASSERT_EQ(b->numel(), 3);
    EXPECT_FLOAT_EQ(b->data<float>()[0], 0.25f);
    EXPECT_FLOAT_EQ(b->data<float>()[2], 1.0f);
    // A missing external file is an error naming it.
    fs::remove(dir / "weights.bin");
    auto bad = load_model((dir / "ext.onnx").string());
    ASSERT_FALSE(bad.is_ok());
    EXPECT_NE(bad.status().message().find("weights.bin"), std::string::npos) << bad.status().message();
    fs::remove_all(dir);
}

TEST(Executor, UnknownOpFailsAtLoadNamingNodeAndOp) {
    Model m = tiny_model();
    m.graph.nodes[1].op_type = "FancyOp";
    auto e = Executor::create(m);
    ASSERT_FALSE(e.is_ok());
    EXPECT_NE(e.status().message().find("relu0"), std::string::npos) << e.status().message();
    EXPECT_NE(e.status().message().find("FancyOp"), std::string::npos) << e.status().message();
}

TEST(Executor, CustomDomainIsRejected) {
    Model m = tiny_model();
    m.graph.nodes[1].domain = "com.microsoft";
    auto e = Executor::create(m);
    ASSERT_FALSE(e.is_ok());
    EXPECT_NE(e.status().message().find("com.microsoft"), std::string::npos);
}

TEST(Executor, WrongInputShapeIsAnError) {
    auto e = Executor::create(tiny_model());
    ASSERT_TRUE(e.is_ok());
    auto r = (*e)->run({ramp({1, 3, 4, 6})});
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("[1,3,4,5]"), std::string::npos) << r.status().message();
    auto r2 = (*e)->run({});
    ASSERT_FALSE(r2.is_ok());
}

TEST(Executor, SymbolicInputNeedsAnOverride) {
    Model m = tiny_model();
    m.graph.inputs[0].dims[0] = Dim{-1, "batch"};
    auto e = Executor::create(m);
    ASSERT_FALSE(e.is_ok());
    EXPECT_NE(e.status().message().find("batch"), std::string::npos);
    ExecutorOptions o;
    o.input_shapes["x"] = {2, 3, 4, 5};
    auto e2 = Executor::create(m, o);
    ASSERT_TRUE(e2.is_ok()) << e2.status().message();
    EXPECT_EQ((*e2)->inputs()[0].shape, (Shape{2, 3, 4, 5}));
    o.input_shapes["nope"] = {1};
    EXPECT_FALSE(Executor::create(m, o).is_ok());
}

TEST(Executor, ObserverSeesEveryProducedTensorAndOverrideReplacesInputs) {
    auto e = Executor::create(tiny_model());
    ASSERT_TRUE(e.is_ok());
    std::vector<std::string> seen;
    (*e)->set_observer([&](size_t, const Node&, const std::string& name, const Tensor& t) {
        seen.push_back(name);
        EXPECT_EQ(t.shape(), (Shape{1, 3, 4, 5}));
    });
    // Override: Relu reads zeros instead of s, so y must be all zero.
    (*e)->set_node_override([](size_t, const Node& n, std::vector<Tensor>& ins) -> Status {
        if (n.op_type == "Relu") ins[0] = Tensor(ins[0].dtype(), ins[0].shape());
        return Status::ok();
    });
    auto r = (*e)->run({ramp({1, 3, 4, 5})});
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(seen, (std::vector<std::string>{"s", "y"}));
    for (float v : (*r)[0].span<float>()) EXPECT_EQ(v, 0.0f);
}

TEST(Executor, MemoryPlanReusesDeadBuffers) {
    // A chain of 6 Relus over a 1 MiB tensor needs at most 3 live buffers (input, a, b), not 7.
    Model m = tiny_model();
    m.graph.nodes.clear();
    m.graph.initializers.clear();
    m.graph.inputs[0].dims = {{1, ""}, {1, ""}, {512, ""}, {512, ""}};
    m.graph.outputs[0].dims = m.graph.inputs[0].dims;
    std::string prev = "x";
    for (int i = 0; i < 6; ++i) {
        std::string out = i == 5 ? "y" : "t" + std::to_string(i);
        m.graph.nodes.push_back(Node{"r" + std::to_string(i), "Relu", "", {prev}, {out}, {}, ""});
        prev = out;
    }
    auto e = Executor::create(m);
    ASSERT_TRUE(e.is_ok()) << e.status().message();
    EXPECT_LE((*e)->peak_activation_bytes(), 3u * 512 * 512 * 4);
    auto r = (*e)->run({ramp({1, 1, 512, 512})});
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ((*r)[0].data<float>()[3], 0.0f);  // ramp value 0 at i = 3
    EXPECT_EQ((*r)[0].data<float>()[6], 3.0f);
}

}  // namespace
}  // namespace lowbit
