// Self-checks of ports/baremetal (run by examples/mcu_inference/run.sh under QEMU): the exit
// status of main() must reach the host unchanged (tq_mcu_exit3 -> 3), and a fault must end the
// run with a nonzero status and a report (tq_mcu_fault -> 139), never a silent success.
#include <stdint.h>
#include <stdio.h>

int main(void) {
#if TQ_CHECK_FAULT
  printf("tq_mcu_fault: reading an unmapped address\n");
  fflush(stdout);
  volatile uint32_t* bad = (volatile uint32_t*)0xF0000000u;  // nothing is mapped there on mps2
  return (int)*bad;
#else
  // A float operation first: proves the FPU is enabled before main (else a UsageFault, exit 139).
  volatile float x = 3.5f;
  printf("tq_mcu_exit3: returning %d\n", (int)(x * 2.0f) - 4);
  return (int)(x * 2.0f) - 4;
#endif
}
