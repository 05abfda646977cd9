// ports/baremetal/printf_c99.c — C99 length modifiers for a newlib built without them.
//
// Debian's arm-none-eabi newlib is configured without _WANT_IO_C99_FORMATS: "%zu" prints "zu"
// and swallows no argument, so every tinyquant message that reports a size (Status::error's
// "%zu bytes", doctest's std::to_string, ...) comes out wrong on the device. The printf family is
// linked with -Wl,--wrap (see ports/CMakeLists.txt) to these functions, which rewrite the
// modifiers to ones newlib has and with the same argument size on this ABI (size_t, ptrdiff_t:
// long; intmax_t: long long; hh: h — char arguments are promoted to int either way), then call
// the real function. With a newlib that has C99 formats they pass the format through unchanged.
#include <newlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int __real_vsnprintf(char* buf, size_t size, const char* fmt, va_list ap);
int __real_vfprintf(FILE* f, const char* fmt, va_list ap);
int __real_vsprintf(char* buf, const char* fmt, va_list ap);

#if !defined(_WANT_IO_C99_FORMATS)
_Static_assert(sizeof(size_t) == sizeof(long) && sizeof(ptrdiff_t) == sizeof(long), "z/t -> l needs long-sized size_t");
_Static_assert(sizeof(intmax_t) == sizeof(long long), "j -> ll needs long long intmax_t");

// Rewrites fmt into out (size bytes); returns fmt itself if it is unchanged or too long.
static const char* c99_format(const char* fmt, char* out, size_t size) {
  size_t o = 0;
  int changed = 0;
  for (const char* p = fmt; *p; ++p) {
    if (o + 3 >= size) return fmt;
    out[o++] = *p;
    if (*p != '%') continue;
    ++p;
    if (*p == '%') {
      out[o++] = '%';
      continue;
    }
    // flags, width, precision
    while (*p && (*p == '-' || *p == '+' || *p == ' ' || *p == '#' || *p == '0' || *p == '.' || *p == '*' ||
                  (*p >= '1' && *p <= '9'))) {
      if (o + 3 >= size) return fmt;
      out[o++] = *p++;
    }
    if (*p == 'z' || *p == 't') {
      out[o++] = 'l';
      changed = 1;
    } else if (*p == 'j') {
      out[o++] = 'l';
      out[o++] = 'l';
      changed = 1;
    } else if (*p == 'h' && p[1] == 'h') {
      out[o++] = 'h';
      ++p;
      changed = 1;
    } else {
      --p;  // not a C99 modifier: copied as is by the loop
    }
    if (!*p) break;
  }
  out[o] = 0;
  return changed ? out : fmt;
}
#define TQ_FORMAT(fmt) char fixed_[256]; fmt = c99_format(fmt, fixed_, sizeof(fixed_))
#else
#define TQ_FORMAT(fmt) (void)0
#endif

int __wrap_vsnprintf(char* buf, size_t size, const char* fmt, va_list ap) {
  TQ_FORMAT(fmt);
  return __real_vsnprintf(buf, size, fmt, ap);
}
int __wrap_vsprintf(char* buf, const char* fmt, va_list ap) {
  TQ_FORMAT(fmt);
  return __real_vsprintf(buf, fmt, ap);
}
int __wrap_vfprintf(FILE* f, const char* fmt, va_list ap) {
  TQ_FORMAT(fmt);
  return __real_vfprintf(f, fmt, ap);
}
int __wrap_vprintf(const char* fmt, va_list ap) { return __wrap_vfprintf(stdout, fmt, ap); }
int __wrap_snprintf(char* buf, size_t size, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int n = __wrap_vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}
int __wrap_sprintf(char* buf, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int n = __wrap_vsprintf(buf, fmt, ap);
  va_end(ap);
  return n;
}
int __wrap_fprintf(FILE* f, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int n = __wrap_vfprintf(f, fmt, ap);
  va_end(ap);
  return n;
}
int __wrap_printf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int n = __wrap_vfprintf(stdout, fmt, ap);
  va_end(ap);
  return n;
}
