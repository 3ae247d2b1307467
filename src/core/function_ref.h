// FunctionRef<R(A...)>: a non-owning reference to a callable, two pointers wide, for a callee
// that calls it only before it returns (ThreadPool's loops). Unlike std::function it never
// allocates: std::function copies a lambda that captures more than 16 bytes to the heap, which
// put a heap allocation in every parallel loop of every kernel's run() (issue 12 asks for none).
// The referenced callable must outlive the call it is passed to; never store a FunctionRef.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace lowbit {

template <typename Sig>
class FunctionRef;

template <typename R, typename... A>
class FunctionRef<R(A...)> {
public:
    template <typename F,
              typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef> &&
                                          std::is_invocable_r_v<R, F&, A...>>>
    FunctionRef(F&& f) noexcept  // NOLINT(google-explicit-constructor): passed like a lambda
        : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
          call_([](void* o, A... a) -> R {
              return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<A>(a)...);
          }) {}

    R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

private:
    void* obj_;
    R (*call_)(void*, A...);
};

}  // namespace lowbit
