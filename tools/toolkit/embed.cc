// tq embed: a .tqm model plus the first N images of a dataset split as one C++ source file, for a
// program without a file system (examples/mcu_inference). The model bytes are embedded verbatim
// (16-byte aligned, so load_model reads them in place from flash); the arena the model needs at
// batch 1 on the reference backend is computed here, on the host, and emitted as a static array.
#include <algorithm>
#include <cctype>
#include <cstdarg>
#include <cstring>
#include <memory>
#include <string>

#include "tinyquant/file_io.h"
#include "tinyquant/model_io.h"
#include "tinyquant/op_info.h"
#include "tinyquant/op_resolver.h"
#include "toolkit/toolkit.h"

namespace tinyquant {

namespace {

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Bytes as "0x12,0x34,..." lines of 24.
void append_bytes(std::string* out, const uint8_t* p, size_t n) {
  char buf[8];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), "0x%02x,", p[i]);
    *out += buf;
    if (i % 24 == 23 || i + 1 == n) *out += '\n';
  }
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  return buf;
}

}  // namespace

Status parse_embed_data_spec(const std::string& spec, std::string* split, bool* text) {
  const bool words = spec.rfind("langid:", 0) == 0;
  const std::string prefix = words ? "langid:" : "fashion-mnist:";
  const char* expected = "expected fashion-mnist:test, fashion-mnist:train or langid:test|val|train";
  TQ_ENSURE(spec.rfind(prefix, 0) == 0, kInvalidArgument, "--data '%s': %s", spec.c_str(), expected);
  *split = spec.substr(prefix.size());
  TQ_ENSURE(*split == "test" || *split == "train" || (words && *split == "val"), kInvalidArgument, "--data '%s': %s",
            spec.c_str(), expected);
  if (text) *text = words;
  return Status::ok();
}

Status embed_model(const EmbedOptions& options, EmbedResult* result) {
  *result = EmbedResult();
  // Where to write, and the name the program reports.
  std::string path = options.output;
  TQ_ENSURE(!path.empty(), kInvalidArgument, "embed: missing -o DIR/NAME");
  if (!ends_with(path, ".cc")) path += ".cc";
  const size_t slash = path.find_last_of('/');
  const std::string name = path.substr(slash == std::string::npos ? 0 : slash + 1, std::string::npos);
  result->name = name.substr(0, name.size() - 3);
  TQ_ENSURE(!result->name.empty() && result->name.size() <= 64, kInvalidArgument,
            "embed: output name '%s' must have 1..64 characters", result->name.c_str());
  for (char c : result->name)
    TQ_ENSURE(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.', kInvalidArgument,
              "embed: output name '%s' may only use letters, digits, '_', '-' and '.'", result->name.c_str());
  result->path = path;

  // The model: the exact bytes that get embedded, verified by the same in-place loader the device runs.
  std::vector<uint8_t> bytes;
  TQ_RETURN_IF_ERROR(read_file(options.model.c_str(), kMaxModelFileBytes, &bytes));
  TQ_ENSURE(bytes.size() >= 8 && std::memcmp(bytes.data() + 4, "TQM0", 4) == 0, kInvalidModel,
            "%s is not a .tqm model (no TQM0 file identifier); quantize or import it first with tq", options.model.c_str());
  // read_file's vector is not guaranteed 16-byte aligned; load from an aligned copy.
  std::unique_ptr<uint8_t[]> aligned(new uint8_t[bytes.size() + 16]);
  uint8_t* model = aligned.get() + (16 - reinterpret_cast<uintptr_t>(aligned.get()) % 16) % 16;
  std::memcpy(model, bytes.data(), bytes.size());
  Graph graph;
  TQ_RETURN_IF_ERROR(load_model(model, bytes.size(), &graph, options.model.c_str()));

  // The images, or the words as token ids (one uint8 per id: a "row" of seq_len ids per sample).
  std::string split;
  bool text = false;
  TQ_RETURN_IF_ERROR(parse_embed_data_spec(options.data, &split, &text));
  ImageDataset ds;
  if (text) {
    TokenDataset words;
    TQ_RETURN_IF_ERROR(load_langid(options.dict_dir, options.vocab, split, &words));
    TQ_RETURN_IF_ERROR(check_token_classifier(graph, words.seq_len).with_context("%s", options.model.c_str()));
    ds.count = words.count;
    ds.rows = 1;
    ds.cols = words.seq_len;
    ds.labels = words.labels;
    ds.pixels.resize(words.tokens.size());
    for (size_t i = 0; i < words.tokens.size(); ++i) {
      TQ_ENSURE(words.tokens[i] >= 0 && words.tokens[i] <= 255, kUnsupported,
                "embed: token id %d does not fit the program's uint8 ids", words.tokens[i]);
      ds.pixels[i] = static_cast<uint8_t>(words.tokens[i]);
    }
  } else {
    TQ_RETURN_IF_ERROR(load_fashion_mnist(options.data_dir, split, &ds));
  }
  TQ_ENSURE(options.count >= 1 && options.count <= ds.count, kInvalidArgument,
            "--count %d is out of range: %s has %d samples (1..%d)", options.count, options.data.c_str(), ds.count,
            ds.count);
  if (!text)
    TQ_RETURN_IF_ERROR(check_classifier(graph, ds.rows, ds.cols).with_context("%s", options.model.c_str()));

  // Memory the device needs, planned exactly as it will be there (reference backend, batch 1):
  // the larger of the plans with the portable kernels and with the Cortex-M kernels (their
  // scratch included), so the program can run either.
  Interpreter interp;
  PrepareOptions prep;
  prep.backend = Backend::kReference;
  prep.kernels = KernelSet::kPortable;
  TQ_RETURN_IF_ERROR(interp.prepare(graph, prep).with_context("%s", options.model.c_str()));
  result->min_live_bytes = interp.min_live_bytes();
  size_t planned = interp.arena_bytes();
  result->arena_bytes = interp.caller_arena_bytes();  // the generated arena is alignas(64)
  prep.kernels = KernelSet::kCortexM;
  TQ_RETURN_IF_ERROR(interp.prepare(graph, prep).with_context("%s", options.model.c_str()));
  planned = std::max(planned, interp.arena_bytes());
  result->arena_bytes = std::max(result->arena_bytes, interp.caller_arena_bytes());
  for (const Tensor& t : graph.tensors)
    if (t.is_constant()) result->constant_bytes += graph.buffers[t.buffer].size();
  result->model_bytes = bytes.size();
  result->count = options.count;

  // The source file.
  const size_t pixels = size_t(ds.rows) * ds.cols;
  std::string src;
  src.reserve(bytes.size() * 5 + size_t(options.count) * pixels * 5 + 4096);
  src += format("// Generated by `tq embed %s --data %s --count %d`. Do not edit.\n", options.model.c_str(),
                options.data.c_str(), options.count);
  src += "// The .tqm bytes (read in place by tinyquant::load_model), the first images of the split as\n"
         "// raw uint8 [count][rows][cols], their labels, the preprocessing and the arena the model needs\n"
         "// at batch 1 on the reference backend (planned on the host). Declarations: embedded_model.h.\n";
  src += "#include <cstddef>\n#include <cstdint>\n\n#include \"tinyquant/op_resolver.h\"\n\nnamespace tq_embedded {\n\n";
  src += "extern const char name[];\nextern const uint8_t model[];\nextern const size_t model_size;\n"
         "extern const uint8_t images[];\nextern const uint8_t labels[];\n"
         "extern const int32_t count, rows, cols, token_ids;\nextern const float mean, std_dev;\n"
         "extern uint8_t arena[];\nextern const size_t arena_size, min_live_bytes, constant_bytes;\n"
         "void register_kernels(tinyquant::OpResolver* resolver);\n\n";
  src += format("const char name[] = \"%s\";\n", result->name.c_str());
  src += format("const int32_t count = %d, rows = %d, cols = %d;\n", options.count, ds.rows, ds.cols);
  src += format("const int32_t token_ids = %d;  // 1: images[] holds token ids, fed as float(id)\n", text ? 1 : 0);
  // %.9g round-trips a float exactly.
  src += format("const float mean = %.9gf, std_dev = %.9gf;\n", static_cast<double>(options.mean),
                static_cast<double>(options.std));
  src += format("const size_t arena_size = %zu;      // planned %zu + interpreter tail slack\n",
                result->arena_bytes, planned);
  src += format("const size_t min_live_bytes = %zu;  // the planner's floor (largest live set)\n",
                result->min_live_bytes);
  src += format("const size_t constant_bytes = %zu;  // packed weights, biases and other constants\n",
                result->constant_bytes);
  src += format("alignas(64) uint8_t arena[%zu];\n\n", result->arena_bytes);
  src += format("const size_t model_size = %zu;\n", bytes.size());
  src += format("alignas(16) const uint8_t model[%zu] = {\n", bytes.size());
  append_bytes(&src, bytes.data(), bytes.size());
  src += "};\n\n";
  src += format("const uint8_t labels[%d] = {\n", options.count);
  append_bytes(&src, ds.labels.data(), size_t(options.count));
  src += "};\n\n";
  src += format("const uint8_t images[%zu] = {\n", size_t(options.count) * pixels);
  append_bytes(&src, ds.pixels.data(), size_t(options.count) * pixels);
  src += "};\n\n";
  // The reference kernels this model's ops run (the program links only these; op_resolver.h).
  bool used[size_t(OpType::kCount)][2] = {};
  for (const Operator& op : graph.operators) used[size_t(op.type)][runs_int8(op, graph) ? 1 : 0] = true;
  src += "void register_kernels(tinyquant::OpResolver* resolver) {\n";
  for (size_t t = 0; t < size_t(OpType::kCount); ++t)
    for (int kind = 0; kind < 2; ++kind)
      if (used[t][kind] && reference::has_kernel(OpType(t), KernelKind(kind)))
        src += format("  resolver->add<tinyquant::OpType::k%s, tinyquant::KernelKind::k%s>();\n", op_name(OpType(t)),
                      kind ? "Int8" : "Float32");
  src += "}\n\n}  // namespace tq_embedded\n";
  return write_file_atomic(path.c_str(), src.data(), src.size());
}

}  // namespace tinyquant
