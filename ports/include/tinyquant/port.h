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

// A free-running counter for measuring code, and its rate in ticks per second. Bare metal: the
// MPS2 boards' CMSDK APB timer 0 (25 MHz), extended to 64 bits (read it at least every 171 s).
// Under `qemu-system-arm -icount shift=0` every guest instruction advances virtual time by 1 ns,
// so instructions = ticks * 1e9 / timer_hz() (bench/mcu_speed.sh). POSIX: CLOCK_MONOTONIC in ns.
uint64_t timer_ticks();
uint32_t timer_hz();

}  // namespace port
}  // namespace tinyquant
