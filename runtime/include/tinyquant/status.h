// tinyquant/status.h — error handling without exceptions.
//
// Everything in tinyquant that can fail returns a [[nodiscard]] Status. A Status is a small code
// plus a fixed-size message (no heap, so it works on a microcontroller) that names the file,
// tensor, operator or layer involved and what was expected:
//
//   TQ_ENSURE(stride >= 1, kInvalidModel, "Conv2D '%s': stride %d must be >= 1", name, stride);
//   TQ_RETURN_IF_ERROR(interpreter.prepare(graph, options));
#pragma once

#include <cstddef>
#include <cstdint>

namespace tinyquant {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,  // the caller passed something wrong (bad option, wrong input shape)
  kInvalidModel,     // a model file or graph is malformed or inconsistent
  kUnsupported,      // well-formed, but an op / attribute / dtype we do not implement
  kNotFound,         // a file, tensor or dataset that does not exist
  kIoError,          // reading or writing failed
  kOutOfMemory,      // an arena or allocation was too small
  kInternal,         // a backend (e.g. XNNPACK) failed unexpectedly
  kCancelled,        // the caller asked a long-running job (calibration) to stop
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  static constexpr size_t kMaxMessage = 320;

  Status() = default;  // OK
  static Status ok() { return Status(); }
  // printf-style message; truncated to kMaxMessage - 1 characters.
  static Status error(StatusCode code, const char* fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 2, 3)))
#endif
      ;

  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const char* message() const { return message_; }
  // Prepends "context: " to the message (used to add a file name or layer name on the way up).
  Status& with_context(const char* fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 2, 3)))
#endif
      ;

 private:
  StatusCode code_ = StatusCode::kOk;
  char message_[kMaxMessage] = {0};
};

}  // namespace tinyquant

#define TQ_ENSURE(cond, code, ...)                                           \
  do {                                                                       \
    if (!(cond)) return ::tinyquant::Status::error(::tinyquant::StatusCode::code, __VA_ARGS__); \
  } while (0)

#define TQ_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::tinyquant::Status tq_status_ = (expr);      \
    if (!tq_status_.is_ok()) return tq_status_;   \
  } while (0)

#ifndef NDEBUG
#include <cassert>
#define TQ_DCHECK(cond) assert(cond)
#else
#define TQ_DCHECK(cond) ((void)0)
#endif
