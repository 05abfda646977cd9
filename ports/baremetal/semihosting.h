// ports/baremetal/semihosting.h — Arm semihosting calls (BKPT 0xAB on M-profile) used by the
// bare-metal port: console output, clock and exit status. QEMU implements them with
// `-semihosting-config enable=on,target=native`; a debug probe (OpenOCD, pyOCD) does as well.
// Without a debugger attached, BKPT escalates to HardFault on real hardware: link a UART
// _write instead for a stand-alone device.
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  TQ_SYS_OPEN = 0x01,
  TQ_SYS_WRITE = 0x05,
  TQ_SYS_CLOCK = 0x10,
  TQ_SYS_GET_CMDLINE = 0x15,
  TQ_SYS_EXIT = 0x18,
  TQ_SYS_EXIT_EXTENDED = 0x20,
  TQ_SYS_ELAPSED = 0x30,
  TQ_SYS_TICKFREQ = 0x31,
};
// SYS_EXIT reason "application exit"; with SYS_EXIT_EXTENDED the second word is the exit code.
#define TQ_ADP_STOPPED_APPLICATION_EXIT 0x20026u

static inline int32_t tq_semihost(int32_t op, const void* arg) {
  register int32_t r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

// Writes n bytes to the debugger console (fd 1: stdout, 2: stderr). Returns bytes written.
int tq_semihost_write(int fd, const void* data, uint32_t n);
// Ends the program with `code` as the host process' exit status (QEMU: qemu's own status).
void tq_semihost_exit(int code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif
