// `lowbit smoke` as a job (pipeline/jobs.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "core/fs.h"
#include "core/path_guard.h"
#include "core/thread_pool.h"
#include "data/npy.h"
#include "eval/latency.h"
#include "onnx/model_io.h"
#include "pipeline/jobs.h"
#include "runtime/executor.h"

namespace lowbit::pipeline {

namespace fs = std::filesystem;

namespace {

// Seeded random data like the seed's: floats uniform [0,1), integers 0..9, bools 0/1.
// (std::mt19937_64, not NumPy's PCG64: the values differ from the seed's, the distribution not.)
Tensor random_tensor(DType dt, const Shape& shape, std::mt19937_64& rng) {
    Tensor t(dt, shape);
    std::uniform_real_distribution<float> uf(0.0f, 1.0f);
    std::uniform_int_distribution<int> ui(0, 9);
    const int64_t n = t.numel();
    switch (dt) {
        case DType::Float32:
            for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = uf(rng);
            break;
        case DType::Int64:
            for (int64_t i = 0; i < n; ++i) t.data<int64_t>()[i] = ui(rng);
            break;
        case DType::Int32:
            for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] = ui(rng);
            break;
        case DType::Bool:
            for (int64_t i = 0; i < n; ++i) t.data<uint8_t>()[i] = ui(rng) & 1;
            break;
        case DType::UInt8:
            for (int64_t i = 0; i < n; ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(ui(rng));
            break;
        case DType::Int8:
            for (int64_t i = 0; i < n; ++i) t.data<int8_t>()[i] = static_cast<int8_t>(ui(rng));
            break;
        default: break;  // other dtypes stay zero
    }
    return t;
}

nlohmann::json output_stats(const std::string& name, const Tensor& t) {
    double mn = INFINITY, mx = -INFINITY, sum = 0, sum2 = 0;
    int64_t nan = 0, inf = 0, finite = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
        double v = tensor_get_f64(t, i);
        if (std::isnan(v)) {
            ++nan;
            continue;
        }
        if (std::isinf(v)) {
            ++inf;
            continue;
        }
        ++finite;
        mn = std::min(mn, v);
        mx = std::max(mx, v);
        sum += v;
        sum2 += v * v;
    }
    nlohmann::json j = {{"name", name},
                        {"shape", t.shape()},
                        {"dtype", dtype_name(t.dtype())},
                        {"nan_count", nan},
                        {"inf_count", inf}};
    if (finite > 0) {
        double mean = sum / static_cast<double>(finite);
        double var = std::max(0.0, sum2 / static_cast<double>(finite) - mean * mean);
        j["min"] = mn;
        j["max"] = mx;
        j["mean"] = mean;
        j["std"] = std::sqrt(var);
    } else {
        j["min"] = j["max"] = j["mean"] = j["std"] = nullptr;
    }
    return j;
}

}  // namespace

Status run_job(const SmokeJob& o, std::FILE* out) {
    auto path = resolve_model_path(o.model);
    if (!path) return path.status();
    auto model = load_model(*path);
    if (!model) return model.status();
    if (!o.out_dir.empty()) {
        PathRoles roles;
        roles.input("MODEL", *path);
        for (const std::string& in : o.inputs) roles.input("--input", in);
        roles.output("--out", (fs::path(o.out_dir) / "summary.json").string());
        if (o.save_outputs) {
            for (size_t i = 0; i < model->graph.outputs.size(); ++i) {
                roles.output(
                    "--save-outputs",
                    (fs::path(o.out_dir) / "outputs" / (std::to_string(i) + ".npy")).string());
            }
        }
        LOWBIT_TRY(check_path_roles(roles));
    }
    auto shapes = parse_input_shapes(o.input_shapes);
    if (!shapes) return shapes.status();

    // The --input files, read first: a symbolic dimension takes its size from the file.
    const std::vector<const ValueInfo*> graph_inputs = model->graph.data_inputs();
    if (!o.inputs.empty() && o.inputs.size() != graph_inputs.size()) {
        return invalid("--input given {} time(s) but the model has {} input(s)", o.inputs.size(),
                       graph_inputs.size());
    }
    std::vector<Tensor> files;
    for (const auto& f : o.inputs) {
        auto t = read_npy(f);
        if (!t) return t.status();
        files.push_back(std::move(t).value());
    }
    if (o.batch < 0) return invalid("--batch {}: must be positive", o.batch);

    // The seed's fallbacks for unknown dims: rank 4 -> batch, channels, size, size, ...
    std::string lower = fs::path(*path).filename().string();
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    const int64_t size = o.default_image_size > 0
                             ? o.default_image_size
                             : (lower.find("yolo") != std::string::npos ? 640 : 224);
    nlohmann::json inputs_json = nlohmann::json::array();
    std::map<std::string, Shape> resolved = *shapes;
    for (size_t k = 0; k < graph_inputs.size(); ++k) {
        const ValueInfo& vi = *graph_inputs[k];
        Shape original, fallback;
        bool used = false;
        const size_t rank = vi.dims.size();
        for (size_t i = 0; i < rank; ++i) {
            original.push_back(vi.dims[i].is_fixed() ? vi.dims[i].value : -1);
            int64_t fb = 1;
            if (rank == 4)
                fb = (i == 0 ? 1 : i == 1 ? 3 : size);
            else if (rank == 3)
                fb = (i == 0 ? 3 : size);
            else if (rank == 2)
                fb = (i == 0 ? 1 : size);
            if (i == 0 && rank >= 2 && o.batch > 0) fb = o.batch;
            int64_t d = vi.dims[i].is_fixed() && vi.dims[i].value > 0 ? vi.dims[i].value : fb;
            used |= d != original.back();
            fallback.push_back(d);
        }
        // --batch N: the first dimension of every input of rank >= 2, where the model leaves it
        // free (a fixed batch is the model's own and cannot change).
        if (o.batch > 0 && rank >= 2 && vi.dims[0].is_fixed() && vi.dims[0].value != o.batch) {
            return invalid("--batch {}: input '{}' has a fixed batch size {} ({})", o.batch,
                           vi.name, vi.dims[0].value, vi.shape_str());
        }
        std::string source = used ? "fallback" : "model";
        if (shapes->count(vi.name)) {
            source = "--input-shape";
        } else if (!files.empty()) {
            // The file's shape, where it fits the declared one (rank and fixed dims).
            const Shape& fs_shape = files[k].shape();
            bool fits = !vi.has_shape || fs_shape.size() == rank;
            for (size_t i = 0; fits && vi.has_shape && i < rank; ++i) {
                fits = !vi.dims[i].is_fixed() || vi.dims[i].value == fs_shape[i];
            }
            if (!fits) {
                return invalid("{}: holds {} {}, but input '{}' is declared {}", o.inputs[k],
                               dtype_name(files[k].dtype()), shape_str(fs_shape), vi.name,
                               vi.shape_str());
            }
            if (o.batch > 0 && !fs_shape.empty() && fs_shape[0] != o.batch) {
                return invalid("{}: holds a batch of {}, but --batch {} was given", o.inputs[k],
                               fs_shape[0], o.batch);
            }
            resolved[vi.name] = fs_shape;
            source = "--input";
        } else if (used) {
            resolved[vi.name] = fallback;
        }
        inputs_json.push_back(
            {{"name", vi.name},
             {"dtype", dtype_name(vi.dtype)},
             {"original_shape", original},
             {"resolved_shape", resolved.count(vi.name) ? resolved[vi.name] : fallback},
             {"shape_source", source},
             {"used_fallbacks", source == "fallback"}});
    }

    ExecutorOptions eo;
    eo.n_threads = o.threads;
    eo.input_shapes = resolved;
    eo.reference_only = o.reference;
    apply_engine_switches(o.engine, eo);
    auto ex = Executor::create(*model, eo);
    if (!ex) return ex.status().with_context(*path);
    Executor& e = **ex;

    std::vector<Tensor> feeds;
    std::mt19937_64 rng(o.seed);
    for (size_t i = 0; i < e.inputs().size(); ++i) {
        const TensorDesc& d = e.inputs()[i];
        if (files.empty()) {
            feeds.push_back(random_tensor(d.dtype, d.shape, rng));
            continue;
        }
        Tensor& t = files[i];
        if (t.dtype() != d.dtype || t.shape() != d.shape) {
            return invalid("{}: holds {} {}, but input '{}' needs {} {}", o.inputs[i],
                           dtype_name(t.dtype()), shape_str(t.shape()), d.name, dtype_name(d.dtype),
                           shape_str(d.shape));
        }
        feeds.push_back(std::move(t));
    }

    using Clock = std::chrono::steady_clock;
    std::vector<double> times;
    std::vector<Tensor> outputs;
    for (int r = 0; r < o.warmup + std::max(1, o.runs); ++r) {
        auto t0 = Clock::now();
        auto res = e.run(feeds);
        auto t1 = Clock::now();
        if (!res) return res.status().with_context(*path);
        if (r >= o.warmup)
            times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        outputs = std::move(res).value();
    }

    nlohmann::json outs = nlohmann::json::array();
    for (size_t i = 0; i < outputs.size(); ++i)
        outs.push_back(output_stats(e.outputs()[i].name, outputs[i]));
    const LatencyStats stats = latency_stats_ms(times);
    nlohmann::json latency = {{"warmup_runs", o.warmup}, {"runs", times.size()}};
    set_latency_fields(latency, stats);
    latency["min_ms"] = *std::min_element(times.begin(), times.end());
    nlohmann::json summary = {
        {"model_name", fs::path(*path).stem().string()},
        {"model_path", *path},
        {"providers", {"lowbit-cpu"}},
        {"seed", o.seed},
        {"default_image_size", size},
        {"threads", e.inputs().empty() ? 0 : (o.threads > 0 ? o.threads : hardware_threads())},
        {"input_source", o.inputs.empty() ? nlohmann::json("random") : nlohmann::json(o.inputs)},
        {"inputs", inputs_json},
        {"outputs", outs},
        {"latency", latency},
        {"runtime_ms", times.front()},
        {"peak_activation_bytes", e.peak_activation_bytes()}};

    if (!o.out_dir.empty()) {
        std::error_code ec;
        fs::create_directories(o.out_dir, ec);
        if (ec) return io_error("cannot create folder '{}': {}", o.out_dir, ec.message());
        if (o.save_outputs) {
            fs::create_directories(fs::path(o.out_dir) / "outputs", ec);
            for (size_t i = 0; i < outputs.size(); ++i) {
                std::string p =
                    (fs::path(o.out_dir) / "outputs" / (std::to_string(i) + ".npy")).string();
                Status st = write_npy(p, outputs[i]);
                if (!st) return st;
            }
        }
        std::string p = (fs::path(o.out_dir) / "summary.json").string();
        Status st = write_file_atomic(p, summary.dump(2) + "\n");
        if (!st) return st;
        std::fprintf(stderr, "wrote %s\n", p.c_str());
    }
    std::fprintf(out, "%s\n", summary.dump(2).c_str());
    return Status::ok();
}

}  // namespace lowbit::pipeline
