#include <cstring>

#include "tinyquant/file_io.h"
#include "tinyquant/model_io.h"
#include "toolkit/toolkit.h"
#if TQ_WITH_ONNX
#include "tinyquant/onnx_import.h"
#endif

namespace tinyquant {

namespace {
bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
}  // namespace

Status load_any_model(const std::string& path, Graph* graph, const std::vector<std::string>& input_shapes) {
  if (ends_with(path, ".onnx")) {
#if TQ_WITH_ONNX
    ImportOptions options;
    for (const std::string& spec : input_shapes) {
      InputShape b;
      TQ_RETURN_IF_ERROR(parse_input_shape(spec, &b));
      options.input_shapes.push_back(std::move(b));
    }
    return import_onnx_file(path.c_str(), graph, options);
#else
    return Status::error(StatusCode::kUnsupported, "%s: this build has no ONNX importer (TQ_WITH_ONNX=OFF)",
                         path.c_str());
#endif
  }
  TQ_ENSURE(input_shapes.empty(), kInvalidArgument,
            "%s: --input-shape binds the dynamic dims of an ONNX model; a .tqm file's shapes are fixed", path.c_str());
  if (ends_with(path, ".tqm")) return load_model_file(path.c_str(), graph);
  // Unknown extension: sniff the FlatBuffers file identifier (bytes 4..7).
  std::vector<uint8_t> head;
  TQ_RETURN_IF_ERROR(read_file(path.c_str(), kMaxModelFileBytes, &head));
  if (head.size() >= 8 && std::memcmp(head.data() + 4, "TQM0", 4) == 0) return load_model_file(path.c_str(), graph);
  return Status::error(StatusCode::kInvalidArgument,
                       "%s: unknown model format (expected a .onnx or .tqm file)", path.c_str());
}

std::string onnx_support_markdown() {
#if TQ_WITH_ONNX
  std::string out = "ONNX opsets " + std::to_string(kOnnxMinOpset) + " to " + std::to_string(kOnnxMaxOpset) +
                    " (default domain), these operators:\n\n";
  for (const OnnxOpSupport& op : onnx_supported_ops())
    out += std::string("- ") + op.op + (*op.note ? std::string(" — ") + op.note : std::string()) + "\n";
  return out;
#else
  return "this build has no ONNX importer (TQ_WITH_ONNX=OFF)\n";
#endif
}

}  // namespace tinyquant
