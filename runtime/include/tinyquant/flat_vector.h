// tinyquant/flat_vector.h — a vector of plain numbers that either owns its elements or views
// elements in memory the caller keeps alive: a .tqm FlatBuffer read in place (in flash on a
// microcontroller, an mmap or a file image on a host). The loader makes the views, so a model's
// scales, zero points, shapes and operator tensor lists cost no heap; everything else (importer,
// quantizers, tests) builds owned ones exactly as with std::vector.
//
// A view is read-only: anything that may write (non-const operator[] / data() / begin(),
// push_back, resize, ...) first copies the elements into owned storage, so read a view through
// a const reference. Copying a FlatVector (or the Tensor / Graph holding it) always makes owned
// elements: a copy may outlive the memory the view reads (a graph derived from a loaded one, the
// file freed later). Moving keeps a view a view. 12 bytes on 32-bit targets, as std::vector.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <new>
#include <type_traits>
#include <vector>

namespace tinyquant {

template <typename T>
class FlatVector {
  static_assert(std::is_trivially_copyable<T>::value, "FlatVector holds plain numbers");

 public:
  using value_type = T;
  using size_type = size_t;
  using iterator = T*;
  using const_iterator = const T*;

  FlatVector() = default;
  FlatVector(size_t n, const T& value) { assign(n, value); }
  explicit FlatVector(size_t n) { assign(n, T()); }
  FlatVector(std::initializer_list<T> list) { assign(list.begin(), list.end()); }
  FlatVector(const std::vector<T>& v) { assign(v.begin(), v.end()); }  // NOLINT: as a vector
  template <typename It, typename = decltype(*std::declval<It&>()), typename = decltype(++std::declval<It&>())>
  FlatVector(It first, It last) { assign(first, last); }
  FlatVector(const FlatVector& o) { copy_from(o); }
  FlatVector(FlatVector&& o) noexcept : data_(o.data_), size_(o.size_), cap_(o.cap_) {
    o.data_ = nullptr;
    o.size_ = o.cap_ = 0;
  }
  FlatVector& operator=(const FlatVector& o) {
    if (this != &o) {
      release();
      copy_from(o);
    }
    return *this;
  }
  FlatVector& operator=(FlatVector&& o) noexcept {
    if (this != &o) {
      release();
      data_ = o.data_;
      size_ = o.size_;
      cap_ = o.cap_;
      o.data_ = nullptr;
      o.size_ = o.cap_ = 0;
    }
    return *this;
  }
  FlatVector& operator=(const std::vector<T>& v) {
    assign(v.begin(), v.end());
    return *this;
  }
  FlatVector& operator=(std::initializer_list<T> list) {
    assign(list.begin(), list.end());
    return *this;
  }
  ~FlatVector() { release(); }

  // A view of n elements at `data` (aligned for T), valid while the caller keeps them alive.
  static FlatVector view(const T* data, size_t n) {
    FlatVector v;
    v.data_ = const_cast<T*>(data);
    v.size_ = static_cast<uint32_t>(n);
    v.cap_ = kView;
    return v;
  }
  bool is_view() const { return cap_ == kView; }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const T* data() const { return data_; }
  const T& operator[](size_t i) const { return data_[i]; }
  const T& front() const { return data_[0]; }
  const T& back() const { return data_[size_ - 1]; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  const T* cbegin() const { return data_; }
  const T* cend() const { return data_ + size_; }

  T* data() { return own(); }
  T& operator[](size_t i) { return own()[i]; }
  T& front() { return own()[0]; }
  T& back() { return own()[size_ - 1]; }
  T* begin() { return own(); }
  T* end() { return own() + size_; }

  std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }
  operator std::vector<T>() const { return to_vector(); }  // NOLINT: hands a copy to vector APIs

  void clear() {
    if (is_view()) {
      data_ = nullptr;
      cap_ = 0;
    }
    size_ = 0;
  }
  void reserve(size_t n) {
    if (n > capacity()) reallocate(n);
  }
  void resize(size_t n, const T& value = T()) {
    own();
    if (n > cap_) reallocate(std::max<size_t>(n, 2 * size_t(cap_)));
    for (size_t i = size_; i < n; ++i) data_[i] = value;
    size_ = static_cast<uint32_t>(n);
  }
  void push_back(const T& value) {
    const T copy = value;  // value may point into this vector
    own();
    if (size_ == cap_) reallocate(cap_ ? 2 * size_t(cap_) : 4);
    data_[size_++] = copy;
  }
  void emplace_back(const T& value) { push_back(value); }
  void pop_back() {
    own();
    --size_;
  }
  void assign(size_t n, const T& value) {
    const T copy = value;
    clear();
    if (n > capacity()) reallocate(n);
    for (size_t i = 0; i < n; ++i) data_[i] = copy;
    size_ = static_cast<uint32_t>(n);
  }
  template <typename It, typename = decltype(*std::declval<It&>()), typename = decltype(++std::declval<It&>())>
  void assign(It first, It last) {
    FlatVector tmp;  // first..last may be this vector's own elements
    for (; first != last; ++first) tmp.push_back(static_cast<T>(*first));
    *this = static_cast<FlatVector&&>(tmp);
  }
  T* insert(const T* pos, const T& value) {
    const size_t at = static_cast<size_t>(pos - data_);
    push_back(value);
    std::rotate(data_ + at, data_ + size_ - 1, data_ + size_);
    return data_ + at;
  }
  template <typename It, typename = decltype(*std::declval<It&>())>
  T* insert(const T* pos, It first, It last) {
    const size_t at = static_cast<size_t>(pos - data_);
    const size_t old = size_;
    for (; first != last; ++first) push_back(static_cast<T>(*first));
    std::rotate(data_ + at, data_ + old, data_ + size_);
    return data_ + at;
  }
  T* erase(const T* pos) { return erase(pos, pos + 1); }
  T* erase(const T* first, const T* last) {
    const size_t a = static_cast<size_t>(first - data_), b = static_cast<size_t>(last - data_);
    own();
    std::copy(data_ + b, data_ + size_, data_ + a);
    size_ -= static_cast<uint32_t>(b - a);
    return data_ + a;
  }

  friend bool operator==(const FlatVector& a, const FlatVector& b) { return equal(a.begin(), a.size(), b.begin(), b.size()); }
  friend bool operator!=(const FlatVector& a, const FlatVector& b) { return !(a == b); }
  friend bool operator==(const FlatVector& a, const std::vector<T>& b) { return equal(a.begin(), a.size(), b.data(), b.size()); }
  friend bool operator==(const std::vector<T>& a, const FlatVector& b) { return b == a; }
  friend bool operator!=(const FlatVector& a, const std::vector<T>& b) { return !(a == b); }
  friend bool operator!=(const std::vector<T>& a, const FlatVector& b) { return !(b == a); }

 private:
  static constexpr uint32_t kView = 0xffffffffu;
  size_t capacity() const { return is_view() ? 0 : cap_; }
  static bool equal(const T* a, size_t na, const T* b, size_t nb) {
    if (na != nb) return false;
    for (size_t i = 0; i < na; ++i)
      if (!(a[i] == b[i])) return false;
    return true;
  }
  void release() {
    if (!is_view()) delete[] data_;
    data_ = nullptr;
    size_ = cap_ = 0;
  }
  void copy_from(const FlatVector& o) {  // owned elements, from a view too
    data_ = nullptr;
    size_ = cap_ = 0;
    if (o.size_ == 0) return;
    reallocate(o.size_);
    std::memcpy(data_, o.data_, o.size_ * sizeof(T));
    size_ = o.size_;
  }
  T* own() {  // a view becomes owned elements (copy-on-write)
    if (is_view()) {
      const T* src = data_;
      const uint32_t n = size_;
      data_ = nullptr;
      size_ = cap_ = 0;
      if (n) {
        reallocate(n);
        std::memcpy(data_, src, n * sizeof(T));
      }
      size_ = n;
    }
    return data_;
  }
  void reallocate(size_t n) {  // owned storage of capacity n (>= size_), elements kept
    T* fresh = new T[n];
    if (size_) std::memcpy(fresh, data_, size_ * sizeof(T));
    if (!is_view()) delete[] data_;
    data_ = fresh;
    cap_ = static_cast<uint32_t>(n);
  }

  T* data_ = nullptr;
  uint32_t size_ = 0;
  uint32_t cap_ = 0;  // kView: data_ is a view
};

}  // namespace tinyquant
