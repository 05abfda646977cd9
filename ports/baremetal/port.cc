// tinyquant::port on bare metal: log lines go to stderr (newlib -> _write -> semihosting console;
// retarget _write to a UART on a device without a debugger); the clock is semihosting's elapsed
// tick counter (SYS_ELAPSED / SYS_TICKFREQ), falling back to SYS_CLOCK's centiseconds.
#include <cstdarg>
#include <cstdio>

#include "semihosting.h"
#include "tinyquant/port.h"

namespace tinyquant {
namespace port {

void log(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::vfprintf(stderr, fmt, args);
  va_end(args);
  std::fputc('\n', stderr);
}

uint64_t now_us() {
  static int32_t freq = 0;  // ticks per second; -1: SYS_ELAPSED unsupported
  if (freq == 0) {
    freq = tq_semihost(TQ_SYS_TICKFREQ, nullptr);
    if (freq <= 0) freq = -1;
  }
  if (freq > 0) {
    uint32_t ticks[2] = {0, 0};  // 64-bit count, low word first
    if (tq_semihost(TQ_SYS_ELAPSED, ticks) == 0) {
      const uint64_t t = (uint64_t(ticks[1]) << 32) | ticks[0];
      return t / uint64_t(freq) * 1000000u + (t % uint64_t(freq)) * 1000000u / uint64_t(freq);
    }
  }
  const int32_t cs = tq_semihost(TQ_SYS_CLOCK, nullptr);
  return cs < 0 ? 0 : uint64_t(cs) * 10000u;
}

}  // namespace port
}  // namespace tinyquant
