// Reading and writing ONNX files. This is the only part of the library that sees protobuf.
#pragma once

#include <string>

#include "core/status.h"
#include "ir/graph.h"

namespace lowbit {

// Parses an ONNX ModelProto from `path` into the IR. Initializers stored as external data are
// loaded from files relative to the model's folder. Errors name the file and, for malformed
// tensors, the tensor.
Result<Model> load_model(const std::string& path);
// Parses from bytes; `base_dir` resolves external data ("" = current folder).
Result<Model> parse_model(const std::string& bytes, const std::string& base_dir = "",
                          const std::string& what = "<memory>");

// Serializes the IR to ONNX bytes (initializers inline as raw_data).
Result<std::string> serialize_model(const Model& model);
// Writes `model` to `path` atomically.
Status save_model(const Model& model, const std::string& path);

// Parses a TensorProto (e.g. an ONNX test's input_0.pb) into a Tensor; `name` receives its name.
Result<Tensor> parse_tensor(const std::string& bytes, std::string* name = nullptr,
                            const std::string& what = "<memory>");
Result<std::string> serialize_tensor(const Tensor& t, const std::string& name);

}  // namespace lowbit
