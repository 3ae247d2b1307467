// Raising a model's default-domain opset so Q/DQ can be expressed (INT8 needs >= 13 for
// per-channel axes; FP8 and float16 scales need QuantizeLinear/DequantizeLinear-19; INT4 and
// blocked scales DequantizeLinear-21).
//
// Raising the version number is only legal when no op in the graph changed meaning between the
// old and the new version. From opset 13 to 19 the ops that did are rewritten:
//  - Reduce{L1,L2,LogSum,LogSumExp,Max,Mean,Min,Prod,SumSquare} (18): the `axes` attribute
//    becomes a constant int64 input;
//  - Split (18): without a `split` input, `num_outputs` = number of outputs is now required;
//  - RoiAlign (16): the default coordinate_transformation_mode changed from output_half_pixel to
//    half_pixel, so the old default is written out explicitly.
// From 19 to 21 (INT4 and blocked DequantizeLinear):
//  - GridSample (20): modes 'bilinear' / 'bicubic' are renamed 'linear' / 'cubic';
//  - DFT (20, axis became an input) and GroupNormalization (21, per-channel scale and bias) are
//    refused with an error naming the node.
// Every other op present in opsets 13..21 kept its semantics (new attributes/inputs default to
// the old behaviour, or only types were added). Models below opset 13 are refused (Softmax,
// Squeeze/Unsqueeze, Split, ReduceSum, Resize and others changed there).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace lowbit::quant {

// Raises the default-domain opset to `target` (no-op when it is already >= target), rewriting
// the nodes above. `notes` receives one line per rewrite.
Status upgrade_opset(Model& model, int64_t target, std::vector<std::string>* notes);

}  // namespace lowbit::quant
