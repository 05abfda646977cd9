// The langid text dataset (data/langid.h): the splits examples/langid/train.py builds from the
// Debian word lists, checked against its record (langid.json) and against checksums computed once
// with train.py's own build_dataset / build_vocab / encode; the vocabulary file; encode_word; and
// the split rules (ambiguity, duplicates, "\r", lengths, ISO-8859-1) on small hand-made lists.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/langid.h"
#include "tools/cli_util.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

const std::string kVocab = std::string(TQ_SOURCE_DIR) + "/examples/langid/models/langid.vocab";

// sum over i of x[i] * (i + 1): the checksum the Python one-liner computed (see below).
template <typename T>
uint64_t weighted_sum(const std::vector<T>& x) {
  uint64_t s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += static_cast<uint64_t>(x[i]) * (i + 1);
  return s;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
  REQUIRE(f.good());
}

uint32_t fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (const char c : s) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  return h;
}

std::string to_utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

}  // namespace

TEST_CASE("langid: the splits are train.py's (sizes, labels, its first 100 test tokens, token checksums)") {
  nlohmann::json rec;
  std::ifstream(std::string(TQ_SOURCE_DIR) + "/examples/langid/models/langid.json") >> rec;
  REQUIRE(rec.contains("tokens_first100"));

  // Checksums from examples/langid/train.py itself (build_dataset, build_vocab, encode), run once with
  // Debian's python3 and the Debian word lists (wamerican 2020.12.07-2, ..., wpolish 20220301-1):
  //   x = encode(words).reshape(-1), y = labels; sum(x * arange(1, x.size + 1)), same for y.
  struct Expected {
    const char* split;
    int32_t count;
    uint64_t tokens, labels;
  };
  const Expected expected[] = {{"test", 11000, 681455818935ull, 412527500ull},
                               {"val", 5500, 171612765363ull, 103138750ull},
                               {"train", 176000, 175345548086419ull, 105600440000ull}};
  for (const Expected& e : expected) {
    CAPTURE(e.split);
    TokenDataset ds;
    const Status s = load_langid(kDefaultDictDir, kVocab, e.split, &ds);
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    CHECK(ds.count == e.count);
    CHECK(ds.seq_len == kLangidMaxLen);
    REQUIRE(ds.tokens.size() == size_t(e.count) * kLangidMaxLen);
    REQUIRE(ds.labels.size() == size_t(e.count));
    // Language 0's words first, then 1's, ...: every language fills its cap.
    const int32_t per_lang = e.count / kLangidNumLanguages;
    for (int32_t i = 0; i < ds.count; ++i) {
      if (ds.labels[i] != i / per_lang) {
        FAIL_CHECK("word " << i << " has label " << int(ds.labels[i]) << ", expected " << i / per_lang);
        break;
      }
    }
    CHECK(weighted_sum(ds.tokens) == e.tokens);
    CHECK(weighted_sum(ds.labels) == e.labels);
    if (std::string(e.split) == "test") {
      CHECK(ds.labels[0] == 0);
      CHECK(ds.labels[999] == 0);
      CHECK(ds.labels[1000] == 1);
      CHECK(ds.labels[10999] == 10);
      const auto& first = rec["tokens_first100"];
      REQUIRE(first.size() == 100);
      int mismatches = 0;
      for (int i = 0; i < 100; ++i) {
        REQUIRE(first[i].size() == size_t(kLangidMaxLen));
        for (int j = 0; j < kLangidMaxLen; ++j)
          if (first[i][j].get<int32_t>() != ds.tokens[size_t(i) * kLangidMaxLen + j]) ++mismatches;
      }
      CHECK(mismatches == 0);
    }
  }
}

TEST_CASE("langid: the vocabulary file is one ascending UTF-8 character per line") {
  std::vector<uint32_t> vocab;
  const Status s = load_langid_vocab(kVocab, &vocab);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  nlohmann::json rec;
  std::ifstream(std::string(TQ_SOURCE_DIR) + "/examples/langid/models/langid.json") >> rec;
  CHECK(vocab.size() + 2 == rec["vocab_size"].get<size_t>());
  REQUIRE(vocab.size() > 3);
  CHECK(vocab[0] == 0x20);  // Dutch entries such as "10 eurobiljet" put the space in the vocabulary
  CHECK(std::find(vocab.begin(), vocab.end(), uint32_t('a')) != vocab.end());

  const std::string dir = temp_dir("tq_langid_vocab");
  auto error_of = [&](const std::string& bytes) {
    write_file(dir + "/v", bytes);
    std::vector<uint32_t> v;
    const Status st = load_langid_vocab(dir + "/v", &v);
    CHECK_FALSE(st.is_ok());
    return std::string(st.message());
  };
  std::vector<uint32_t> v;
  write_file(dir + "/ok", " \na\n\xc3\xa9\n\xe2\x82\xac\n");
  REQUIRE(load_langid_vocab(dir + "/ok", &v).is_ok());
  CHECK(v == std::vector<uint32_t>{0x20, 'a', 0xE9, 0x20AC});
  std::string m = error_of("a\r\nb\r\n");
  CHECK_MESSAGE(contains(m, "line 1 has 2 characters, expected one (CRLF"), m);
  m = error_of("a\nb\n\nc\n");
  CHECK_MESSAGE(contains(m, "line 3 is empty"), m);
  m = error_of("a\n\xff\n");
  CHECK_MESSAGE((contains(m, (dir + "/v").c_str()) && contains(m, "line 2 is not valid UTF-8")), m);
  m = error_of("b\na\n");
  CHECK_MESSAGE(contains(m, "line 2: U+0061 after U+0062"), m);
  m = error_of("a\nb");
  CHECK_MESSAGE(contains(m, "line 2 has no final newline"), m);
  m = error_of("");
  CHECK_MESSAGE(contains(m, "empty"), m);
  CHECK(load_langid_vocab(dir + "/missing", &v).code() == StatusCode::kNotFound);
}

TEST_CASE("langid: encode_word maps code points to ids, unknown to 1, pads with 0 and rejects bad words") {
  const std::vector<uint32_t> vocab = {0x20, 'a', 'b', 0xE9};  // ids 2, 3, 4, 5
  std::vector<int32_t> out(kLangidMaxLen, -7);
  REQUIRE(encode_word("ab\xc3\xa9 z", vocab, kLangidMaxLen, out.data()).is_ok());
  std::vector<int32_t> want(kLangidMaxLen, 0);
  want[0] = 3, want[1] = 4, want[2] = 5, want[3] = 2, want[4] = 1;
  CHECK(out == want);
  REQUIRE(encode_word("", vocab, kLangidMaxLen, out.data()).is_ok());
  CHECK(out == std::vector<int32_t>(kLangidMaxLen, 0));

  // 24 code points fit, whatever their byte count; 25 do not.
  std::string w24;
  for (int i = 0; i < 24; ++i) w24 += "\xc3\xa9";
  REQUIRE(encode_word(w24, vocab, kLangidMaxLen, out.data()).is_ok());
  CHECK(out == std::vector<int32_t>(kLangidMaxLen, 5));
  Status s = encode_word(std::string(25, 'a'), vocab, kLangidMaxLen, out.data());
  REQUIRE_FALSE(s.is_ok());
  CHECK_MESSAGE(contains(s.message(), "has 25 characters, more than the maximum 24"), s.message());

  // Strict UTF-8, as Python's codec: stray continuation, truncated, overlong, surrogate, > U+10FFFF.
  for (const char* bad : {"a\x80", "ab\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff"}) {
    CAPTURE(bad);
    s = encode_word(bad, vocab, kLangidMaxLen, out.data());
    REQUIRE_FALSE(s.is_ok());
    CHECK_MESSAGE(contains(s.message(), "not valid UTF-8"), s.message());
  }
  // The largest valid code points of each length are fine (and unknown).
  REQUIRE(encode_word("\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf", vocab, 4, out.data()).is_ok());
  CHECK(std::vector<int32_t>(out.begin(), out.begin() + 4) == std::vector<int32_t>{1, 1, 1, 1});
  CHECK_FALSE(encode_word("a", {'b', 'a'}, kLangidMaxLen, out.data()).is_ok());  // vocabulary not ascending
}

TEST_CASE("langid: the split rules on small word lists; missing lists name their Debian package") {
  const std::string dir = temp_dir("tq_langid_dict");
  // A missing directory or list: the file and the package that ships it.
  TokenDataset ds;
  Status s = load_langid(dir + "/nowhere", kVocab, "test", &ds);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.code() == StatusCode::kNotFound);
  CHECK_MESSAGE(
      (contains(s.message(), (dir + "/nowhere/american-english").c_str()) && contains(s.message(), "wamerican")),
      s.message());
  write_file(dir + "/american-english", "english\n");
  s = load_langid(dir, kVocab, "test", &ds);
  REQUIRE_FALSE(s.is_ok());
  CHECK_MESSAGE((contains(s.message(), (dir + "/french").c_str()) && contains(s.message(), "wfrench")), s.message());
  s = load_langid(dir, kVocab, "dev", &ds);
  CHECK_MESSAGE(contains(s.message(), "unknown langid split 'dev'"), s.message());

  // Every list gets its name as a word; then the cases train.py's rules cover.
  for (const LangidLanguage& L : kLangidLanguages) write_file(dir + "/" + L.file, std::string(L.name) + "\n");
  const std::string w24(24, 'x'), w25(25, 'y');
  write_file(dir + "/american-english",
             "english\napple\napple\nshared\ncrlf\r\n\n\r\n" + w24 + "\n" + w25 + "\nmid\rcr\nlast");
  write_file(dir + "/french", "french\nshared\ncaf\xc3\xa9\n");
  // ISO-8859-1: 24 bytes are 24 code points (48 UTF-8 bytes) and kept.
  write_file(dir + "/swedish", "swedish\n\xe5l\nb\xf6r\n" + std::string(24, '\xe4') + "\n");
  const std::map<int, std::set<std::string>> expected = {
      {0, {"english", "apple", "crlf", w24, "mid\rcr", "last"}},
      {1, {"french", "caf\xc3\xa9"}},
      {7, {"swedish", "\xc3\xa5l", "b\xc3\xb6r", [] {
             std::string s;
             for (int i = 0; i < 24; ++i) s += "\xc3\xa4";
             return s;
           }()}}};
  // A vocabulary of every character used ("\r" is one), to turn the tokens back into words.
  std::vector<uint32_t> vocab = {'\r'};
  for (uint32_t c = 0x20; c < 0x7F; ++c) vocab.push_back(c);
  for (uint32_t c : {0xE4u, 0xE5u, 0xE9u, 0xF6u}) vocab.push_back(c);
  std::string vocab_text;
  for (uint32_t c : vocab) vocab_text += to_utf8(c) + "\n";
  write_file(dir + "/vocab", vocab_text);

  std::map<int, std::set<std::string>> got;
  for (const char* split : {"test", "val", "train"}) {
    CAPTURE(split);
    s = load_langid(dir, dir + "/vocab", split, &ds);
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    const uint32_t lo = std::string(split) == "test" ? 0 : std::string(split) == "val" ? 1 : 2;
    const uint32_t hi = std::string(split) == "train" ? 9 : lo;
    std::string prev;
    int prev_label = -1;
    for (int32_t i = 0; i < ds.count; ++i) {
      std::string w;
      for (int j = 0; j < kLangidMaxLen; ++j) {
        const int32_t id = ds.tokens[size_t(i) * kLangidMaxLen + j];
        REQUIRE(id != 1);
        if (id >= 2) w += to_utf8(vocab[id - 2]);
      }
      const int label = ds.labels[i];
      CHECK(fnv1a(w) % 10 >= lo);
      CHECK(fnv1a(w) % 10 <= hi);
      REQUIRE(label >= prev_label);  // language 0 first
      if (label == prev_label) {     // ascending (h, bytes) within a language
        const bool ascending = fnv1a(prev) < fnv1a(w) || (fnv1a(prev) == fnv1a(w) && prev < w);
        CHECK_MESSAGE(ascending, prev << " before " << w);
      }
      CHECK_MESSAGE(got[label].insert(w).second, "duplicate " << w);
      prev = w;
      prev_label = label;
    }
  }
  for (int lang = 0; lang < kLangidNumLanguages; ++lang) {
    CAPTURE(lang);
    const auto it = expected.find(lang);
    CHECK(got[lang] == (it != expected.end() ? it->second : std::set<std::string>{kLangidLanguages[lang].name}));
  }

  // Invalid UTF-8 in a list: the file and the line.
  write_file(dir + "/french", "french\ncaf\xe9\n");
  s = load_langid(dir, dir + "/vocab", "test", &ds);
  REQUIRE_FALSE(s.is_ok());
  CHECK_MESSAGE((contains(s.message(), (dir + "/french: line 2 is not valid UTF-8").c_str()) &&
                 contains(s.message(), "byte 3 of the line is 0xe9")),
                s.message());
}
