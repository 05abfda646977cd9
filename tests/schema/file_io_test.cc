// Whole-file reads, atomic writes, and .tqm files on disk.
#include "tinyquant/file_io.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "schema/test_graphs.h"
#include "tinyquant/model_io.h"

using namespace tinyquant;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed (with contents) at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tq-schema-XXXXXX").string();
    REQUIRE(::mkdtemp(&pattern[0]) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  std::string file(const char* name) const { return (path_ / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool contains(const char* message, const std::string& part) { return std::string(message).find(part) != std::string::npos; }

}  // namespace

TEST_CASE("file_io: read_file reads everything and names the file when it cannot") {
  TempDir dir;
  const std::string path = dir.file("data.bin");
  const std::string text = "tinyquant\0bytes";
  std::ofstream(path, std::ios::binary) << text;
  std::vector<uint8_t> bytes;
  REQUIRE(read_file(path.c_str(), 1024, &bytes).is_ok());
  CHECK(std::string(bytes.begin(), bytes.end()) == text);

  const std::string missing = dir.file("missing.tqm");
  Status s = read_file(missing.c_str(), 1024, &bytes);
  CHECK(s.code() == StatusCode::kNotFound);
  CHECK(contains(s.message(), "'" + missing + "' does not exist"));

  s = read_file(path.c_str(), 4, &bytes);
  CHECK(!s.is_ok());
  CHECK(contains(s.message(), "is " + std::to_string(text.size()) + " bytes, over the 4-byte limit"));

  s = read_file(dir.path().c_str(), 1024, &bytes);
  CHECK(s.code() == StatusCode::kIoError);
  CHECK(contains(s.message(), "is not a regular file"));
}

TEST_CASE("file_io: write_file_atomic replaces the file and leaves no temp file") {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  REQUIRE(write_file_atomic(path.c_str(), "first", 5).is_ok());
  CHECK(slurp(path) == "first");
  ::chmod(path.c_str(), 0640);
  REQUIRE(write_file_atomic(path.c_str(), "second version", 14).is_ok());
  CHECK(slurp(path) == "second version");
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);  // the replaced file's permissions are kept
  REQUIRE(write_file_atomic(path.c_str(), nullptr, 0).is_ok());
  CHECK(slurp(path).empty());
  CHECK(dir.entries() == std::vector<std::string>{"out.bin"});
}

TEST_CASE("file_io: a failed write leaves the old file and no temp file") {
  TempDir dir;
  const std::string path = dir.file("model.tqm");
  REQUIRE(write_file_atomic(path.c_str(), "old", 3).is_ok());

  // The rename fails: the destination is a non-empty directory.
  const std::string blocked = dir.file("blocked");
  fs::create_directory(blocked);
  std::ofstream(blocked + "/keep") << "x";
  Status s = write_file_atomic(blocked.c_str(), "new", 3);
  CHECK(s.code() == StatusCode::kIoError);
  CHECK(contains(s.message(), "cannot rename"));
  CHECK(dir.entries() == std::vector<std::string>{"blocked", "model.tqm"});

  // The directory does not exist.
  s = write_file_atomic(dir.file("no/such/dir/model.tqm").c_str(), "new", 3);
  CHECK(s.code() == StatusCode::kIoError);
  CHECK(contains(s.message(), "cannot create a temporary file in '" + dir.file("no/such/dir") + "'"));

  // The directory is read-only (root ignores permissions, so only as a normal user).
  if (::geteuid() != 0) {
    fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
    s = save_model_file(testing::make_small_graph(), path.c_str());
    CHECK(s.code() == StatusCode::kIoError);
    fs::permissions(dir.path(), fs::perms::owner_all);
  }
  CHECK(slurp(path) == "old");
  CHECK(dir.entries() == std::vector<std::string>{"blocked", "model.tqm"});
}

TEST_CASE("file_io: save_model_file and load_model_file round-trip through disk") {
  TempDir dir;
  const std::string path = dir.file("small.tqm");
  const Graph graph = testing::make_small_graph();
  REQUIRE(write_file_atomic(path.c_str(), "not a model at all", 18).is_ok());
  const Status saved = save_model_file(graph, path.c_str());
  REQUIRE_MESSAGE(saved.is_ok(), saved.message());
  CHECK(dir.entries() == std::vector<std::string>{"small.tqm"});

  Graph loaded;
  const Status s = load_model_file(path.c_str(), &loaded);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  testing::check_same_graph(graph, loaded);
  REQUIRE(bool(loaded.storage));  // the file's bytes live as long as the graph
  for (const Buffer& b : loaded.buffers) CHECK(reinterpret_cast<uintptr_t>(b.data()) % 16 == 0);
  const Graph copy = loaded;
  loaded = Graph();
  testing::check_same_graph(graph, copy);  // a copy keeps the bytes alive on its own

  // Errors name the file.
  const std::string missing = dir.file("missing.tqm");
  Status e = load_model_file(missing.c_str(), &loaded);
  CHECK(e.code() == StatusCode::kNotFound);
  CHECK(contains(e.message(), missing));
  const std::string text = dir.file("text.tqm");
  std::ofstream(text) << "hello, this is text";
  e = load_model_file(text.c_str(), &loaded);
  CHECK(e.code() == StatusCode::kInvalidModel);
  CHECK(contains(e.message(), text + ": not a tinyquant model"));
}
