// ONNX -> Graph: one pass over the (topologically sorted) nodes, one import function per op.
//
// Every ONNX value maps to a Value: its ONNX shape plus the Graph tensor(s) that hold it. A 4-D
// value can live NCHW (the ONNX layout), NHWC (what spatial kernels read), or both; a layout
// change is inserted when a consumer first needs it and then reused, so a conv network pays for
// one change at its input and one at its output. A third form, "flat HWC", is a [N, C*H*W]
// value flattened straight from NHWC; it only exists when its one reader is a FullyConnected,
// which permutes its weight columns instead of the activations being transposed.
//
// Fusions look ahead at the single reader of an op's output (through Identity/Dropout):
// Conv/Gemm/MatMul absorb a constant Add (bias), a BatchNormalization and then a Relu/Clip;
// Add/Mul absorb a Relu/Clip. Absorbed nodes are marked done and skipped by the main loop.
//
// Errors are thrown as ImportError inside and turned into a Status at the public functions.
#include "tinyquant/onnx_import.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <new>
#include <numeric>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "tinyquant/shape_inference.h"

namespace tinyquant {
namespace {

using Shape = std::vector<int32_t>;  // ONNX dims; dim 0 is -1 for a dynamic batch
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kMinOpset = kOnnxMinOpset, kMaxOpset = kOnnxMaxOpset;
// A shape value that stands for the dynamic batch: Shape of a value whose dim 0 is dynamic gives
// it, data-movement folds (Gather, Concat, Slice, Unsqueeze...) carry it, and Reshape reads it in
// dim 0 as "the batch". Arithmetic on it fails with an error that says the batch must be bound.
constexpr int64_t kBatchDim = std::numeric_limits<int64_t>::min() + 1;
// Constants the importer computes (ConstantOfShape) stay below this many elements.
constexpr int64_t kMaxFoldElements = int64_t{1} << 24;

struct ImportError {
  Status status;
};

[[noreturn]] __attribute__((format(printf, 2, 3))) void fail(StatusCode code, const char* fmt, ...) {
  char message[Status::kMaxMessage];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(message, sizeof(message), fmt, args);
  va_end(args);
  throw ImportError{Status::error(code, "%s", message)};
}

std::string shape_string(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

std::string ints_string(const std::vector<int64_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
  return out + "]";
}

// Elements of a shape whose dims are all known.
int64_t product(const Shape& s, size_t begin = 0, size_t end = SIZE_MAX) {
  end = std::min(end, s.size());
  if (begin >= end) return 1;
  return std::accumulate(s.begin() + begin, s.begin() + end, int64_t{1}, std::multiplies<int64_t>());
}

Shape nchw_to_nhwc(const Shape& s) { return {s[0], s[2], s[3], s[1]}; }
// The per-dim ONNX positions of a 4-D value held NHWC: physical dim j holds ONNX dim kNhwcOnnx[j].
constexpr int32_t kNhwcOnnx[4] = {0, 2, 3, 1};

// NHWC and NCHW hold the same bytes when H*W == 1 or C == 1: a Reshape changes the layout.
bool layouts_share_bytes(const Shape& nchw) { return nchw[1] == 1 || nchw[2] * nchw[3] == 1; }

const char* dtype_string(int32_t type) {
  return onnx::TensorProto_DataType_IsValid(type)
             ? onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(type)).c_str()
             : "invalid";
}

// ---------------------------------------------------------------- constants

struct Constant {
  std::string name;
  Shape dims;
  int32_t type = 0;        // onnx::TensorProto::DataType
  std::vector<float> f;    // FLOAT
  std::vector<int64_t> i;  // INT64
  int64_t size() const { return product(dims); }
};

template <typename T, typename Field>
std::vector<T> tensor_values(const onnx::TensorProto& t, const Field& field, int64_t n, const std::string& name) {
  std::vector<T> out(n);
  if (!t.raw_data().empty()) {
    if (t.raw_data().size() != static_cast<size_t>(n) * sizeof(T))
      fail(StatusCode::kInvalidModel, "tensor '%s': raw_data has %zu bytes, expected %lld", name.c_str(),
           t.raw_data().size(), static_cast<long long>(n * sizeof(T)));
    std::memcpy(out.data(), t.raw_data().data(), out.size() * sizeof(T));  // ONNX is little-endian, as our hosts
  } else {
    if (field.size() != n)
      fail(StatusCode::kInvalidModel, "tensor '%s': has %d values, expected %lld", name.c_str(), field.size(),
           static_cast<long long>(n));
    std::copy(field.begin(), field.end(), out.begin());
  }
  return out;
}

Constant decode_tensor(const onnx::TensorProto& t, const std::string& name) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    fail(StatusCode::kUnsupported,
         "tensor '%s': external data is not supported (save the model with its weights inside the .onnx file)",
         name.c_str());
  Constant c;
  c.name = name;
  c.type = t.data_type();
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || d > std::numeric_limits<int32_t>::max() || (n *= d) > (int64_t{1} << 31))
      fail(StatusCode::kInvalidModel, "tensor '%s': dims %s are invalid or too large", name.c_str(),
           ints_string({t.dims().begin(), t.dims().end()}).c_str());
    c.dims.push_back(static_cast<int32_t>(d));
  }
  if (c.type == onnx::TensorProto::FLOAT)
    c.f = tensor_values<float>(t, t.float_data(), n, name);
  else if (c.type == onnx::TensorProto::INT64)
    c.i = tensor_values<int64_t>(t, t.int64_data(), n, name);
  else if (c.type == onnx::TensorProto::BOOL) {  // flags such as Dropout's training_mode
    std::vector<uint8_t> b = tensor_values<uint8_t>(t, t.int32_data(), n, name);
    c.i.assign(b.begin(), b.end());
  } else
    fail(StatusCode::kUnsupported, "tensor '%s': dtype %s is not supported (expected float32, or int64 for shapes)",
         name.c_str(), dtype_string(c.type));
  return c;
}

// A constant broadcast against a 4-D NCHW value, re-laid out to broadcast against its NHWC twin:
// right-align to rank 4, permute to NHWC, drop leading 1s.
Constant constant_to_nhwc(const Constant& c) {
  Shape s(4, 1);
  std::copy(c.dims.begin(), c.dims.end(), s.begin() + (4 - c.dims.size()));
  Constant out = c;
  out.dims = nchw_to_nhwc(s);
  for (int n = 0; n < s[0]; ++n)
    for (int ch = 0; ch < s[1]; ++ch)
      for (int h = 0; h < s[2]; ++h)
        for (int w = 0; w < s[3]; ++w)
          out.f[((n * s[2] + h) * s[3] + w) * s[1] + ch] = c.f[((n * s[1] + ch) * s[2] + h) * s[3] + w];
  while (out.dims.size() > 1 && out.dims[0] == 1) out.dims.erase(out.dims.begin());
  return out;
}

// ---------------------------------------------------------------- nodes and attributes

class Node {
 public:
  explicit Node(const onnx::NodeProto& proto)
      : proto(proto),
        label(!proto.name().empty() ? proto.name()
              : proto.output_size() ? proto.output(0)
                                    : "?") {}

  const onnx::NodeProto& proto;
  const std::string label;  // the node's name, or its first output's when it has none

  const std::string& op() const { return proto.op_type(); }
  // Input i's name; "" when absent (past the end or an empty optional input).
  const std::string& in(int i) const { return i < proto.input_size() ? proto.input(i) : empty_; }
  const std::string& out(int i) const { return i < proto.output_size() ? proto.output(i) : empty_; }

  [[noreturn]] __attribute__((format(printf, 3, 4))) void fail(StatusCode code, const char* fmt, ...) const {
    char message[Status::kMaxMessage];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    tinyquant::fail(code, "node '%s' (%s): %s", label.c_str(), op().c_str(), message);
  }
  [[noreturn]] void unsupported(const char* attr, const std::string& value, const char* expected) const {
    fail(StatusCode::kUnsupported, "attribute '%s' = %s is not supported (expected %s)", attr, value.c_str(), expected);
  }

  // Every attribute must be one the importer understands: an unknown one may change the result.
  void allow_attributes(std::initializer_list<const char*> names) const {
    for (const auto& a : proto.attribute()) {
      bool known = false;
      for (const char* n : names) known = known || a.name() == n;
      if (!known) fail(StatusCode::kUnsupported, "attribute '%s' is not supported", a.name().c_str());
    }
  }
  const onnx::AttributeProto* attr(const char* name, onnx::AttributeProto::AttributeType type) const {
    for (const auto& a : proto.attribute()) {
      if (a.name() != name) continue;
      if (a.type() != type) fail(StatusCode::kInvalidModel, "attribute '%s' has the wrong type", name);
      return &a;
    }
    return nullptr;
  }
  int64_t get_int(const char* name, int64_t def) const {
    const auto* a = attr(name, onnx::AttributeProto::INT);
    return a ? a->i() : def;
  }
  float get_float(const char* name, float def) const {
    const auto* a = attr(name, onnx::AttributeProto::FLOAT);
    return a ? a->f() : def;
  }
  std::string get_string(const char* name, const std::string& def) const {
    const auto* a = attr(name, onnx::AttributeProto::STRING);
    return a ? a->s() : def;
  }
  std::vector<int64_t> get_ints(const char* name, std::vector<int64_t> def) const {
    const auto* a = attr(name, onnx::AttributeProto::INTS);
    return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : def;
  }
  // A 2-element spatial attribute (strides, dilations, kernel_shape), each value >= 1.
  std::vector<int64_t> get_pair(const char* name, std::vector<int64_t> def) const {
    std::vector<int64_t> v = get_ints(name, def);
    if (v.size() != 2 || v[0] < 1 || v[1] < 1 || v[0] > 65535 || v[1] > 65535)
      unsupported(name, ints_string(v), "two values >= 1 (2-D spatial op)");
    return v;
  }

 private:
  static inline const std::string empty_;
};

// ---------------------------------------------------------------- values

enum class Layout { kOnnx = 0, kNhwc = 1, kFlatHwc = 2 };

struct Value {
  std::string name;                  // the ONNX value that created it (aliases keep the original)
  Shape shape;                       // ONNX shape
  int32_t tensor[3] = {-1, -1, -1};  // Graph tensor per Layout; -1 where not (yet) materialised
  Shape chw;                         // kFlatHwc: the [C, H, W] it was flattened from
  Padding pad;                       // zero padding of a Pad still to apply: tensor[kNhwc] is unpadded
};

void add_padding(Padding* p, const Padding& extra) {
  p->top += extra.top;
  p->left += extra.left;
  p->bottom += extra.bottom;
  p->right += extra.right;
}

bool has_padding(const Padding& p) { return p.top || p.left || p.bottom || p.right; }

Layout primary_layout(const Value& v) {
  return v.tensor[1] >= 0 ? Layout::kNhwc : v.tensor[0] >= 0 ? Layout::kOnnx : Layout::kFlatHwc;
}

Shape internal_shape(const Shape& onnx_shape, Layout layout) {
  return layout == Layout::kNhwc ? nchw_to_nhwc(onnx_shape) : onnx_shape;
}

struct Fused {
  std::string out;  // the ONNX name the fused op's output takes (the last absorbed node's)
  FusedActivation act;
  bool made_bias = false;  // a folded Add or BatchNormalization wrote the bias
};

struct Pool2D {
  PoolOptions opt;
  int32_t out_h = 0, out_w = 0;
};

class Importer {
 public:
  Importer(const onnx::ModelProto& model, Graph* graph, const ImportOptions& options)
      : model_(model), g_(model.graph()), graph_(graph), options_(options) {}
  void run();

  using ImportFn = void (Importer::*)(const Node&);
  struct OpEntry {
    const char* op;
    ImportFn fn;
    int since = 0;         // the opset that introduced the op, when later than kMinOpset
    const char* note = "";  // what of the op is supported, when not all of it
  };
  static const OpEntry kOps[];
  // Ops evaluated at import when every input is a constant (shape arithmetic).
  static const char* const kFoldable[];

 private:

  // Setup and finish.
  void check_opset();
  void collect_constants();
  void add_graph_inputs();
  void add_graph_outputs();

  // Values, constants and tensors.
  const Constant* find_constant(const std::string& name);
  bool is_constant(const std::string& name) const { return constants_.count(name) || constant_protos_.count(name); }
  bool fold_constants(const Node& node);
  const Constant& float_constant(const Node& node, int input, const char* role);
  Value& value(const Node& node, int input);
  int32_t tensor_in(Value& v, Layout layout);
  int32_t add_activation(const std::string& name, const Shape& shape) {
    return graph_->add_tensor(name, DType::kFloat32, shape);
  }
  int32_t add_constant(const std::string& name, const Shape& shape, const std::vector<float>& data) {
    return graph_->add_constant(name, DType::kFloat32, shape, data.data(), data.size() * sizeof(float));
  }
  Value& define(const std::string& name, const Shape& shape, Layout layout, int32_t tensor);
  void emit(OpType type, const std::string& name, std::vector<int32_t> inputs, int32_t output, Operator op = {});
  int32_t emit_reshape(const std::string& name, int32_t input, const Shape& in, const Shape& out,
                       const std::string& out_name);

  // Look-ahead fusion.
  int sole_reader(const std::string& name, std::vector<int>* through);
  void mark_done(const std::vector<int>& nodes, int node) {
    for (int n : nodes) done_[n] = true;
    done_[node] = true;
  }
  Fused absorb(const std::string& name, bool fold_bias_add, int channels, std::vector<float>* weights,
               std::vector<float>* bias);
  FusedActivation read_activation(const Node& node);
  void read_batchnorm(const Node& node, int channels, std::vector<float>* scale, std::vector<float>* shift);
  void check_dropout(const Node& node);

  // Shared pieces of op import.
  Padding spatial_padding(const Node& node, const Shape& in, const std::vector<int64_t>& kernel,
                          const std::vector<int64_t>& stride, const std::vector<int64_t>& dilation);
  Pool2D read_pool(const Node& node, const Shape& in, bool max_pool);
  Shape reshape_target(const Node& node, const Shape& in, const std::vector<int64_t>& target);
  void import_flatten_to(const Node& node, Value& x, const Shape& out);
  void emit_binary(OpType type, const Node& node);
  Value& emit_binary_operands(OpType type, const Node& node, Value* va, const Constant* ca, Value* vb,
                              const Constant* cb, const std::string& out, FusedActivation act);
  void emit_fully_connected(const Node& node, Value& a, std::vector<float> weights, std::vector<float> bias,
                            bool has_bias, int32_t m, int32_t k);

  // One function per ONNX op.
  void import_constant(const Node& node);
  void import_conv(const Node& node);
  void import_batchnorm(const Node& node);
  void import_clamp(const Node& node);
  void import_add(const Node& node) {
    if (!fuse_hardswish(node)) emit_binary(OpType::kAdd, node);
  }
  bool fuse_hardswish(const Node& add);
  void import_mul(const Node& node) { emit_binary(OpType::kMul, node); }
  void import_sub(const Node& node) { emit_binary(OpType::kSub, node); }
  void import_div(const Node& node) {
    if (!fuse_gelu(node)) emit_binary(OpType::kDiv, node);
  }
  bool fuse_gelu(const Node& div);
  // Pattern matching for the fusions: a float scalar constant's value; the one node (of type op,
  // or any when null) that reads `value`, not yet imported, in the default domain; else -1.
  bool scalar_constant(const std::string& name, float* value);
  int only_reader(const std::string& value, const char* op);
  // A constant bias of `channels` values for input 2 of a conv-like node into *bias (which keeps
  // its zeros when the input is absent); returns whether the node has one.
  bool read_bias(const Node& node, int32_t channels, std::vector<float>* bias);
  void import_unary(const Node& node);
  void import_pow(const Node& node);
  void import_slice(const Node& node);
  void emit_slice(const std::string& label, Value& x, const std::vector<int64_t>& begin,
                  const std::vector<int64_t>& end, const std::vector<int64_t>& step, const Shape& out_shape,
                  const std::string& out);
  void import_split(const Node& node);
  void import_resize(const Node& node);
  void import_prelu(const Node& node);
  void import_conv_transpose(const Node& node);
  void import_gather(const Node& node);
  void import_embedding(const Node& node);
  std::set<std::string> token_inputs_;  // graph inputs of integer ids (float32 in the graph)
  void import_cast(const Node& node);
  void import_layer_norm(const Node& node);
  void emit_unary(const std::string& label, Value& x, const UnaryOptions& f, const std::string& out);
  void import_max_pool(const Node& node);
  void import_average_pool(const Node& node);
  void import_global_average_pool(const Node& node);
  void import_flatten(const Node& node);
  void import_reshape(const Node& node);
  void import_gemm(const Node& node);
  void import_matmul(const Node& node);
  void import_softmax(const Node& node);
  void import_concat(const Node& node);
  void import_identity(const Node& node);
  void import_pad(const Node& node);
  void import_transpose(const Node& node);
  void import_reduce_mean(const Node& node);
  bool fuse_layer_norm(const Node& mean, const std::vector<int64_t>& axes);
  void import_squeeze(const Node& node);
  void import_shape(const Node& node);
  void alias(const Node& node);
  // Squeeze / Unsqueeze axes (attribute before opset 13, input after), normalised and sorted.
  std::vector<int64_t> squeeze_axes(const Node& node, const Shape& in);
  Shape squeezed_shape(const Node& node, const Shape& in);

  const onnx::ModelProto& model_;
  const onnx::GraphProto& g_;
  Graph* graph_;
  const ImportOptions& options_;
  int64_t opset_ = 0;
  std::unordered_map<std::string, const onnx::TensorProto*> constant_protos_;
  std::deque<onnx::TensorProto> made_protos_;            // Constant nodes' value_float(s)/value_int(s)
  std::unordered_map<std::string, Constant> constants_;  // decoded on first use
  std::unordered_map<std::string, Value> values_;
  std::unordered_map<std::string, std::vector<int>> readers_;  // one entry per input slot
  std::vector<bool> done_;
};

const Importer::OpEntry Importer::kOps[] = {
    {"Conv", &Importer::import_conv, 0, "2-D (4-D input), constant weights"},
    {"BatchNormalization", &Importer::import_batchnorm, 0, "inference form; folded into the preceding Conv/Gemm when possible"},
    {"Relu", &Importer::import_clamp},
    {"Clip", &Importer::import_clamp},
    {"Add", &Importer::import_add},
    {"Mul", &Importer::import_mul},
    {"MaxPool", &Importer::import_max_pool, 0, "2-D"},
    {"AveragePool", &Importer::import_average_pool, 0, "2-D"},
    {"GlobalAveragePool", &Importer::import_global_average_pool},
    {"Flatten", &Importer::import_flatten},
    {"Reshape", &Importer::import_reshape},
    {"Gemm", &Importer::import_gemm, 0, "constant B (and C)"},
    {"MatMul", &Importer::import_matmul, 0, "constant second input, or two activations [..., M, K] x [..., K, N]"},
    {"Softmax", &Importer::import_softmax, 0, "the last axis, or the channels of a 4-D input"},
    {"Concat", &Importer::import_concat},
    {"Identity", &Importer::import_identity},
    {"Dropout", &Importer::import_identity},
    {"Pad", &Importer::import_pad, 0, "constant zeros on H, W, folded into the Conv / AveragePool that reads it"},
    {"Transpose", &Importer::import_transpose, 0, "NHWC<->NCHW pairs fold away"},
    {"ReduceMean", &Importer::import_reduce_mean, 0, "over consecutive axes after the batch (a GlobalAveragePool)"},
    {"Squeeze", &Importer::import_squeeze},
    {"Unsqueeze", &Importer::import_squeeze},
    {"Shape", &Importer::import_shape},
    {"Sub", &Importer::import_sub},
    {"Div", &Importer::import_div},
    {"Pow", &Importer::import_pow, 0, "constant scalar exponent"},
    {"Sigmoid", &Importer::import_unary},
    {"Tanh", &Importer::import_unary},
    {"HardSigmoid", &Importer::import_unary},
    {"HardSwish", &Importer::import_unary, 14, ""},
    {"LeakyRelu", &Importer::import_unary},
    {"Elu", &Importer::import_unary},
    {"Exp", &Importer::import_unary},
    {"Log", &Importer::import_unary},
    {"Sqrt", &Importer::import_unary},
    {"Abs", &Importer::import_unary},
    {"Neg", &Importer::import_unary},
    {"Erf", &Importer::import_unary},
    {"Reciprocal", &Importer::import_unary},
    {"Softplus", &Importer::import_unary},
    {"Gelu", &Importer::import_unary, 20, "none or tanh approximation"},
    {"Slice", &Importer::import_slice, 0, "constant starts/ends/axes, positive steps"},
    {"Split", &Importer::import_split, 0, "constant sizes"},
    {"Resize", &Importer::import_resize, 10, "nearest / linear over H, W; half_pixel, pytorch_half_pixel, align_corners, asymmetric"},
    {"Upsample", &Importer::import_resize, 0, "nearest / linear over H, W"},
    {"PRelu", &Importer::import_prelu},
    {"ConvTranspose", &Importer::import_conv_transpose, 0, "2-D, constant weights; explicit pads or VALID"},
    {"Gather", &Importer::import_gather, 0, "constant indices, or token ids into a constant table"},
    {"Cast", &Importer::import_cast, 0, "to float (computed values); any type on constants"},
    {"LayerNormalization", &Importer::import_layer_norm, 17, "over the last axis, constant scale and bias"},
};

bool is_default_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

// ---------------------------------------------------------------- driver

void Importer::run() {
  if (!model_.has_graph() || g_.node_size() == 0)
    fail(StatusCode::kInvalidModel, "not an ONNX model (no graph or no nodes)");
  check_opset();
  done_.assign(g_.node_size(), false);
  collect_constants();
  for (int i = 0; i < g_.node_size(); ++i)
    for (const auto& name : g_.node(i).input())
      if (!name.empty()) readers_[name].push_back(i);
  for (const auto& out : g_.output()) readers_[out.name()].push_back(-1);  // -1: read by the caller
  add_graph_inputs();

  for (int i = 0; i < g_.node_size(); ++i) {
    if (done_[i]) continue;
    Node node(g_.node(i));
    if (!is_default_domain(node.proto.domain()))
      node.fail(StatusCode::kUnsupported, "domain '%s' is not supported (expected the default ONNX domain)",
                node.proto.domain().c_str());
    if (fold_constants(node)) continue;
    ImportFn fn = nullptr;
    for (const OpEntry& e : kOps)
      if (node.op() == e.op) {
        if (opset_ < e.since)
          node.fail(StatusCode::kInvalidModel, "operator %s exists from opset %d; the model declares opset %lld", e.op,
                    e.since, static_cast<long long>(opset_));
        fn = e.fn;
      }
    if (!fn)
      node.fail(StatusCode::kUnsupported,
                "operator is not supported at opset %lld (`tq import --list-ops` lists the %zu supported ones)",
                static_cast<long long>(opset_), onnx_supported_ops().size());
    (this->*fn)(node);
  }
  add_graph_outputs();

  graph_->producer = model_.producer_name().empty() ? "onnx" : model_.producer_name() + " " + model_.producer_version();
  graph_->metadata.emplace_back("onnx_opset", std::to_string(opset_));
}

void Importer::check_opset() {
  for (const auto& o : model_.opset_import())
    if (is_default_domain(o.domain())) opset_ = o.version();
  if (opset_ < kMinOpset || opset_ > kMaxOpset)
    fail(StatusCode::kUnsupported, "ONNX opset %lld is not supported (expected %d..%d; re-export the model)",
         static_cast<long long>(opset_), kMinOpset, kMaxOpset);
}

void Importer::collect_constants() {
  for (const auto& t : g_.initializer()) constant_protos_[t.name()] = &t;
  if (g_.sparse_initializer_size() > 0)
    fail(StatusCode::kUnsupported, "sparse initializer '%s' is not supported",
         g_.sparse_initializer(0).values().name().c_str());
  // Constant nodes read nothing, so all are known up front: fusion looks ahead past them.
  for (int i = 0; i < g_.node_size(); ++i) {
    if (g_.node(i).op_type() != "Constant" || !is_default_domain(g_.node(i).domain())) continue;
    import_constant(Node(g_.node(i)));
    done_[i] = true;
  }
}

void Importer::add_graph_inputs() {
  for (const InputShape& b : options_.input_shapes) {
    bool found = false;
    std::string names;
    for (const auto& in : g_.input()) {
      if (constant_protos_.count(in.name())) continue;
      found = found || in.name() == b.name;
      names += (names.empty() ? "'" : ", '") + in.name() + "'";
    }
    if (!found)
      fail(StatusCode::kInvalidArgument, "--input-shape %s: the model has no input of that name (inputs: %s)",
           b.name.c_str(), names.c_str());
  }
  for (const auto& in : g_.input()) {
    if (constant_protos_.count(in.name())) continue;  // IR < 4 lists initializers as inputs too
    const char* name = in.name().c_str();
    if (!in.type().has_tensor_type()) fail(StatusCode::kUnsupported, "graph input '%s' is not a tensor", name);
    const auto& tt = in.type().tensor_type();
    // Integer inputs are token ids (int64 in PyTorch exports). Like every tinyquant input they
    // enter as float32 (exact integers below 2^24), so calibration, the C API and tq run feed
    // them as any other input; only a Gather from a constant table (an embedding) may read them,
    // and it checks each is an integer in range.
    const bool ids = tt.elem_type() == onnx::TensorProto::INT64 || tt.elem_type() == onnx::TensorProto::INT32;
    if (tt.elem_type() != onnx::TensorProto::FLOAT && !ids)
      fail(StatusCode::kUnsupported, "graph input '%s': dtype %s is not supported (expected float32, or int64 / int32 "
           "token ids)", name, dtype_string(tt.elem_type()));
    if (!tt.has_shape() || tt.shape().dim_size() == 0 || tt.shape().dim_size() > kMaxRank)
      fail(StatusCode::kUnsupported, "graph input '%s' has no shape or an unsupported rank (expected 1..%d dims)", name,
           kMaxRank);
    const InputShape* bound = nullptr;
    for (const InputShape& b : options_.input_shapes)
      if (b.name == in.name()) bound = &b;
    if (bound && static_cast<int>(bound->shape.size()) != tt.shape().dim_size())
      fail(StatusCode::kInvalidArgument, "--input-shape %s: %zu dims given, the input has %d", name,
           bound->shape.size(), tt.shape().dim_size());
    Shape shape;
    std::string hint;  // the binding to suggest: known dims, '?' for dynamic ones
    for (int d = 0; d < tt.shape().dim_size(); ++d) {
      const auto& dim = tt.shape().dim(d);
      const bool known = dim.has_dim_value() && dim.dim_value() > 0 && dim.dim_value() <= 65536;
      hint += (d ? "," : "") + (known ? std::to_string(dim.dim_value()) : d == 0 ? std::string("1") : "?");
    }
    for (int d = 0; d < tt.shape().dim_size(); ++d) {
      const auto& dim = tt.shape().dim(d);
      bool known = dim.has_dim_value() && dim.dim_value() > 0 && dim.dim_value() <= std::numeric_limits<int32_t>::max();
      if (bound) {
        const int32_t v = bound->shape[d];
        if (known && v != dim.dim_value() && !(d == 0 && v == -1))
          fail(StatusCode::kInvalidArgument, "--input-shape %s: dim %d is %d, but the model fixes it at %lld", name,
               d, v, static_cast<long long>(dim.dim_value()));
        if (v == -1 && d > 0)
          fail(StatusCode::kInvalidArgument, "--input-shape %s: dim %d must be a size (only dim 0 may be -1)", name,
               d);
        shape.push_back(v == -1 && known ? static_cast<int32_t>(dim.dim_value()) : v);
      } else if (d == 0) {
        shape.push_back(known ? static_cast<int32_t>(dim.dim_value()) : -1);  // symbolic or missing batch
      } else if (!known) {
        fail(StatusCode::kUnsupported,
             "graph input '%s': dimension %d is dynamic ('%s'); only dimension 0 (the batch) may be: bind it with "
             "--input-shape %s=%s (ImportOptions::input_shapes)",
             name, d, dim.has_dim_param() ? dim.dim_param().c_str() : "", name, hint.c_str());
      } else {
        shape.push_back(static_cast<int32_t>(dim.dim_value()));
      }
    }
    int32_t t = add_activation(in.name(), shape);
    if (ids) token_inputs_.insert(in.name());
    graph_->inputs.push_back(t);
    define(in.name(), shape, Layout::kOnnx, t);
  }
}

// Graph outputs keep the ONNX layout and name: a 4-D NHWC result gets its layout changed back,
// and whichever tensor held the name so far (its NHWC twin, or the value an Identity aliased)
// takes a suffix.
void Importer::add_graph_outputs() {
  for (const auto& out : g_.output()) {
    auto it = values_.find(out.name());
    if (it == values_.end())
      fail(StatusCode::kUnsupported,
           "graph output '%s' is not computed by any supported node (constant outputs are not supported)",
           out.name().c_str());
    Value& v = it->second;
    int32_t t = tensor_in(v, Layout::kOnnx);
    bool taken = std::find(graph_->inputs.begin(), graph_->inputs.end(), t) != graph_->inputs.end() ||
                 std::find(graph_->outputs.begin(), graph_->outputs.end(), t) != graph_->outputs.end();
    if (taken) t = emit_reshape(out.name(), t, v.shape, v.shape, out.name() + ":copy");
    for (size_t i = 0; i < graph_->tensors.size(); ++i)  // the NHWC twin that held the name
      if (graph_->tensors[i].name == out.name() && static_cast<int32_t>(i) != t &&
          std::find(graph_->inputs.begin(), graph_->inputs.end(), static_cast<int32_t>(i)) == graph_->inputs.end())
        graph_->tensors[i].name += ":nhwc";
    graph_->tensors[t].name = out.name();
    graph_->outputs.push_back(t);
  }
}

// ---------------------------------------------------------------- values, constants, tensors

const Constant* Importer::find_constant(const std::string& name) {
  auto it = constants_.find(name);
  if (it != constants_.end()) return &it->second;
  auto p = constant_protos_.find(name);
  if (p == constant_protos_.end()) return nullptr;
  return &constants_.emplace(name, decode_tensor(*p->second, name)).first->second;
}

const Constant& Importer::float_constant(const Node& node, int input, const char* role) {
  const Constant* c = find_constant(node.in(input));
  if (!c)
    node.fail(StatusCode::kUnsupported, "input %d '%s' (%s) must be a constant initializer", input,
              node.in(input).c_str(), role);
  if (c->type != onnx::TensorProto::FLOAT)
    node.fail(StatusCode::kUnsupported, "input '%s' (%s) has dtype %s (expected float32)", node.in(input).c_str(), role,
              dtype_string(c->type));
  return *c;
}

Value& Importer::value(const Node& node, int input) {
  const std::string& name = node.in(input);
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  if (name.empty()) node.fail(StatusCode::kInvalidModel, "input %d is missing", input);
  if (is_constant(name))
    node.fail(StatusCode::kUnsupported, "input '%s' is a constant; this input must be computed by an earlier node",
              name.c_str());
  node.fail(StatusCode::kInvalidModel, "input '%s' is not produced by an earlier node or a graph input", name.c_str());
}

Value& Importer::define(const std::string& name, const Shape& shape, Layout layout, int32_t tensor) {
  if (values_.count(name) || is_constant(name))
    fail(StatusCode::kInvalidModel, "value '%s' is defined twice", name.c_str());
  Value& v = values_[name];
  v.name = name;
  v.shape = shape;
  v.tensor[static_cast<int>(layout)] = tensor;
  return v;
}

// The tensor holding `v` in `layout`, inserting a layout change the first time it is asked for.
int32_t Importer::tensor_in(Value& v, Layout layout) {
  int32_t& t = v.tensor[static_cast<int>(layout)];
  if (t >= 0) return t;
  if (layout == Layout::kFlatHwc || v.tensor[2] >= 0)  // flat HWC values have exactly one (FC) reader
    fail(StatusCode::kInternal, "value '%s': unexpected layout request", v.name.c_str());
  bool to_nhwc = layout == Layout::kNhwc;
  int32_t src = v.tensor[to_nhwc ? 0 : 1];
  Shape src_shape = internal_shape(v.shape, to_nhwc ? Layout::kOnnx : Layout::kNhwc);
  Shape dst_shape = internal_shape(v.shape, layout);
  std::string name = v.name + (to_nhwc ? ":nhwc" : ":nchw");
  if (layouts_share_bytes(v.shape)) {
    t = emit_reshape(name, src, src_shape, dst_shape, name);
  } else {
    Operator op;
    op.mutable_perm() = to_nhwc ? std::vector<int32_t>{0, 2, 3, 1} : std::vector<int32_t>{0, 3, 1, 2};
    t = add_activation(name, dst_shape);
    emit(OpType::kTranspose, name, {src}, t, op);
  }
  return t;
}

void Importer::emit(OpType type, const std::string& name, std::vector<int32_t> inputs, int32_t output, Operator op) {
  op.type = type;
  op.name = name;
  op.inputs = std::move(inputs);
  op.outputs = {output};
  graph_->add_operator(std::move(op));
}

// A Reshape whose new_shape works for any batch: -1 in dim 0 when the batch passes through.
int32_t Importer::emit_reshape(const std::string& name, int32_t input, const Shape& in, const Shape& out,
                               const std::string& out_name) {
  Operator op;
  op.mutable_new_shape() = out;
  if (in[0] == out[0] && product(in, 1) == product(out, 1))
    op.mutable_new_shape()[0] = -1;
  else if (in[0] < 0 || out[0] < 0)
    fail(StatusCode::kInternal, "'%s': reshape of a dynamic batch", name.c_str());
  int32_t t = add_activation(out_name, out);
  emit(OpType::kReshape, name, {input}, t, op);
  return t;
}

// ---------------------------------------------------------------- look-ahead fusion

// The node that alone reads `name`, as its input 0, looking through Identity/Dropout (whose
// indices go to *through). -1 if the value (or one it passes through) is a graph output or has
// other readers.
int Importer::sole_reader(const std::string& name, std::vector<int>* through) {
  std::string cur = name;
  for (;;) {
    auto it = readers_.find(cur);
    if (it == readers_.end() || it->second.size() != 1 || it->second[0] < 0) return -1;
    int r = it->second[0];
    const onnx::NodeProto& n = g_.node(r);
    const bool second_of_add = n.op_type() == "Add" && n.input_size() == 2 && n.input(1) == cur;  // Add(bias, x)
    if (done_[r] || (n.input(0) != cur && !second_of_add) || !is_default_domain(n.domain()) || n.output_size() == 0)
      return -1;
    if (n.op_type() != "Identity" && n.op_type() != "Dropout") return r;
    if (n.op_type() == "Dropout") check_dropout(Node(n));
    through->push_back(r);
    cur = n.output(0);
  }
}

// Folds what follows a Conv/FC output into it: [Add of a constant bias] [BatchNormalization]
// [Relu|Clip]. weights is [channels, ...] row-major (ONNX order), bias has `channels` values.
Fused Importer::absorb(const std::string& name, bool fold_bias_add, int channels, std::vector<float>* weights,
                       std::vector<float>* bias) {
  Fused f{name, {}};
  std::vector<int> through;
  int r = sole_reader(f.out, &through);
  if (r >= 0 && fold_bias_add && g_.node(r).op_type() == "Add" && g_.node(r).input_size() == 2) {
    Node add(g_.node(r));
    // Either operand order: PyTorch writes a Linear on a sequence as Add(bias, MatMul(x, W)).
    const Constant* c = find_constant(add.in(add.in(0) == f.out ? 1 : 0));
    if (c && c->type == onnx::TensorProto::FLOAT && add.proto.attribute_size() == 0 &&
        (c->size() == channels || c->size() == 1) && c->dims.size() <= 2 &&
        (c->dims.empty() || c->dims.back() == c->size())) {
      for (int o = 0; o < channels; ++o) (*bias)[o] += c->f[c->size() == 1 ? 0 : o];
      mark_done(through, r);
      f.out = add.out(0);
      f.made_bias = true;
      through.clear();
      r = sole_reader(f.out, &through);
    }
  }
  if (r >= 0 && weights && g_.node(r).op_type() == "BatchNormalization") {
    Node bn(g_.node(r));
    std::vector<float> scale, shift;
    read_batchnorm(bn, channels, &scale, &shift);
    const size_t row = weights->size() / channels;
    for (int o = 0; o < channels; ++o) {
      for (size_t k = 0; k < row; ++k) (*weights)[o * row + k] *= scale[o];
      (*bias)[o] = (*bias)[o] * scale[o] + shift[o];
    }
    mark_done(through, r);
    f.out = bn.out(0);
    f.made_bias = true;
    through.clear();
    r = sole_reader(f.out, &through);
  }
  if (r >= 0 && (g_.node(r).op_type() == "Relu" || g_.node(r).op_type() == "Clip")) {
    Node act(g_.node(r));
    f.act = read_activation(act);
    mark_done(through, r);
    f.out = act.out(0);
  }
  return f;
}

FusedActivation Importer::read_activation(const Node& node) {
  if (node.op() == "Relu") {
    node.allow_attributes({});
    return FusedActivation::relu();
  }
  node.allow_attributes({"min", "max"});  // attributes: the pre-opset-11 form
  float lo = node.get_float("min", -kInf), hi = node.get_float("max", kInf);
  for (int i = 1; i <= 2; ++i) {
    if (node.in(i).empty()) continue;
    const Constant& c = float_constant(node, i, i == 1 ? "min" : "max");
    if (c.size() != 1) node.fail(StatusCode::kUnsupported, "input '%s' must be a scalar", node.in(i).c_str());
    (i == 1 ? lo : hi) = c.f[0];
  }
  if (std::isnan(lo) || std::isnan(hi) || lo > hi)
    node.fail(StatusCode::kUnsupported, "bounds [%g, %g] are not supported (expected min <= max)", lo, hi);
  if (lo == 0.0f && hi == kInf) return FusedActivation::relu();
  if (lo == 0.0f && hi == 6.0f) return FusedActivation::relu6();
  return FusedActivation::clip(lo, hi);
}

// y = x * scale + shift per channel (inference form).
void Importer::read_batchnorm(const Node& node, int channels, std::vector<float>* scale, std::vector<float>* shift) {
  node.allow_attributes({"epsilon", "momentum", "training_mode", "spatial"});
  if (int64_t sp = node.get_int("spatial", 1); sp != 1 || (opset_ >= 9 && node.attr("spatial", onnx::AttributeProto::INT)))
    node.unsupported("spatial", std::to_string(sp), "1, before opset 9 (per-channel statistics)");
  if (int64_t t = node.get_int("training_mode", 0))
    node.unsupported("training_mode", std::to_string(t), "0 (inference)");
  for (int i = 1; i < node.proto.output_size(); ++i)
    if (!node.out(i).empty() && readers_.count(node.out(i)))
      node.fail(StatusCode::kUnsupported, "output '%s' (running statistics, training only) is not supported",
                node.out(i).c_str());
  float eps = node.get_float("epsilon", 1e-5f);
  if (!(eps >= 0.0f) || !std::isfinite(eps)) node.unsupported("epsilon", std::to_string(eps), "a finite value >= 0");
  static const char* const kRoles[] = {"", "scale", "B", "mean", "var"};
  const Constant* p[5] = {};
  for (int i = 1; i <= 4; ++i) {
    p[i] = &float_constant(node, i, kRoles[i]);
    if (p[i]->size() != channels || p[i]->dims.size() != 1)
      node.fail(StatusCode::kInvalidModel, "input '%s' (%s) has shape %s, expected [%d]", node.in(i).c_str(), kRoles[i],
                shape_string(p[i]->dims).c_str(), channels);
  }
  scale->resize(channels);
  shift->resize(channels);
  for (int c = 0; c < channels; ++c) {
    double var = static_cast<double>(p[4]->f[c]) + eps;
    if (!(var > 0.0)) node.fail(StatusCode::kInvalidModel, "var + epsilon = %g at channel %d (expected > 0)", var, c);
    double s = p[1]->f[c] / std::sqrt(var);
    (*scale)[c] = static_cast<float>(s);
    (*shift)[c] = static_cast<float>(p[2]->f[c] - p[3]->f[c] * s);
  }
}

// Dropout at inference is the identity; training mode or a used mask would not be.
void Importer::check_dropout(const Node& node) {
  node.allow_attributes({"ratio", "seed", "is_test"});
  if (!node.in(2).empty()) {
    const Constant* c = find_constant(node.in(2));
    if (!c || c->size() != 1 || (c->i.empty() ? c->f[0] != 0.0f : c->i[0] != 0))
      node.fail(StatusCode::kUnsupported, "input 'training_mode' must be a constant false (inference)");
  }
  if (!node.out(1).empty() && readers_.count(node.out(1)))
    node.fail(StatusCode::kUnsupported, "output '%s' (the mask) is used; only inference Dropout is supported",
              node.out(1).c_str());
}

// ---------------------------------------------------------------- shared op pieces

Padding Importer::spatial_padding(const Node& node, const Shape& in, const std::vector<int64_t>& kernel,
                                  const std::vector<int64_t>& stride, const std::vector<int64_t>& dilation) {
  const std::string auto_pad = node.get_string("auto_pad", "NOTSET");
  std::vector<int64_t> pads = node.get_ints("pads", {0, 0, 0, 0});
  Padding p;
  if (auto_pad == "NOTSET") {
    if (pads.size() != 4 || *std::min_element(pads.begin(), pads.end()) < 0 ||
        *std::max_element(pads.begin(), pads.end()) > 65535)
      node.unsupported("pads", ints_string(pads), "4 values >= 0 (2-D spatial op)");
    p.top = static_cast<int32_t>(pads[0]);
    p.left = static_cast<int32_t>(pads[1]);
    p.bottom = static_cast<int32_t>(pads[2]);
    p.right = static_cast<int32_t>(pads[3]);
    return p;
  }
  if (node.attr("pads", onnx::AttributeProto::INTS) && pads != std::vector<int64_t>{0, 0, 0, 0})
    node.unsupported("pads", ints_string(pads), "no pads together with auto_pad");
  if (auto_pad == "VALID") return p;
  if (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
    node.unsupported("auto_pad", auto_pad, "NOTSET, VALID, SAME_UPPER or SAME_LOWER");
  int32_t before[2], after[2];
  for (int a = 0; a < 2; ++a) {
    int64_t size = in[2 + a], out = (size + stride[a] - 1) / stride[a];
    int64_t total = std::max<int64_t>(0, (out - 1) * stride[a] + (kernel[a] - 1) * dilation[a] + 1 - size);
    before[a] =
        static_cast<int32_t>(auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2);  // odd extra: end / begin
    after[a] = static_cast<int32_t>(total - before[a]);
  }
  p.top = before[0];
  p.left = before[1];
  p.bottom = after[0];
  p.right = after[1];
  return p;
}

// MaxPool / AveragePool attributes -> options and output size. ceil_mode follows PyTorch (and
// onnxruntime): the last window must start inside the input or its leading padding. It is
// expressed as extra bottom/right padding, which max pooling ignores (-inf).
Pool2D Importer::read_pool(const Node& node, const Shape& in, bool max_pool) {
  if (max_pool)
    node.allow_attributes({"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"});
  else
    node.allow_attributes({"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"});
  if (!max_pool && node.get_pair("dilations", {1, 1}) != std::vector<int64_t>{1, 1})
    node.unsupported("dilations", ints_string(node.get_ints("dilations", {})), "[1,1] (AveragePool)");
  if (in.size() != 4)
    node.fail(StatusCode::kUnsupported, "input '%s' has rank %zu; only 2-D pooling (4-D input) is supported",
              node.in(0).c_str(), in.size());
  if (!node.attr("kernel_shape", onnx::AttributeProto::INTS))
    node.fail(StatusCode::kInvalidModel, "attribute 'kernel_shape' is missing");
  std::vector<int64_t> kernel = node.get_pair("kernel_shape", {});
  std::vector<int64_t> stride = node.get_pair("strides", {1, 1});
  std::vector<int64_t> dilation = node.get_pair("dilations", {1, 1});
  int64_t ceil_mode = node.get_int("ceil_mode", 0);
  if (ceil_mode != 0 && ceil_mode != 1) node.unsupported("ceil_mode", std::to_string(ceil_mode), "0 or 1");
  if (int64_t so = node.get_int("storage_order", 0))
    node.unsupported("storage_order", std::to_string(so), "0 (row major)");
  int64_t cip = node.get_int("count_include_pad", 0);
  if (cip != 0 && cip != 1) node.unsupported("count_include_pad", std::to_string(cip), "0 or 1");

  Pool2D p;
  p.opt.kernel_h = static_cast<int32_t>(kernel[0]);
  p.opt.kernel_w = static_cast<int32_t>(kernel[1]);
  p.opt.stride_h = static_cast<int32_t>(stride[0]);
  p.opt.stride_w = static_cast<int32_t>(stride[1]);
  p.opt.dilation_h = static_cast<int32_t>(dilation[0]);
  p.opt.dilation_w = static_cast<int32_t>(dilation[1]);
  p.opt.count_include_pad = cip == 1;
  p.opt.padding = spatial_padding(node, in, kernel, stride, dilation);
  int32_t* pad_before[2] = {&p.opt.padding.top, &p.opt.padding.left};
  int32_t* pad_after[2] = {&p.opt.padding.bottom, &p.opt.padding.right};
  int32_t* out[2] = {&p.out_h, &p.out_w};
  for (int a = 0; a < 2; ++a) {
    int64_t size = in[2 + a], span = (kernel[a] - 1) * dilation[a] + 1;
    int64_t room = size + *pad_before[a] + *pad_after[a] - span;
    if (room < 0)
      node.fail(StatusCode::kInvalidModel, "window %lld does not fit input %s", static_cast<long long>(span),
                shape_string(in).c_str());
    int64_t floor_out = room / stride[a] + 1, n = floor_out;
    if (ceil_mode) {
      n = (room + stride[a] - 1) / stride[a] + 1;
      if ((n - 1) * stride[a] >= size + *pad_before[a]) --n;
    }
    if (n != floor_out) {
      if (!max_pool)  // the divisor of the extra windows differs between frameworks
        node.unsupported("ceil_mode", "1", "0, or 1 where it does not change the output size");
      *pad_after[a] += static_cast<int32_t>((n - 1) * stride[a] + span - (size + *pad_before[a] + *pad_after[a]));
    }
    *out[a] = static_cast<int32_t>(n);
  }
  return p;
}

// ONNX Reshape target semantics (0 copies, -1 infers), with the batch N symbolic when dynamic:
// the result must keep N in dim 0.
Shape Importer::reshape_target(const Node& node, const Shape& in, const std::vector<int64_t>& target) {
  Shape out(target.size());
  int infer = -1;
  bool batch_copied = false;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == kBatchDim && i > 0)
      node.fail(StatusCode::kUnsupported, "shape puts the dynamic batch size in dim %zu (expected dim 0)", i);
    if (target[i] == 0 || target[i] == kBatchDim) {
      if (i >= in.size())
        node.fail(StatusCode::kInvalidModel, "shape %s copies a dim the input lacks", ints_string(target).c_str());
      out[i] = in[i];
      batch_copied = batch_copied || (i == 0 && in[0] < 0);
    } else if (target[i] == -1 && infer < 0) {
      infer = static_cast<int>(i);
    } else if (target[i] < 1 || target[i] > std::numeric_limits<int32_t>::max()) {
      node.fail(StatusCode::kInvalidModel, "shape %s is invalid", ints_string(target).c_str());
    } else {
      out[i] = static_cast<int32_t>(target[i]);
    }
  }
  const bool dynamic = in[0] < 0;
  int64_t in_known = dynamic ? product(in, 1) : product(in);
  int64_t out_known = 1;
  for (size_t i = 0; i < out.size(); ++i)
    if (static_cast<int>(i) != infer && !(i == 0 && batch_copied)) out_known *= out[i];
  if (dynamic && !batch_copied && infer != 0)
    node.fail(StatusCode::kUnsupported,
              "shape %s with a dynamic batch is not supported (dim 0 must stay the batch: 0 or -1)",
              ints_string(target).c_str());
  if (infer >= 0) {
    if (out_known == 0 || in_known % out_known != 0)
      node.fail(StatusCode::kInvalidModel, "cannot reshape %s to %s", shape_string(in).c_str(),
                ints_string(target).c_str());
    out[infer] = static_cast<int32_t>(in_known / out_known);
    if (dynamic && infer == 0) {
      if (out[0] != 1)
        node.fail(StatusCode::kUnsupported, "shape %s would merge the dynamic batch with other dims",
                  ints_string(target).c_str());
      out[0] = -1;
    }
  } else if (in_known != out_known) {
    node.fail(StatusCode::kInvalidModel, "cannot reshape %s to %s", shape_string(in).c_str(),
              ints_string(target).c_str());
  }
  return out;
}

// Flatten / Reshape of x to the ONNX shape `out` (the node's output 0).
void Importer::import_flatten_to(const Node& node, Value& x, const Shape& out) {
  const std::string& name = node.out(0);
  if (x.shape.size() == 4 && x.tensor[0] < 0 && !layouts_share_bytes(x.shape) && out.size() == 2 &&
      out[0] == x.shape[0]) {
    // [N,C,H,W] -> [N,C*H*W] read by one Gemm/MatMul: flatten the NHWC bytes; the FC permutes its
    // weight columns from CHW to HWC order instead of the activations being transposed.
    std::vector<int> through;
    int r = sole_reader(name, &through);
    if (r >= 0 && (g_.node(r).op_type() == "Gemm" || g_.node(r).op_type() == "MatMul")) {
      int32_t t = emit_reshape(node.label, tensor_in(x, Layout::kNhwc), nchw_to_nhwc(x.shape), out, name);
      Value& v = define(name, out, Layout::kFlatHwc, t);
      v.chw = {x.shape[1], x.shape[2], x.shape[3]};
      return;
    }
  }
  // Otherwise reshape bytes in ONNX order (free when NHWC and NCHW share them).
  Layout from = x.shape.size() == 4 && x.tensor[0] < 0 && layouts_share_bytes(x.shape) ? Layout::kNhwc : Layout::kOnnx;
  int32_t t = emit_reshape(node.label, tensor_in(x, from), internal_shape(x.shape, from), out, name);
  define(name, out, Layout::kOnnx, t);
}

// NumPy broadcasting, with -1 (the dynamic batch) only against 1 or itself.
Shape broadcast(const Node& node, const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    if (da != db && da != 1 && db != 1)
      node.fail(StatusCode::kInvalidModel, "shapes %s and %s do not broadcast", shape_string(a).c_str(),
                shape_string(b).c_str());
    out[i] = static_cast<int32_t>(da == 1 ? db : da);
  }
  return out;
}

void Importer::emit_binary(OpType type, const Node& node) {
  node.allow_attributes({});
  if (node.proto.input_size() != 2) node.fail(StatusCode::kInvalidModel, "expected 2 inputs");
  Value* v[2] = {};
  const Constant* c[2] = {};
  for (int i = 0; i < 2; ++i) {
    if (values_.count(node.in(i)))
      v[i] = &values_[node.in(i)];
    else if (find_constant(node.in(i)))
      c[i] = &float_constant(node, i, "operand");
    else
      value(node, i);  // fails naming the input
  }
  if (c[0] && c[1])
    node.fail(StatusCode::kUnsupported, "both inputs are constants of different dtypes (not folded)");
  Fused f = absorb(node.out(0), false, 0, nullptr, nullptr);
  if (type == OpType::kSub && c[1]) {
    // x - c is x + (-c) exactly (negation is exact): an Add, which has an int8 kernel.
    Constant negated = *c[1];
    negated.name += ":neg";
    for (float& x : negated.f) x = -x;
    emit_binary_operands(OpType::kAdd, node, v[0], nullptr, nullptr, &negated, f.out, f.act);
    return;
  }
  emit_binary_operands(type, node, v[0], c[0], v[1], c[1], f.out, f.act);
}

// Add/Mul of two operands (each a Value or a constant). 4-D results stay NHWC when an activation
// operand already is; constants are then re-laid out to match.
Value& Importer::emit_binary_operands(OpType type, const Node& node, Value* va, const Constant* ca, Value* vb,
                                      const Constant* cb, const std::string& out, FusedActivation act) {
  const Shape& sa = va ? va->shape : ca->dims;
  const Shape& sb = vb ? vb->shape : cb->dims;
  Shape out_shape = broadcast(node, sa, sb);
  if (out_shape.size() > static_cast<size_t>(kMaxRank))
    node.fail(StatusCode::kUnsupported, "result rank %zu is not supported", out_shape.size());
  bool nhwc = out_shape.size() == 4 && (!va || va->shape.size() == 4) && (!vb || vb->shape.size() == 4) &&
              ((va && va->tensor[1] >= 0) || (vb && vb->tensor[1] >= 0));
  Layout layout = nhwc ? Layout::kNhwc : Layout::kOnnx;
  auto operand = [&](Value* v, const Constant* c) {
    if (v) return tensor_in(*v, layout);
    if (c->dims.empty()) return add_constant(c->name, {1}, c->f);
    if (!nhwc) return add_constant(c->name, c->dims, c->f);
    Constant relaid = constant_to_nhwc(*c);
    return add_constant(c->name, relaid.dims, relaid.f);
  };
  int32_t a = operand(va, ca);
  int32_t b = operand(vb, cb);
  Operator op;
  op.activation = act;
  int32_t t = add_activation(out, internal_shape(out_shape, layout));
  emit(type, node.label, {a, b}, t, op);
  return define(out, out_shape, layout, t);
}

// weights [m, k] in ONNX column order (CHW for a flattened 4-D input).
void Importer::emit_fully_connected(const Node& node, Value& a, std::vector<float> weights, std::vector<float> bias,
                                    bool has_bias, int32_t m, int32_t k) {
  Fused f = absorb(node.out(0), true, m, &weights, &bias);
  has_bias = has_bias || f.made_bias;
  int32_t input;
  if (a.tensor[2] >= 0) {
    // The input was flattened from NHWC: reorder each row's columns from CHW to HWC.
    const int32_t c = a.chw[0], hw = a.chw[1] * a.chw[2];
    std::vector<float> permuted(weights.size());
    for (int32_t o = 0; o < m; ++o)
      for (int32_t ch = 0; ch < c; ++ch)
        for (int32_t p = 0; p < hw; ++p) permuted[o * k + p * c + ch] = weights[o * k + ch * hw + p];
    weights.swap(permuted);
    input = a.tensor[2];
  } else {
    input = tensor_in(a, Layout::kOnnx);
  }
  int32_t w = add_constant(node.in(1), {m, k}, weights);
  int32_t b = has_bias ? add_constant(!node.in(2).empty() ? node.in(2) : node.label + ":bias", {m}, bias) : -1;
  Operator op;
  op.activation = f.act;
  if (a.shape.size() == 2 || a.tensor[2] >= 0) {
    Shape out_shape = {a.shape[0], m};
    int32_t t = add_activation(f.out, out_shape);
    emit(OpType::kFullyConnected, node.label, {input, w, b}, t, op);
    define(f.out, out_shape, Layout::kOnnx, t);
    return;
  }
  // [..., K] (a token sequence, say): the FC runs on every row, a Reshape restores the leading dims.
  const bool dynamic = a.shape[0] < 0;
  Shape out_shape = a.shape;
  out_shape.back() = m;
  const Shape rows_shape = {dynamic ? -1 : static_cast<int32_t>(product(a.shape, 0, a.shape.size() - 1)), m};
  int32_t rows = add_activation(f.out + ":rows", rows_shape);
  emit(OpType::kFullyConnected, node.label, {input, w, b}, rows, op);
  Operator reshape;
  reshape.mutable_new_shape() = out_shape;
  if (dynamic) reshape.mutable_new_shape()[0] = -1;  // inferred from the rows
  int32_t t = add_activation(f.out, out_shape);
  emit(OpType::kReshape, node.label + ":unflatten", {rows}, t, reshape);
  define(f.out, out_shape, Layout::kOnnx, t);
}

// ---------------------------------------------------------------- ops

void Importer::import_constant(const Node& node) {
  node.allow_attributes({"value", "value_float", "value_floats", "value_int", "value_ints"});
  if (node.proto.attribute_size() != 1) node.fail(StatusCode::kInvalidModel, "expected exactly one value attribute");
  const onnx::AttributeProto& a = node.proto.attribute(0);
  const onnx::TensorProto* t = nullptr;
  if (a.name() == "value") {
    t = &node.attr("value", onnx::AttributeProto::TENSOR)->t();
  } else {
    onnx::TensorProto& made = made_protos_.emplace_back();
    if (a.name() == "value_float" || a.name() == "value_floats") {
      made.set_data_type(onnx::TensorProto::FLOAT);
      if (a.name() == "value_float") made.add_float_data(node.get_float("value_float", 0));
      for (float x : a.floats()) made.add_float_data(x);
      if (a.name() == "value_floats") made.add_dims(a.floats_size());
    } else {
      made.set_data_type(onnx::TensorProto::INT64);
      if (a.name() == "value_int") made.add_int64_data(node.get_int("value_int", 0));
      for (int64_t x : a.ints()) made.add_int64_data(x);
      if (a.name() == "value_ints") made.add_dims(a.ints_size());
    }
    t = &made;
  }
  if (values_.count(node.out(0)) || is_constant(node.out(0)))
    node.fail(StatusCode::kInvalidModel, "value '%s' is defined twice", node.out(0).c_str());
  constant_protos_[node.out(0)] = t;
}

void Importer::import_conv(const Node& node) {
  node.allow_attributes({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  Value& x = value(node, 0);
  if (x.shape.size() != 4)
    node.fail(StatusCode::kUnsupported, "input '%s' has rank %zu; only 2-D convolution (4-D input) is supported",
              node.in(0).c_str(), x.shape.size());
  const Constant& w = float_constant(node, 1, "W");
  if (w.dims.size() != 4)
    node.fail(StatusCode::kInvalidModel, "weights '%s' have shape %s (expected 4-D)", node.in(1).c_str(),
              shape_string(w.dims).c_str());
  const int32_t c_in = x.shape[1], out_c = w.dims[0], c_group = w.dims[1], kh = w.dims[2], kw = w.dims[3];
  const int64_t group = node.get_int("group", 1);
  if (group < 1 || c_in % group != 0 || out_c % group != 0 || c_in / group != c_group)
    node.fail(StatusCode::kInvalidModel, "group %lld does not fit input %s and weights %s",
              static_cast<long long>(group), shape_string(x.shape).c_str(), shape_string(w.dims).c_str());
  std::vector<int64_t> kernel = node.get_pair("kernel_shape", {kh, kw});
  if (kernel != std::vector<int64_t>{kh, kw})
    node.unsupported("kernel_shape", ints_string(kernel), "the weights' [KH,KW]");
  std::vector<int64_t> stride = node.get_pair("strides", {1, 1});
  std::vector<int64_t> dilation = node.get_pair("dilations", {1, 1});

  ConvOptions opt;
  opt.stride_h = static_cast<int32_t>(stride[0]);
  opt.stride_w = static_cast<int32_t>(stride[1]);
  opt.dilation_h = static_cast<int32_t>(dilation[0]);
  opt.dilation_w = static_cast<int32_t>(dilation[1]);
  opt.padding = spatial_padding(node, x.shape, kernel, stride, dilation);
  int32_t out_hw[2];
  for (int a = 0; a < 2; ++a) {
    int64_t room = int64_t{x.shape[2 + a]} +
                   (a ? opt.padding.left + opt.padding.right : opt.padding.top + opt.padding.bottom) -
                   ((kernel[a] - 1) * dilation[a] + 1);
    if (room < 0) node.fail(StatusCode::kInvalidModel, "kernel does not fit input %s", shape_string(x.shape).c_str());
    out_hw[a] = static_cast<int32_t>(room / stride[a] + 1);
  }
  add_padding(&opt.padding, x.pad);  // a folded Pad: x.shape is padded, its tensor is not

  std::vector<float> weights = w.f, bias(out_c, 0.0f);
  bool has_bias = read_bias(node, out_c, &bias);
  Fused f = absorb(node.out(0), false, out_c, &weights, &bias);
  has_bias = has_bias || f.made_bias;

  const bool depthwise = group > 1 && group == c_in;
  std::vector<float> relaid(weights.size());
  Shape w_shape;
  if (depthwise) {  // [O,1,KH,KW] -> [1,KH,KW,O]; output channel o reads input channel o / multiplier
    for (int32_t o = 0; o < out_c; ++o)
      for (int32_t k = 0; k < kh * kw; ++k) relaid[k * out_c + o] = weights[o * kh * kw + k];
    w_shape = {1, kh, kw, out_c};
    opt.depth_multiplier = out_c / c_in;
  } else {  // OIHW -> OHWI
    for (int32_t o = 0; o < out_c; ++o)
      for (int32_t i = 0; i < c_group; ++i)
        for (int32_t k = 0; k < kh * kw; ++k)
          relaid[(o * kh * kw + k) * c_group + i] = weights[(o * c_group + i) * kh * kw + k];
    w_shape = {out_c, kh, kw, c_group};
    opt.groups = static_cast<int32_t>(group);
  }
  int32_t wt = add_constant(node.in(1), w_shape, relaid);
  int32_t bt = has_bias ? add_constant(!node.in(2).empty() ? node.in(2) : node.label + ":bias", {out_c}, bias) : -1;
  Operator op;
  op.mutable_conv() = opt;
  op.activation = f.act;
  Shape out_shape = {x.shape[0], out_c, out_hw[0], out_hw[1]};
  int32_t t = add_activation(f.out, nchw_to_nhwc(out_shape));
  emit(depthwise ? OpType::kDepthwiseConv2D : OpType::kConv2D, node.label, {tensor_in(x, Layout::kNhwc), wt, bt}, t,
       op);
  define(f.out, out_shape, Layout::kNhwc, t);
}

bool Importer::read_bias(const Node& node, int32_t channels, std::vector<float>* bias) {
  if (node.in(2).empty()) return false;
  const Constant& b = float_constant(node, 2, "B");
  if (b.size() != channels)
    node.fail(StatusCode::kInvalidModel, "bias '%s' has %lld values, expected %d", node.in(2).c_str(),
              static_cast<long long>(b.size()), channels);
  *bias = b.f;
  return true;
}

// A BatchNormalization nothing could absorb: Mul by scale, then Add shift (which may absorb an
// activation), both per channel (dim 1).
void Importer::import_batchnorm(const Node& node) {
  Value& x = value(node, 0);
  if (x.shape.size() < 2)
    node.fail(StatusCode::kInvalidModel, "input '%s' has rank %zu (expected >= 2)", node.in(0).c_str(), x.shape.size());
  Constant scale, shift;
  read_batchnorm(node, x.shape[1], &scale.f, &shift.f);
  scale.dims = shift.dims = Shape(x.shape.size() - 1, 1);
  scale.dims[0] = shift.dims[0] = x.shape[1];
  scale.type = shift.type = onnx::TensorProto::FLOAT;
  scale.name = node.label + ":scale";
  shift.name = node.label + ":shift";
  Value& scaled = emit_binary_operands(OpType::kMul, node, &x, nullptr, nullptr, &scale, node.out(0) + ":scaled", {});
  Fused f = absorb(node.out(0), false, 0, nullptr, nullptr);
  emit_binary_operands(OpType::kAdd, node, &scaled, nullptr, nullptr, &shift, f.out, f.act);
}

void Importer::import_clamp(const Node& node) {
  FusedActivation act = read_activation(node);
  Value& x = value(node, 0);
  Layout layout = primary_layout(x);
  Operator op;
  op.activation = act;
  int32_t t = add_activation(node.out(0), internal_shape(x.shape, layout));
  emit(OpType::kClamp, node.label, {tensor_in(x, layout)}, t, op);
  define(node.out(0), x.shape, layout, t);
}

void Importer::import_max_pool(const Node& node) {
  if (!node.out(1).empty()) node.fail(StatusCode::kUnsupported, "output 'Indices' is not supported");
  Value& x = value(node, 0);
  Pool2D p = read_pool(node, x.shape, true);
  Operator op;
  op.mutable_pool() = p.opt;
  Shape out_shape = {x.shape[0], x.shape[1], p.out_h, p.out_w};
  int32_t t = add_activation(node.out(0), nchw_to_nhwc(out_shape));
  emit(OpType::kMaxPool2D, node.label, {tensor_in(x, Layout::kNhwc)}, t, op);
  define(node.out(0), out_shape, Layout::kNhwc, t);
}

void Importer::import_average_pool(const Node& node) {
  Value& x = value(node, 0);
  Pool2D p = read_pool(node, x.shape, false);
  if (has_padding(x.pad)) {  // a folded zero Pad: its zeros count in the divisor
    if (has_padding(p.opt.padding) && !p.opt.count_include_pad)
      node.fail(StatusCode::kUnsupported,
                "a Pad before a padded AveragePool with count_include_pad = 0 is not supported");
    p.opt.count_include_pad = true;
    add_padding(&p.opt.padding, x.pad);
  }
  Operator op;
  op.mutable_pool() = p.opt;
  Shape out_shape = {x.shape[0], x.shape[1], p.out_h, p.out_w};
  int32_t t = add_activation(node.out(0), nchw_to_nhwc(out_shape));
  emit(OpType::kAveragePool2D, node.label, {tensor_in(x, Layout::kNhwc)}, t, op);
  define(node.out(0), out_shape, Layout::kNhwc, t);
}

void Importer::import_global_average_pool(const Node& node) {
  node.allow_attributes({});
  Value& x = value(node, 0);
  if (x.shape.size() != 4)
    node.fail(StatusCode::kUnsupported, "input '%s' has rank %zu; only 4-D input is supported", node.in(0).c_str(),
              x.shape.size());
  Shape out_shape = {x.shape[0], x.shape[1], 1, 1};
  int32_t t = add_activation(node.out(0), nchw_to_nhwc(out_shape));
  emit(OpType::kGlobalAveragePool, node.label, {tensor_in(x, Layout::kNhwc)}, t);
  define(node.out(0), out_shape, Layout::kNhwc, t);
}

void Importer::import_flatten(const Node& node) {
  node.allow_attributes({"axis"});
  Value& x = value(node, 0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t axis = node.get_int("axis", 1);
  if (axis < -rank || axis > rank) node.unsupported("axis", std::to_string(axis), "a value in [-rank, rank]");
  if (axis < 0) axis += rank;
  const bool dynamic = x.shape[0] < 0;
  if (dynamic && (axis == 0 || product(x.shape, 1, axis) != 1))
    node.unsupported("axis", std::to_string(axis), "an axis that keeps the dynamic batch in dim 0");
  Shape out = {dynamic ? -1 : static_cast<int32_t>(product(x.shape, 0, axis)),
               static_cast<int32_t>(product(x.shape, axis))};
  import_flatten_to(node, x, out);
}

void Importer::import_reshape(const Node& node) {
  node.allow_attributes({"allowzero"});
  Value& x = value(node, 0);
  const Constant* c = find_constant(node.in(1));
  if (!c || c->type != onnx::TensorProto::INT64 || c->dims.size() != 1)
    node.fail(StatusCode::kUnsupported,
              "input 'shape' ('%s') must be a constant 1-D int64 initializer (computed shapes are not supported)",
              node.in(1).c_str());
  if (node.get_int("allowzero", 0) != 0 && std::find(c->i.begin(), c->i.end(), 0) != c->i.end())
    node.unsupported("allowzero", "1", "0 when the shape contains a 0");
  if (c->i.empty() || c->i.size() > static_cast<size_t>(kMaxRank))
    node.fail(StatusCode::kUnsupported, "shape %s has an unsupported rank", ints_string(c->i).c_str());
  import_flatten_to(node, x, reshape_target(node, x.shape, c->i));
}

void Importer::import_gemm(const Node& node) {
  node.allow_attributes({"alpha", "beta", "transA", "transB"});
  if (int64_t t = node.get_int("transA", 0)) node.unsupported("transA", std::to_string(t), "0");
  const int64_t trans_b = node.get_int("transB", 0);
  const float alpha = node.get_float("alpha", 1.0f), beta = node.get_float("beta", 1.0f);
  Value& a = value(node, 0);
  if (a.shape.size() != 2)
    node.fail(StatusCode::kInvalidModel, "input A has shape %s (expected 2-D)", shape_string(a.shape).c_str());
  if (!find_constant(node.in(1)))
    node.fail(StatusCode::kUnsupported,
              "input B '%s' must be a constant initializer (a product of two activations is not supported)",
              node.in(1).c_str());
  const Constant& b = float_constant(node, 1, "B");
  const int32_t k = a.shape[1];
  if (b.dims.size() != 2 || b.dims[trans_b ? 1 : 0] != k)
    node.fail(StatusCode::kInvalidModel, "B %s does not fit A %s (transB=%lld)", shape_string(b.dims).c_str(),
              shape_string(a.shape).c_str(), static_cast<long long>(trans_b));
  const int32_t m = b.dims[trans_b ? 0 : 1];
  std::vector<float> weights(static_cast<size_t>(m) * k), bias(m, 0.0f);
  for (int32_t o = 0; o < m; ++o)
    for (int32_t i = 0; i < k; ++i) weights[o * k + i] = alpha * (trans_b ? b.f[o * k + i] : b.f[i * m + o]);
  bool has_bias = !node.in(2).empty();
  if (has_bias) {
    const Constant& c = float_constant(node, 2, "C");
    bool per_output = c.size() == m && (c.dims.size() == 1 || (c.dims.size() == 2 && c.dims[0] == 1));
    if (!per_output && c.size() != 1)
      node.fail(StatusCode::kUnsupported, "input C %s is not supported (expected a bias broadcastable to [%d])",
                shape_string(c.dims).c_str(), m);
    for (int32_t o = 0; o < m; ++o) bias[o] = beta * c.f[per_output ? o : 0];
  }
  emit_fully_connected(node, a, std::move(weights), std::move(bias), has_bias, m, k);
}

void Importer::import_matmul(const Node& node) {
  node.allow_attributes({});
  Value& a = value(node, 0);
  if (!find_constant(node.in(1))) {  // a product of two activations (attention)
    Value& b = value(node, 1);
    const size_t r = a.shape.size();
    bool ok = r >= 3 && b.shape.size() == r && a.shape[r - 1] == b.shape[r - 2];
    for (size_t i = 0; ok && i + 2 < r; ++i) ok = a.shape[i] == b.shape[i];
    if (!ok)
      node.fail(StatusCode::kUnsupported,
                "shapes %s x %s are not supported for a product of two activations (expected [..., M, K] x "
                "[..., K, N] of one rank >= 3 with equal leading dims)",
                shape_string(a.shape).c_str(), shape_string(b.shape).c_str());
    Shape out = a.shape;
    out[r - 1] = b.shape[r - 1];
    const int32_t ta = tensor_in(a, Layout::kOnnx);
    const int32_t tb = tensor_in(b, Layout::kOnnx);
    const int32_t t = add_activation(node.out(0), out);
    emit(OpType::kBatchMatMul, node.label, {ta, tb}, t);
    define(node.out(0), out, Layout::kOnnx, t);
    return;
  }
  const Constant& b = float_constant(node, 1, "B");
  if (a.shape.size() < 2 || b.dims.size() != 2 || b.dims[0] != a.shape.back())
    node.fail(StatusCode::kUnsupported, "shapes %s x %s are not supported (expected [..., K] x constant [K,M])",
              shape_string(a.shape).c_str(), shape_string(b.dims).c_str());
  const int32_t k = b.dims[0], m = b.dims[1];
  std::vector<float> weights(static_cast<size_t>(m) * k);
  for (int32_t o = 0; o < m; ++o)
    for (int32_t i = 0; i < k; ++i) weights[o * k + i] = b.f[i * m + o];
  emit_fully_connected(node, a, std::move(weights), std::vector<float>(m, 0.0f), false, m, k);
}

// Our Softmax runs over the last axis of its tensor. Opset 13 softmaxes one axis: the last, or
// a 4-D value's channels (the last axis of NHWC). Opsets 11/12 softmax the flattened dims from
// `axis` on: a Reshape to 2-D around the Softmax when more than the last dim is involved.
void Importer::import_softmax(const Node& node) {
  node.allow_attributes({"axis"});
  Value& x = value(node, 0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t axis = node.get_int("axis", opset_ >= 13 ? -1 : 1);
  if (axis < -rank || axis >= rank) node.unsupported("axis", std::to_string(axis), "a value in [-rank, rank)");
  if (axis < 0) axis += rank;
  Operator op;
  op.axis = -1;
  const bool last_only = axis == rank - 1 || (opset_ < 13 && product(x.shape, axis, rank - 1) == 1);
  const bool channels = rank == 4 && axis == 1 && (opset_ >= 13 || x.shape[2] * x.shape[3] == 1);
  if (last_only || channels) {
    Layout layout = channels ? Layout::kNhwc : Layout::kOnnx;
    int32_t t = add_activation(node.out(0), internal_shape(x.shape, layout));
    emit(OpType::kSoftmax, node.label, {tensor_in(x, layout)}, t, op);
    define(node.out(0), x.shape, layout, t);
    return;
  }
  if (opset_ >= 13) node.unsupported("axis", std::to_string(axis), "the last axis, or axis 1 of a 4-D input");
  const bool dynamic = x.shape[0] < 0;
  if (axis == 0 || (dynamic && product(x.shape, 1, axis) != 1))
    node.unsupported("axis", std::to_string(axis), "an axis that keeps the batch in dim 0");
  Shape flat = {dynamic ? -1 : static_cast<int32_t>(product(x.shape, 0, axis)),
                static_cast<int32_t>(product(x.shape, axis))};
  int32_t in2d = emit_reshape(node.label + ":2d", tensor_in(x, Layout::kOnnx), x.shape, flat, node.out(0) + ":2d");
  int32_t sm = add_activation(node.out(0) + ":softmax", flat);
  emit(OpType::kSoftmax, node.label, {in2d}, sm, op);
  int32_t t = emit_reshape(node.label + ":nd", sm, flat, x.shape, node.out(0));
  define(node.out(0), x.shape, Layout::kOnnx, t);
}

void Importer::import_concat(const Node& node) {
  node.allow_attributes({"axis"});
  std::vector<Value*> in;
  for (int i = 0; i < node.proto.input_size(); ++i) in.push_back(&value(node, i));
  if (in.empty()) node.fail(StatusCode::kInvalidModel, "no inputs");
  const int64_t rank = static_cast<int64_t>(in[0]->shape.size());
  const auto* axis_attr = node.attr("axis", onnx::AttributeProto::INT);
  if (!axis_attr) node.fail(StatusCode::kInvalidModel, "attribute 'axis' is missing");
  int64_t axis = axis_attr->i();
  if (axis < -rank || axis >= rank) node.unsupported("axis", std::to_string(axis), "a value in [-rank, rank)");
  if (axis < 0) axis += rank;
  Shape out = in[0]->shape;
  out[axis] = 0;
  bool any_nhwc = false;
  for (Value* v : in) {
    for (int64_t d = 0; d < rank; ++d)
      if (v->shape.size() != in[0]->shape.size() || (d != axis && v->shape[d] != out[d]))
        node.fail(StatusCode::kInvalidModel, "input shapes %s and %s do not concatenate on axis %lld",
                  shape_string(in[0]->shape).c_str(), shape_string(v->shape).c_str(), static_cast<long long>(axis));
    if (v->shape[axis] < 0) node.unsupported("axis", std::to_string(axis), "an axis other than the dynamic batch");
    out[axis] += v->shape[axis];
    any_nhwc = any_nhwc || v->tensor[1] >= 0;
  }
  Layout layout = rank == 4 && any_nhwc ? Layout::kNhwc : Layout::kOnnx;
  static const int32_t kNchwToNhwcAxis[4] = {0, 3, 1, 2};
  Operator op;
  op.axis = layout == Layout::kNhwc ? kNchwToNhwcAxis[axis] : static_cast<int32_t>(axis);
  std::vector<int32_t> inputs;
  for (Value* v : in) inputs.push_back(tensor_in(*v, layout));
  int32_t t = add_activation(node.out(0), internal_shape(out, layout));
  emit(OpType::kConcat, node.label, inputs, t, op);
  define(node.out(0), out, layout, t);
}

// Identity and inference Dropout: the output is another name for the input.
void Importer::import_identity(const Node& node) {
  if (node.op() == "Dropout")
    check_dropout(node);
  else
    node.allow_attributes({});
  alias(node);
}

// Output 0 becomes another name for input 0.
void Importer::alias(const Node& node) {
  const std::string &in = node.in(0), &out = node.out(0);
  if (values_.count(out) || is_constant(out))
    node.fail(StatusCode::kInvalidModel, "value '%s' is defined twice", out.c_str());
  if (constant_protos_.count(in)) {
    constant_protos_[out] = constant_protos_[in];  // still decoded only if used
  } else if (const Constant* c = find_constant(in)) {
    constants_[out] = *c;
  } else {
    values_[out] = value(node, 0);
  }
}

// A zero Pad is folded into the padding of its one reader, a Conv (zero padding) or an
// AveragePool (padded zeros count in the divisor: count_include_pad). PyTorch exports F.pad and
// some pools this way.
void Importer::import_pad(const Node& node) {
  const bool legacy = opset_ < 11;  // pads and value are attributes before opset 11
  if (legacy)
    node.allow_attributes({"mode", "pads", "value"});
  else
    node.allow_attributes({"mode"});
  const std::string mode = node.get_string("mode", "constant");
  if (mode != "constant") node.unsupported("mode", mode, "constant");
  Value& x = value(node, 0);
  const size_t rank = x.shape.size();
  std::vector<int64_t> p;
  if (legacy) {
    if (!node.attr("pads", onnx::AttributeProto::INTS)) node.fail(StatusCode::kInvalidModel, "attribute 'pads' is missing");
    p = node.get_ints("pads", {});
    if (node.get_float("value", 0.0f) != 0.0f)
      node.unsupported("value", std::to_string(node.get_float("value", 0.0f)), "0");
  } else {
    const Constant* pads = node.in(1).empty() ? nullptr : find_constant(node.in(1));
    if (!pads || pads->type != onnx::TensorProto::INT64 || pads->dims.size() > 1)
      node.fail(StatusCode::kUnsupported, "input 'pads' must be a constant 1-D int64 tensor");
    p = pads->i;
    if (!node.in(2).empty() && float_constant(node, 2, "constant_value").f != std::vector<float>{0.0f})
      node.fail(StatusCode::kUnsupported, "a non-zero or non-scalar constant_value is not supported");
    if (!node.in(3).empty()) {  // opset 18: pads lists [begins, ends] of these axes only
      const Constant* axes = find_constant(node.in(3));
      if (!axes || axes->type != onnx::TensorProto::INT64 || axes->i.size() * 2 != p.size())
        node.fail(StatusCode::kUnsupported, "input 'axes' must be a constant int64 tensor of %zu values",
                  p.size() / 2);
      std::vector<int64_t> full(2 * rank, 0);
      for (size_t k = 0; k < axes->i.size(); ++k) {
        int64_t a = axes->i[k] < 0 ? axes->i[k] + static_cast<int64_t>(rank) : axes->i[k];
        if (a < 0 || a >= static_cast<int64_t>(rank))
          node.fail(StatusCode::kInvalidModel, "axis %lld is out of range for rank %zu",
                    static_cast<long long>(axes->i[k]), rank);
        full[a] = p[k];
        full[a + rank] = p[k + axes->i.size()];
      }
      p = full;
    }
  }
  if (p.size() != 2 * rank)
    node.fail(StatusCode::kInvalidModel, "pads %s do not have %zu values (2 x rank)", ints_string(p).c_str(), 2 * rank);
  if (std::all_of(p.begin(), p.end(), [](int64_t v) { return v == 0; })) return alias(node);
  std::vector<int> through;
  int r = sole_reader(node.out(0), &through);
  const std::string reader = r >= 0 ? g_.node(r).op_type() : "";
  if (rank != 4 || p[0] || p[1] || p[4] || p[5] || *std::min_element(p.begin(), p.end()) < 0 ||
      *std::max_element(p.begin(), p.end()) > 4096 || (reader != "Conv" && reader != "AveragePool"))
    node.fail(StatusCode::kUnsupported,
              "pads %s are not supported (expected H/W padding >= 0 read only by a Conv or AveragePool)",
              ints_string(p).c_str());
  if (values_.count(node.out(0)))
    node.fail(StatusCode::kInvalidModel, "value '%s' is defined twice", node.out(0).c_str());
  Value& v = values_[node.out(0)];
  v.name = node.out(0);
  v.shape = {x.shape[0], x.shape[1], static_cast<int32_t>(x.shape[2] + p[2] + p[6]),
             static_cast<int32_t>(x.shape[3] + p[3] + p[7])};
  v.tensor[static_cast<int>(Layout::kNhwc)] = tensor_in(x, Layout::kNhwc);
  v.pad = {static_cast<int32_t>(p[2]), static_cast<int32_t>(p[3]), static_cast<int32_t>(p[6]),
           static_cast<int32_t>(p[7])};
  add_padding(&v.pad, x.pad);
}

// Transpose of a value. The result reuses a tensor that already holds its bytes when the
// permutation, composed with the layout that tensor is in, is the identity: TF-converted graphs
// wrap every conv in NHWC->NCHW / NCHW->NHWC pairs, and all of those fold away. Otherwise the
// permutation of the tensor at hand runs as one Transpose (a Reshape when it only moves size-1
// dims), keeping a 4-D value in the layout it already had.
void Importer::import_transpose(const Node& node) {
  node.allow_attributes({"perm"});
  Value& x = value(node, 0);
  const int rank = static_cast<int>(x.shape.size());
  std::vector<int64_t> perm(rank);
  for (int i = 0; i < rank; ++i) perm[i] = rank - 1 - i;
  perm = node.get_ints("perm", perm);
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < rank; ++i)
    if (static_cast<int>(sorted.size()) != rank || sorted[i] != i)
      node.unsupported("perm", ints_string(perm), "a permutation of the input's dims");
  if (x.shape[0] < 0 && perm[0] != 0)
    node.unsupported("perm", ints_string(perm), "a permutation that keeps the dynamic batch in dim 0");
  Shape out_shape(rank);
  for (int i = 0; i < rank; ++i) out_shape[i] = x.shape[perm[i]];

  // A layout as the ONNX dim each physical dim holds: kOnnx is the identity, kNhwc {0,2,3,1}.
  static const int32_t kNhwcDims[4] = {0, 2, 3, 1};
  auto onnx_dim = [&](Layout l, int j) { return l == Layout::kNhwc ? kNhwcDims[j] : j; };
  auto phys_of = [&](Layout l, int a) {  // the physical position of ONNX dim a
    for (int j = 0; j < rank; ++j)
      if (onnx_dim(l, j) == a) return j;
    return -1;
  };
  // Physical permutation taking x's tensor in layout `from` to the result in layout `to`.
  auto physical = [&](Layout from, Layout to) {
    std::vector<int32_t> q(rank);
    for (int j = 0; j < rank; ++j) q[j] = phys_of(from, static_cast<int>(perm[onnx_dim(to, j)]));
    return q;
  };
  auto identity = [](const std::vector<int32_t>& q) {
    for (size_t j = 0; j < q.size(); ++j)
      if (q[j] != static_cast<int32_t>(j)) return false;
    return true;
  };
  std::vector<Layout> froms = {Layout::kOnnx}, tos = {Layout::kOnnx};
  if (rank == 4) {
    froms = {Layout::kNhwc, Layout::kOnnx};
    tos = {Layout::kNhwc, Layout::kOnnx};
  }
  for (Layout from : froms) {
    if (x.tensor[static_cast<int>(from)] < 0) continue;
    for (Layout to : tos)
      if (identity(physical(from, to))) {
        define(node.out(0), out_shape, to, x.tensor[static_cast<int>(from)]);
        return;
      }
  }
  const Layout from = primary_layout(x) == Layout::kNhwc ? Layout::kNhwc : Layout::kOnnx;
  const Layout to = rank == 4 ? from : Layout::kOnnx;
  const int32_t src = tensor_in(x, from);
  const std::vector<int32_t> q = physical(from, to);
  const Shape src_shape = internal_shape(x.shape, from), dst_shape = internal_shape(out_shape, to);
  std::vector<int32_t> moved;  // the non-1 physical dims in their new order
  for (int32_t j : q)
    if (src_shape[j] != 1) moved.push_back(j);
  if (std::is_sorted(moved.begin(), moved.end())) {
    define(node.out(0), out_shape, to, emit_reshape(node.label, src, src_shape, dst_shape, node.out(0)));
    return;
  }
  Operator op;
  op.mutable_perm() = q;
  int32_t t = add_activation(node.out(0), dst_shape);
  emit(OpType::kTranspose, node.label, {src}, t, op);
  define(node.out(0), out_shape, to, t);
}

// ReduceMean over the spatial dims of a 4-D value is a GlobalAveragePool: axes {2,3} of an NCHW
// value, or axes {1,2} of a value TF-converted graphs keep in NHWC. keepdims=0 drops them with a
// Reshape (free: the pooled bytes are the same in either layout).
void Importer::import_reduce_mean(const Node& node) {
  node.allow_attributes(opset_ >= 18 ? std::initializer_list<const char*>{"keepdims", "noop_with_empty_axes"}
                                     : std::initializer_list<const char*>{"axes", "keepdims"});
  Value& x = value(node, 0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  std::vector<int64_t> axes;
  if (opset_ >= 18) {
    if (!node.in(1).empty()) {
      const Constant* c = find_constant(node.in(1));
      if (!c || c->type != onnx::TensorProto::INT64 || c->dims.size() > 1)
        node.fail(StatusCode::kUnsupported, "input 'axes' must be a constant 1-D int64 tensor");
      axes = c->i;
    }
    if (axes.empty() && node.get_int("noop_with_empty_axes", 0))
      return alias(node);
  } else {
    axes = node.get_ints("axes", {});
  }
  if (axes.empty())
    for (int64_t a = 0; a < rank; ++a) axes.push_back(a);
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank)
      node.fail(StatusCode::kInvalidModel, "axis %lld is out of range for rank %lld", static_cast<long long>(a),
                static_cast<long long>(rank));
    if (a < 0) a += rank;
  }
  std::sort(axes.begin(), axes.end());
  const int64_t keepdims = node.get_int("keepdims", 1);
  if (keepdims != 0 && keepdims != 1) node.unsupported("keepdims", std::to_string(keepdims), "0 or 1");
  if (keepdims == 1 && axes == std::vector<int64_t>{rank - 1} && fuse_layer_norm(node, axes)) return;
  const bool nchw_spatial = rank == 4 && axes == std::vector<int64_t>{2, 3};
  const bool nhwc_spatial = rank == 4 && axes == std::vector<int64_t>{1, 2};
  if (!nchw_spatial && !nhwc_spatial) {
    // Any other run of consecutive axes after the batch: viewed as [P, R, 1, Q] (P: the dims
    // before, R: the reduced ones, Q: those after), it is a GlobalAveragePool over R.
    bool consecutive = !axes.empty() && axes[0] >= 1;
    for (size_t k = 1; consecutive && k < axes.size(); ++k) consecutive = axes[k] == axes[k - 1] + 1;
    const int64_t a0 = axes.empty() ? 0 : axes.front(), a1 = axes.empty() ? 0 : axes.back();
    if (!consecutive)
      node.fail(StatusCode::kUnsupported,
                "axes %s of a %lld-D input are not supported (expected consecutive axes after the batch)",
                ints_string(axes).c_str(), static_cast<long long>(rank));
    // Reshapes whose dim 0 is always inferred (-1): P = N x the dims before, and a model with a
    // static batch still runs at others (calibration batches).
    const bool dynamic = x.shape[0] < 0;
    auto view_op = [&](const std::string& label, int32_t in, Shape shape, const std::string& name) {
      Operator op;
      op.mutable_new_shape() = shape;
      op.mutable_new_shape()[0] = -1;
      if (dynamic) shape[0] = -1;
      int32_t t = add_activation(name, shape);
      emit(OpType::kReshape, label, {in}, t, op);
      return t;
    };
    Shape out;
    for (int64_t d = 0; d < rank; ++d)
      if (d < a0 || d > a1) out.push_back(x.shape[d]);
      else if (keepdims) out.push_back(1);
    if (out.empty()) node.fail(StatusCode::kUnsupported, "a scalar result is not supported");
    // A 4-D value held NHWC whose reduced axes are consecutive there too (the channels, say)
    // reduces in place: no layout change before or after.
    Layout layout = Layout::kOnnx;
    Shape phys = x.shape;
    int64_t p0 = a0, p1 = a1;
    if (rank == 4 && x.tensor[1] >= 0) {
      std::vector<int64_t> pa;
      for (int64_t a : axes)
        for (int j = 0; j < 4; ++j)
          if (kNhwcOnnx[j] == a) pa.push_back(j);
      std::sort(pa.begin(), pa.end());
      bool ok = pa.back() - pa.front() + 1 == static_cast<int64_t>(pa.size());
      Shape kept;  // the physical dims that remain without keepdims, in their physical order
      for (int j = 0; j < 4; ++j)
        if (std::find(pa.begin(), pa.end(), j) == pa.end()) kept.push_back(x.shape[kNhwcOnnx[j]]);
      if (ok && (keepdims || kept == out)) {
        layout = Layout::kNhwc;
        phys = nchw_to_nhwc(x.shape);
        p0 = pa.front();
        p1 = pa.back();
      }
    }
    const int32_t p = dynamic ? -1 : static_cast<int32_t>(product(phys, 0, p0));
    const Shape view = {p, static_cast<int32_t>(product(phys, p0, p1 + 1)), 1, static_cast<int32_t>(product(phys, p1 + 1))};
    const int32_t in4 = view_op(node.label + ":view", tensor_in(x, layout), view, node.out(0) + ":view");
    const Shape pooled_view = {p, 1, 1, view[3]};
    const int32_t gap = add_activation(node.out(0) + ":pooled", pooled_view);
    emit(OpType::kGlobalAveragePool, node.label, {in4}, gap);
    if (layout == Layout::kNhwc && keepdims) {
      define(node.out(0), out, Layout::kNhwc, view_op(node.label + ":out", gap, nchw_to_nhwc(out), node.out(0)));
      return;
    }
    define(node.out(0), out, Layout::kOnnx, view_op(node.label + ":out", gap, out, node.out(0)));
    return;
  }
  // The tensor to pool: physically NHWC with H, W in the middle.
  int32_t src;
  Shape pooled;  // ONNX shape of the keepdims=1 result
  Layout layout;
  if (nchw_spatial) {
    src = tensor_in(x, Layout::kNhwc);
    pooled = {x.shape[0], x.shape[1], 1, 1};
    layout = Layout::kNhwc;
  } else {
    src = tensor_in(x, Layout::kOnnx);
    pooled = {x.shape[0], 1, 1, x.shape[3]};
    layout = Layout::kOnnx;
  }
  const Shape phys = internal_shape(pooled, layout);
  const std::string pooled_name = keepdims ? node.out(0) : node.out(0) + ":keepdims";
  int32_t t = add_activation(pooled_name, phys);
  emit(OpType::kGlobalAveragePool, node.label, {src}, t);
  if (keepdims) {
    define(node.out(0), pooled, layout, t);
    return;
  }
  Shape out = {x.shape[0], nchw_spatial ? x.shape[1] : x.shape[3]};
  define(node.out(0), out, Layout::kOnnx, emit_reshape(node.label + ":squeeze", t, phys, out, node.out(0)));
}

// LayerNorm as exporters before opset 17 write it: mean = ReduceMean(x, -1); d = x - mean;
// var = ReduceMean(d^2, -1); y = d / Sqrt(var + eps) [* gamma] [+ beta], each intermediate read
// only inside the pattern. One LayerNorm instead.
bool Importer::fuse_layer_norm(const Node& mean, const std::vector<int64_t>& axes) {
  const std::string& x = mean.in(0);
  const int64_t rank = static_cast<int64_t>(values_.at(x).shape.size());
  auto readers = [&](const std::string& v) -> std::vector<int> {
    auto it = readers_.find(v);
    return it == readers_.end() ? std::vector<int>{} : it->second;
  };
  auto last_axis = [&](const onnx::NodeProto& n) {  // a ReduceMean over the last axis, keepdims 1
    Node rn(n);
    std::vector<int64_t> a;
    if (opset_ >= 18) {
      const Constant* c = rn.in(1).empty() ? nullptr : find_constant(rn.in(1));
      if (!c || c->type != onnx::TensorProto::INT64) return false;
      a = c->i;
    } else {
      const auto* at = rn.attr("axes", onnx::AttributeProto::INTS);
      if (!at) return false;
      a.assign(at->ints().begin(), at->ints().end());
    }
    return a.size() == 1 && (a[0] == rank - 1 || a[0] == -1) && rn.get_int("keepdims", 1) == 1;
  };
  (void)axes;
  const int sub = only_reader(mean.out(0), "Sub");
  if (sub < 0 || g_.node(sub).input(0) != x || g_.node(sub).input(1) != mean.out(0)) return false;
  const std::string d = g_.node(sub).output(0);
  const std::vector<int> dr = readers(d);
  if (dr.size() != 2 || dr[0] < 0 || dr[1] < 0) return false;
  int pow = -1, div = -1;
  for (int r : dr) {
    if (g_.node(r).op_type() == "Pow") pow = r;
    if (g_.node(r).op_type() == "Div") div = r;
  }
  float v = 0;
  if (pow < 0 || div < 0 || done_[pow] || done_[div] || g_.node(pow).input(0) != d ||
      !scalar_constant(g_.node(pow).input(1), &v) || v != 2.0f || g_.node(div).input(0) != d)
    return false;
  const int var = only_reader(g_.node(pow).output(0), "ReduceMean");
  if (var < 0 || !last_axis(g_.node(var))) return false;
  const int add = only_reader(g_.node(var).output(0), "Add");
  float eps = 0;
  if (add < 0 || g_.node(add).input(0) != g_.node(var).output(0) || !scalar_constant(g_.node(add).input(1), &eps) ||
      !(eps >= 0.0f) || !std::isfinite(eps))
    return false;
  const int sqrt = only_reader(g_.node(add).output(0), "Sqrt");
  if (sqrt < 0 || g_.node(div).input(1) != g_.node(sqrt).output(0)) return false;
  std::vector<int> chain = {sub, pow, div, var, add, sqrt};
  // Optional affine part: Mul by gamma [C], then Add beta [C].
  Value& xv = values_.at(x);
  const int32_t c = xv.shape.back();
  std::string out = g_.node(div).output(0), label = g_.node(div).name();
  const Constant* gamma = nullptr;
  const Constant* beta = nullptr;
  auto per_channel = [&](const onnx::NodeProto& n, const std::string& from) -> const Constant* {
    if (n.input_size() != 2) return nullptr;
    const Constant* k = find_constant(n.input(0) == from ? n.input(1) : n.input(0));
    return k && k->type == onnx::TensorProto::FLOAT && k->size() == c && k->dims.size() == 1 ? k : nullptr;
  };
  if (const int mul = only_reader(out, "Mul"); mul >= 0 && (gamma = per_channel(g_.node(mul), out))) {
    chain.push_back(mul);
    out = g_.node(mul).output(0);
    label = g_.node(mul).name();
    if (const int b = only_reader(out, "Add"); b >= 0 && (beta = per_channel(g_.node(b), out))) {
      chain.push_back(b);
      out = g_.node(b).output(0);
      label = g_.node(b).name();
    }
  }
  for (int n : chain) done_[n] = true;
  Operator op;
  op.epsilon = eps;
  std::vector<int32_t> inputs = {tensor_in(xv, Layout::kOnnx)};
  const std::vector<float> ones(c, 1.0f);
  inputs.push_back(gamma ? add_constant(gamma->name, {c}, gamma->f) : add_constant(mean.label + ":scale", {c}, ones));
  if (beta) inputs.push_back(add_constant(beta->name, {c}, beta->f));
  int32_t t = add_activation(out, xv.shape);
  emit(OpType::kLayerNorm, label.empty() ? out : label, inputs, t, op);
  define(out, xv.shape, Layout::kOnnx, t);
  return true;
}

std::vector<int64_t> Importer::squeeze_axes(const Node& node, const Shape& in) {
  const bool unsqueeze = node.op() == "Unsqueeze";
  std::vector<int64_t> axes;
  bool given = false;
  if (opset_ >= 13) {
    node.allow_attributes({});
    if (!node.in(1).empty()) {
      const Constant* c = find_constant(node.in(1));
      if (!c || c->type != onnx::TensorProto::INT64 || c->dims.size() > 1)
        node.fail(StatusCode::kUnsupported, "input 'axes' must be a constant int64 tensor (computed axes are not supported)");
      axes = c->i;
      given = true;
    }
  } else {
    node.allow_attributes({"axes"});
    given = node.attr("axes", onnx::AttributeProto::INTS) != nullptr;
    axes = node.get_ints("axes", {});
  }
  if (unsqueeze && !given) node.fail(StatusCode::kInvalidModel, "'axes' is missing");
  const int64_t out_rank = static_cast<int64_t>(in.size()) + (unsqueeze ? static_cast<int64_t>(axes.size()) : 0);
  if (!given)  // Squeeze without axes: every dim of size 1
    for (size_t d = 0; d < in.size(); ++d)
      if (in[d] == 1) axes.push_back(static_cast<int64_t>(d));
  for (int64_t& a : axes) {
    if (a < -out_rank || a >= out_rank)
      node.fail(StatusCode::kInvalidModel, "axis %lld is out of range", static_cast<long long>(a));
    if (a < 0) a += out_rank;
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    node.fail(StatusCode::kInvalidModel, "axes %s repeat an axis", ints_string(axes).c_str());
  return axes;
}

Shape Importer::squeezed_shape(const Node& node, const Shape& in) {
  const std::vector<int64_t> axes = squeeze_axes(node, in);
  Shape out;
  if (node.op() == "Unsqueeze") {
    const size_t rank = in.size() + axes.size();
    if (rank > static_cast<size_t>(kMaxRank))
      node.fail(StatusCode::kUnsupported, "result rank %zu is not supported (at most %d)", rank, kMaxRank);
    for (size_t d = 0, k = 0, j = 0; d < rank; ++d)
      if (k < axes.size() && axes[k] == static_cast<int64_t>(d)) {
        out.push_back(1);
        ++k;
      } else {
        out.push_back(in[j++]);
      }
  } else {
    for (size_t d = 0, k = 0; d < in.size(); ++d)
      if (k < axes.size() && axes[k] == static_cast<int64_t>(d)) {
        if (in[d] != 1)
          node.fail(StatusCode::kInvalidModel, "dim %zu of %s has size %d, cannot be squeezed", d,
                    shape_string(in).c_str(), in[d]);
        ++k;
      } else {
        out.push_back(in[d]);
      }
  }
  return out;
}

// Squeeze / Unsqueeze of a value only adds or drops size-1 dims: a Reshape, free when the bytes
// do not move (import_flatten_to picks the layout that holds them).
void Importer::import_squeeze(const Node& node) {
  Value& x = value(node, 0);
  Shape out = squeezed_shape(node, x.shape);
  if (x.shape[0] < 0 && (out.empty() || out[0] >= 0))
    node.fail(StatusCode::kUnsupported, "moves the dynamic batch out of dim 0 (export with a fixed batch)");
  if (out.empty()) node.fail(StatusCode::kUnsupported, "a scalar result is not supported");
  import_flatten_to(node, x, out);
}

// Shape of a value is a constant (shapes are static after import; a dynamic batch is kBatchDim).
void Importer::import_shape(const Node& node) {
  node.allow_attributes({"start", "end"});
  Value& x = value(node, 0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t start = node.get_int("start", 0), end = node.get_int("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  Constant c;
  c.name = node.out(0);
  c.type = onnx::TensorProto::INT64;
  for (int64_t d = start; d < end; ++d) c.i.push_back(x.shape[d] < 0 ? kBatchDim : x.shape[d]);
  c.dims = {static_cast<int32_t>(c.i.size())};
  if (values_.count(c.name) || is_constant(c.name))
    node.fail(StatusCode::kInvalidModel, "value '%s' is defined twice", c.name.c_str());
  constants_[c.name] = std::move(c);
}

// Elementwise functions of one input: one Unary op, in whatever layout the value already has.
// Mul(x, HardSigmoid(x)) with HardSigmoid's alpha 1/6 and beta 1/2 — how exporters before opset 14
// write HardSwish — becomes one HardSwish.
void Importer::import_unary(const Node& node) {
  struct Kind {
    const char* op;
    UnaryKind kind;
  };
  static const Kind kKinds[] = {
      {"Sigmoid", UnaryKind::kSigmoid}, {"Tanh", UnaryKind::kTanh},         {"HardSigmoid", UnaryKind::kHardSigmoid},
      {"HardSwish", UnaryKind::kHardSwish}, {"LeakyRelu", UnaryKind::kLeakyRelu}, {"Elu", UnaryKind::kElu},
      {"Exp", UnaryKind::kExp},         {"Log", UnaryKind::kLog},           {"Sqrt", UnaryKind::kSqrt},
      {"Abs", UnaryKind::kAbs},         {"Neg", UnaryKind::kNeg},           {"Erf", UnaryKind::kErf},
      {"Reciprocal", UnaryKind::kReciprocal}, {"Softplus", UnaryKind::kSoftplus}, {"Gelu", UnaryKind::kGelu},
  };
  UnaryOptions f;
  bool found = false;
  for (const Kind& k : kKinds)
    if (node.op() == k.op) f.kind = k.kind, found = true;
  if (!found) node.fail(StatusCode::kInternal, "no unary function for this op");
  switch (f.kind) {
    case UnaryKind::kHardSigmoid:
      node.allow_attributes({"alpha", "beta"});
      f.alpha = node.get_float("alpha", 0.2f);
      f.beta = node.get_float("beta", 0.5f);
      break;
    case UnaryKind::kLeakyRelu:
      node.allow_attributes({"alpha"});
      f.alpha = node.get_float("alpha", 0.01f);
      break;
    case UnaryKind::kElu:
      node.allow_attributes({"alpha"});
      f.alpha = node.get_float("alpha", 1.0f);
      break;
    case UnaryKind::kGelu: {
      node.allow_attributes({"approximate"});
      const std::string a = node.get_string("approximate", "none");
      if (a == "tanh")
        f.kind = UnaryKind::kGeluTanh;
      else if (a != "none")
        node.unsupported("approximate", a, "none or tanh");
      break;
    }
    default: node.allow_attributes({}); break;
  }
  if (!std::isfinite(f.alpha) || !std::isfinite(f.beta))
    node.fail(StatusCode::kInvalidModel, "alpha %g / beta %g must be finite", f.alpha, f.beta);
  std::string out = node.out(0);
  std::string label = node.label;
  if (f.kind == UnaryKind::kHardSigmoid && std::fabs(f.alpha - 1.0f / 6.0f) < 1e-6f && f.beta == 0.5f) {
    std::vector<int> through;
    const int r = sole_reader(out, &through);  // input 0 of the Mul...
    int other = -1;
    if (r < 0) {  // ... or input 1: Mul(x, HardSigmoid(x))
      auto it = readers_.find(out);
      if (it != readers_.end() && it->second.size() == 1 && it->second[0] >= 0) other = it->second[0];
    }
    const int m = r >= 0 ? r : other;
    if (m >= 0 && !done_[m] && g_.node(m).op_type() == "Mul" && g_.node(m).input_size() == 2 &&
        is_default_domain(g_.node(m).domain()) && g_.node(m).attribute_size() == 0) {
      const onnx::NodeProto& mul = g_.node(m);
      const std::string& partner = mul.input(0) == out ? mul.input(1) : mul.input(0);
      if (partner == node.in(0) && (mul.input(0) == out) != (mul.input(1) == out)) {
        f = UnaryOptions{UnaryKind::kHardSwish, 0.0f, 0.0f};
        mark_done(through, m);
        out = mul.output(0);
        label = mul.name().empty() ? mul.output(0) : mul.name();
      }
    }
  }
  emit_unary(label, value(node, 0), f, out);
}

void Importer::emit_unary(const std::string& label, Value& x, const UnaryOptions& f, const std::string& out) {
  const Layout layout = x.tensor[1] >= 0 ? Layout::kNhwc : Layout::kOnnx;
  Operator op;
  op.mutable_unary() = f;
  int32_t t = add_activation(out, internal_shape(x.shape, layout));
  emit(OpType::kUnary, label, {tensor_in(x, layout)}, t, op);
  define(out, x.shape, layout, t);
}

bool Importer::scalar_constant(const std::string& name, float* value) {
  const Constant* c = find_constant(name);
  if (!c || c->type != onnx::TensorProto::FLOAT || c->size() != 1) return false;
  *value = c->f[0];
  return true;
}

int Importer::only_reader(const std::string& value, const char* op) {
  auto it = readers_.find(value);
  if (it == readers_.end() || it->second.size() != 1 || it->second[0] < 0) return -1;
  const int r = it->second[0];
  const onnx::NodeProto& n = g_.node(r);
  if (done_[r] || !is_default_domain(n.domain()) || (op && n.op_type() != op)) return -1;
  return r;
}

// How exporters before opset 20 write GELU: x * (1 + erf(x / sqrt(2))) * 0.5, as
// Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x, .) -> Mul(0.5), each read only by the next. One Unary
// Gelu instead: exact in float, and a single int8 lookup table when quantized.
bool Importer::fuse_gelu(const Node& div) {
  auto scalar = [&](const std::string& name, float want) {
    float v;
    return scalar_constant(name, &v) && std::fabs(v - want) <= 1e-5f * want;
  };
  auto next = [&](const std::string& out, const char* op, std::vector<int>* through) -> int {
    const int r = only_reader(out, op);
    if (r < 0 || g_.node(r).attribute_size() != 0) return -1;
    through->push_back(r);
    return r;
  };
  if (div.proto.input_size() != 2 || !scalar(div.in(1), 1.41421356f) || !values_.count(div.in(0))) return false;
  const std::string& x = div.in(0);
  std::vector<int> chain;
  const int erf = next(div.out(0), "Erf", &chain);
  if (erf < 0) return false;
  const int add = next(g_.node(erf).output(0), "Add", &chain);
  if (add < 0) return false;
  const onnx::NodeProto& a = g_.node(add);
  if (a.input_size() != 2 || !scalar(a.input(0) == g_.node(erf).output(0) ? a.input(1) : a.input(0), 1.0f)) return false;
  const int mul = next(a.output(0), "Mul", &chain);
  if (mul < 0) return false;
  const onnx::NodeProto& m = g_.node(mul);
  if (m.input_size() != 2 || (m.input(0) == a.output(0) ? m.input(1) : m.input(0)) != x) return false;
  const int half = next(m.output(0), "Mul", &chain);
  if (half < 0) return false;
  const onnx::NodeProto& h = g_.node(half);
  if (h.input_size() != 2 || !scalar(h.input(0) == m.output(0) ? h.input(1) : h.input(0), 0.5f)) return false;
  for (int n : chain) done_[n] = true;
  emit_unary(h.name().empty() ? h.output(0) : h.name(), values_[x], UnaryOptions{UnaryKind::kGelu, 0.0f, 0.0f},
             h.output(0));
  return true;
}

// HardSwish as x * Clip(x + 3, 0, 6) / 6 (Add -> Clip -> Mul(x, .) -> Div(6) or Mul(1/6), each
// read only by the next), as some exporters write it: one Unary HardSwish.
bool Importer::fuse_hardswish(const Node& add) {
  auto scalar = [&](const std::string& name, float want) {
    float v;
    return scalar_constant(name, &v) && std::fabs(v - want) <= 1e-6f * std::fabs(want);
  };
  auto next = [&](const std::string& out, std::vector<int>* chain) -> int {
    const int r = only_reader(out, nullptr);
    if (r >= 0) chain->push_back(r);
    return r;
  };
  if (add.proto.input_size() != 2) return false;
  const int xi = scalar(add.in(1), 3.0f) ? 0 : scalar(add.in(0), 3.0f) ? 1 : -1;
  if (xi < 0 || !values_.count(add.in(xi))) return false;
  const std::string& x = add.in(xi);
  std::vector<int> chain;
  const int clip = next(add.out(0), &chain);
  if (clip < 0 || g_.node(clip).op_type() != "Clip") return false;
  Node clip_node(g_.node(clip));
  FusedActivation bounds;
  try {
    bounds = read_activation(clip_node);
  } catch (const ImportError&) {
    return false;  // a Clip this pattern is not: left for its own import to report
  }
  if (bounds.min != 0.0f || bounds.max != 6.0f) return false;
  const int mul = next(g_.node(clip).output(0), &chain);
  if (mul < 0 || g_.node(mul).op_type() != "Mul" || g_.node(mul).input_size() != 2) return false;
  const onnx::NodeProto& m = g_.node(mul);
  if ((m.input(0) == g_.node(clip).output(0) ? m.input(1) : m.input(0)) != x) return false;
  const int scale = next(m.output(0), &chain);
  if (scale < 0 || g_.node(scale).input_size() != 2) return false;
  const onnx::NodeProto& s = g_.node(scale);
  const bool div = s.op_type() == "Div" && s.input(0) == m.output(0) && scalar(s.input(1), 6.0f);
  const bool mul6 = s.op_type() == "Mul" && scalar(s.input(0) == m.output(0) ? s.input(1) : s.input(0), 1.0f / 6.0f);
  if (!div && !mul6) return false;
  for (int n : chain) done_[n] = true;
  emit_unary(s.name().empty() ? s.output(0) : s.name(), values_[x], UnaryOptions{UnaryKind::kHardSwish, 0.0f, 0.0f},
             s.output(0));
  return true;
}

// Pow with a constant scalar exponent: Sqrt for 1/2, Reciprocal for -1, the identity for 1,
// Unary Pow otherwise.
void Importer::import_pow(const Node& node) {
  node.allow_attributes({});
  const Constant* e = find_constant(node.in(1));
  if (!e || e->size() != 1 || (e->type != onnx::TensorProto::FLOAT && e->type != onnx::TensorProto::INT64))
    node.fail(StatusCode::kUnsupported, "exponent '%s' must be a constant scalar", node.in(1).c_str());
  const float p = e->type == onnx::TensorProto::FLOAT ? e->f[0] : static_cast<float>(e->i[0]);
  if (!std::isfinite(p)) node.fail(StatusCode::kUnsupported, "exponent %g must be finite", p);
  if (p == 1.0f) return alias(node);
  UnaryOptions f{UnaryKind::kPow, p, 0.0f};
  if (p == 0.5f) f = UnaryOptions{UnaryKind::kSqrt, 0.0f, 0.0f};
  if (p == -1.0f) f = UnaryOptions{UnaryKind::kReciprocal, 0.0f, 0.0f};
  emit_unary(node.label, value(node, 0), f, node.out(0));
}


// Slice of a value with constant starts/ends/axes/steps (attributes before opset 10), in the
// layout the value already has; positive steps only.
void Importer::import_slice(const Node& node) {
  Value& x = value(node, 0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (opset_ < 10) {
    node.allow_attributes({"starts", "ends", "axes"});
    starts = node.get_ints("starts", {});
    ends = node.get_ints("ends", {});
    axes = node.get_ints("axes", {});
  } else {
    node.allow_attributes({});
    auto ints = [&](int i, const char* role, std::vector<int64_t>* out) {
      if (node.in(i).empty()) return;
      const Constant* c = find_constant(node.in(i));
      if (!c || c->type != onnx::TensorProto::INT64 || c->dims.size() != 1)
        node.fail(StatusCode::kUnsupported, "input '%s' must be a constant 1-D int64 tensor (computed %s are not "
                  "supported)", role, role);
      *out = c->i;
    };
    ints(1, "starts", &starts);
    ints(2, "ends", &ends);
    ints(3, "axes", &axes);
    ints(4, "steps", &steps);
  }
  if (axes.empty())
    for (size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (starts.empty() || ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    node.fail(StatusCode::kInvalidModel, "starts, ends, axes and steps differ in length or are empty");
  std::vector<int64_t> begin(rank, 0), end(rank, kSliceToEnd), step(rank, 1);
  std::vector<bool> seen(rank, false);
  Shape out = x.shape;
  for (size_t k = 0; k < starts.size(); ++k) {
    int64_t a = axes[k] < 0 ? axes[k] + rank : axes[k];
    if (a < 0 || a >= rank || seen[a]) node.fail(StatusCode::kInvalidModel, "axis %lld is invalid or repeated",
                                                 static_cast<long long>(axes[k]));
    seen[a] = true;
    if (steps[k] < 1)
      node.fail(StatusCode::kUnsupported, "step %lld on axis %lld is not supported (expected >= 1)",
                static_cast<long long>(steps[k]), static_cast<long long>(a));
    const int64_t d = x.shape[a];
    if (d < 0) {  // the dynamic batch: only the whole of it
      if (starts[k] != 0 || ends[k] < std::numeric_limits<int32_t>::max())
        node.fail(StatusCode::kUnsupported, "slices the dynamic batch (axis 0); export with a fixed batch");
      continue;
    }
    int64_t s = starts[k] < 0 ? starts[k] + d : starts[k], e = ends[k] < 0 ? ends[k] + d : ends[k];
    s = std::clamp<int64_t>(s, 0, d);
    e = std::clamp<int64_t>(e, 0, d);
    if (e <= s) node.fail(StatusCode::kUnsupported, "an empty slice of axis %lld is not supported", static_cast<long long>(a));
    begin[a] = s;
    end[a] = e;
    step[a] = steps[k];
    out[a] = static_cast<int32_t>((e - s + steps[k] - 1) / steps[k]);
  }
  emit_slice(node.label, x, begin, end, step, out, node.out(0));
}

void Importer::emit_slice(const std::string& label, Value& x, const std::vector<int64_t>& begin,
                          const std::vector<int64_t>& end, const std::vector<int64_t>& step, const Shape& out_shape,
                          const std::string& out) {
  if (out_shape == x.shape) {  // the whole value
    if (values_.count(out) || is_constant(out)) fail(StatusCode::kInvalidModel, "value '%s' is defined twice", out.c_str());
    values_[out] = x;
    return;
  }
  const int rank = static_cast<int>(x.shape.size());
  const Layout layout = rank == 4 && x.tensor[1] >= 0 ? Layout::kNhwc : Layout::kOnnx;
  Operator op;
  for (int j = 0; j < rank; ++j) {
    const int a = layout == Layout::kNhwc ? kNhwcOnnx[j] : j;
    op.mutable_slice().begin.push_back(static_cast<int32_t>(begin[a]));
    op.mutable_slice().end.push_back(end[a] >= kSliceToEnd ? kSliceToEnd : static_cast<int32_t>(end[a]));
    op.mutable_slice().step.push_back(static_cast<int32_t>(step[a]));
  }
  int32_t t = add_activation(out, internal_shape(out_shape, layout));
  emit(OpType::kSlice, label, {tensor_in(x, layout)}, t, op);
  define(out, out_shape, layout, t);
}

// Split along one axis: one Slice per output that something reads.
void Importer::import_split(const Node& node) {
  Value& x = value(node, 0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  std::vector<int64_t> sizes;
  if (opset_ < 13) {
    node.allow_attributes({"axis", "split"});
    sizes = node.get_ints("split", {});
  } else {
    node.allow_attributes(opset_ >= 18 ? std::initializer_list<const char*>{"axis", "num_outputs"}
                                       : std::initializer_list<const char*>{"axis"});
    if (!node.in(1).empty()) {
      const Constant* c = find_constant(node.in(1));
      if (!c || c->type != onnx::TensorProto::INT64 || c->dims.size() != 1)
        node.fail(StatusCode::kUnsupported, "input 'split' must be a constant 1-D int64 tensor");
      sizes = c->i;
    }
  }
  int64_t axis = node.get_int("axis", 0);
  if (axis < -rank || axis >= rank) node.unsupported("axis", std::to_string(axis), "a value in [-rank, rank)");
  if (axis < 0) axis += rank;
  const int64_t d = x.shape[axis];
  if (d < 0) node.fail(StatusCode::kUnsupported, "splits the dynamic batch (axis 0)");
  const int n = node.proto.output_size();
  if (n < 1) node.fail(StatusCode::kInvalidModel, "no outputs");
  if (sizes.empty()) {  // equal parts; opset 18's num_outputs makes the last one smaller when uneven
    const int64_t part = opset_ >= 18 ? (d + n - 1) / n : d / n;
    if (opset_ < 18 && d % n != 0)
      node.fail(StatusCode::kInvalidModel, "dim %lld of size %lld does not split into %d equal parts",
                static_cast<long long>(axis), static_cast<long long>(d), n);
    for (int k = 0; k < n; ++k) sizes.push_back(std::min(part, d - part * k));
  }
  if (static_cast<int>(sizes.size()) != n)
    node.fail(StatusCode::kInvalidModel, "%zu split sizes for %d outputs", sizes.size(), n);
  int64_t offset = 0;
  for (int k = 0; k < n; ++k) {
    if (sizes[k] < 1) node.fail(StatusCode::kUnsupported, "split size %lld is not supported (expected >= 1)",
                                static_cast<long long>(sizes[k]));
    std::vector<int64_t> begin(rank, 0), end(rank, kSliceToEnd), step(rank, 1);
    begin[axis] = offset;
    end[axis] = offset + sizes[k];
    offset += sizes[k];
    if (offset > d)
      node.fail(StatusCode::kInvalidModel, "split sizes %s exceed dim %lld (%lld)", ints_string(sizes).c_str(),
                static_cast<long long>(axis), static_cast<long long>(d));
    if (node.out(k).empty() || !readers_.count(node.out(k))) continue;  // nothing reads it
    Shape out = x.shape;
    out[axis] = static_cast<int32_t>(sizes[k]);
    emit_slice(node.label + ":" + std::to_string(k), x, begin, end, step, out, node.out(k));
  }
  if (offset != d)
    node.fail(StatusCode::kInvalidModel, "split sizes %s do not add up to dim %lld (%lld)", ints_string(sizes).c_str(),
              static_cast<long long>(axis), static_cast<long long>(d));
}

// Resize (opset 10+) and Upsample (7-9): nearest or (bi)linear over H and W of a 4-D value.
void Importer::import_resize(const Node& node) {
  Value& x = value(node, 0);
  if (x.shape.size() != 4)
    node.fail(StatusCode::kUnsupported, "input has rank %zu; only 4-D (N,C,H,W) resizing is supported",
              x.shape.size());
  const bool upsample = node.op() == "Upsample";
  const bool legacy = upsample || opset_ < 11;  // asymmetric coordinates, nearest rounds down
  if (upsample)
    node.allow_attributes(opset_ < 9 ? std::initializer_list<const char*>{"mode", "scales"}
                                     : std::initializer_list<const char*>{"mode"});
  else if (opset_ < 11)
    node.allow_attributes({"mode"});
  else
    node.allow_attributes({"mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
                           "exclude_outside", "extrapolation_value", "antialias", "axes",
                           "keep_aspect_ratio_policy"});
  ResizeOptions r;
  const std::string mode = node.get_string("mode", "nearest");
  if (mode == "nearest")
    r.mode = ResizeMode::kNearest;
  else if (mode == "linear" || mode == "bilinear")
    r.mode = ResizeMode::kLinear;
  else
    node.unsupported("mode", mode, "nearest or linear");
  if (legacy) {
    r.coord = ResizeCoord::kAsymmetric;
    r.nearest = ResizeNearest::kFloor;
  } else {
    const std::string coord = node.get_string("coordinate_transformation_mode", "half_pixel");
    if (coord == "half_pixel") r.coord = ResizeCoord::kHalfPixel;
    else if (coord == "pytorch_half_pixel") r.coord = ResizeCoord::kPytorchHalfPixel;
    else if (coord == "align_corners") r.coord = ResizeCoord::kAlignCorners;
    else if (coord == "asymmetric") r.coord = ResizeCoord::kAsymmetric;
    else node.unsupported("coordinate_transformation_mode", coord, "half_pixel, pytorch_half_pixel, align_corners or asymmetric");
    const std::string nm = node.get_string("nearest_mode", "round_prefer_floor");
    if (nm == "round_prefer_floor") r.nearest = ResizeNearest::kRoundPreferFloor;
    else if (nm == "round_prefer_ceil") r.nearest = ResizeNearest::kRoundPreferCeil;
    else if (nm == "floor") r.nearest = ResizeNearest::kFloor;
    else if (nm == "ceil") r.nearest = ResizeNearest::kCeil;
    else node.unsupported("nearest_mode", nm, "round_prefer_floor, round_prefer_ceil, floor or ceil");
    if (node.get_int("exclude_outside", 0) != 0) node.unsupported("exclude_outside", "1", "0");
    if (node.get_int("antialias", 0) != 0) node.unsupported("antialias", "1", "0");
    if (node.get_string("keep_aspect_ratio_policy", "stretch") != "stretch")
      node.unsupported("keep_aspect_ratio_policy", node.get_string("keep_aspect_ratio_policy", ""), "stretch");
  }
  // Scales and sizes per dim (N, C, H, W); axes (opset 18) says which dims the lists cover.
  std::vector<int64_t> axes = node.get_ints("axes", {0, 1, 2, 3});
  for (int64_t& a : axes) {
    if (a < -4 || a >= 4) node.fail(StatusCode::kInvalidModel, "axis %lld is out of range", static_cast<long long>(a));
    if (a < 0) a += 4;
  }
  std::vector<float> scales;
  std::vector<int64_t> sizes;
  if (upsample && opset_ < 9) {
    const auto* a = node.attr("scales", onnx::AttributeProto::FLOATS);
    if (!a) node.fail(StatusCode::kInvalidModel, "attribute 'scales' is missing");
    scales.assign(a->floats().begin(), a->floats().end());
  } else {
    const int scales_input = upsample || opset_ < 11 ? 1 : 2;
    if (!node.in(scales_input).empty()) {
      const Constant* c = find_constant(node.in(scales_input));
      if (!c || c->type != onnx::TensorProto::FLOAT)
        node.fail(StatusCode::kUnsupported, "input 'scales' must be a float constant");
      scales = c->f;
    }
    if (!upsample && opset_ >= 11 && !node.in(3).empty()) {
      const Constant* c = find_constant(node.in(3));
      if (!c || c->type != onnx::TensorProto::INT64)
        node.fail(StatusCode::kUnsupported, "input 'sizes' must be an int64 constant (computed sizes are not supported)");
      sizes = c->i;
    }
  }
  if (scales.empty() == sizes.empty())
    node.fail(StatusCode::kInvalidModel, "exactly one of scales and sizes must be given");
  float full_scale[4] = {1, 1, 1, 1};
  int64_t full_size[4] = {x.shape[0], x.shape[1], x.shape[2], x.shape[3]};
  const size_t given = scales.empty() ? sizes.size() : scales.size();
  if (given != axes.size()) node.fail(StatusCode::kInvalidModel, "%zu scales/sizes for %zu axes", given, axes.size());
  for (size_t k = 0; k < axes.size(); ++k) {
    const int64_t a = axes[k];
    if (!scales.empty()) {
      full_scale[a] = scales[k];
      if (!(scales[k] > 0.0f) || !std::isfinite(scales[k]))
        node.fail(StatusCode::kInvalidModel, "scale %g must be positive", scales[k]);
      full_size[a] = static_cast<int64_t>(std::floor(x.shape[a] * static_cast<double>(scales[k])));
    } else {
      full_size[a] = sizes[k];
      full_scale[a] = x.shape[a] > 0 ? static_cast<float>(sizes[k]) / x.shape[a] : 1.0f;
    }
  }
  if (full_size[0] != x.shape[0] || full_size[1] != x.shape[1])
    node.fail(StatusCode::kUnsupported, "resizing the batch or channel dims is not supported (scales %g, %g)",
              full_scale[0], full_scale[1]);
  if (full_size[2] < 1 || full_size[3] < 1 || full_size[2] > 65536 || full_size[3] > 65536)
    node.fail(StatusCode::kUnsupported, "output size %lldx%lld is not supported", static_cast<long long>(full_size[2]),
              static_cast<long long>(full_size[3]));
  r.out_h = static_cast<int32_t>(full_size[2]);
  r.out_w = static_cast<int32_t>(full_size[3]);
  r.scale_h = full_scale[2];
  r.scale_w = full_scale[3];
  Operator op;
  op.mutable_resize() = r;
  const Shape out_shape = {x.shape[0], x.shape[1], r.out_h, r.out_w};
  int32_t t = add_activation(node.out(0), nchw_to_nhwc(out_shape));
  emit(OpType::kResize, node.label, {tensor_in(x, Layout::kNhwc)}, t, op);
  define(node.out(0), out_shape, Layout::kNhwc, t);
}

// PRelu(x, slope): slope broadcast against x (a per-channel [C,1,1] slope of an NCHW value is
// re-laid out for its NHWC twin). Nothing is fused after it: the kernels apply no clamp.
void Importer::import_prelu(const Node& node) {
  node.allow_attributes({});
  if (node.proto.input_size() != 2) node.fail(StatusCode::kInvalidModel, "expected 2 inputs");
  Value& x = value(node, 0);
  Value* vs = values_.count(node.in(1)) ? &values_[node.in(1)] : nullptr;
  const Constant* cs = vs ? nullptr : &float_constant(node, 1, "slope");
  Value& y = emit_binary_operands(OpType::kPRelu, node, &x, nullptr, vs, cs, node.out(0), {});
  if (y.shape != x.shape)
    node.fail(StatusCode::kInvalidModel, "slope %s does not broadcast to the input %s",
              shape_string(vs ? vs->shape : cs->dims).c_str(), shape_string(x.shape).c_str());
}

// LayerNormalization (opset 17) over the last axis, scale and bias constant.
void Importer::import_layer_norm(const Node& node) {
  node.allow_attributes({"axis", "epsilon", "stash_type"});
  Value& x = value(node, 0);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t axis = node.get_int("axis", -1);
  if (axis < 0) axis += rank;
  if (axis != rank - 1) node.unsupported("axis", std::to_string(node.get_int("axis", -1)), "the last axis");
  if (node.get_int("stash_type", 1) != 1) node.unsupported("stash_type", std::to_string(node.get_int("stash_type", 1)), "1 (float)");
  for (int i = 1; i < node.proto.output_size(); ++i)
    if (!node.out(i).empty() && readers_.count(node.out(i)))
      node.fail(StatusCode::kUnsupported, "output '%s' (mean / inverse std, training only) is not supported",
                node.out(i).c_str());
  const int32_t c = x.shape[rank - 1];
  Operator op;
  op.epsilon = node.get_float("epsilon", 1e-5f);
  std::vector<int32_t> inputs = {tensor_in(x, Layout::kOnnx)};
  for (int i = 1; i <= 2; ++i) {
    if (i == 2 && node.in(2).empty()) break;
    const Constant& k = float_constant(node, i, i == 1 ? "Scale" : "B");
    if (k.size() != c)
      node.fail(StatusCode::kUnsupported, "input '%s' has %lld values; expected %d (the last axis)", node.in(i).c_str(),
                static_cast<long long>(k.size()), c);
    inputs.push_back(add_constant(k.name, {c}, k.f));
  }
  int32_t t = add_activation(node.out(0), x.shape);
  emit(OpType::kLayerNorm, node.label, inputs, t, op);
  define(node.out(0), x.shape, Layout::kOnnx, t);
}

// Gather of a value with constant indices along one axis: a Slice when the indices step evenly
// (a scalar index also drops the axis), else one Slice per index and a Concat.
void Importer::import_gather(const Node& node) {
  node.allow_attributes({"axis"});
  if (find_constant(node.in(0)) && !find_constant(node.in(1))) {
    import_embedding(node);
    return;
  }
  Value& x = value(node, 0);
  const Constant* idx = find_constant(node.in(1));
  if (!idx || idx->type != onnx::TensorProto::INT64 || idx->dims.size() > 1 || idx->i.empty())
    node.fail(StatusCode::kUnsupported, "input 'indices' must be a constant int64 scalar or 1-D tensor");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  int64_t axis = node.get_int("axis", 0);
  if (axis < -rank || axis >= rank) node.unsupported("axis", std::to_string(axis), "a value in [-rank, rank)");
  if (axis < 0) axis += rank;
  const int64_t d = x.shape[axis];
  if (d < 0) node.fail(StatusCode::kUnsupported, "gathers along the dynamic batch (axis 0)");
  std::vector<int64_t> at;
  for (int64_t v : idx->i) {
    if (v < -d || v >= d)
      node.fail(StatusCode::kInvalidModel, "index %lld is out of range for dim %lld of size %lld",
                static_cast<long long>(v), static_cast<long long>(axis), static_cast<long long>(d));
    at.push_back(v < 0 ? v + d : v);
  }
  const bool scalar = idx->dims.empty();
  const int64_t step = at.size() > 1 ? at[1] - at[0] : 1;
  bool even = step >= 1;
  for (size_t k = 1; even && k < at.size(); ++k) even = at[k] - at[k - 1] == step;
  Shape gathered = x.shape;
  gathered[axis] = static_cast<int32_t>(at.size());
  Shape out = gathered;
  if (scalar) out.erase(out.begin() + axis);
  if (out.empty()) node.fail(StatusCode::kUnsupported, "a scalar result is not supported");
  if (x.shape[0] < 0 && scalar && axis == 0) node.fail(StatusCode::kUnsupported, "drops the dynamic batch");
  const std::string name = scalar ? node.out(0) + ":gathered" : node.out(0);
  auto one_slice = [&](int64_t begin, int64_t n, int64_t s, const std::string& out_name) {
    std::vector<int64_t> b(rank, 0), e(rank, kSliceToEnd), st(rank, 1);
    b[axis] = begin;
    e[axis] = begin + (n - 1) * s + 1;
    st[axis] = s;
    Shape sh = x.shape;
    sh[axis] = static_cast<int32_t>(n);
    emit_slice(node.label, x, b, e, st, sh, out_name);
  };
  if (even) {
    one_slice(at[0], static_cast<int64_t>(at.size()), step, name);
  } else {
    std::vector<int32_t> parts;
    Layout layout = Layout::kOnnx;
    for (size_t k = 0; k < at.size(); ++k) {
      const std::string part = node.out(0) + ":" + std::to_string(k);
      one_slice(at[k], 1, 1, part);
      Value& v = values_[part];
      layout = rank == 4 && v.tensor[1] >= 0 ? Layout::kNhwc : Layout::kOnnx;
      parts.push_back(tensor_in(v, layout));
    }
    static const int32_t kNchwToNhwcAxis[4] = {0, 3, 1, 2};
    Operator op;
    op.axis = layout == Layout::kNhwc ? kNchwToNhwcAxis[axis] : static_cast<int32_t>(axis);
    int32_t t = add_activation(name, internal_shape(gathered, layout));
    emit(OpType::kConcat, node.label, parts, t, op);
    define(name, gathered, layout, t);
  }
  if (scalar) import_flatten_to(node, values_[name], out);
}

// Gather of rows of a constant table by token ids (an embedding): one Gather op reading the ids
// (an integer graph input, float32 in the graph) and the table as a float constant.
void Importer::import_embedding(const Node& node) {
  if (int64_t axis = node.get_int("axis", 0)) node.unsupported("axis", std::to_string(axis), "0 for a constant table");
  const Constant& table = float_constant(node, 0, "data");
  Value& idx = value(node, 1);
  const int32_t it = tensor_in(idx, Layout::kOnnx);
  if (!token_inputs_.count(node.in(1)))
    node.fail(StatusCode::kUnsupported,
              "indices '%s' must be a graph input of integer token ids (int64 / int32); computed indices are not "
              "supported", node.in(1).c_str());
  if (table.dims.empty() || table.dims[0] < 1)
    node.fail(StatusCode::kInvalidModel, "data %s is not a table [V, ...]", shape_string(table.dims).c_str());
  Shape out = idx.shape;
  for (size_t i = 1; i < table.dims.size(); ++i) out.push_back(table.dims[i]);
  if (out.size() > static_cast<size_t>(kMaxRank))
    node.fail(StatusCode::kUnsupported, "output rank %zu exceeds %d", out.size(), kMaxRank);
  Shape tshape(table.dims.begin(), table.dims.end());
  const int32_t tt = add_constant(node.in(0), tshape, table.f);
  const int32_t t = add_activation(node.out(0), out);
  emit(OpType::kGather, node.label, {it, tt}, t);
  define(node.out(0), out, Layout::kOnnx, t);
}

// Cast of a float value to float is the identity (exporters emit it around mixed precision).
void Importer::import_cast(const Node& node) {
  node.allow_attributes({"to", "saturate"});
  const int64_t to = node.get_int("to", 0);
  if (to != onnx::TensorProto::FLOAT)
    node.unsupported("to", dtype_string(static_cast<int32_t>(to)), "FLOAT for a computed value (any type for constants)");
  alias(node);
}

// ConvTranspose (2-D): weights [C_in, C_out/group, KH, KW] re-laid out to [C_out, KH, KW, C_in/group];
// explicit pads (or VALID), output_padding; an output_shape attribute only when it is the size the
// pads give. Folds a following BatchNormalization and Relu/Clip like Conv.
void Importer::import_conv_transpose(const Node& node) {
  node.allow_attributes({"auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads",
                         "strides"});
  Value& x = value(node, 0);
  if (x.shape.size() != 4)
    node.fail(StatusCode::kUnsupported, "input '%s' has rank %zu; only 2-D transposed convolution is supported",
              node.in(0).c_str(), x.shape.size());
  const Constant& w = float_constant(node, 1, "W");
  if (w.dims.size() != 4)
    node.fail(StatusCode::kInvalidModel, "weights '%s' have shape %s (expected 4-D)", node.in(1).c_str(),
              shape_string(w.dims).c_str());
  const int64_t group = node.get_int("group", 1);
  const int32_t c_in = x.shape[1];
  if (group < 1 || w.dims[0] != c_in || c_in % group != 0)
    node.fail(StatusCode::kInvalidModel, "group %lld does not fit input %s and weights %s", static_cast<long long>(group),
              shape_string(x.shape).c_str(), shape_string(w.dims).c_str());
  const int32_t go = w.dims[1], kh = w.dims[2], kw = w.dims[3], gi = c_in / static_cast<int32_t>(group);
  const int32_t out_c = go * static_cast<int32_t>(group);
  if (node.get_pair("kernel_shape", {kh, kw}) != std::vector<int64_t>{kh, kw})
    node.unsupported("kernel_shape", ints_string(node.get_ints("kernel_shape", {})), "the weights' [KH,KW]");
  const std::vector<int64_t> stride = node.get_pair("strides", {1, 1});
  const std::vector<int64_t> dilation = node.get_pair("dilations", {1, 1});
  std::vector<int64_t> out_pad = node.get_ints("output_padding", {0, 0});
  if (out_pad.size() != 2 || out_pad[0] < 0 || out_pad[1] < 0 || out_pad[0] >= stride[0] || out_pad[1] >= stride[1])
    node.unsupported("output_padding", ints_string(out_pad), "two values each below its stride");
  const std::string auto_pad = node.get_string("auto_pad", "NOTSET");
  std::vector<int64_t> pads = node.get_ints("pads", {0, 0, 0, 0});
  if (auto_pad == "VALID") pads = {0, 0, 0, 0};
  else if (auto_pad != "NOTSET") node.unsupported("auto_pad", auto_pad, "NOTSET or VALID");
  if (pads.size() != 4 || *std::min_element(pads.begin(), pads.end()) < 0)
    node.unsupported("pads", ints_string(pads), "4 values >= 0");
  ConvOptions opt;
  opt.stride_h = static_cast<int32_t>(stride[0]);
  opt.stride_w = static_cast<int32_t>(stride[1]);
  opt.dilation_h = static_cast<int32_t>(dilation[0]);
  opt.dilation_w = static_cast<int32_t>(dilation[1]);
  opt.padding = {static_cast<int32_t>(pads[0]), static_cast<int32_t>(pads[1]), static_cast<int32_t>(pads[2]),
                 static_cast<int32_t>(pads[3])};
  opt.groups = static_cast<int32_t>(group);
  opt.output_pad_h = static_cast<int32_t>(out_pad[0]);
  opt.output_pad_w = static_cast<int32_t>(out_pad[1]);
  int64_t out_hw[2];
  for (int a = 0; a < 2; ++a)
    out_hw[a] = int64_t(x.shape[2 + a] - 1) * stride[a] - pads[a] - pads[a + 2] + dilation[a] * (a ? kw - 1 : kh - 1) +
                1 + out_pad[a];
  if (out_hw[0] < 1 || out_hw[1] < 1)
    node.fail(StatusCode::kInvalidModel, "output %lldx%lld is empty", static_cast<long long>(out_hw[0]),
              static_cast<long long>(out_hw[1]));
  if (const auto* os = node.attr("output_shape", onnx::AttributeProto::INTS)) {
    std::vector<int64_t> want(os->ints().begin(), os->ints().end());
    if (want.size() > 2) want.erase(want.begin(), want.end() - 2);
    if (want != std::vector<int64_t>{out_hw[0], out_hw[1]})
      node.unsupported("output_shape", ints_string(want), "the size the pads give (pass pads instead)");
  }
  std::vector<float> relaid(static_cast<size_t>(out_c) * kh * kw * gi), bias(out_c, 0.0f);
  for (int32_t g = 0; g < group; ++g)
    for (int32_t i = 0; i < gi; ++i)
      for (int32_t o = 0; o < go; ++o)
        for (int32_t k = 0; k < kh * kw; ++k)
          relaid[(static_cast<size_t>(g * go + o) * kh * kw + k) * gi + i] = w.f[(static_cast<size_t>(g * gi + i) * go + o) * kh * kw + k];
  read_bias(node, out_c, &bias);
  // A BatchNormalization scales rows of the [C_out, ...] weights; a bias Add is not folded: a
  // constant [C] added to an NCHW value broadcasts along W, not the channels.
  Fused f = absorb(node.out(0), false, out_c, &relaid, &bias);
  int32_t wt = add_constant(node.in(1), {out_c, kh, kw, gi}, relaid);
  int32_t bt = add_constant(!node.in(2).empty() ? node.in(2) : node.label + ":bias", {out_c}, bias);
  Operator op;
  op.mutable_conv() = opt;
  op.activation = f.act;
  Shape out_shape = {x.shape[0], out_c, static_cast<int32_t>(out_hw[0]), static_cast<int32_t>(out_hw[1])};
  int32_t t = add_activation(f.out, nchw_to_nhwc(out_shape));
  emit(OpType::kConvTranspose, node.label, {tensor_in(x, Layout::kNhwc), wt, bt}, t, op);
  define(f.out, out_shape, Layout::kNhwc, t);
}

// ---------------------------------------------------------------- constant folding
// PyTorch computes some inputs (F.pad's pads) with small subgraphs on constants. Those nodes are
// evaluated here and their outputs become constants.

// out[coord] = c[source(coord)] for every coordinate of `dims`.
template <typename Source>
Constant remap(const Constant& c, const std::string& name, const Shape& dims, Source source) {
  Constant out;
  out.name = name;
  out.type = c.type;
  out.dims = dims;
  std::vector<int32_t> coord(dims.size(), 0);
  for (int64_t k = 0, n = product(dims); k < n; ++k) {
    const int64_t src = source(coord);
    if (c.type == onnx::TensorProto::FLOAT)
      out.f.push_back(c.f[src]);
    else
      out.i.push_back(c.i[src]);
    for (int a = static_cast<int>(dims.size()) - 1; a >= 0; --a) {
      if (++coord[a] < dims[a]) break;
      coord[a] = 0;
    }
  }
  return out;
}

std::vector<int64_t> strides_of(const Shape& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

const char* const Importer::kFoldable[] = {"Cast",      "Concat",    "ConstantOfShape", "Gather", "Reshape", "Slice",
                                           "Transpose", "Squeeze",   "Unsqueeze",       "Range",  "Add",     "Sub",
                                           "Mul",       "Div",       nullptr};

bool Importer::fold_constants(const Node& node) {
  bool foldable = false;
  for (const char* const* op = kFoldable; *op; ++op) foldable = foldable || node.op() == *op;
  if (!foldable) return false;
  std::vector<const Constant*> in;
  for (int i = 0; i < node.proto.input_size(); ++i) {
    if (!node.in(i).empty() && !is_constant(node.in(i))) return false;
    in.push_back(node.in(i).empty() ? nullptr : find_constant(node.in(i)));
  }
  if (in.empty() || !in[0]) return false;
  const Constant& x = *in[0];
  const std::string& name = node.out(0);
  const int rank = static_cast<int>(x.dims.size());
  auto ints_input = [&](int i, const char* role) -> const std::vector<int64_t>& {
    if (i >= static_cast<int>(in.size()) || !in[i] || in[i]->type != onnx::TensorProto::INT64 ||
        in[i]->dims.size() != 1)
      node.fail(StatusCode::kUnsupported, "input '%s' must be a 1-D int64 constant", role);
    return in[i]->i;
  };
  auto no_batch = [&](const Constant& c) {
    if (std::find(c.i.begin(), c.i.end(), kBatchDim) != c.i.end())
      node.fail(StatusCode::kUnsupported,
                "computes with the dynamic batch size; export the model with a fixed batch or bind it");
  };
  Constant out;
  if (node.op() == "Add" || node.op() == "Sub" || node.op() == "Mul" || node.op() == "Div") {
    // Arithmetic on constants (shape arithmetic on int64; exporters also compute float constants
    // this way): equal shapes, or a scalar against a tensor.
    if (in.size() != 2 || !in[1] || x.type != in[1]->type ||
        (x.type != onnx::TensorProto::INT64 && x.type != onnx::TensorProto::FLOAT))
      return false;
    node.allow_attributes({});
    const Constant& y = *in[1];
    if (x.size() != y.size() && x.size() != 1 && y.size() != 1)
      node.fail(StatusCode::kUnsupported, "constant shapes %s and %s are not folded (expected equal sizes or a scalar)",
                shape_string(x.dims).c_str(), shape_string(y.dims).c_str());
    out.type = x.type;
    out.dims = x.size() >= y.size() ? x.dims : y.dims;
    const int64_t n = std::max(x.size(), y.size());
    if (x.type == onnx::TensorProto::FLOAT) {
      for (int64_t k = 0; k < n; ++k) {
        const float a = x.f[x.size() == 1 ? 0 : k], b = y.f[y.size() == 1 ? 0 : k];
        out.f.push_back(node.op() == "Add" ? a + b : node.op() == "Sub" ? a - b : node.op() == "Mul" ? a * b : a / b);
      }
    } else {
      no_batch(x);
      no_batch(y);
      for (int64_t k = 0; k < n; ++k) {
        const int64_t a = x.i[x.size() == 1 ? 0 : k], b = y.i[y.size() == 1 ? 0 : k];
        if (node.op() == "Div" && b == 0) node.fail(StatusCode::kInvalidModel, "integer division by zero");
        const int64_t v = node.op() == "Add" ? a + b : node.op() == "Sub" ? a - b : node.op() == "Mul" ? a * b
                                                                                                     : a / b;
        out.i.push_back(v);
      }
    }
  } else if (node.op() == "Range") {
    node.allow_attributes({});
    if (in.size() != 3 || !in[1] || !in[2] || x.size() != 1 || in[1]->size() != 1 || in[2]->size() != 1 ||
        x.type != onnx::TensorProto::INT64 || in[1]->type != x.type || in[2]->type != x.type)
      node.fail(StatusCode::kUnsupported, "start, limit and delta must be int64 scalars");
    no_batch(x);
    no_batch(*in[1]);
    const int64_t start = x.i[0], limit = in[1]->i[0], delta = in[2]->i[0];
    if (delta == 0) node.fail(StatusCode::kInvalidModel, "delta is 0");
    const int64_t n = std::max<int64_t>(0, (limit - start + delta + (delta > 0 ? -1 : 1)) / delta);
    if (n > kMaxFoldElements) node.fail(StatusCode::kUnsupported, "range of %lld elements", static_cast<long long>(n));
    out.type = onnx::TensorProto::INT64;
    out.dims = {static_cast<int32_t>(n)};
    for (int64_t k = 0; k < n; ++k) out.i.push_back(start + k * delta);
  } else if (node.op() == "Gather") {
    node.allow_attributes({"axis"});
    const Constant* idx = in.size() > 1 ? in[1] : nullptr;
    if (!idx || idx->type != onnx::TensorProto::INT64)
      node.fail(StatusCode::kUnsupported, "input 'indices' must be an int64 constant");
    if (rank == 0) node.fail(StatusCode::kInvalidModel, "data is a scalar");
    int64_t axis = node.get_int("axis", 0);
    if (axis < -rank || axis >= rank) node.unsupported("axis", std::to_string(axis), "a value in [-rank, rank)");
    if (axis < 0) axis += rank;
    Shape dims(x.dims.begin(), x.dims.begin() + axis);
    dims.insert(dims.end(), idx->dims.begin(), idx->dims.end());
    dims.insert(dims.end(), x.dims.begin() + axis + 1, x.dims.end());
    const int64_t extent = x.dims[axis], inner = product(x.dims, axis + 1), irank = idx->dims.size();
    for (int64_t v : idx->i) {
      if (v < -extent || v >= extent)
        node.fail(StatusCode::kInvalidModel, "index %lld is out of range for dim %lld of size %lld",
                  static_cast<long long>(v), static_cast<long long>(axis), static_cast<long long>(extent));
    }
    out = remap(x, name, dims, [&](const std::vector<int32_t>& c) {
      int64_t flat_idx = 0;
      for (int64_t k = 0; k < irank; ++k) flat_idx = flat_idx * idx->dims[k] + c[axis + k];
      int64_t j = idx->i[flat_idx];
      if (j < 0) j += extent;
      int64_t outer = 0;
      for (int64_t k = 0; k < axis; ++k) outer = outer * x.dims[k] + c[k];
      int64_t in_off = 0;
      for (size_t k = axis + irank; k < c.size(); ++k) in_off = in_off * dims[k] + c[k];
      return (outer * extent + j) * inner + in_off;
    });
  } else if (node.op() == "Squeeze" || node.op() == "Unsqueeze") {
    out = x;
    out.dims = squeezed_shape(node, x.dims);
  } else if (node.op() == "Cast") {
    node.allow_attributes({"to"});
    const int64_t to = node.get_int("to", 0);
    if (to != onnx::TensorProto::FLOAT && to != onnx::TensorProto::INT64)
      node.unsupported("to", dtype_string(static_cast<int32_t>(to)), "FLOAT or INT64 (on constants)");
    out = x;
    out.type = static_cast<int32_t>(to);
    if (to == onnx::TensorProto::FLOAT && x.type != onnx::TensorProto::FLOAT) {
      no_batch(x);
      out.f.assign(x.i.begin(), x.i.end());
    }
    if (to == onnx::TensorProto::INT64 && x.type == onnx::TensorProto::FLOAT)
      for (float v : x.f) out.i.push_back(static_cast<int64_t>(v));
    if (to == onnx::TensorProto::FLOAT)
      out.i.clear();
    else
      out.f.clear();
  } else if (node.op() == "ConstantOfShape") {
    node.allow_attributes({"value"});
    Constant fill;
    fill.type = onnx::TensorProto::FLOAT;
    fill.f = {0.0f};
    if (const auto* a = node.attr("value", onnx::AttributeProto::TENSOR)) fill = decode_tensor(a->t(), name);
    if (fill.size() != 1) node.fail(StatusCode::kInvalidModel, "attribute 'value' must hold one element");
    Shape dims;
    no_batch(x);
    for (int64_t d : ints_input(0, "input")) {
      if (d < 0 || d > 4096) node.fail(StatusCode::kUnsupported, "shape %s is not supported", ints_string(x.i).c_str());
      dims.push_back(static_cast<int32_t>(d));
    }
    if (product(dims) > kMaxFoldElements)  // the one fold whose output can dwarf its inputs
      node.fail(StatusCode::kUnsupported, "shape %s has more than %lld elements", ints_string(x.i).c_str(),
                static_cast<long long>(kMaxFoldElements));
    out = remap(fill, name, dims, [](const std::vector<int32_t>&) { return int64_t{0}; });
  } else if (node.op() == "Concat") {
    node.allow_attributes({"axis"});
    const int64_t axis = node.get_int("axis", 0) + (node.get_int("axis", 0) < 0 ? rank : 0);
    if (axis < 0 || axis >= rank) node.unsupported("axis", std::to_string(node.get_int("axis", 0)), "a valid axis");
    out.type = x.type;
    out.dims = x.dims;
    out.dims[axis] = 0;
    for (const Constant* c : in) {
      for (int d = 0; c && d < rank && c->dims.size() == x.dims.size(); ++d)
        if (d != axis && c->dims[d] != x.dims[d]) c = nullptr;
      if (!c || c->type != x.type || c->dims.size() != x.dims.size())
        node.fail(StatusCode::kInvalidModel, "constant inputs differ in dtype or shape");
      out.dims[axis] += c->dims[axis];
    }
    for (int64_t o = 0, outer = product(x.dims, 0, axis); o < outer; ++o)
      for (const Constant* c : in) {
        const int64_t chunk = product(c->dims, axis);
        if (x.type == onnx::TensorProto::FLOAT)
          out.f.insert(out.f.end(), c->f.begin() + o * chunk, c->f.begin() + (o + 1) * chunk);
        else
          out.i.insert(out.i.end(), c->i.begin() + o * chunk, c->i.begin() + (o + 1) * chunk);
      }
  } else if (node.op() == "Reshape") {
    node.allow_attributes({"allowzero"});
    if (x.dims.empty() || x.size() == 0) node.fail(StatusCode::kUnsupported, "reshape of an empty or scalar constant");
    out = x;
    out.name = name;
    const std::vector<int64_t>& target = ints_input(1, "shape");  // checks input 1 exists
    no_batch(*in[1]);
    out.dims = reshape_target(node, x.dims, target);
  } else if (node.op() == "Transpose") {
    node.allow_attributes({"perm"});
    std::vector<int64_t> perm(rank);
    for (int i = 0; i < rank; ++i) perm[i] = rank - 1 - i;
    perm = node.get_ints("perm", perm);
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < rank; ++i)
      if (static_cast<int>(sorted.size()) != rank || sorted[i] != i)
        node.unsupported("perm", ints_string(perm), "a permutation");
    Shape dims(rank);
    for (int i = 0; i < rank; ++i) dims[i] = x.dims[perm[i]];
    const std::vector<int64_t> stride = strides_of(x.dims);
    out = remap(x, name, dims, [&](const std::vector<int32_t>& c) {
      int64_t src = 0;
      for (int i = 0; i < rank; ++i) src += c[i] * stride[perm[i]];
      return src;
    });
  } else {  // Slice
    node.allow_attributes({});
    const std::vector<int64_t>& starts = ints_input(1, "starts");
    const std::vector<int64_t>& ends = ints_input(2, "ends");
    std::vector<int64_t> axes(starts.size()), steps(starts.size(), 1);
    for (size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int64_t>(i);
    if (in.size() > 3 && in[3]) axes = ints_input(3, "axes");
    if (in.size() > 4 && in[4]) steps = ints_input(4, "steps");
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
      node.fail(StatusCode::kInvalidModel, "starts, ends, axes and steps differ in length");
    std::vector<int64_t> begin(rank, 0), step(rank, 1);
    Shape dims = x.dims;
    for (size_t k = 0; k < starts.size(); ++k) {
      const int64_t a = axes[k] < 0 ? axes[k] + rank : axes[k], d = a >= 0 && a < rank ? x.dims[a] : 0;
      if (a < 0 || a >= rank || steps[k] == 0) node.fail(StatusCode::kInvalidModel, "axis or step out of range");
      int64_t lo = starts[k] < 0 ? starts[k] + d : starts[k], hi = ends[k] < 0 ? ends[k] + d : ends[k];
      if (steps[k] > 0) {
        lo = std::clamp<int64_t>(lo, 0, d);
        hi = std::clamp<int64_t>(hi, 0, d);
      } else {
        lo = std::clamp<int64_t>(lo, 0, d - 1);
        hi = std::clamp<int64_t>(hi, -1, d - 1);
      }
      const int64_t span = steps[k] > 0 ? hi - lo : lo - hi, abs_step = std::abs(steps[k]);
      dims[a] = static_cast<int32_t>(std::max<int64_t>(0, (span + abs_step - 1) / abs_step));
      begin[a] = lo;
      step[a] = steps[k];
    }
    const std::vector<int64_t> stride = strides_of(x.dims);
    out = remap(x, name, dims, [&](const std::vector<int32_t>& c) {
      int64_t src = 0;
      for (int i = 0; i < rank; ++i) src += (begin[i] + c[i] * step[i]) * stride[i];
      return src;
    });
  }
  if (values_.count(name) || is_constant(name))
    node.fail(StatusCode::kInvalidModel, "value '%s' is defined twice", name.c_str());
  out.name = name;
  constants_[name] = std::move(out);
  return true;
}

Status import_model(const onnx::ModelProto& model, Graph* graph, const ImportOptions& options) {
  Importer(model, graph, options).run();
  std::vector<Dims> dims;
  return infer_shapes(*graph, /*batch: as declared, 1 when dynamic*/ 0, &dims);  // validates too
}

}  // namespace

Status parse_input_shape(const std::string& spec, InputShape* out) {
  const size_t eq = spec.rfind('=');
  InputShape b;
  if (eq == std::string::npos || eq == 0 || eq + 1 >= spec.size())
    return Status::error(StatusCode::kInvalidArgument, "--input-shape '%s': expected NAME=D0,D1,... (e.g. x=1,3,48,192)",
                         spec.c_str());
  b.name = spec.substr(0, eq);
  for (size_t start = eq + 1; start <= spec.size();) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string tok = spec.substr(start, comma - start);
    char* end = nullptr;
    const long v = tok.empty() ? 0 : std::strtol(tok.c_str(), &end, 10);
    if (tok.empty() || *end != '\0' || v == 0 || v < -1 || v > 65536 || (v == -1 && !b.shape.empty()))
      return Status::error(StatusCode::kInvalidArgument,
                           "--input-shape '%s': dim '%s' must be 1..65536 (or -1 for a dynamic batch in dim 0)",
                           spec.c_str(), tok.c_str());
    b.shape.push_back(static_cast<int32_t>(v));
    start = comma + 1;
  }
  if (b.shape.size() > static_cast<size_t>(kMaxRank))
    return Status::error(StatusCode::kInvalidArgument, "--input-shape '%s': more than %d dims", spec.c_str(), kMaxRank);
  *out = std::move(b);
  return Status::ok();
}

Status import_onnx_bytes(const void* data, size_t size, const char* source_name, Graph* graph,
                         const ImportOptions& options) {
  *graph = Graph();
  const char* source = source_name ? source_name : "<memory>";
  Status status;
  try {
    onnx::ModelProto model;
    if (size == 0) return Status::error(StatusCode::kInvalidModel, "%s: empty file (not an ONNX model)", source);
    if (size > static_cast<size_t>(std::numeric_limits<int>::max()) ||
        !model.ParseFromArray(data, static_cast<int>(size)))
      return Status::error(StatusCode::kInvalidModel, "%s: not an ONNX model (protobuf parse failed)", source);
    status = import_model(model, graph, options);
  } catch (const ImportError& e) {
    status = e.status;
  } catch (const std::bad_alloc&) {
    status = Status::error(StatusCode::kOutOfMemory, "out of memory");
  } catch (const std::exception& e) {
    status = Status::error(StatusCode::kInternal, "%s", e.what());
  }
  if (!status.is_ok()) {
    *graph = Graph();
    status.with_context("%s", source);
  }
  return status;
}

std::vector<OnnxOpSupport> onnx_supported_ops() {
  std::vector<OnnxOpSupport> out;
  // Composed once (thread-safe static init); the returned pointers point into it.
  static const std::vector<std::string> notes = [] {
    std::vector<std::string> v;
    for (const Importer::OpEntry& e : Importer::kOps) {
      std::string n = e.since > 0 ? "opset " + std::to_string(e.since) + "+" : "";
      if (*e.note) n += (n.empty() ? "" : "; ") + std::string(e.note);
      v.push_back(n);
    }
    return v;
  }();
  size_t k = 0;
  for (const Importer::OpEntry& e : Importer::kOps) out.push_back({e.op, notes[k++].c_str()});
  out.push_back({"Constant", ""});
  for (const char* const* op = Importer::kFoldable; *op; ++op) {
    bool listed = false;
    for (OnnxOpSupport& o : out) listed = listed || std::strcmp(o.op, *op) == 0;
    if (!listed) out.push_back({*op, "constant inputs only (evaluated at import)"});
  }
  return out;
}

Status import_onnx_file(const char* path, Graph* graph, const ImportOptions& options) {
  *graph = Graph();
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::error(StatusCode::kNotFound, "%s: cannot open", path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) return Status::error(StatusCode::kIoError, "%s: read failed", path);
  return import_onnx_bytes(bytes.data(), bytes.size(), path, graph, options);
}

}  // namespace tinyquant
