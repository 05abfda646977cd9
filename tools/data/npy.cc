#include "data/npy.h"

#include <cstring>

#include "tinyquant/file_io.h"
#include "tinyquant/graph.h"

namespace tinyquant {

namespace {
constexpr size_t kMaxNpyBytes = size_t(1) << 31;

// Finds `'key': value` in the header dict and returns the value text (up to the next ',' at
// depth 0 or the closing '}').
bool dict_value(const std::string& header, const char* key, std::string* value) {
  const std::string needle = std::string("'") + key + "'";
  size_t p = header.find(needle);
  if (p == std::string::npos) return false;
  p = header.find(':', p + needle.size());
  if (p == std::string::npos) return false;
  ++p;
  int depth = 0;
  size_t end = p;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  *value = header.substr(p, end - p);
  size_t a = value->find_first_not_of(' '), b = value->find_last_not_of(' ');
  *value = a == std::string::npos ? "" : value->substr(a, b - a + 1);
  return true;
}
}  // namespace

Status parse_npy(const uint8_t* bytes, size_t size, const std::string& name, NpyArray* out) {
  const char* f = name.c_str();
  TQ_ENSURE(size >= 10 && std::memcmp(bytes, "\x93NUMPY", 6) == 0, kInvalidArgument,
            "%s: not a .npy file (missing \\x93NUMPY magic)", f);
  const uint8_t major = bytes[6];
  TQ_ENSURE(major == 1 || major == 2 || major == 3, kInvalidArgument, "%s: .npy version %u is not supported", f, major);
  size_t header_len, offset;
  if (major == 1) {
    header_len = bytes[8] | (size_t(bytes[9]) << 8);
    offset = 10;
  } else {
    TQ_ENSURE(size >= 12, kInvalidArgument, "%s: truncated .npy header", f);
    header_len = bytes[8] | (size_t(bytes[9]) << 8) | (size_t(bytes[10]) << 16) | (size_t(bytes[11]) << 24);
    offset = 12;
  }
  TQ_ENSURE(header_len <= size - offset, kInvalidArgument, "%s: .npy header length %zu exceeds the file", f, header_len);
  const std::string header(reinterpret_cast<const char*>(bytes + offset), header_len);
  std::string descr, fortran, shape;
  TQ_ENSURE(dict_value(header, "descr", &descr) && dict_value(header, "fortran_order", &fortran) &&
                dict_value(header, "shape", &shape),
            kInvalidArgument, "%s: .npy header lacks descr / fortran_order / shape", f);
  TQ_ENSURE(descr == "'<f4'" || descr == "'float32'", kInvalidArgument,
            "%s: dtype %s, expected little-endian float32 ('<f4'); convert with x.astype(np.float32)", f, descr.c_str());
  TQ_ENSURE(fortran == "False", kInvalidArgument, "%s: Fortran-ordered arrays are not supported (use np.ascontiguousarray)",
            f);
  TQ_ENSURE(shape.size() >= 2 && shape.front() == '(' && shape.back() == ')', kInvalidArgument,
            "%s: malformed shape %s", f, shape.c_str());
  out->shape.clear();
  int64_t total = 1;
  std::string inner = shape.substr(1, shape.size() - 2);
  size_t pos = 0;
  while (pos < inner.size()) {
    size_t comma = inner.find(',', pos);
    std::string item = inner.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? inner.size() : comma + 1;
    size_t a = item.find_first_not_of(' ');
    if (a == std::string::npos) continue;
    item = item.substr(a, item.find_last_not_of(' ') - a + 1);
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    TQ_ENSURE(end && *end == '\0' && v >= 0 && v < (1L << 31), kInvalidArgument, "%s: bad dimension '%s' in shape %s",
              f, item.c_str(), shape.c_str());
    TQ_ENSURE(out->shape.size() < kMaxRank, kInvalidArgument, "%s: rank above %d", f, kMaxRank);
    out->shape.push_back(static_cast<int32_t>(v));
    total *= v;
    TQ_ENSURE(total <= int64_t(kMaxNpyBytes / 4), kInvalidArgument, "%s: array too large", f);
  }
  const size_t data_bytes = size_t(total) * 4;
  TQ_ENSURE(size - offset - header_len == data_bytes, kInvalidArgument,
            "%s: shape %s needs %zu bytes of data, file has %zu", f, shape.c_str(), data_bytes,
            size - offset - header_len);
  out->data.resize(size_t(total));
  if (data_bytes) std::memcpy(out->data.data(), bytes + offset + header_len, data_bytes);
  return Status::ok();
}

Status read_npy(const std::string& path, NpyArray* out) {
  std::vector<uint8_t> bytes;
  TQ_RETURN_IF_ERROR(read_file(path.c_str(), kMaxNpyBytes, &bytes));
  return parse_npy(bytes.data(), bytes.size(), path, out);
}

Status write_npy(const std::string& path, const std::vector<int32_t>& shape, const float* data) {
  std::string dims;
  int64_t total = 1;
  for (int32_t d : shape) {
    dims += std::to_string(d) + ",";
    total *= d;
  }
  if (shape.size() > 1) dims.pop_back();  // "(3,)" for rank 1, "(2,3)" otherwise
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<uint8_t> bytes = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<uint8_t>(header.size() & 0xFF),
                                static_cast<uint8_t>(header.size() >> 8)};
  bytes.insert(bytes.end(), header.begin(), header.end());
  const uint8_t* p = reinterpret_cast<const uint8_t*>(data);
  bytes.insert(bytes.end(), p, p + total * 4);
  return write_file_atomic(path.c_str(), bytes.data(), bytes.size());
}

}  // namespace tinyquant
