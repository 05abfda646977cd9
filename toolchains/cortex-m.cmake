# Shared by toolchains/cortex-m4.toolchain.cmake and cortex-m7.toolchain.cmake: bare metal with
# Debian's arm-none-eabi GCC + newlib. The including file sets TQ_CORTEX_M_FLAGS (-mcpu, FPU).
#
# What builds (TQ_NO_EXCEPTIONS: the microcontroller contract, see the top-level CMakeLists):
# ports (baremetal/: startup, semihosting syscalls, mps2 linker script), runtime (reference
# kernels), the .tqm loader, examples/mcu_inference (one ELF per model in TQ_MCU_MODELS) and
# tests/mcu (the integer-kernel doctest suites). Programs run under qemu-system-arm with
# semihosting; see examples/mcu_inference/README.md.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)  # no startup code in try_compile

# -ffp-contract=off: no fused multiply-add, so the fp32 requantization is bit-exact with the
# host (ISO -std=c++17 implies it too; CMAKE_CXX_EXTENSIONS is OFF at the top level).
# -ffunction/data-sections + --gc-sections: only what a program uses reaches flash.
set(_tq_flags "${TQ_CORTEX_M_FLAGS} -ffp-contract=off -ffunction-sections -fdata-sections")
# Debian's gcc-arm-none-eabi finds GCC's freestanding <stdint.h> before newlib's, so newlib's
# <inttypes.h> (which keys PRId64 & co on newlib's own __int64_t_defined) leaves them undefined.
# Pre-include newlib's stdint.h (the same typedefs) so <cinttypes> is complete.
if(EXISTS /usr/include/newlib/stdint.h)
  string(APPEND _tq_flags " -include /usr/include/newlib/stdint.h")
endif()
set(CMAKE_C_FLAGS_INIT "${_tq_flags}")
# -fno-threadsafe-statics: one thread, and libstdc++'s guard functions would pull its exception
# machinery in (ports/baremetal/no_exceptions.cc keeps the rest of it out).
set(CMAKE_CXX_FLAGS_INIT "${_tq_flags} -fno-threadsafe-statics")
set(CMAKE_ASM_FLAGS_INIT "${TQ_CORTEX_M_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${TQ_CORTEX_M_FLAGS}")
# No -fPIC, Release -O2: see cortex-m-rules.cmake.
set(CMAKE_USER_MAKE_RULES_OVERRIDE "${CMAKE_CURRENT_LIST_DIR}/cortex-m-rules.cmake")

set(CMAKE_FIND_ROOT_PATH /usr/lib/arm-none-eabi)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)  # flatc: a host program
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Header-only host packages (FlatBuffers for the loader, doctest for tests/mcu) are architecture
# independent, but -I/usr/include would put the host's glibc headers in front of newlib's. Expose
# just those two directories through a folder of symbolic links.
set(_tq_host_headers "${CMAKE_BINARY_DIR}/host-headers")
foreach(_tq_pkg flatbuffers doctest)
  if(EXISTS "/usr/include/${_tq_pkg}" AND NOT EXISTS "${_tq_host_headers}/${_tq_pkg}")
    file(MAKE_DIRECTORY "${_tq_host_headers}")
    file(CREATE_LINK "/usr/include/${_tq_pkg}" "${_tq_host_headers}/${_tq_pkg}" SYMBOLIC)
  endif()
endforeach()
set(FLATBUFFERS_INCLUDE_DIR "${_tq_host_headers}" CACHE PATH "FlatBuffers headers (host, header-only)")
set(TQ_DOCTEST_INCLUDE_DIR "${_tq_host_headers}" CACHE PATH "doctest header (host, header-only)")

set(TQ_NO_EXCEPTIONS ON CACHE BOOL "" FORCE)
set(TQ_WITH_XNNPACK OFF CACHE BOOL "" FORCE)
set(TQ_WITH_QUANT OFF CACHE BOOL "" FORCE)
set(TQ_WITH_ONNX OFF CACHE BOOL "" FORCE)
set(TQ_BUILD_TOOLS OFF CACHE BOOL "" FORCE)
set(TQ_BUILD_TESTS OFF CACHE BOOL "" FORCE)  # the host doctest suite; tests/mcu is built instead
set(TQ_BUILD_BENCH OFF CACHE BOOL "" FORCE)
