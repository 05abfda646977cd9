// Name: an owned NUL-terminated string, or a view of one in memory the caller keeps alive (a
// .tqm file's FlatBuffer strings); copies own, moves keep views, and it compares and concatenates
// with std::string and literals as the code that builds graphs expects.
#include "tinyquant/name.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <utility>

using tinyquant::Name;

TEST_CASE("Name: owned names read, compare and concatenate as std::string") {
  Name empty;
  CHECK(empty.empty());
  CHECK(empty.size() == 0);
  CHECK(std::string(empty.c_str()).empty());
  CHECK(empty == "");
  CHECK_FALSE(empty.is_view());

  Name a = std::string("conv1");
  CHECK(a.size() == 5);
  CHECK(a == "conv1");
  CHECK(a == std::string("conv1"));
  CHECK(std::string("conv1") == a);
  CHECK(a != "conv2");
  CHECK(std::string("conv") != a);
  CHECK(a.c_str()[5] == '\0');
  CHECK(a + ":nhwc" == "conv1:nhwc");
  CHECK(std::string("x/") + a == "x/conv1");
  a += ":q";
  CHECK(a == "conv1:q");
  const std::string s = a;
  CHECK(s == "conv1:q");

  Name b = a;  // a deep copy
  a = "other";
  CHECK(b == "conv1:q");
  CHECK(a == "other");
  CHECK(Name("abc") < Name("abd"));
  CHECK(Name("ab") < Name("abc"));
  CHECK_FALSE(Name("abc") < Name("ab"));

  std::map<std::string, int> by_name;
  by_name[b] = 3;  // converts to the map's std::string key
  CHECK(by_name.at("conv1:q") == 3);

  // A name with an embedded NUL keeps its length (ONNX names are arbitrary bytes).
  const char raw[] = {'a', '\0', 'b'};
  Name nul(raw, 3);
  CHECK(nul.size() == 3);
  CHECK(nul.str() == std::string(raw, 3));
  CHECK(nul != Name("a"));
}

TEST_CASE("Name: a view reads the caller's bytes; copies own them, moves keep the view") {
  char file[] = "stem/Conv_output_0";  // stands in for a FlatBuffer string (NUL-terminated)
  Name view = Name::view(file, sizeof(file) - 1);
  CHECK(view.is_view());
  CHECK(view.c_str() == file);
  CHECK(view == "stem/Conv_output_0");

  Name copy = view;
  CHECK_FALSE(copy.is_view());
  CHECK(copy.c_str() != file);
  Name assigned;
  assigned = view;
  CHECK_FALSE(assigned.is_view());

  Name moved = std::move(view);
  CHECK(moved.is_view());
  CHECK(moved.c_str() == file);
  CHECK(view.empty());  // NOLINT(bugprone-use-after-move): a moved-from Name is empty

  file[0] = 'S';  // the file changes under the view, never under the copies
  CHECK(moved == "Stem/Conv_output_0");
  CHECK(copy == "stem/Conv_output_0");
  CHECK(assigned == "stem/Conv_output_0");

  moved += "_q";  // appending makes it owned
  CHECK_FALSE(moved.is_view());
  CHECK(moved == "Stem/Conv_output_0_q");
  CHECK(std::string(file) == "Stem/Conv_output_0");
}
