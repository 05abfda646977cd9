// data/langid.h — the language-identification text dataset of examples/langid (single words from
// the Debian word lists in /usr/share/dict, 11 languages), split and encoded exactly as
// examples/langid/train.py does (its docstring and examples/langid/README.md "Data" spell it out):
//
//   * Word lists are strict UTF-8, except swedish (ISO-8859-1, transcoded byte for byte).
//   * A word is one line ("\n"-separated) without its trailing "\r"; empty lines are skipped; only
//     words of 1..24 code points are kept; duplicates within one list count once; a word (same
//     bytes) in the lists of more than one language is ambiguous and dropped everywhere.
//   * h = 32-bit FNV-1a of the UTF-8 bytes; h % 10: 0 test, 1 val, 2..9 train.
//   * Per language and split: sorted by (h, bytes as unsigned, a proper prefix first), the first
//     1000 test / 500 val / 16 000 train words kept; a split lists language 0's words first.
//   * Tokens: id 0 pad, 1 unknown, id i + 2 = line i of examples/langid/models/langid.vocab;
//     each word padded with 0 to 24 ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyquant/status.h"

namespace tinyquant {

constexpr const char* kDefaultDictDir = "/usr/share/dict";
// The reference model's vocabulary, relative to a source checkout (tq's --vocab default).
constexpr const char* kDefaultLangidVocab = "examples/langid/models/langid.vocab";
constexpr int kLangidMaxLen = 24;  // code points per word, = the model's sequence length
constexpr int32_t kLangidPadId = 0;
constexpr int32_t kLangidUnknownId = 1;
constexpr int32_t kLangidTestCap = 1000, kLangidValCap = 500, kLangidTrainCap = 16000;  // words per language

struct LangidLanguage {
  const char* name;      // label index = position in kLangidLanguages
  const char* file;      // under the dict directory
  const char* package;   // the Debian package that ships it
  const char* encoding;  // "utf-8" or "iso-8859-1"
};

constexpr int kLangidNumLanguages = 11;
// train.py's LANGS, in label order.
inline constexpr LangidLanguage kLangidLanguages[kLangidNumLanguages] = {
    {"english", "american-english", "wamerican", "utf-8"}, {"french", "french", "wfrench", "utf-8"},
    {"german", "ngerman", "wngerman", "utf-8"},            {"italian", "italian", "witalian", "utf-8"},
    {"spanish", "spanish", "wspanish", "utf-8"},           {"portuguese", "portuguese", "wportuguese", "utf-8"},
    {"dutch", "dutch", "wdutch", "utf-8"},                 {"swedish", "swedish", "wswedish", "iso-8859-1"},
    {"danish", "danish", "wdanish", "utf-8"},              {"polish", "polish", "wpolish", "utf-8"},
    {"catalan", "catalan", "wcatalan", "utf-8"},
};

struct TokenDataset {
  int32_t count = 0, seq_len = 0;
  std::vector<int32_t> tokens;  // count x seq_len
  std::vector<uint8_t> labels;  // count, language index 0..kLangidNumLanguages-1
};

// A vocabulary file (langid.vocab): one UTF-8 character per "\n"-terminated line (the space
// character is an entry), strictly ascending by code point. code_points[i] has token id i + 2.
Status load_langid_vocab(const std::string& path, std::vector<uint32_t>* code_points);

// out[0..max_len): the ids of utf8's code points (not in vocab -> kLangidUnknownId), padded with
// kLangidPadId. vocab is as load_langid_vocab returns it (strictly ascending; checked). Invalid
// UTF-8 and words longer than max_len code points are errors.
Status encode_word(const std::string& utf8, const std::vector<uint32_t>& vocab, int32_t max_len, int32_t* out);

// split: "train", "val" or "test". Reads all 11 word lists under dict_dir (every list is needed to
// find the ambiguous words) and the vocabulary file; out->seq_len = kLangidMaxLen.
Status load_langid(const std::string& dict_dir, const std::string& vocab_path, const std::string& split,
                   TokenDataset* out);

}  // namespace tinyquant
