// ports/baremetal/startup.c — reset and fault handling for Cortex-M4/M7 (our own vector table;
// newlib's rdimon _start is not used: it would run with the FPU off and report success even when
// the program never reached main).
//
// Reset_Handler: enable the FPU (CPACR) before any floating-point instruction can run, copy
// .data from flash, zero .bss, run C++ static constructors (__libc_init_array), call main and
// exit with its status through semihosting SYS_EXIT_EXTENDED. argc/argv come from semihosting's
// command line (QEMU: -append "ARGS"). Every fault prints its status
// registers and exits with 139 (a fault never reads as success).
#include <stdint.h>
#include <string.h>

#include "semihosting.h"

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
extern void __libc_init_array(void);
extern void __libc_fini_array(void);
extern int main(int argc, char** argv);

void Reset_Handler(void) __attribute__((naked, noreturn));
void tq_reset_c(void) __attribute__((noreturn, used));
void tq_fault_c(const uint32_t* frame, uint32_t exc_return, uint32_t ipsr) __attribute__((noreturn, used));
void Fault_Handler(void) __attribute__((naked, noreturn));
void Default_Handler(void) __attribute__((noreturn));

// Naked: no prologue, so nothing can touch an FP register before CPACR allows it.
void Reset_Handler(void) {
  __asm__ volatile(
      "ldr r0, =0xE000ED88 \n"  // CPACR
      "ldr r1, [r0]        \n"
      "orr r1, r1, #(0xF << 20) \n"  // CP10, CP11: full access
      "str r1, [r0]        \n"
      "dsb                 \n"
      "isb                 \n"
      "ldr r0, =__stack_top \n"
      "mov sp, r0          \n"
      "b tq_reset_c        \n");
}

// What crti.o / crtbegin.o would provide (not linked: -nostartfiles): _init/_fini, called by
// __libc_init_array/__libc_fini_array, and __dso_handle, the key of static destructors.
void _init(void) {}
void _fini(void) {}
void* __dso_handle = &__dso_handle;

// argv from the debugger's command line (semihosting SYS_GET_CMDLINE; QEMU: the -kernel file
// name followed by -append "..."). Words split at spaces; "double quotes" group. Without a
// command line, argv is {"tinyquant"}.
static int command_line(char*** argv_out) {
  static char line[512];
  static char* argv[32];
  static char arg0[] = "tinyquant";
  uint32_t args[2] = {(uint32_t)(uintptr_t)line, sizeof(line) - 1};
  int argc = 0;
  if (tq_semihost(TQ_SYS_GET_CMDLINE, args) == 0) {
    line[args[1] < sizeof(line) ? args[1] : sizeof(line) - 1] = 0;
    char* p = line;
    while (*p && argc < 31) {
      while (*p == ' ') ++p;
      if (!*p) break;
      char* out = p;
      argv[argc++] = out;
      int quoted = 0;
      for (; *p && (quoted || *p != ' '); ++p) {
        if (*p == '"') quoted = !quoted;
        else *out++ = *p;
      }
      if (*p) ++p;
      *out = 0;
    }
  }
  if (argc == 0) argv[argc++] = arg0;
  argv[argc] = 0;
  *argv_out = argv;
  return argc;
}

void tq_reset_c(void) {
  // Trap integer division by zero (CCR.DIV_0_TRP) instead of silently returning 0: a bug then
  // faults here as it would crash on the host.
  *(volatile uint32_t*)0xE000ED14 |= 1u << 4;
  const uint32_t* src = &__data_load;
  for (uint32_t* dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t* dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
  __libc_init_array();
  char** argv = 0;
  const int argc = command_line(&argv);
  const int status = main(argc, argv);
  __libc_fini_array();
  tq_semihost_exit(status);
}

static void put(const char* s) { tq_semihost_write(2, s, (uint32_t)strlen(s)); }
static void put_hex(const char* label, uint32_t v) {
  char buf[24];
  const char* digits = "0123456789abcdef";
  put(label);
  for (int i = 0; i < 8; ++i) buf[i] = digits[(v >> (28 - 4 * i)) & 0xF];
  buf[8] = 0;
  put(buf);
}

// Which stack held the exception frame (EXC_RETURN bit 2), then report in C.
void Fault_Handler(void) {
  __asm__ volatile(
      "tst lr, #4      \n"
      "ite eq          \n"
      "mrseq r0, msp   \n"
      "mrsne r0, psp   \n"
      "mov r1, lr      \n"
      "mrs r2, ipsr    \n"
      "b tq_fault_c    \n");
}

void tq_fault_c(const uint32_t* frame, uint32_t exc_return, uint32_t ipsr) {
  volatile uint32_t* const scb = (volatile uint32_t*)0xE000ED00;
  put("\n*** fault: exception ");
  put_hex("", ipsr & 0x1FF);
  put_hex(" pc=0x", frame[6]);
  put_hex(" lr=0x", frame[5]);
  put_hex(" exc_return=0x", exc_return);
  put_hex(" CFSR=0x", scb[0x28 / 4]);
  put_hex(" HFSR=0x", scb[0x2C / 4]);
  put_hex(" MMFAR=0x", scb[0x34 / 4]);
  put_hex(" BFAR=0x", scb[0x38 / 4]);
  put("\n");
  tq_semihost_exit(139);
}

void Default_Handler(void) {
  put("\n*** unexpected interrupt\n");
  tq_semihost_exit(140);
}

// The vector table: initial SP, reset, the nine M-profile system exceptions, 32 IRQs.
typedef void (*Vector)(void);
__attribute__((section(".vectors"), used)) const Vector tq_vectors[16 + 32] = {
    (Vector)&__stack_top,
    Reset_Handler,
    Fault_Handler,    // NMI
    Fault_Handler,    // HardFault
    Fault_Handler,    // MemManage
    Fault_Handler,    // BusFault
    Fault_Handler,    // UsageFault
    0, 0, 0, 0,
    Default_Handler,  // SVCall
    Default_Handler,  // DebugMonitor
    0,
    Default_Handler,  // PendSV
    Default_Handler,  // SysTick
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler,
};
