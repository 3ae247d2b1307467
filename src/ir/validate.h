// Structural checks of a loaded model, run by onnx/model_io.h's load before anything else sees
// the graph: an ONNX file from the internet may claim an opset whose semantics lowbit does not
// know, or write one tensor from two nodes (ONNX graphs are SSA); both would otherwise load and
// run with a silently wrong meaning.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "ir/graph.h"

namespace lowbit {

// The newest default-domain (ai.onnx) opset lowbit knows the semantics of (ONNX 1.17). A model
// importing a newer one may use operator versions whose meaning changed; it is refused at load
// rather than run with older semantics.
inline constexpr int64_t kMaxOpset = 22;

// Checks: the default-domain opset is in [0, kMaxOpset] (0: not imported, refused later by
// planning) and, when ai.onnx is imported twice, the versions agree; in every graph (subgraphs
// included) each tensor has one producer -- no two nodes write the same output, no node writes
// an initializer or a graph input -- and initializer names are unique. Errors name the tensor
// and both producers.
Status validate_model(const Model& m);

}  // namespace lowbit
