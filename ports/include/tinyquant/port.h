// tinyquant/port.h — the few things that differ per platform. A port (ports/<platform>/)
// implements exactly these; nothing else in tinyquant touches the OS directly.
#pragma once

#include <cstdint>

namespace tinyquant {
namespace port {

// printf-style line to the platform's log (stderr on POSIX, semihosting/UART on bare metal).
void log(const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

// Monotonic microseconds (0 where the platform has no clock).
uint64_t now_us();

}  // namespace port
}  // namespace tinyquant
