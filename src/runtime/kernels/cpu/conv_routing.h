#pragma once
// Where a conv step's result rows go besides its own output tensor (conv.cpp, qconv.cpp,
// fp8conv.cpp share this): output 0 is the conv result; other outputs are channel ranges of it
// (a Split folded into the step, FastOp::add_channel_range_output); each output may also feed
// in-place concat slices (FastOp::add_concat_slice).
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "runtime/kernels/cpu/fast_ops.h"

namespace lowbit::cpu {

class ConvRouting {
public:
    // Only output 0, written to its own tensor.
    void reset(int64_t channels);
    // Output 0 is written to its own tensor (else it lives only in a chunk buffer).
    bool dense() const { return dense_; }
    bool add_concat_slice(size_t out, size_t slot, int64_t offset, int64_t total);
    // Channels [c0, c1) of output 0 as outputs[slot].
    bool add_channel_range(size_t out, size_t slot, int64_t c0, int64_t c1);
    // Output `out` is not needed as a tensor of its own. True when output 0 just stopped being
    // dense: the caller then reserves the chunk buffers the result lives in.
    bool drop_dense(size_t out);
    // One chunk's result: `pixels` rows of `channels` elements of `elem` bytes, the first of them
    // output pixel p0; copied to the channel-range outputs and the concat slices.
    void copy_rows(const char* result, std::span<Tensor> out, int64_t p0, int64_t pixels,
                   size_t elem) const;
    // The same for a result holding only channels [c0, c1) of output 0, its pixel rows
    // `stride` elements apart (a chunk of output channels): each destination gets the channels
    // it shares with that range.
    void copy_channel_block(const char* result, int64_t stride, int64_t c0, int64_t c1,
                            std::span<Tensor> out, int64_t p0, int64_t pixels, size_t elem) const;
    // " +split", " +concat" (" >concat" when output 0 is not dense), for describe().
    std::string suffix() const;

private:
    struct OutSpec {
        int64_t c0 = 0, c1 = 0;
        bool dense = true;
        std::vector<ConcatSlice> slices;
    };
    std::map<size_t, OutSpec> outs_;
    int64_t channels_ = 0;
    bool dense_ = true;
};

}  // namespace lowbit::cpu
