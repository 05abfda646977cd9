// tinyquant/name.h — a tensor's or operator's name: an owned, NUL-terminated copy, or a view of
// a NUL-terminated string in memory the caller keeps alive (a .tqm FlatBuffer read in place: its
// strings are NUL-terminated, which the verifier checks). The loader makes views, so a model's
// names cost no heap on a microcontroller; everything else assigns std::strings or literals as
// before. Same rules as FlatVector: copying a Name always makes an owned copy (a copy may outlive
// the file), moving keeps a view a view. 12 bytes on 32-bit targets (std::string: 24, plus the
// heap for any name longer than 15 characters, which ONNX node names almost always are).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace tinyquant {

class Name {
 public:
  Name() noexcept {}
  Name(const char* s) { set(s, s ? std::strlen(s) : 0); }  // NOLINT: as a std::string
  Name(const std::string& s) { set(s.data(), s.size()); }  // NOLINT: as a std::string
  Name(const char* s, size_t n) { set(s, n); }
  Name(const Name& o) { set(o.data_, o.size_); }
  Name(Name&& o) noexcept : data_(o.data_), size_(o.size_), owned_(o.owned_) { o.forget(); }
  Name& operator=(const Name& o) {
    if (this != &o) {
      Name copy(o);
      swap(copy);
    }
    return *this;
  }
  Name& operator=(Name&& o) noexcept {
    if (this != &o) {
      release();
      data_ = o.data_;
      size_ = o.size_;
      owned_ = o.owned_;
      o.forget();
    }
    return *this;
  }
  ~Name() { release(); }

  // Views s[0, n); s[n] must be '\0' and s must outlive the view (and every move of it).
  static Name view(const char* s, size_t n) noexcept {
    Name name;
    name.data_ = s;
    name.size_ = static_cast<uint32_t>(n);
    return name;
  }

  const char* c_str() const noexcept { return data_ ? data_ : ""; }
  const char* data() const noexcept { return c_str(); }
  size_t size() const noexcept { return size_; }
  size_t length() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  bool is_view() const noexcept { return data_ != nullptr && !owned_; }
  std::string str() const { return std::string(c_str(), size_); }
  operator std::string() const { return str(); }  // NOLINT: reads as a std::string

  Name& operator+=(const std::string& tail) { return *this = str() + tail; }
  Name& operator+=(const char* tail) { return *this = str() + tail; }

  void swap(Name& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(owned_, o.owned_);
  }

  friend bool operator==(const Name& a, const Name& b) noexcept {
    return a.size_ == b.size_ && std::memcmp(a.c_str(), b.c_str(), a.size_) == 0;
  }
  friend bool operator==(const Name& a, const std::string& b) noexcept {
    return a.size_ == b.size() && std::memcmp(a.c_str(), b.data(), a.size_) == 0;
  }
  friend bool operator==(const std::string& a, const Name& b) noexcept { return b == a; }
  friend bool operator==(const Name& a, const char* b) noexcept { return std::strcmp(a.c_str(), b) == 0; }
  friend bool operator==(const char* a, const Name& b) noexcept { return b == a; }
  template <typename T>
  friend bool operator!=(const Name& a, const T& b) noexcept { return !(a == b); }
  friend bool operator!=(const std::string& a, const Name& b) noexcept { return !(b == a); }
  friend bool operator!=(const char* a, const Name& b) noexcept { return !(b == a); }
  friend bool operator<(const Name& a, const Name& b) noexcept {
    const int c = std::memcmp(a.c_str(), b.c_str(), a.size_ < b.size_ ? a.size_ : b.size_);
    return c != 0 ? c < 0 : a.size_ < b.size_;
  }
  friend std::string operator+(const Name& a, const std::string& b) { return a.str() + b; }
  friend std::string operator+(const Name& a, const char* b) { return a.str() + b; }
  friend std::string operator+(const std::string& a, const Name& b) { return a + b.c_str(); }
  friend std::string operator+(const char* a, const Name& b) { return a + b.str(); }

 private:
  void set(const char* s, size_t n) {
    if (n == 0) return;
    char* p = new char[n + 1];
    std::memcpy(p, s, n);
    p[n] = '\0';
    data_ = p;
    size_ = static_cast<uint32_t>(n);
    owned_ = 1;
  }
  void release() noexcept {
    if (owned_) delete[] data_;
    forget();
  }
  void forget() noexcept {
    data_ = nullptr;
    size_ = 0;
    owned_ = 0;
  }

  const char* data_ = nullptr;  // null: empty
  uint32_t size_ = 0;
  uint32_t owned_ = 0;  // data_ was new[]'d here
};

}  // namespace tinyquant
