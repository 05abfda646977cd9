// Running the tq binary from tests, as a user would.
#pragma once

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace tinyquant {
namespace testing {

struct Run {
  int code = -1;
  std::string out;  // stdout and stderr together
};

inline Run tq(const std::string& args) {
  Run r;
  const std::string cmd = std::string(TQ_TQ_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

inline bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

inline long file_size(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : -1;
}

// The whole file as text ("" if it cannot be read).
inline std::string read_text_file(const std::string& p) {
  std::string text;
  if (FILE* f = std::fopen(p.c_str(), "rb")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return text;
}

// A fresh directory under /tmp named after `prefix`.
inline std::string temp_dir(const char* prefix) {
  std::string tmpl = std::string("/tmp/") + prefix + "_XXXXXX";
  REQUIRE(mkdtemp(&tmpl[0]));
  return tmpl;
}

}  // namespace testing
}  // namespace tinyquant
