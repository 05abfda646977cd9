// ports/baremetal/format.c on the target: snprintf & co. are wrapped to it in every bare-metal
// program, so these are its results, checked against what C99 specifies.
#include <doctest/doctest.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <string>

namespace {
template <typename... Args>
std::string fmt(const char* f, Args... args) {
  char buf[160];
  const int n = std::snprintf(buf, sizeof(buf), f, args...);
  REQUIRE(n >= 0);
  return std::string(buf);
}
}  // namespace

TEST_CASE("format.c: integers, strings, widths, flags, C99 lengths") {
  CHECK(fmt("%d %i %u %x %X %o", -42, 17, 3000000000u, 0xbeef, 0xbeef, 8) == "-42 17 3000000000 beef BEEF 10");
  CHECK(fmt("%5d|%-5d|%05d|%+d|% d|%.3d|%8.3d", 42, 42, 42, 42, 42, 7, -7) == "   42|42   |00042|+42| 42|007|    -007");
  CHECK(fmt("%ld %lld %llu %zu %016llx", -5L, -9000000000LL, 18446744073709551615ULL, size_t(123), 0x1234abcdULL) ==
        "-5 -9000000000 18446744073709551615 123 000000001234abcd");
  CHECK(fmt("%" PRId64 " %" PRIu32 " %hhd %hd", int64_t(-7), uint32_t(9), 300, 70000) == "-7 9 44 4464");
  CHECK(fmt("%s|%6s|%-6s|%.3s|%c|%%", "abc", "abc", "abc", "abcdef", 'q') == "abc|   abc|abc   |abc|q|%");
  CHECK(fmt("%#x %#o %*d %-*d|", 255, 8, 4, 7, 3, 1) == "0xff 010    7 1  |");
  char small[6];
  CHECK(std::snprintf(small, sizeof(small), "%s", "truncated") == 9);  // the length it needed
  CHECK(std::string(small) == "trunc");
}

TEST_CASE("format.c: floating point (single-precision digits)") {
  CHECK(fmt("%g %g %g %g %g %g", 0.0, 1.0, 0.5, 1.5e-3, 123456.0, 1234567.0) == "0 1 0.5 0.0015 123456 1.23457e+06");
  CHECK(fmt("%g %g %g", 0.01237, 3.14159265, 1e10) == "0.01237 3.14159 1e+10");
  CHECK(fmt("%g %g %g", double(INFINITY), -double(INFINITY), double(NAN)) == "inf -inf nan");
  CHECK(fmt("%.2f %.2f %.0f %f %.3f", 87.5, 100.0, 2.5, 3.14159, -0.0004) == "87.50 100.00 2 3.141590 -0.000");
  CHECK(fmt("%e %.3e %E %.0e", 12345.678, 0.000123456, 1.0, 5.0) == "1.234568e+04 1.235e-04 1.000000E+00 5e+00");
  CHECK(fmt("%10.3f|%-10.2f|%010.2f|%+.1f", 3.14159, 2.5, -2.5, 1.25) == "     3.142|2.50      |-000002.50|+1.2");
  CHECK(fmt("scale[%zu] is %g, expected finite and > 0", size_t(2), double(NAN)) ==
        "scale[2] is nan, expected finite and > 0");
}
