// toolkit/json.h — the JSON that tq and the benchmarks print: built as nlohmann::json values (so
// strings are escaped), printed one object per line with ", " and ": " between items, the layout
// Python's json.dumps uses and the one the readers in bench/, examples/ and tests/ grep.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace tinyquant {

using Json = nlohmann::ordered_json;  // keys print in the order they were added

// One line, no trailing newline. Bytes that are not UTF-8 print as U+FFFD; NaN and Inf as null.
std::string json_line(const Json& value);

// `value` rounded to `decimals` places, e.g. json_round(x, 4) for what "%.4f" printed.
double json_round(double value, int decimals);

}  // namespace tinyquant
