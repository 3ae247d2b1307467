#include "pipeline/run_modes.h"

#include "pipeline/job_inputs.h"

namespace lowbit::pipeline {

bool is_int4_mode(const std::string& mode) {
    return mode == "w4a16" || mode == "w4a8";
}

Status apply_variant_mode(const std::string& mode, quant::QuantizeOptions& q) {
    if (is_int4_mode(mode)) {
        q.placement.mode = quant::QuantMode::Int8;
        q.int4.enabled = true;
        q.weights_only = mode == "w4a16";
        return Status::ok();
    }
    auto m = parse_quant_mode(mode);
    if (!m) return invalid("mode '{}': expected fp8, int8, w4a16 or w4a8", mode);
    q.placement.mode = *m;
    return Status::ok();
}

std::string sensitivity_mode_for(const std::string& mode) {
    return mode;  // every run mode has its own sweep (INT4 modes: INT4 weights, `sensitivity --mode`)
}

}  // namespace lowbit::pipeline
