#include "tinyquant/status.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace tinyquant {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kInvalidModel: return "invalid model";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kIoError: return "I/O error";
    case StatusCode::kOutOfMemory: return "out of memory";
    case StatusCode::kInternal: return "internal error";
    case StatusCode::kCancelled: return "cancelled";
  }
  return "unknown";
}

Status Status::error(StatusCode code, const char* fmt, ...) {
  Status s;
  s.code_ = code == StatusCode::kOk ? StatusCode::kInternal : code;
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(s.message_, kMaxMessage, fmt, args);
  va_end(args);
  return s;
}

Status& Status::with_context(const char* fmt, ...) {
  if (is_ok()) return *this;
  char prefix[kMaxMessage];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(prefix, sizeof(prefix), fmt, args);
  va_end(args);
  char joined[2 * kMaxMessage + 2];
  std::snprintf(joined, sizeof(joined), "%s: %s", prefix, message_);
  std::memcpy(message_, joined, kMaxMessage - 1);
  message_[kMaxMessage - 1] = '\0';
  return *this;
}

}  // namespace tinyquant
