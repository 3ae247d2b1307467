#include "onnx/model_io.h"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/checked.h"
#include "core/fs.h"
#include "core/half.h"
#include "ir/validate.h"
#include "core/int4.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

template <typename Src, typename Dst>
void copy_field(const Src& src, Dst* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<Dst>(src.Get(static_cast<int>(i)));
}

// Resolves an external-data `location` inside the model's folder, as the ONNX specification
// requires (onnx/external_data_helper: a relative path, no "..", no way out through a symlink).
Result<fs::path> confined_location(const std::string& location, const std::string& base_dir,
                                   const std::string& tname) {
    if (location.empty()) return invalid("tensor '{}': external data without location", tname);
    if (location.find('\0') != std::string::npos) {
        return invalid("tensor '{}': external data location contains a NUL byte", tname);
    }
    const fs::path rel(location);
    if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) {
        return invalid("tensor '{}': external data location '{}' is an absolute path; ONNX allows "
                       "only paths relative to the model's folder", tname, location);
    }
    for (const auto& part : rel) {
        if (part == "..") {
            return invalid("tensor '{}': external data location '{}' leaves the model's folder "
                           "('..')", tname, location);
        }
    }
    const fs::path base = base_dir.empty() ? fs::path(".") : fs::path(base_dir);
    const fs::path file = base / rel;
    std::error_code ec;
    const fs::path real_base = fs::canonical(base, ec);
    if (ec) return io_error("tensor '{}': cannot resolve the model's folder '{}': {}", tname,
                            base.string(), ec.message());
    const fs::path real_file = fs::canonical(file, ec);
    if (ec) {
        return io_error("tensor '{}': cannot open external data file '{}': {}", tname,
                        file.string(), ec.message());
    }
    const fs::path inside = real_file.lexically_relative(real_base);
    if (inside == ".") {
        return invalid("tensor '{}': external data location '{}' is the model's folder, not a file",
                       tname, location);
    }
    if (inside.empty() || *inside.begin() == "..") {
        return invalid("tensor '{}': external data file '{}' resolves to '{}', outside the model's "
                       "folder (through a symbolic link)", tname, file.string(),
                       real_file.string());
    }
    return file;
}

Result<Tensor> tensor_from_proto(const onnx::TensorProto& p, const std::string& base_dir) {
    const std::string tname = p.name().empty() ? "(unnamed tensor)" : p.name();
    if (!dtype_known(p.data_type())) {
        return unsupported("tensor '{}' has data type {} which lowbit does not support", tname,
                           p.data_type());
    }
    if (p.has_segment()) return unsupported("tensor '{}' is segmented; not supported", tname);
    const DType dt = static_cast<DType>(p.data_type());
    Shape shape(p.dims().begin(), p.dims().end());
    // Every size below is checked (overflow, limit, what the file holds) before allocating.
    LOWBIT_ASSIGN(const uint64_t mem_bytes,
                  checked_nbytes(dt, shape, fmt::format("tensor '{}'", tname)));
    const int64_t n = shape_numel(shape);
    // 4-bit tensors are packed two values a byte in the file and held one a byte in memory
    // (core/int4.h): unpacked once, here.
    const bool four_bit = dt == DType::Int4 || dt == DType::UInt4;
    const uint64_t nbytes64 = four_bit ? int4_packed_bytes(n) : mem_bytes;
    const size_t nbytes = static_cast<size_t>(nbytes64);
    auto from_file_bytes = [&](const char* bytes) {
        Tensor t(dt, shape);
        if (four_bit) {
            unpack_int4(reinterpret_cast<const uint8_t*>(bytes), n, dt == DType::Int4,
                        t.data<uint8_t>());
        } else if (nbytes) {
            std::memcpy(t.raw(), bytes, nbytes);
        }
        return t;
    };

    if (p.data_location() == onnx::TensorProto::EXTERNAL) {
        std::string location;
        int64_t offset = 0, length = -1;
        for (const auto& kv : p.external_data()) {
            if (kv.key() == "location") {
                location = kv.value();
            } else if (kv.key() == "offset" || kv.key() == "length") {
                int64_t v = 0;
                if (!parse_size(kv.value(), &v)) {
                    return invalid("tensor '{}': external data {} '{}' is not a non-negative "
                                   "integer", tname, kv.key(), kv.value());
                }
                (kv.key() == "offset" ? offset : length) = v;
            }
        }
        LOWBIT_ASSIGN(fs::path file, confined_location(location, base_dir, tname));
        if (length >= 0 && static_cast<uint64_t>(length) != nbytes64) {
            return invalid("tensor '{}': external data length {} != {} bytes for {} {}", tname,
                           length, nbytes, dtype_name(dt), shape_str(shape));
        }
        LOWBIT_ASSIGN(const uint64_t fsize, regular_file_size(file.string()));
        uint64_t end = 0;
        if (!checked_add(static_cast<uint64_t>(offset), nbytes64, &end) || end > fsize) {
            return invalid("tensor '{}': external data file '{}' holds {} bytes; offset {} + {} "
                           "bytes for {} {} runs past its end", tname, file.string(), fsize,
                           offset, nbytes, dtype_name(dt), shape_str(shape));
        }
        std::ifstream in(file, std::ios::binary);
        if (!in) return io_error("tensor '{}': cannot open external data file '{}'", tname, file.string());
        std::string packed;
        Tensor t;
        char* dst = nullptr;
        if (four_bit) {
            packed.assign(nbytes, '\0');
            dst = packed.data();
        } else {
            t = Tensor(dt, shape);
            dst = static_cast<char*>(t.raw());
        }
        in.seekg(offset);
        in.read(dst, static_cast<std::streamsize>(nbytes));
        if (static_cast<size_t>(in.gcount()) != nbytes) {
            return io_error("tensor '{}': cannot read {} bytes at offset {} of external data file "
                            "'{}'", tname, nbytes, offset, file.string());
        }
        if (four_bit) return from_file_bytes(packed.data());
        return t;
    }
    if (p.has_raw_data()) {
        if (p.raw_data().size() != nbytes) {
            return invalid("tensor '{}': raw_data has {} bytes, expected {} for {} {}", tname,
                           p.raw_data().size(), nbytes, dtype_name(dt), shape_str(shape));
        }
        return from_file_bytes(p.raw_data().data());
    }
    // Typed fields (onnx.proto: which field stores which type).
    auto check = [&](int64_t have) -> Status {
        if (have != n) {
            return invalid("tensor '{}': has {} values, expected {} for shape {}", tname, have, n,
                           shape_str(shape));
        }
        return Status::ok();
    };
    if (four_bit) {
        // int32_data holds one packed byte (two values) per entry (onnx.proto).
        if (static_cast<size_t>(p.int32_data_size()) != nbytes) {
            return invalid("tensor '{}': has {} int32_data entries, expected {} (two {} values "
                           "each) for shape {}",
                           tname, p.int32_data_size(), nbytes, dtype_name(dt), shape_str(shape));
        }
        std::string packed(nbytes, '\0');
        for (size_t k = 0; k < nbytes; ++k) {
            packed[k] = static_cast<char>(p.int32_data(static_cast<int>(k)) & 0xFF);
        }
        return from_file_bytes(packed.data());
    }
    // The typed field's count is checked against n before the tensor is allocated: a declared
    // shape larger than the values present never allocates.
    {
        int64_t have = 0;
        switch (dt) {
            case DType::Float32: have = p.float_data_size(); break;
            case DType::Float64: have = p.double_data_size(); break;
            case DType::Int64: have = p.int64_data_size(); break;
            case DType::UInt32:
            case DType::UInt64: have = p.uint64_data_size(); break;
            default: have = p.int32_data_size(); break;
        }
        LOWBIT_TRY(check(have));
    }
    Tensor t(dt, shape);
    switch (dt) {
        case DType::Float32:
            LOWBIT_TRY(check(p.float_data_size()));
            copy_field(p.float_data(), t.data<float>(), n);
            break;
        case DType::Float64:
            LOWBIT_TRY(check(p.double_data_size()));
            copy_field(p.double_data(), t.data<double>(), n);
            break;
        case DType::Int64:
            LOWBIT_TRY(check(p.int64_data_size()));
            copy_field(p.int64_data(), t.data<int64_t>(), n);
            break;
        case DType::UInt32:
        case DType::UInt64:
            LOWBIT_TRY(check(p.uint64_data_size()));
            if (dt == DType::UInt32) copy_field(p.uint64_data(), t.data<uint32_t>(), n);
            else copy_field(p.uint64_data(), t.data<uint64_t>(), n);
            break;
        case DType::Int32: LOWBIT_TRY(check(p.int32_data_size())); copy_field(p.int32_data(), t.data<int32_t>(), n); break;
        case DType::Int16: LOWBIT_TRY(check(p.int32_data_size())); copy_field(p.int32_data(), t.data<int16_t>(), n); break;
        case DType::UInt16:
        case DType::Float16:
        case DType::BFloat16:
            LOWBIT_TRY(check(p.int32_data_size()));
            copy_field(p.int32_data(), t.data<uint16_t>(), n);
            break;
        case DType::Int8: LOWBIT_TRY(check(p.int32_data_size())); copy_field(p.int32_data(), t.data<int8_t>(), n); break;
        case DType::UInt8:
        case DType::Bool:
        case DType::Float8E4M3FN:
        case DType::Float8E4M3FNUZ:
        case DType::Float8E5M2:
        case DType::Float8E5M2FNUZ:
            LOWBIT_TRY(check(p.int32_data_size()));
            copy_field(p.int32_data(), t.data<uint8_t>(), n);
            break;
        default: return unsupported("tensor '{}': data type {} not supported", tname, dtype_name(dt));
    }
    return t;
}

void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
    p->set_name(name);
    p->set_data_type(static_cast<int32_t>(t.dtype()));
    for (int64_t d : t.shape()) p->add_dims(d);
    if (t.dtype() == DType::Int4 || t.dtype() == DType::UInt4) {
        p->set_raw_data(pack_int4(t.data<uint8_t>(), t.numel()));
        return;
    }
    p->set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));
}

Status value_info_from_proto(const onnx::ValueInfoProto& p, ValueInfo* v) {
    v->name = p.name();
    v->doc_string = p.doc_string();
    if (!p.has_type()) return Status::ok();
    if (!p.type().has_tensor_type()) {
        v->opaque_type = p.type().SerializeAsString();
        return Status::ok();
    }
    const auto& tt = p.type().tensor_type();
    v->dtype = dtype_known(tt.elem_type()) ? static_cast<DType>(tt.elem_type()) : DType::Undefined;
    if (tt.has_shape()) {
        v->has_shape = true;
        for (const auto& d : tt.shape().dim()) {
            Dim dim;
            if (d.has_dim_value()) dim.value = d.dim_value();
            else if (d.has_dim_param()) dim.param = d.dim_param();
            v->dims.push_back(dim);
        }
    }
    return Status::ok();
}

void value_info_to_proto(const ValueInfo& v, onnx::ValueInfoProto* p) {
    p->set_name(v.name);
    if (!v.doc_string.empty()) p->set_doc_string(v.doc_string);
    if (!v.opaque_type.empty()) {
        p->mutable_type()->ParseFromString(v.opaque_type);
        return;
    }
    if (v.dtype == DType::Undefined && !v.has_shape) return;
    auto* tt = p->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(static_cast<int32_t>(v.dtype));
    if (v.has_shape) {
        auto* sh = tt->mutable_shape();
        for (const auto& d : v.dims) {
            auto* pd = sh->add_dim();
            if (d.is_fixed()) pd->set_dim_value(d.value);
            else if (!d.param.empty()) pd->set_dim_param(d.param);
        }
    }
}

Result<Graph> graph_from_proto(const onnx::GraphProto& gp, const std::string& base_dir);
void graph_to_proto(const Graph& g, onnx::GraphProto* gp);

Result<Attr> attr_from_proto(const onnx::AttributeProto& a, const std::string& base_dir,
                             const std::string& node_desc) {
    Attr r;
    r.doc_string = a.doc_string();
    auto type = a.type();
    if (type == onnx::AttributeProto::UNDEFINED) {
        // IR < 3 files may omit the type: infer it from the field that is set.
        if (a.has_f()) type = onnx::AttributeProto::FLOAT;
        else if (a.has_i()) type = onnx::AttributeProto::INT;
        else if (a.has_s()) type = onnx::AttributeProto::STRING;
        else if (a.has_t()) type = onnx::AttributeProto::TENSOR;
        else if (a.has_g()) type = onnx::AttributeProto::GRAPH;
        else if (a.floats_size()) type = onnx::AttributeProto::FLOATS;
        else if (a.ints_size()) type = onnx::AttributeProto::INTS;
        else if (a.strings_size()) type = onnx::AttributeProto::STRINGS;
        else if (a.tensors_size()) type = onnx::AttributeProto::TENSORS;
        else if (a.graphs_size()) type = onnx::AttributeProto::GRAPHS;
    }
    auto tensor = [&](const onnx::TensorProto& tp) -> Result<Tensor> {
        auto t = tensor_from_proto(tp, base_dir);
        if (!t) return t.status().with_context(fmt::format("{} attribute '{}'", node_desc, a.name()));
        return t;
    };
    switch (type) {
        case onnx::AttributeProto::FLOAT: r.kind = Attr::Kind::Float; r.f = a.f(); break;
        case onnx::AttributeProto::INT: r.kind = Attr::Kind::Int; r.i = a.i(); break;
        case onnx::AttributeProto::STRING: r.kind = Attr::Kind::String; r.s = a.s(); break;
        case onnx::AttributeProto::TENSOR: {
            r.kind = Attr::Kind::Tensor;
            LOWBIT_ASSIGN(r.t, tensor(a.t()));
            break;
        }
        case onnx::AttributeProto::GRAPH: {
            r.kind = Attr::Kind::Graph;
            LOWBIT_ASSIGN(Graph g, graph_from_proto(a.g(), base_dir));
            r.g = std::make_shared<Graph>(std::move(g));
            break;
        }
        case onnx::AttributeProto::FLOATS:
            r.kind = Attr::Kind::Floats;
            r.floats.assign(a.floats().begin(), a.floats().end());
            break;
        case onnx::AttributeProto::INTS:
            r.kind = Attr::Kind::Ints;
            r.ints.assign(a.ints().begin(), a.ints().end());
            break;
        case onnx::AttributeProto::STRINGS:
            r.kind = Attr::Kind::Strings;
            r.strings.assign(a.strings().begin(), a.strings().end());
            break;
        case onnx::AttributeProto::TENSORS:
            r.kind = Attr::Kind::Tensors;
            for (const auto& tp : a.tensors()) {
                LOWBIT_ASSIGN(Tensor t, tensor(tp));
                r.tensors.push_back(std::move(t));
            }
            break;
        case onnx::AttributeProto::GRAPHS:
            r.kind = Attr::Kind::Graphs;
            for (const auto& gp : a.graphs()) {
                LOWBIT_ASSIGN(Graph g, graph_from_proto(gp, base_dir));
                r.graphs.push_back(std::make_shared<Graph>(std::move(g)));
            }
            break;
        case onnx::AttributeProto::SPARSE_TENSOR:
        case onnx::AttributeProto::SPARSE_TENSORS:
            r.kind = Attr::Kind::SparseTensor;
            r.opaque = a.SerializeAsString();
            break;
        case onnx::AttributeProto::TYPE_PROTO:
        case onnx::AttributeProto::TYPE_PROTOS:
            r.kind = Attr::Kind::TypeProto;
            r.opaque = a.SerializeAsString();
            break;
        default:
            return invalid("{}: attribute '{}' has unknown type {}", node_desc, a.name(),
                           static_cast<int>(type));
    }
    return r;
}

void attr_to_proto(const std::string& name, const Attr& a, onnx::AttributeProto* p) {
    if (!a.opaque.empty()) {
        p->ParseFromString(a.opaque);
        p->set_name(name);
        return;
    }
    p->set_name(name);
    if (!a.doc_string.empty()) p->set_doc_string(a.doc_string);
    switch (a.kind) {
        case Attr::Kind::Float: p->set_type(onnx::AttributeProto::FLOAT); p->set_f(a.f); break;
        case Attr::Kind::Int: p->set_type(onnx::AttributeProto::INT); p->set_i(a.i); break;
        case Attr::Kind::String: p->set_type(onnx::AttributeProto::STRING); p->set_s(a.s); break;
        case Attr::Kind::Tensor:
            p->set_type(onnx::AttributeProto::TENSOR);
            tensor_to_proto(a.t, "", p->mutable_t());
            break;
        case Attr::Kind::Graph:
            p->set_type(onnx::AttributeProto::GRAPH);
            graph_to_proto(*a.g, p->mutable_g());
            break;
        case Attr::Kind::Floats:
            p->set_type(onnx::AttributeProto::FLOATS);
            for (float f : a.floats) p->add_floats(f);
            break;
        case Attr::Kind::Ints:
            p->set_type(onnx::AttributeProto::INTS);
            for (int64_t i : a.ints) p->add_ints(i);
            break;
        case Attr::Kind::Strings:
            p->set_type(onnx::AttributeProto::STRINGS);
            for (const auto& s : a.strings) p->add_strings(s);
            break;
        case Attr::Kind::Tensors:
            p->set_type(onnx::AttributeProto::TENSORS);
            for (const auto& t : a.tensors) tensor_to_proto(t, "", p->add_tensors());
            break;
        case Attr::Kind::Graphs:
            p->set_type(onnx::AttributeProto::GRAPHS);
            for (const auto& g : a.graphs) graph_to_proto(*g, p->add_graphs());
            break;
        default: break;
    }
}

Result<Graph> graph_from_proto(const onnx::GraphProto& gp, const std::string& base_dir) {
    Graph g;
    g.name = gp.name();
    g.doc_string = gp.doc_string();
    for (const auto& np : gp.node()) {
        Node n;
        n.name = np.name();
        n.op_type = np.op_type();
        n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
        n.doc_string = np.doc_string();
        n.inputs.assign(np.input().begin(), np.input().end());
        n.outputs.assign(np.output().begin(), np.output().end());
        const std::string desc = n.describe();
        for (const auto& ap : np.attribute()) {
            if (!ap.ref_attr_name().empty()) {
                return unsupported("{}: attribute '{}' refers to a function attribute; not "
                                   "supported", desc, ap.name());
            }
            LOWBIT_ASSIGN(Attr a, attr_from_proto(ap, base_dir, desc));
            n.attrs[ap.name()] = std::move(a);
        }
        g.nodes.push_back(std::move(n));
    }
    for (const auto& tp : gp.initializer()) {
        auto t = tensor_from_proto(tp, base_dir);
        if (!t) return t.status().with_context("initializer");
        g.initializers.emplace_back(tp.name(), std::move(t).value());
    }
    auto vis = [&](const auto& src, std::vector<ValueInfo>& dst) -> Status {
        for (const auto& vp : src) {
            ValueInfo v;
            LOWBIT_TRY(value_info_from_proto(vp, &v));
            dst.push_back(std::move(v));
        }
        return Status::ok();
    };
    LOWBIT_TRY(vis(gp.input(), g.inputs));
    LOWBIT_TRY(vis(gp.output(), g.outputs));
    LOWBIT_TRY(vis(gp.value_info(), g.value_info));
    if (gp.sparse_initializer_size() || gp.quantization_annotation_size()) {
        onnx::GraphProto extra;
        extra.mutable_sparse_initializer()->CopyFrom(gp.sparse_initializer());
        extra.mutable_quantization_annotation()->CopyFrom(gp.quantization_annotation());
        g.opaque_extra = extra.SerializeAsString();
    }
    return g;
}

void graph_to_proto(const Graph& g, onnx::GraphProto* gp) {
    if (!g.opaque_extra.empty()) gp->ParseFromString(g.opaque_extra);
    gp->set_name(g.name);
    if (!g.doc_string.empty()) gp->set_doc_string(g.doc_string);
    for (const auto& n : g.nodes) {
        auto* np = gp->add_node();
        for (const auto& i : n.inputs) np->add_input(i);
        for (const auto& o : n.outputs) np->add_output(o);
        np->set_name(n.name);
        np->set_op_type(n.op_type);
        if (!n.domain.empty()) np->set_domain(n.domain);
        if (!n.doc_string.empty()) np->set_doc_string(n.doc_string);
        for (const auto& [k, a] : n.attrs) attr_to_proto(k, a, np->add_attribute());
    }
    for (const auto& [name, t] : g.initializers) tensor_to_proto(t, name, gp->add_initializer());
    for (const auto& v : g.inputs) value_info_to_proto(v, gp->add_input());
    for (const auto& v : g.outputs) value_info_to_proto(v, gp->add_output());
    for (const auto& v : g.value_info) value_info_to_proto(v, gp->add_value_info());
}

}  // namespace

Result<Model> parse_model(const std::string& bytes, const std::string& base_dir,
                          const std::string& what) {
    onnx::ModelProto mp;
    if (bytes.empty()) return invalid("{}: file is empty, not an ONNX model", what);
    if (!mp.ParseFromString(bytes)) {
        return invalid("{}: not a valid ONNX model (protobuf parse failed: truncated or corrupt "
                       "file?)", what);
    }
    if (!mp.has_graph()) return invalid("{}: ONNX model has no graph", what);
    Model m;
    m.ir_version = mp.ir_version();
    for (const auto& o : mp.opset_import()) m.opsets.push_back({o.domain(), o.version()});
    m.producer_name = mp.producer_name();
    m.producer_version = mp.producer_version();
    m.domain = mp.domain();
    m.model_version = mp.model_version();
    m.doc_string = mp.doc_string();
    for (const auto& kv : mp.metadata_props()) m.metadata.emplace_back(kv.key(), kv.value());
    auto g = graph_from_proto(mp.graph(), base_dir);
    if (!g) return g.status().with_context(what);
    m.graph = std::move(g).value();
    if (mp.functions_size() || mp.training_info_size()) {
        onnx::ModelProto extra;
        extra.mutable_functions()->CopyFrom(mp.functions());
        extra.mutable_training_info()->CopyFrom(mp.training_info());
        m.opaque_extra = extra.SerializeAsString();
    }
    if (Status st = validate_model(m); !st) return st.with_context(what);
    return m;
}

Result<Model> load_model(const std::string& path) {
    LOWBIT_ASSIGN(std::string bytes, read_file(path));
    return parse_model(bytes, fs::path(path).parent_path().string(), path);
}

Result<std::string> serialize_model(const Model& m) {
    onnx::ModelProto mp;
    if (!m.opaque_extra.empty()) mp.ParseFromString(m.opaque_extra);
    mp.set_ir_version(m.ir_version);
    for (const auto& o : m.opsets) {
        auto* op = mp.add_opset_import();
        op->set_domain(o.domain);
        op->set_version(o.version);
    }
    if (!m.producer_name.empty()) mp.set_producer_name(m.producer_name);
    if (!m.producer_version.empty()) mp.set_producer_version(m.producer_version);
    if (!m.domain.empty()) mp.set_domain(m.domain);
    if (m.model_version) mp.set_model_version(m.model_version);
    if (!m.doc_string.empty()) mp.set_doc_string(m.doc_string);
    for (const auto& [k, v] : m.metadata) {
        auto* kv = mp.add_metadata_props();
        kv->set_key(k);
        kv->set_value(v);
    }
    graph_to_proto(m.graph, mp.mutable_graph());
    std::string out;
    if (mp.ByteSizeLong() > static_cast<size_t>(INT32_MAX)) {
        return unsupported("model serializes to more than 2 GiB; external data output is not "
                           "supported");
    }
    if (!mp.SerializeToString(&out)) return error(StatusCode::Internal, "protobuf serialization failed");
    return out;
}

Status save_model(const Model& model, const std::string& path) {
    LOWBIT_ASSIGN(std::string bytes, serialize_model(model));
    return write_file_atomic(path, bytes);
}

Result<Tensor> parse_tensor(const std::string& bytes, std::string* name, const std::string& what) {
    onnx::TensorProto tp;
    if (!tp.ParseFromString(bytes)) return invalid("{}: not a valid TensorProto", what);
    if (name) *name = tp.name();
    auto t = tensor_from_proto(tp, "");
    if (!t) return t.status().with_context(what);
    return t;
}

Result<std::string> serialize_tensor(const Tensor& t, const std::string& name) {
    onnx::TensorProto tp;
    tensor_to_proto(t, name, &tp);
    return tp.SerializeAsString();
}

}  // namespace lowbit
