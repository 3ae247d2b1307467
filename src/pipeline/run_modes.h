// The modes `lowbit run` and `lowbit candidates` accept (issue 15 item 6): fp8 and int8, and the
// INT4-weight modes w4a16 (INT4 weights, float activations) and w4a8 (INT4 weights, INT8
// activations), set up as `quantize --mode` sets them up.
#pragma once

#include <string>

#include "core/status.h"
#include "quant/quantize_model.h"

namespace lowbit::pipeline {

bool is_int4_mode(const std::string& mode);  // w4a16 or w4a8
// Sets q's placement mode and INT4 switches for `mode`; errors name the accepted modes.
Status apply_variant_mode(const std::string& mode, quant::QuantizeOptions& q);
// The mode whose per-node sweep ranks a mode's nodes: each mode its own (`sensitivity --mode
// w4a8|w4a16` fake-quantizes a node's weights to INT4).
std::string sensitivity_mode_for(const std::string& mode);

}  // namespace lowbit::pipeline
