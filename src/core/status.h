// Status and Result<T>: the one error-handling vocabulary of the library.
// Library functions never throw across their API; they return Status or Result<T> with a message
// that names the file, node, op, dtype or shape involved. cli/ maps them to exit codes.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace lowbit {

enum class StatusCode { Ok = 0, InvalidArgument, NotFound, Unsupported, IoError, Internal };

class [[nodiscard]] Status {
public:
    Status() = default;
    Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status ok() { return {}; }
    bool is_ok() const { return code_ == StatusCode::Ok; }
    explicit operator bool() const { return is_ok(); }
    StatusCode code() const { return code_; }
    const std::string& message() const { return message_; }

    // Prepends context ("while loading model.onnx: ...") to an error; no-op on success.
    Status with_context(const std::string& context) const {
        if (is_ok()) return *this;
        return {code_, context + ": " + message_};
    }

private:
    StatusCode code_ = StatusCode::Ok;
    std::string message_;
};

template <typename... Args>
Status error(StatusCode code, fmt::format_string<Args...> f, Args&&... args) {
    return {code, fmt::format(f, std::forward<Args>(args)...)};
}
template <typename... Args>
Status invalid(fmt::format_string<Args...> f, Args&&... args) {
    return {StatusCode::InvalidArgument, fmt::format(f, std::forward<Args>(args)...)};
}
template <typename... Args>
Status unsupported(fmt::format_string<Args...> f, Args&&... args) {
    return {StatusCode::Unsupported, fmt::format(f, std::forward<Args>(args)...)};
}
template <typename... Args>
Status io_error(fmt::format_string<Args...> f, Args&&... args) {
    return {StatusCode::IoError, fmt::format(f, std::forward<Args>(args)...)};
}

// Result<T>: a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
    Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
        if (std::get<Status>(v_).is_ok()) {
            v_ = Status(StatusCode::Internal, "Result constructed from an ok Status");
        }
    }

    bool is_ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return is_ok(); }
    const Status& status() const {
        static const Status ok_status;
        return is_ok() ? ok_status : std::get<Status>(v_);
    }
    T& value() & { return std::get<T>(v_); }
    const T& value() const& { return std::get<T>(v_); }
    T&& value() && { return std::get<T>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

private:
    std::variant<T, Status> v_;
};

}  // namespace lowbit

// Internal invariant: aborts with file:line. Not for user errors (those return Status).
#define LOWBIT_CHECK(cond, ...)                                                              \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, __LINE__, #cond, \
                         fmt::format(__VA_ARGS__).c_str());                                  \
            std::abort();                                                                    \
        }                                                                                    \
    } while (0)

#define LOWBIT_CONCAT_INNER(a, b) a##b
#define LOWBIT_CONCAT(a, b) LOWBIT_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when expr is not ok.
#define LOWBIT_TRY(expr)                     \
    do {                                     \
        ::lowbit::Status _st = (expr);       \
        if (!_st.is_ok()) return _st;        \
    } while (0)

// LOWBIT_ASSIGN(auto x, result_expr): unwraps a Result or returns its Status.
#define LOWBIT_ASSIGN_IMPL(tmp, decl, expr) \
    auto tmp = (expr);                      \
    if (!tmp.is_ok()) return tmp.status();  \
    decl = std::move(tmp).value()
#define LOWBIT_ASSIGN(decl, expr) LOWBIT_ASSIGN_IMPL(LOWBIT_CONCAT(_res_, __LINE__), decl, expr)
