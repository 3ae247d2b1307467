#include "pipeline/job_inputs.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <unordered_set>

#include "calib/checked_source.h"
#include "core/close_matches.h"
#include "core/text_lines.h"
#include "data/image_list.h"

namespace lowbit::pipeline {

void apply_engine_switches(const EngineSwitches& e, ExecutorOptions& eo) {
    eo.profile = e.profile;
    eo.conv_winograd = e.conv_winograd;
    eo.lowp_kernels = e.lowp_kernels;
    eo.int8_direct = e.int8_direct;
}

void apply_engine_switches(const EngineSwitches& e, calib::CalibRunOptions& ro) {
    ro.profile = e.profile;
    ro.conv_winograd = e.conv_winograd;
}

namespace fs = std::filesystem;

namespace {

// A folder counts as the bundled assets when it holds the default model.
bool holds_bundled_model(const fs::path& dir) {
    std::error_code ec;
    return fs::is_regular_file(dir / kDefaultModelFile, ec);
}

// The nearest `assets/` with the bundled model in `start` or a folder above it.
std::string assets_above(const fs::path& start) {
    for (fs::path dir = start; !dir.empty(); dir = dir.parent_path()) {
        if (holds_bundled_model(dir / "assets")) return (dir / "assets").string();
        if (dir == dir.root_path()) break;
    }
    return {};
}

}  // namespace

AssetsLookup find_assets() {
    AssetsLookup r;
    if (const char* env = std::getenv("LOWBIT_ASSETS"); env && *env) {
        r.dir = env;
        r.tried.push_back(fmt::format("$LOWBIT_ASSETS ({})", env));
        return r;
    }
    r.tried.push_back("$LOWBIT_ASSETS (not set)");
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        // A build tree inside the repository: <repo>/build/lowbit finds <repo>/assets.
        const fs::path bin = exe.parent_path();
        r.tried.push_back(fmt::format("assets/ in {} or a folder above it", bin.string()));
        r.dir = assets_above(bin);
        if (!r.dir.empty()) return r;
        // An install prefix: <prefix>/bin/lowbit finds <prefix>/share/lowbit/assets.
        const fs::path installed =
            (bin.parent_path() / "share" / "lowbit" / "assets").lexically_normal();
        r.tried.push_back(installed.string());
        if (holds_bundled_model(installed)) {
            r.dir = installed.string();
            return r;
        }
    }
    // A binary built or copied elsewhere, run from inside the repository.
    const fs::path cwd = fs::current_path(ec);
    if (!ec) {
        r.tried.push_back(
            fmt::format("assets/ in the current folder {} or a folder above it", cwd.string()));
        r.dir = assets_above(cwd);
    }
    return r;
}

std::string assets_dir() {
    return find_assets().dir;
}

std::string assets_not_found_note() {
    const AssetsLookup a = find_assets();
    if (!a.dir.empty()) return fmt::format(" (assets folder: {})", a.dir);
    std::string tried;
    for (const auto& t : a.tried) tried += (tried.empty() ? "" : "; ") + t;
    return fmt::format(" (no assets folder with {} found; looked at: {})", kDefaultModelFile,
                       tried);
}

std::string default_model_path() {
    const std::string dir = assets_dir();
    if (dir.empty()) return {};
    fs::path p = fs::path(dir) / kDefaultModelFile;
    std::error_code ec;
    return fs::exists(p, ec) ? p.string() : std::string();
}

Result<std::string> resolve_model_path(const std::string& given) {
    if (!given.empty()) return given;
    std::string p = default_model_path();
    if (p.empty()) {
        return invalid(
            "no MODEL given and the bundled default model ({}) was not found{}; pass a "
            "model path or set LOWBIT_ASSETS to the assets folder",
            kDefaultModelFile, assets_not_found_note());
    }
    return p;
}

Result<std::map<std::string, Shape>> parse_input_shapes(const std::vector<std::string>& specs) {
    std::map<std::string, Shape> out;
    for (const auto& spec : specs) {
        auto colon = spec.rfind(':');
        if (colon == std::string::npos || colon == 0) {
            return invalid("--input-shape '{}': expected NAME:D0,D1,... (e.g. images:1,3,640,640)",
                           spec);
        }
        Shape shape;
        std::stringstream ss(spec.substr(colon + 1));
        std::string tok;
        while (std::getline(ss, tok, ',')) {
            try {
                size_t used = 0;
                long long v = std::stoll(tok, &used);
                if (used != tok.size() || v <= 0) throw std::invalid_argument(tok);
                shape.push_back(v);
            } catch (const std::exception&) {
                return invalid("--input-shape '{}': '{}' is not a positive integer", spec, tok);
            }
        }
        if (shape.empty()) return invalid("--input-shape '{}': no dimensions", spec);
        out[spec.substr(0, colon)] = shape;
    }
    return out;
}

const ValueInfo* image_input(const Model& m) {
    const std::vector<const ValueInfo*> ins = m.graph.data_inputs();
    return ins.empty() ? nullptr : ins.front();
}

bool fixed_image_shape(const ValueInfo* in) {
    return in && in->dims.size() == 4 && in->fixed_shape();
}

int64_t image_size_for(const Model& m, int64_t requested) {
    if (requested > 0) return requested;
    const ValueInfo* in = image_input(m);
    if (in && in->has_shape && in->dims.size() == 4 && in->dims[2].is_fixed() &&
        in->dims[3].is_fixed() && in->dims[2].value == in->dims[3].value) {
        return in->dims[2].value;
    }
    return 640;
}

void declare_calib_inputs(const CalibInputOptions& o, PathRoles& roles) {
    roles.input("--calib", o.npy);
    roles.input("--calib-list", o.list);
    for (const std::string& p : o.images) roles.input("--calib-images", p);
}

void declare_placement_inputs(const PlacementRequest& o, PathRoles& roles) {
    for (const std::string& f : o.exclude_files) roles.input("--exclude-nodes-file", f);
}

Result<std::unique_ptr<calib::CalibSource>> open_calib_input(const CalibInputOptions& o) {
    const int sources = !o.npy.empty() + !o.list.empty() + !o.images.empty();
    if (sources > 1) return invalid("give one of --calib, --calib-list, --calib-images");
    if (sources == 0) return std::unique_ptr<calib::CalibSource>();
    std::unique_ptr<calib::CalibSource> source;
    if (!o.npy.empty()) {
        LOWBIT_ASSIGN(source, calib::open_npy_source(o.npy));
    } else {
        auto imgs = !o.list.empty() ? read_image_list(o.list) : calib::collect_images(o.images);
        if (!imgs) return imgs.status();
        LOWBIT_ASSIGN(source, calib::open_image_source(std::move(imgs).value(), o.imgsz));
    }
    return calib::checked_source(std::move(source), [](const std::string& w) {
        std::fprintf(stderr, "lowbit: warning: %s\n", w.c_str());
    });
}

Result<std::pair<calib::CalibMethod, double>> parse_calib_method_options(
    const CalibMethodOptions& o) {
    LOWBIT_ASSIGN(calib::CalibMethod m, calib::parse_calib_method(o.method));
    if (o.percentile <= 0 || o.percentile > 100) {
        return invalid("--percentile {} is outside (0, 100]", o.percentile);
    }
    return std::make_pair(m, o.percentile);
}

Status apply_placement_options(const PlacementRequest& o, quant::PlacementOptions& p) {
    for (const auto& f : o.exclude_files) {
        LOWBIT_ASSIGN(std::vector<std::string> names, read_node_list(f));
        p.exclude_names.insert(p.exclude_names.end(), names.begin(), names.end());
    }
    p.exclude_regex = o.exclude;
    p.exclude_regex.insert(p.exclude_regex.end(), o.nodes_to_exclude.begin(),
                           o.nodes_to_exclude.end());
    LOWBIT_TRY(quant::validate_regexes(p.exclude_regex));
    p.op_types = o.op_types;
    p.exclude_op_types = o.exclude_op_types;
    p.modelopt_parity = o.modelopt_parity;
    p.disable_mha_qdq = o.disable_mha_qdq;
    LOWBIT_ASSIGN(p.conv_placement, quant::parse_conv_placement(o.placement));
    return Status::ok();
}

Result<quant::QuantMode> parse_quant_mode(const std::string& s) {
    if (s == "int8") return quant::QuantMode::Int8;
    if (s == "fp8") return quant::QuantMode::Fp8;
    if (s == "int4") {
        return unsupported(
            "--mode int4: lowbit quantizes INT8 and FP8 (ModelOpt's INT4 targets Gemm/MatMul "
            "weights only and leaves YOLO unquantized, research/modelopt.md §5)");
    }
    return invalid("--mode '{}': expected int8 or fp8", s);
}

Result<DType> parse_high_precision(const std::string& s) {
    if (s == "fp16") return DType::Float16;
    if (s == "fp32") return DType::Float32;
    return invalid("--high-precision '{}': expected fp32 or fp16{}", s,
                   s == "bf16" ? " (bf16 is not supported)" : "");
}

Result<std::vector<std::string>> read_node_list(const std::string& path) {
    std::ifstream in(path);
    if (!in) return io_error("cannot open exclusion file '{}'", path);
    std::ostringstream text;
    text << in.rdbuf();
    TextLineOptions lines;
    lines.trailing_comments = true;
    lines.whitespace = " \t\r\n\v\f";
    std::vector<std::string> names;
    for (TextLine& line : content_lines(text.str(), lines)) names.push_back(std::move(line.text));
    return names;
}

Status check_node_names(const std::vector<std::string>& names, const std::string& file,
                        const Graph& g, const std::string& model_path) {
    std::unordered_set<std::string> known;
    for (const Node& n : g.nodes) known.insert(n.name);
    std::vector<std::string> unknown;
    for (const std::string& n : names) {
        if (!known.count(n)) unknown.push_back(n);
    }
    if (unknown.empty()) return Status::ok();
    std::vector<std::string> all;
    all.reserve(g.nodes.size());
    for (const Node& n : g.nodes) all.push_back(n.name);
    std::string lines;
    const size_t shown = std::min<size_t>(unknown.size(), 5);
    for (size_t i = 0; i < shown; ++i) {
        const std::vector<std::string> near = close_matches(unknown[i], all);
        lines += fmt::format("\n  '{}'", unknown[i]);
        if (!near.empty()) lines += fmt::format(": did you mean '{}'?", fmt::join(near, "', '"));
    }
    if (unknown.size() > shown) lines += fmt::format("\n  ... and {} more", unknown.size() - shown);
    return invalid(
        "{}: {} of its {} node names {} not a node of {}:{}\n(names are exact; `lowbit "
        "head-exclude MODEL --out FILE` writes the detection head's names, `lowbit quantize MODEL "
        "--explain` lists the nodes)",
        file, unknown.size(), names.size(), unknown.size() == 1 ? "is" : "are", model_path, lines);
}

Status check_exclusion_files(const PlacementRequest& o, const Graph& g,
                             const std::string& model_path) {
    for (const std::string& f : o.exclude_files) {
        LOWBIT_ASSIGN(std::vector<std::string> names, read_node_list(f));
        LOWBIT_TRY(check_node_names(names, f, g, model_path));
    }
    return Status::ok();
}

}  // namespace lowbit::pipeline
