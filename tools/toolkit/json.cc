#include "toolkit/json.h"

#include <cmath>

namespace tinyquant {

std::string json_line(const Json& value) {
  // nlohmann prints either compact ({"a":1,"b":2}) or one item per line; only the separators differ
  // here, every scalar and key is nlohmann's own dump.
  const auto dump = [](const Json& v) { return v.dump(-1, ' ', false, Json::error_handler_t::replace); };
  if (!value.is_object() && !value.is_array()) return dump(value);
  std::string out(1, value.is_object() ? '{' : '[');
  bool first = true;
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!first) out += ", ";
    first = false;
    if (value.is_object()) out += dump(it.key()) + ": ";
    out += json_line(it.value());
  }
  out += value.is_object() ? '}' : ']';
  return out;
}

double json_round(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

}  // namespace tinyquant
