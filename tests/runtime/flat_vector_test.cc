// FlatVector: owned elements behave as std::vector's; a view reads the caller's memory and
// copies before anything writes, so the caller's bytes (a model file in flash) never change.
#include "tinyquant/flat_vector.h"

#include <doctest/doctest.h>

#include <vector>

using tinyquant::FlatVector;

TEST_CASE("FlatVector: owned elements behave as a std::vector") {
  FlatVector<int32_t> v;
  CHECK(v.empty());
  for (int i = 0; i < 100; ++i) v.push_back(i * 3);
  REQUIRE(v.size() == 100);
  CHECK(v[99] == 297);
  CHECK(v.back() == 297);
  CHECK_FALSE(v.is_view());
  v.resize(102, -1);
  CHECK(v[101] == -1);
  v.erase(v.begin() + 1, v.begin() + 3);  // drops 3, 6
  CHECK(v[1] == 9);
  CHECK(v.size() == 100);
  v.insert(v.begin(), 42);
  CHECK(v.front() == 42);
  CHECK(v[1] == 0);
  v.push_back(v[0]);  // an element of itself
  CHECK(v.back() == 42);
  const std::vector<int32_t> as_vector = v;
  CHECK(as_vector.size() == v.size());
  CHECK(v == as_vector);
  FlatVector<int32_t> copy = v;
  copy[0] = 7;
  CHECK(v[0] == 42);  // a deep copy
  CHECK(copy != v);
  v.assign(3, 5);
  CHECK(v == std::vector<int32_t>{5, 5, 5});
  v = {1, 2};
  CHECK(v == FlatVector<int32_t>({1, 2}));
  FlatVector<int32_t> moved = static_cast<FlatVector<int32_t>&&>(v);
  CHECK(moved.size() == 2);
  CHECK(v.empty());
}

TEST_CASE("FlatVector: a view reads in place and copies before any write") {
  const float file[4] = {0.5f, 0.25f, 2.0f, 8.0f};
  FlatVector<float> v = FlatVector<float>::view(file, 4);
  CHECK(v.is_view());
  const FlatVector<float>& cv = v;  // const access: no copy
  CHECK(cv.data() == file);
  CHECK(cv[2] == 2.0f);
  CHECK(cv.data() == file);

  FlatVector<float> copy = v;  // a copy owns its elements: it may outlive the file
  CHECK_FALSE(copy.is_view());
  CHECK(copy == v);
  CHECK(static_cast<const FlatVector<float>&>(copy).data() != file);
  FlatVector<float> moved = FlatVector<float>::view(file, 4);
  FlatVector<float> target = static_cast<FlatVector<float>&&>(moved);  // a move keeps the view
  CHECK(target.is_view());
  CHECK(cv.data() == file);

  v[1] = 4.0f;  // write: the elements are copied first
  CHECK_FALSE(v.is_view());
  CHECK(file[1] == 0.25f);
  CHECK(v[1] == 4.0f);
  CHECK(v[3] == 8.0f);
  CHECK(copy[1] == 0.25f);
  CHECK(static_cast<const FlatVector<float>&>(target)[1] == 0.25f);  // still the file's

  FlatVector<float> grown = FlatVector<float>::view(file, 4);
  grown.push_back(16.0f);
  CHECK(grown.size() == 5);
  CHECK(grown[0] == 0.5f);
  CHECK(grown[4] == 16.0f);
  FlatVector<float> cleared = FlatVector<float>::view(file, 4);
  cleared.clear();
  CHECK(cleared.empty());
  cleared.push_back(1.0f);
  CHECK(cleared.size() == 1);
  CHECK(file[0] == 0.5f);
}
