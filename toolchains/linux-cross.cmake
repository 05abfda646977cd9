# Shared by the ARM Linux toolchain files: Debian's cross compiler for TQ_TRIPLE, the C library it
# ships in /usr/<triple>, and the target's other libraries unpacked by make-sysroot.sh.
#   TQ_SYSROOT (cache or environment): where make-sysroot.sh unpacked them
#     (default: <source>/build-sysroot/<triple>).
#   TQ_QEMU: the user-mode emulator that runs target programs (tests, tq) on the build machine;
#     CTest runs every test through it (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${TQ_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${TQ_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${TQ_TRIPLE})

if(NOT TQ_SYSROOT AND DEFINED ENV{TQ_SYSROOT})
  set(TQ_SYSROOT $ENV{TQ_SYSROOT})
endif()
if(NOT TQ_SYSROOT)
  get_filename_component(TQ_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../build-sysroot/${TQ_TRIPLE}" ABSOLUTE)
endif()
if(NOT EXISTS "${TQ_SYSROOT}/usr/include/xnnpack.h")
  message(FATAL_ERROR "No ${TQ_TRIPLE} libraries in ${TQ_SYSROOT}: run `bash toolchains/make-sysroot.sh ${TQ_TRIPLE}` "
                      "or set TQ_SYSROOT to where it unpacked them.")
endif()
# try_compile re-reads this file in a scratch project; pass the choices on.
set(ENV{TQ_SYSROOT} "${TQ_SYSROOT}")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES TQ_SYSROOT)

set(CMAKE_FIND_ROOT_PATH "${TQ_SYSROOT}" "/usr/${TQ_TRIPLE}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)  # flatc, protoc: host programs
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(TQ_TARGET_LIBDIRS "${TQ_SYSROOT}/usr/lib/${TQ_TRIPLE}:${TQ_SYSROOT}/lib/${TQ_TRIPLE}:${TQ_SYSROOT}/usr/lib/lp_solve")
string(REPLACE ":" ",-rpath-link," _tq_rpath_link "${TQ_TARGET_LIBDIRS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_tq_rpath_link}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_tq_rpath_link}")

find_program(TQ_QEMU ${TQ_QEMU_NAME})
if(TQ_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${TQ_QEMU};-L;/usr/${TQ_TRIPLE};-E;LD_LIBRARY_PATH=${TQ_TARGET_LIBDIRS}")
endif()
