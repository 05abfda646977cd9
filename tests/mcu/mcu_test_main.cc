// tests/mcu — the runtime's doctest suites (tests/runtime/*_test.cc: integer and float reference
// kernels, arena planner, interpreter) as one bare-metal program, run under qemu-system-arm.
// Built with -fno-exceptions -fno-rtti like the runtime itself; doctest without signals, threads
// or exceptions (a failed REQUIRE aborts: exit 134). main() returns doctest's result, which the
// startup code passes to the host through semihosting SYS_EXIT_EXTENDED.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "tinyquant/port.h"

int main(int argc, char** argv) {
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  context.setOption("no-colors", true);  // plain text in CI logs
  const int failed = context.run();
  return failed ? 1 : 0;
}
