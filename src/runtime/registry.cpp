#include "runtime/registry.h"

#include <algorithm>

#include "runtime/kernels/fp16_fallback.h"
#include "runtime/kernels/ref/families.h"

namespace lowbit {

void KernelRegistry::add(const std::string& op_type, KernelFactory factory) {
    for (auto& [name, f] : entries_) {
        if (name == op_type) {
            f = std::move(factory);
            return;
        }
    }
    entries_.emplace_back(op_type, std::move(factory));
}

std::unique_ptr<Kernel> KernelRegistry::create(const std::string& op_type) const {
    for (const auto& [name, f] : entries_) {
        // Every kernel gets float16 support: native when it accepts float16, else through
        // float32 with the inputs widened and the outputs rounded, as ONNX Runtime's CPU
        // provider does (kernels/fp16_fallback.h).
        if (name == op_type) return make_float16_fallback(f);
    }
    return nullptr;
}

bool KernelRegistry::has(const std::string& op_type) const {
    return std::any_of(entries_.begin(), entries_.end(),
                       [&](const auto& e) { return e.first == op_type; });
}

std::vector<std::string> KernelRegistry::op_types() const {
    std::vector<std::string> v;
    for (const auto& e : entries_) v.push_back(e.first);
    std::sort(v.begin(), v.end());
    return v;
}

const KernelRegistry& KernelRegistry::builtin() {
    static const KernelRegistry registry = [] {
        KernelRegistry r;
        register_elementwise_binary_kernels(r);
        register_elementwise_unary_kernels(r);
        register_elementwise_select_kernels(r);
        register_tensor_kernels(r);
        register_nn_kernels(r);
        register_quant_kernels(r);
        register_reduce_kernels(r);
        return r;
    }();
    return registry;
}

}  // namespace lowbit
