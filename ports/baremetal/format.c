// ports/baremetal/format.c — the printf family for bare metal, in place of newlib's.
//
// newlib's vfprintf with its dtoa, multi-precision and buffered-stdio support is about 30 KB of
// flash (and allocates); tinyquant formats only diagnostics and result lines. The printf family
// is linked with -Wl,--wrap (ports/CMakeLists.txt) to the functions below, which format with
// tq_vformat and write to the semihosting console (tq_semihost_write; retarget it for a UART).
//
// Supported: flags - + space # 0, width and precision (digits or *), length hh h l ll z j t L,
// conversions d i u o x X c s p % f F e E g G (n is not). Floating point is formatted in single
// precision (the M4 / M7 FPU's): 7 significant digits are exact, more are printed as the float
// gives them; magnitudes beyond FLT_MAX print as inf.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "semihosting.h"

typedef struct {
  char* buf;     // string sink (NULL: console sink)
  size_t size;   // its capacity
  size_t len;    // characters produced so far (also past the capacity, as vsnprintf counts)
  int fd;        // console sink: 1 stdout, 2 stderr
  char tmp[128]; // console sink: bytes not yet written
  size_t pending;
} Sink;

static void flush(Sink* s) {
  if (!s->buf && s->pending) tq_semihost_write(s->fd, s->tmp, (uint32_t)s->pending);
  s->pending = 0;
}

static void put(Sink* s, char c) {
  if (s->buf) {
    if (s->len + 1 < s->size) s->buf[s->len] = c;
  } else {
    if (s->pending == sizeof(s->tmp)) flush(s);
    s->tmp[s->pending++] = c;
  }
  ++s->len;
}

static void put_n(Sink* s, char c, int n) {
  while (n-- > 0) put(s, c);
}

static void put_str(Sink* s, const char* p, int n) {
  for (int i = 0; i < n; ++i) put(s, p[i]);
}

enum { kLeft = 1, kPlus = 2, kSpace = 4, kAlt = 8, kZero = 16 };

// One converted field: sign / prefix, then body, padded to width.
static void field(Sink* s, int flags, int width, const char* prefix, const char* body, int body_len,
                  int zeros) {
  const int prefix_len = (int)strlen(prefix);
  const int pad = width - prefix_len - zeros - body_len;
  if (!(flags & kLeft) && !(flags & kZero)) put_n(s, ' ', pad);
  put_str(s, prefix, prefix_len);
  if (!(flags & kLeft) && (flags & kZero)) put_n(s, '0', pad);
  put_n(s, '0', zeros);
  put_str(s, body, body_len);
  if (flags & kLeft) put_n(s, ' ', pad);
}

static void format_int(Sink* s, uint64_t v, int negative, int base, int upper, int flags, int width, int prec) {
  char digits[24];
  int n = 0;
  const char* set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  if (v <= 0xFFFFFFFFu) {  // 32-bit division where it suffices
    uint32_t w = (uint32_t)v;
    do {
      digits[sizeof(digits) - 1 - n++] = set[w % (uint32_t)base];
      w /= (uint32_t)base;
    } while (w);
  } else {
    do {
      digits[sizeof(digits) - 1 - n++] = set[v % (uint64_t)base];
      v /= (uint64_t)base;
    } while (v);
  }
  if (prec == 0 && n == 1 && digits[sizeof(digits) - 1] == '0') n = 0;  // "%.0d" of 0 prints nothing
  char prefix[4] = "";
  int p = 0;
  if (negative) prefix[p++] = '-';
  else if (flags & kPlus) prefix[p++] = '+';
  else if (flags & kSpace) prefix[p++] = ' ';
  if ((flags & kAlt) && base == 16 && v) prefix[p++] = '0', prefix[p++] = upper ? 'X' : 'x';
  prefix[p] = 0;
  int zeros = prec > n ? prec - n : 0;
  if ((flags & kAlt) && base == 8 && zeros == 0 && (n == 0 || digits[sizeof(digits) - n] != '0')) zeros = 1;
  if (prec >= 0) flags &= ~kZero;  // a precision turns 0-padding off (C99)
  field(s, flags, width, prefix, digits + sizeof(digits) - n, n, zeros);
}

// The first `count` (1..9) significant decimal digits of v > 0, rounded, and the decimal
// exponent of the first one.
static void float_digits(float v, int count, char* out, int* exponent) {
  static const float kUp[] = {1e1f, 1e2f, 1e4f, 1e8f, 1e16f, 1e32f};
  int e = 0;
  for (int i = 5; i >= 0; --i) {
    if (v >= kUp[i]) {
      v /= kUp[i];
      e += 1 << i;
    }
  }
  if (v < 1.0f) {
    for (int i = 5; i >= 0; --i) {
      if (v * kUp[i] < 10.0f) {
        v *= kUp[i];
        e -= 1 << i;
      }
    }
  }
  while (v >= 10.0f) v /= 10.0f, ++e;  // rounding in the steps above
  while (v < 1.0f) v *= 10.0f, --e;
  uint32_t scale = 1;
  for (int i = 1; i < count; ++i) scale *= 10;
  const float x = v * (float)scale;
  uint32_t m = (uint32_t)x;
  const float frac = x - (float)m;
  if (frac > 0.5f || (frac == 0.5f && (m & 1u))) ++m;  // half to even, as glibc on exact halves
  if (m >= scale * 10u) m /= 10u, ++e;  // 9.9999 rounded up to 10.000
  for (int i = count - 1; i >= 0; --i) out[i] = (char)('0' + m % 10u), m /= 10u;
  *exponent = e;
}

static void format_float(Sink* s, double dv, char conv, int flags, int width, int prec) {
  const int upper = conv == 'F' || conv == 'E' || conv == 'G';
  char lower = (char)(conv | 0x20);
  uint64_t bits;
  memcpy(&bits, &dv, sizeof(bits));
  const int is_nan = ((bits >> 52) & 0x7FFu) == 0x7FFu && (bits & 0xFFFFFFFFFFFFFull) != 0;
  const int negative = (int)(bits >> 63) && !is_nan;  // the sign (a NaN prints as nan)
  float v = (float)dv;  // single precision from here on (no double-precision library code)
  if (bits >> 63) v = -v;
  char prefix[2] = {0, 0};
  if (negative) prefix[0] = '-';
  else if (flags & kPlus) prefix[0] = '+';
  else if (flags & kSpace) prefix[0] = ' ';
  if (v != v || v > 3.40282347e38f) {
    field(s, flags & ~kZero, width, prefix, v != v ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf"), 3, 0);
    return;
  }
  if (prec < 0) prec = 6;
  char body[64];
  int n = 0;
  char d[9];
  int e = 0;
  int strip = 0;
  if (lower == 'g') {
    if (prec == 0) prec = 1;
    if (v == 0) e = 0;
    else float_digits(v, prec > 9 ? 9 : prec, d, &e);
    if (e < prec && e >= -4) lower = 'f', prec = prec - 1 - e;
    else lower = 'e', prec = prec - 1;
    strip = !(flags & kAlt);
  }
  if (lower == 'e') {
    const int count = prec + 1 > 9 ? 9 : prec + 1;
    if (v == 0) memset(d, '0', 9), e = 0;
    else float_digits(v, count, d, &e);
    body[n++] = d[0];
    if (prec > 0 || (flags & kAlt)) body[n++] = '.';
    for (int i = 1; i <= prec && n < 40; ++i) body[n++] = i < count ? d[i] : '0';
    if (strip) {
      while (n > 1 && body[n - 1] == '0') --n;
      if (body[n - 1] == '.') --n;
    }
    body[n++] = upper ? 'E' : 'e';
    body[n++] = e < 0 ? '-' : '+';
    const int ae = e < 0 ? -e : e;
    if (ae >= 100) body[n++] = (char)('0' + ae / 100);
    body[n++] = (char)('0' + ae / 10 % 10);
    body[n++] = (char)('0' + ae % 10);
  } else {  // f
    if (prec > 30) prec = 30;
    int count = 0;
    if (v != 0) {
      float_digits(v, 1, d, &e);
      count = e + 1 + prec;  // digits down to 10^-prec
    }
    char digs[48];
    int first = 0;  // exponent of digs[0]
    if (v == 0 || count <= 0) {
      // |v| < 10^-prec / 2 prints 0; up to 10^-prec rounds to one unit in the last place
      const float unit = 0.5f;
      float scaled = v;
      for (int i = 0; i < prec; ++i) scaled *= 10.0f;
      digs[0] = v != 0 && count == 0 && scaled >= unit ? '1' : '0';
      first = -prec;
      count = 1;
    } else {
      const int c9 = count > 9 ? 9 : count;
      int e2;
      float_digits(v, c9, digs, &e2);
      for (int i = c9; i < count && i < 40; ++i) digs[i] = '0';
      if (count > 40) count = 40;
      if (e2 > e) digs[count++] = '0';  // rounding carried into a new leading digit
      first = e2;
    }
    // digs[i] has exponent first - i; print integer part, point, prec decimals.
    int exp = first > 0 ? first : 0;
    for (int p = exp; p >= -prec && n < 60; --p) {
      const int i = first - p;
      body[n++] = i >= 0 && i < count ? digs[i] : '0';
      if (p == 0 && (prec > 0 || (flags & kAlt))) body[n++] = '.';
    }
    if (strip && prec > 0) {
      while (body[n - 1] == '0') --n;
      if (body[n - 1] == '.') --n;
    }
  }
  field(s, flags, width, prefix, body, n, 0);
}

static void vformat(Sink* s, const char* fmt, va_list ap) {
  for (const char* p = fmt; *p; ++p) {
    if (*p != '%') {
      put(s, *p);
      continue;
    }
    ++p;
    int flags = 0;
    for (;; ++p) {
      if (*p == '-') flags |= kLeft;
      else if (*p == '+') flags |= kPlus;
      else if (*p == ' ') flags |= kSpace;
      else if (*p == '#') flags |= kAlt;
      else if (*p == '0') flags |= kZero;
      else break;
    }
    int width = 0, prec = -1;
    if (*p == '*') {
      width = va_arg(ap, int);
      if (width < 0) flags |= kLeft, width = -width;
      ++p;
    } else {
      while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
    }
    if (*p == '.') {
      ++p;
      prec = 0;
      if (*p == '*') {
        prec = va_arg(ap, int);
        ++p;
      } else {
        while (*p >= '0' && *p <= '9') prec = prec * 10 + (*p++ - '0');
      }
    }
    int size = 0;  // 0 int, 1 long, 2 long long, -1 short, -2 char, 3 size_t / ptrdiff_t, 4 intmax_t
    if (*p == 'h') size = p[1] == 'h' ? (++p, -2) : -1, ++p;
    else if (*p == 'l') size = p[1] == 'l' ? (++p, 2) : 1, ++p;
    else if (*p == 'z' || *p == 't') size = 3, ++p;
    else if (*p == 'j') size = 4, ++p;
    else if (*p == 'L') ++p;
    const char c = *p;
    if (!c) break;
    switch (c) {
      case 'd':
      case 'i': {
        int64_t v;
        if (size == 2 || size == 4) v = va_arg(ap, long long);
        else if (size == 1 || size == 3) v = va_arg(ap, long);
        else v = va_arg(ap, int);
        if (size == -1) v = (short)v;
        if (size == -2) v = (signed char)v;
        format_int(s, v < 0 ? 0u - (uint64_t)v : (uint64_t)v, v < 0, 10, 0, flags, width, prec);
        break;
      }
      case 'u':
      case 'o':
      case 'x':
      case 'X': {
        uint64_t v;
        if (size == 2 || size == 4) v = va_arg(ap, unsigned long long);
        else if (size == 1 || size == 3) v = va_arg(ap, unsigned long);
        else v = va_arg(ap, unsigned);
        if (size == -1) v = (unsigned short)v;
        if (size == -2) v = (unsigned char)v;
        format_int(s, v, 0, c == 'u' ? 10 : c == 'o' ? 8 : 16, c == 'X', flags & ~(kPlus | kSpace), width, prec);
        break;
      }
      case 'p':
        format_int(s, (uintptr_t)va_arg(ap, void*), 0, 16, 0, kAlt | (flags & kLeft), width, -1);
        break;
      case 'c': {
        const char ch = (char)va_arg(ap, int);
        field(s, flags & ~kZero, width, "", &ch, 1, 0);
        break;
      }
      case 's': {
        const char* str = va_arg(ap, const char*);
        if (!str) str = "(null)";
        int n = 0;
        while (str[n] && (prec < 0 || n < prec)) ++n;
        field(s, flags & ~kZero, width, "", str, n, 0);
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': format_float(s, va_arg(ap, double), c, flags, width, prec); break;
      case '%': put(s, '%'); break;
      default:  // unknown: printed as written
        put(s, '%');
        put(s, c);
        break;
    }
  }
}

int tq_vformat(char* buf, size_t size, const char* fmt, va_list ap) {
  Sink s = {buf, size, 0, 0, {0}, 0};
  vformat(&s, fmt, ap);
  if (buf && size) buf[s.len < size ? s.len : size - 1] = 0;
  return (int)s.len;
}

static int console(int fd, const char* fmt, va_list ap) {
  Sink s = {NULL, 0, 0, fd, {0}, 0};
  vformat(&s, fmt, ap);
  flush(&s);
  return (int)s.len;
}

// The stream a FILE* names: stderr goes to the console's stderr, everything else to stdout
// (there are no files on this port).
static int fd_of(FILE* f) { return f == stderr ? 2 : 1; }

int __wrap_vsnprintf(char* buf, size_t size, const char* fmt, va_list ap) { return tq_vformat(buf, size, fmt, ap); }
int __wrap_vsprintf(char* buf, const char* fmt, va_list ap) { return tq_vformat(buf, (size_t)-1 / 2, fmt, ap); }
int __wrap_vfprintf(FILE* f, const char* fmt, va_list ap) { return console(fd_of(f), fmt, ap); }
int __wrap_vprintf(const char* fmt, va_list ap) { return console(1, fmt, ap); }
int __wrap_snprintf(char* buf, size_t size, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int n = tq_vformat(buf, size, fmt, ap);
  va_end(ap);
  return n;
}
int __wrap_sprintf(char* buf, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int n = tq_vformat(buf, (size_t)-1 / 2, fmt, ap);
  va_end(ap);
  return n;
}
int __wrap_fprintf(FILE* f, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int n = console(fd_of(f), fmt, ap);
  va_end(ap);
  return n;
}
int __wrap_printf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int n = console(1, fmt, ap);
  va_end(ap);
  return n;
}

// What GCC makes of printf calls with constant strings, and single characters.
static int put_console(int fd, const char* str, int newline) {
  Sink s = {NULL, 0, 0, fd, {0}, 0};
  while (*str) put(&s, *str++);
  if (newline) put(&s, '\n');
  flush(&s);
  return (int)s.len;
}
int __wrap_fputs(const char* str, FILE* f) { return put_console(fd_of(f), str, 0); }
int __wrap_puts(const char* str) { return put_console(1, str, 1); }
int __wrap_fputc(int c, FILE* f) {
  const char ch = (char)c;
  tq_semihost_write(fd_of(f), &ch, 1);
  return (unsigned char)c;
}
int __wrap_putchar(int c) {
  const char ch = (char)c;
  tq_semihost_write(1, &ch, 1);
  return (unsigned char)c;
}
