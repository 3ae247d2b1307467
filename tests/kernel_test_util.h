// gtest helpers for kernel unit tests over kernel_call.h (which runs a registered kernel as the
// executor would and makes small tensors):
//
//   KernelCall call{"Add", {f32({2, 3}, {...}), f32({3}, {...})}};
//   auto r = run_kernel(call);              // Result<std::vector<Tensor>>
//   ASSERT_TRUE(r.is_ok()) << r.status().message();
//   EXPECT_EQ(values_f32(r->at(0)), ...);
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "kernel_call.h"

namespace lowbit::test {

// Runs a single-output op; fails the test (and returns an empty Tensor) on error.
inline Tensor run_one(const KernelCall& call) {
    auto r = run_kernel(call);
    EXPECT_TRUE(r.is_ok()) << call.op << ": " << r.status().message();
    if (!r.is_ok() || r->empty()) return {};
    return r->front();
}

// The error message of a call that must fail ("" and a test failure when it succeeds).
inline std::string run_error(const KernelCall& call) {
    KernelOutcome o = run_kernel_full(call);
    EXPECT_FALSE(o.status.is_ok()) << call.op << " unexpectedly succeeded";
    return o.status.message();
}

}  // namespace lowbit::test
