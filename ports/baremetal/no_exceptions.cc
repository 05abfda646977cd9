// ports/baremetal/no_exceptions.cc — libstdc++'s throw helpers, its nothrow aligned new, the
// EHABI personality routines and the catch / cleanup entry points, defined here so that none of
// libstdc++'s exception machinery (functexcept, eh_throw, eh_alloc, eh_catch, eh_personality and
// libgcc's unwinder behind them, about 12 KB) is linked into a bare-metal program. Linked into
// the programs that ship (tq_baremetal_noexc: examples/mcu_inference), not into the doctest
// runner (tests/mcu), whose harness uses iostreams. tinyquant is built with -fno-exceptions; the containers it uses call these
// only on a broken invariant (a length over max_size, an allocation failure), which stops the
// program with a message, as an uncaught exception would.
#include <bits/functexcept.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <malloc.h>
#include <new>

#include "semihosting.h"

namespace {
[[noreturn]] void stop(const char* what) {
  static const char kPrefix[] = "*** fatal: ";
  tq_semihost_write(2, kPrefix, sizeof(kPrefix) - 1);
  size_t n = 0;
  while (what[n]) ++n;
  tq_semihost_write(2, what, uint32_t(n));
  tq_semihost_write(2, "\n", 1);
  tq_semihost_exit(134);
}
}  // namespace

namespace std {
void __throw_bad_alloc() { stop("out of memory (std::bad_alloc)"); }
void __throw_bad_array_new_length() { stop("bad array length (std::bad_array_new_length)"); }
void __throw_length_error(const char* what) { stop(what); }
void __throw_logic_error(const char* what) { stop(what); }
void __throw_out_of_range(const char* what) { stop(what); }
void __throw_out_of_range_fmt(const char* what, ...) { stop(what); }
void __throw_invalid_argument(const char* what) { stop(what); }
void __throw_bad_function_call() { stop("empty std::function called"); }
}  // namespace std

void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return memalign(static_cast<size_t>(align), size);
}
void operator delete[](void* p, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { free(p); }

// What libstdc++'s own prebuilt objects (e.g. the std::string instantiations) call on their
// cleanup and catch paths — reached only while an exception propagates, which cannot happen.
extern "C" {
void __aeabi_unwind_cpp_pr0() { stop("an exception was thrown on a port without exceptions"); }
void __aeabi_unwind_cpp_pr1() { stop("an exception was thrown on a port without exceptions"); }
void __aeabi_unwind_cpp_pr2() { stop("an exception was thrown on a port without exceptions"); }
void __gxx_personality_v0() { stop("an exception was thrown on a port without exceptions"); }
void* __cxa_begin_catch(void*) { stop("an exception was caught on a port without exceptions"); }
void __cxa_end_catch() { stop("an exception was caught on a port without exceptions"); }
void __cxa_rethrow() { stop("an exception was rethrown on a port without exceptions"); }
void __cxa_end_cleanup() { stop("an exception was unwound on a port without exceptions"); }
void __cxa_call_unexpected(void*) { stop("unexpected exception"); }
}

// Function-local statics on one thread (libstdc++'s own objects use them; ours are built with
// -fno-threadsafe-statics): the guard's first byte says "initialized".
extern "C" {
int __cxa_guard_acquire(uint32_t* guard) { return !(*reinterpret_cast<uint8_t*>(guard)); }
void __cxa_guard_release(uint32_t* guard) { *reinterpret_cast<uint8_t*>(guard) = 1; }
void __cxa_guard_abort(uint32_t*) {}
}
