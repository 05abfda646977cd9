// tinyquant::port on bare metal: log lines go to the semihosting console's stderr (retarget
// tq_semihost_write to a UART on a device without a debugger), formatted by baremetal/format.c;
// the clock is semihosting's elapsed tick counter (SYS_ELAPSED / SYS_TICKFREQ), falling back to SYS_CLOCK's centiseconds.
#include <cstdarg>
#include <cstdio>

#include "semihosting.h"
#include "tinyquant/port.h"

namespace tinyquant {
namespace port {

void log(const char* fmt, ...) {
  char line[256];
  va_list args;
  va_start(args, fmt);
  int n = std::vsnprintf(line, sizeof(line) - 1, fmt, args);  // baremetal/format.c
  va_end(args);
  if (n < 0) return;
  if (n > int(sizeof(line)) - 2) n = int(sizeof(line)) - 2;  // cut, not overrun
  line[n++] = '\n';
  tq_semihost_write(2, line, uint32_t(n));
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

// CMSDK APB timer 0 on QEMU's mps2-an385/386/500/511 (and the FPGA images they model): a 32-bit
// down-counter at the 25 MHz peripheral clock. On a real part use DWT->CYCCNT instead (QEMU does
// not model the DWT cycle counter).
namespace {
struct CmsdkTimer {
  volatile uint32_t ctrl, value, reload, intstatus;
};
CmsdkTimer* const kTimer0 = reinterpret_cast<CmsdkTimer*>(0x40000000u);
constexpr uint32_t kTimerHz = 25000000u;
bool g_timer_started = false;
uint32_t g_timer_last = 0;
uint64_t g_timer_total = 0;
}  // namespace

uint64_t timer_ticks() {
  if (!g_timer_started) {
    kTimer0->ctrl = 0;
    kTimer0->reload = 0xFFFFFFFFu;
    kTimer0->value = 0xFFFFFFFFu;
    kTimer0->ctrl = 1;  // enable, no interrupt
    g_timer_last = kTimer0->value;
    g_timer_started = true;
  }
  const uint32_t now = kTimer0->value;
  g_timer_total += g_timer_last - now;  // counts down; modulo 2^32 across a wrap
  g_timer_last = now;
  return g_timer_total;
}

uint32_t timer_hz() { return kTimerHz; }

}  // namespace port
}  // namespace tinyquant
