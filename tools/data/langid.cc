#include "data/langid.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "tinyquant/file_io.h"

namespace tinyquant {

namespace {

constexpr size_t kMaxListBytes = size_t(1) << 31;  // offsets into a list are uint32

// Decodes one code point at p (strict UTF-8, as Python's "utf-8" codec: no overlong forms, no
// surrogates, nothing above U+10FFFF, no truncated sequences). Returns its length in bytes, or 0.
int decode_utf8(const uint8_t* p, const uint8_t* end, uint32_t* cp) {
  const uint8_t b0 = p[0];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  int n;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (end - p < n || p[1] < lo || p[1] > hi) return 0;
  uint32_t c = b0 & (0xFF >> (n + 1));
  for (int i = 1; i < n; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (p[i] & 0x3F);
  }
  *cp = c;
  return n;
}

// Counts the code points of [p, p+n); returns false (and the failing byte's offset) on invalid UTF-8.
bool count_code_points(const uint8_t* p, size_t n, size_t* count, size_t* bad_offset) {
  const uint8_t* const begin = p;
  const uint8_t* const end = p + n;
  size_t c = 0;
  while (p < end) {
    if (*p < 0x80) {
      ++p;
    } else {
      uint32_t cp;
      const int k = decode_utf8(p, end, &cp);
      if (k == 0) {
        *bad_offset = static_cast<size_t>(p - begin);
        return false;
      }
      p += k;
    }
    ++c;
  }
  *count = c;
  return true;
}

uint32_t fnv1a(const uint8_t* p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

// A whole file (tinyquant/file_io.h); a missing one is kNotFound with what_if_missing appended.
Status read_list(const std::string& path, const char* what_if_missing, std::vector<uint8_t>* out) {
  const Status s = read_file(path.c_str(), kMaxListBytes - 1, out);
  if (s.code() == StatusCode::kNotFound)
    return Status::error(StatusCode::kNotFound, "%s%s", s.message(), what_if_missing);
  return s;
}

// ISO-8859-1 -> UTF-8: byte b < 0x80 stays, else it becomes the code point U+00b.
std::vector<uint8_t> latin1_to_utf8(const std::vector<uint8_t>& in) {
  std::vector<uint8_t> out;
  out.reserve(in.size() + in.size() / 8);
  for (const uint8_t b : in) {
    if (b < 0x80) {
      out.push_back(b);
    } else {
      out.push_back(static_cast<uint8_t>(0xC0 | (b >> 6)));
      out.push_back(static_cast<uint8_t>(0x80 | (b & 0x3F)));
    }
  }
  return out;
}

// One kept word of the requested split: bytes [offset, offset+len) of its language's list.
struct Word {
  uint32_t h;
  uint32_t offset;
  uint8_t len;
  uint8_t lang;
};

}  // namespace

Status load_langid_vocab(const std::string& path, std::vector<uint32_t>* code_points) {
  std::vector<uint8_t> text;
  TQ_RETURN_IF_ERROR(read_list(path, " (the langid vocabulary, examples/langid/models/langid.vocab)", &text));
  code_points->clear();
  const uint8_t* const data = text.data();
  const size_t n = text.size();
  size_t pos = 0, line = 0;
  while (pos < n) {  // every line ends with "\n"; nothing follows the last one
    ++line;
    const void* nl = std::memchr(data + pos, '\n', n - pos);
    TQ_ENSURE(nl != nullptr, kInvalidArgument, "%s: line %zu has no final newline (expected one character per line)",
              path.c_str(), line);
    const size_t end = static_cast<size_t>(static_cast<const uint8_t*>(nl) - data);
    TQ_ENSURE(end > pos, kInvalidArgument, "%s: line %zu is empty, expected one character", path.c_str(), line);
    uint32_t cp = 0;
    const int k = decode_utf8(data + pos, data + end, &cp);
    TQ_ENSURE(k > 0, kInvalidArgument, "%s: line %zu is not valid UTF-8 (byte 0x%02x), expected one UTF-8 character",
              path.c_str(), line, data[pos]);
    if (pos + static_cast<size_t>(k) != end) {
      size_t count = 0, bad = 0;
      const bool valid = count_code_points(data + pos, end - pos, &count, &bad);
      TQ_ENSURE(valid, kInvalidArgument, "%s: line %zu is not valid UTF-8 (byte %zu of the line is 0x%02x)",
                path.c_str(), line, bad, data[pos + bad]);
      return Status::error(StatusCode::kInvalidArgument, "%s: line %zu has %zu characters, expected one%s",
                           path.c_str(), line, count, data[end - 1] == '\r' ? " (CRLF line endings?)" : "");
    }
    TQ_ENSURE(code_points->empty() || cp > code_points->back(), kInvalidArgument,
              "%s: line %zu: U+%04X after U+%04X, expected strictly ascending code points", path.c_str(), line, cp,
              code_points->back());
    code_points->push_back(cp);
    pos = end + 1;
  }
  TQ_ENSURE(!code_points->empty(), kInvalidArgument, "%s: empty, expected one character per line", path.c_str());
  return Status::ok();
}

Status encode_word(const std::string& utf8, const std::vector<uint32_t>& vocab, int32_t max_len, int32_t* out) {
  TQ_ENSURE(max_len >= 1, kInvalidArgument, "encode_word: max_len %d, expected >= 1", max_len);
  for (size_t i = 1; i < vocab.size(); ++i)
    TQ_ENSURE(vocab[i - 1] < vocab[i], kInvalidArgument,
              "encode_word: vocabulary entry %zu (U+%04X) is not above entry %zu (U+%04X), expected strictly "
              "ascending code points",
              i, vocab[i], i - 1, vocab[i - 1]);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(utf8.data());
  const uint8_t* const begin = p;
  const uint8_t* const end = p + utf8.size();
  int32_t n = 0;
  while (p < end) {
    uint32_t cp = 0;
    const int k = decode_utf8(p, end, &cp);
    TQ_ENSURE(k > 0, kInvalidArgument, "word is not valid UTF-8 (byte %zu of %zu is 0x%02x)",
              static_cast<size_t>(p - begin), utf8.size(), *p);
    p += k;
    if (n < max_len) {
      const auto it = std::lower_bound(vocab.begin(), vocab.end(), cp);
      out[n] = (it != vocab.end() && *it == cp) ? static_cast<int32_t>(it - vocab.begin()) + 2 : kLangidUnknownId;
    }
    ++n;
  }
  TQ_ENSURE(n <= max_len, kInvalidArgument, "word '%s' has %d characters, more than the maximum %d", utf8.c_str(),
            n, max_len);
  for (int32_t i = n; i < max_len; ++i) out[i] = kLangidPadId;
  return Status::ok();
}

Status load_langid(const std::string& dict_dir, const std::string& vocab_path, const std::string& split,
                   TokenDataset* out) {
  int code_lo, code_hi;  // h % 10 in [code_lo, code_hi]
  size_t cap;
  if (split == "test") {
    code_lo = code_hi = 0;
    cap = kLangidTestCap;
  } else if (split == "val") {
    code_lo = code_hi = 1;
    cap = kLangidValCap;
  } else if (split == "train") {
    code_lo = 2;
    code_hi = 9;
    cap = kLangidTrainCap;
  } else {
    return Status::error(StatusCode::kInvalidArgument, "unknown langid split '%s' (expected train, val or test)",
                         split.c_str());
  }
  std::vector<uint32_t> vocab;
  TQ_RETURN_IF_ERROR(load_langid_vocab(vocab_path, &vocab));

  // Every word of the split from every list. A word's split depends only on its bytes, so the
  // ambiguous words of this split are all among them.
  std::vector<std::vector<uint8_t>> lists(kLangidNumLanguages);
  size_t list_bytes = 0;
  for (int lang = 0; lang < kLangidNumLanguages; ++lang) {
    const LangidLanguage& L = kLangidLanguages[lang];
    const std::string path = dict_dir + "/" + L.file;
    char missing[128];
    std::snprintf(missing, sizeof(missing), " (the %s word list: install the Debian package %s)", L.name, L.package);
    TQ_RETURN_IF_ERROR(read_list(path, missing, &lists[lang]));
    if (std::strcmp(L.encoding, "iso-8859-1") == 0) lists[lang] = latin1_to_utf8(lists[lang]);
    TQ_ENSURE(lists[lang].size() < kMaxListBytes, kInvalidArgument, "%s: %zu bytes as UTF-8, expected less than %zu",
              path.c_str(), lists[lang].size(), kMaxListBytes);
    list_bytes += lists[lang].size();
  }
  std::vector<Word> words;
  words.reserve(list_bytes / 100 * static_cast<size_t>(code_hi - code_lo + 1) + 16);  // ~10 bytes a line
  for (int lang = 0; lang < kLangidNumLanguages; ++lang) {
    const LangidLanguage& L = kLangidLanguages[lang];
    const uint8_t* const data = lists[lang].data();
    const size_t n = lists[lang].size();
    size_t pos = 0, line = 0;
    for (;;) {  // like Python's data.split(b"\n"): the piece after the last "\n" is a line too
      ++line;
      const void* nl = std::memchr(data + pos, '\n', n - pos);
      const size_t end = nl ? static_cast<size_t>(static_cast<const uint8_t*>(nl) - data) : n;
      size_t len = end - pos;
      if (len > 0 && data[end - 1] == '\r') --len;
      if (len > 0) {
        size_t count = 0, bad = 0;
        TQ_ENSURE(count_code_points(data + pos, len, &count, &bad), kInvalidArgument,
                  "%s/%s: line %zu is not valid UTF-8 (byte %zu of the line is 0x%02x; expected strict %s)",
                  dict_dir.c_str(), L.file, line, bad, data[pos + bad], L.encoding);
        if (count <= static_cast<size_t>(kLangidMaxLen)) {
          const uint32_t h = fnv1a(data + pos, len);
          const int code = static_cast<int>(h % 10);
          if (code >= code_lo && code <= code_hi)
            words.push_back({h, static_cast<uint32_t>(pos), static_cast<uint8_t>(len), static_cast<uint8_t>(lang)});
        }
      }
      if (!nl) break;
      pos = end + 1;
    }
  }

  // Sorted by (h, bytes unsigned with a proper prefix first, language): equal words become
  // neighbours, and each language's words come out in the order train.py keeps them.
  auto bytes_of = [&](const Word& w) { return lists[w.lang].data() + w.offset; };
  auto compare_bytes = [&](const Word& a, const Word& b) {
    const int c = std::memcmp(bytes_of(a), bytes_of(b), std::min(a.len, b.len));
    return c != 0 ? c : int(a.len) - int(b.len);
  };
  std::sort(words.begin(), words.end(), [&](const Word& a, const Word& b) {
    if (a.h != b.h) return a.h < b.h;
    const int c = compare_bytes(a, b);
    return c != 0 ? c < 0 : a.lang < b.lang;
  });
  std::vector<std::vector<const Word*>> kept(kLangidNumLanguages);
  for (size_t i = 0; i < words.size();) {
    size_t j = i + 1;
    bool ambiguous = false;
    for (; j < words.size() && words[j].h == words[i].h && compare_bytes(words[j], words[i]) == 0; ++j)
      ambiguous |= words[j].lang != words[i].lang;  // else a duplicate within one list
    std::vector<const Word*>& k = kept[words[i].lang];
    if (!ambiguous && k.size() < cap) k.push_back(&words[i]);
    i = j;
  }

  size_t total = 0;
  for (const auto& k : kept) total += k.size();
  out->count = static_cast<int32_t>(total);
  out->seq_len = kLangidMaxLen;
  out->tokens.assign(total * kLangidMaxLen, kLangidPadId);
  out->labels.assign(total, 0);
  size_t row = 0;
  std::string word;
  for (int lang = 0; lang < kLangidNumLanguages; ++lang) {
    for (const Word* w : kept[lang]) {
      word.assign(reinterpret_cast<const char*>(bytes_of(*w)), w->len);
      Status s = encode_word(word, vocab, kLangidMaxLen, &out->tokens[row * kLangidMaxLen]);
      if (!s.is_ok()) return s.with_context("%s/%s", dict_dir.c_str(), kLangidLanguages[lang].file);
      out->labels[row] = static_cast<uint8_t>(lang);
      ++row;
    }
  }
  return Status::ok();
}

}  // namespace tinyquant
