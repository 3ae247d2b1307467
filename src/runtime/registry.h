// Op type -> reference kernel factory. Each op family registers its kernels in its own
// register_*_kernels() function (kernels/ref/families.h), one line per op:
//     register_kernel<ReluKernel>(r, "Relu");   // default ONNX domain
// and KernelRegistry::builtin() (registry.cpp) calls every family's function. Registration is
// explicit rather than by static initializers in each .cpp file, so that linking the static
// library never drops a kernel.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/kernel.h"

namespace lowbit {

using KernelFactory = std::function<std::unique_ptr<Kernel>()>;

class KernelRegistry {
public:
    // The process-wide registry with every built-in kernel registered.
    static const KernelRegistry& builtin();

    void add(const std::string& op_type, KernelFactory factory);
    // nullptr when the op type is unknown. The kernel runs float16 inputs natively when it
    // accepts them, else in float32 with float16 outputs rounded (kernels/fp16_fallback.h).
    std::unique_ptr<Kernel> create(const std::string& op_type) const;
    bool has(const std::string& op_type) const;
    std::vector<std::string> op_types() const;  // sorted

private:
    std::vector<std::pair<std::string, KernelFactory>> entries_;
};

template <typename K>
void register_kernel(KernelRegistry& r, const std::string& op_type) {
    r.add(op_type, [] { return std::make_unique<K>(); });
}

}  // namespace lowbit
