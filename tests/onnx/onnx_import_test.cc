// ONNX importer: models built here with the protobuf API, imported, checked for structure and
// run on the reference backend against straightforward NCHW loops in double.
#include "tinyquant/onnx_import.h"

#include <doctest/doctest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/shape_inference.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

constexpr double kTolerance = 1e-4;

// ---------------------------------------------------------------- model builder

class NodeBuilder {
 public:
  explicit NodeBuilder(onnx::NodeProto* node) : node_(node) {}
  NodeBuilder& i(const char* name, int64_t v) { return attr(name, onnx::AttributeProto::INT).set_i(v), *this; }
  NodeBuilder& f(const char* name, float v) { return attr(name, onnx::AttributeProto::FLOAT).set_f(v), *this; }
  NodeBuilder& s(const char* name, const char* v) { return attr(name, onnx::AttributeProto::STRING).set_s(v), *this; }
  NodeBuilder& ints(const char* name, std::initializer_list<int64_t> v) {
    auto& a = attr(name, onnx::AttributeProto::INTS);
    for (int64_t x : v) a.add_ints(x);
    return *this;
  }

 private:
  onnx::AttributeProto& attr(const char* name, onnx::AttributeProto::AttributeType type) {
    onnx::AttributeProto* a = node_->add_attribute();
    a->set_name(name);
    a->set_type(type);
    return *a;
  }
  onnx::NodeProto* node_;
};

class OnnxModel {
 public:
  explicit OnnxModel(int64_t opset = 13) {
    model_.set_ir_version(7);
    model_.set_producer_name("onnx_import_test");
    auto* o = model_.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
  }
  // A float input; -1 in dim 0 is a symbolic batch "N".
  OnnxModel& input(const std::string& name, std::initializer_list<int64_t> shape) {
    auto* shp = value_info(model_.mutable_graph()->add_input(), name)->mutable_shape();
    for (int64_t d : shape) {
      auto* dim = shp->add_dim();
      if (d < 0)
        dim->set_dim_param("N");
      else
        dim->set_dim_value(d);
    }
    return *this;
  }
  // An int64 input of token ids (the graph takes it as float32 ids).
  OnnxModel& ids_input(const std::string& name, std::initializer_list<int64_t> shape) {
    input(name, shape);
    model_.mutable_graph()->mutable_input()->rbegin()->mutable_type()->mutable_tensor_type()->set_elem_type(
        onnx::TensorProto::INT64);
    return *this;
  }
  OnnxModel& output(const std::string& name) {
    value_info(model_.mutable_graph()->add_output(), name);
    return *this;
  }
  // raw = false stores the values in float_data instead of raw_data (both are legal ONNX).
  OnnxModel& init(const std::string& name, std::initializer_list<int64_t> dims, const std::vector<float>& v,
                  bool raw = true) {
    onnx::TensorProto* t = tensor(name, dims, onnx::TensorProto::FLOAT);
    if (raw)
      t->set_raw_data(v.data(), v.size() * sizeof(float));
    else
      for (float x : v) t->add_float_data(x);
    return *this;
  }
  OnnxModel& init_i64(const std::string& name, std::initializer_list<int64_t> dims, const std::vector<int64_t>& v) {
    onnx::TensorProto* t = tensor(name, dims, onnx::TensorProto::INT64);
    for (int64_t x : v) t->add_int64_data(x);
    return *this;
  }
  onnx::TensorProto* tensor(const std::string& name, std::initializer_list<int64_t> dims, int32_t type) {
    onnx::TensorProto* t = model_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    return t;
  }
  NodeBuilder node(const std::string& op, std::initializer_list<const char*> inputs,
                   std::initializer_list<const char*> outputs, const std::string& name = "") {
    onnx::NodeProto* n = model_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? "/" + op + "_" + std::to_string(model_.graph().node_size()) : name);
    for (const char* in : inputs) n->add_input(in);
    for (const char* out : outputs) n->add_output(out);
    return NodeBuilder(n);
  }
  onnx::ModelProto& proto() { return model_; }

  std::string bytes() const { return model_.SerializeAsString(); }
  Status try_import(Graph* graph) const {
    std::string b = bytes();
    return import_onnx_bytes(b.data(), b.size(), "test.onnx", graph);
  }
  Graph import() const {
    Graph g;
    Status s = try_import(&g);
    REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
    return g;
  }
  // The error message of an import that must fail.
  std::string error() const {
    Graph g;
    Status s = try_import(&g);
    CHECK_FALSE(s.is_ok());
    CHECK(g.operators.empty());
    return s.message();
  }

 private:
  static onnx::TypeProto_Tensor* value_info(onnx::ValueInfoProto* v, const std::string& name) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    return t;
  }
  onnx::ModelProto model_;
};

// ---------------------------------------------------------------- graph helpers

int count_ops(const Graph& g, OpType type) {
  int n = 0;
  for (const Operator& op : g.operators) n += op.type == type;
  return n;
}

const Operator& only_op(const Graph& g, OpType type) {
  REQUIRE(count_ops(g, type) == 1);
  for (const Operator& op : g.operators)
    if (op.type == type) return op;
  return g.operators[0];
}

std::vector<float> constant_values(const Graph& g, int32_t tensor) {
  const float* p = g.constant_data<float>(tensor);
  return std::vector<float>(p, p + shape_elements(g.tensors[tensor].shape));
}

// Runs the graph on the reference backend; returns output 0 and checks its shape.
std::vector<float> run(const Graph& g, const std::vector<std::vector<float>>& inputs, int32_t batch,
                       const std::vector<int32_t>& out_shape) {
  Interpreter interp;
  PrepareOptions opt;
  opt.batch = batch;
  Status s = interp.prepare(g, opt);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  REQUIRE(interp.num_inputs() == static_cast<int>(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    REQUIRE(interp.input(static_cast<int>(i)).elements() == static_cast<int64_t>(inputs[i].size()));
    std::memcpy(interp.input(static_cast<int>(i)).data, inputs[i].data(), inputs[i].size() * sizeof(float));
  }
  s = interp.invoke();
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  const TensorView out = interp.output(0);
  CHECK(out.dims == Dims::of(out_shape));
  return std::vector<float>(out.as<float>(), out.as<float>() + out.elements());
}

void check_close(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  CHECK(max_rel_error(got, want) < kTolerance);
}

// ---------------------------------------------------------------- NCHW reference, in double

struct Nchw {
  int n = 0, c = 0, h = 0, w = 0;
  std::vector<double> v;
  Nchw(int n_, int c_, int h_, int w_) : n(n_), c(c_), h(h_), w(w_), v(size_t(n_) * c_ * h_ * w_, 0.0) {}
  Nchw(int n_, int c_, int h_, int w_, const std::vector<float>& data) : Nchw(n_, c_, h_, w_) {
    REQUIRE(data.size() == v.size());
    v.assign(data.begin(), data.end());
  }
  double& at(int in, int ic, int iy, int ix) { return v[((size_t(in) * c + ic) * h + iy) * w + ix]; }
  double at(int in, int ic, int iy, int ix) const { return v[((size_t(in) * c + ic) * h + iy) * w + ix]; }
};

struct ConvParams {
  int stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int top = 0, left = 0, bottom = 0, right = 0;
  int group = 1;
};

// w is ONNX OIHW [o, c/group, kh, kw].
Nchw conv_ref(const Nchw& x, const std::vector<float>& w, const std::vector<float>& b, int o, int kh, int kw,
              const ConvParams& p) {
  const int cg = x.c / p.group, og = o / p.group;
  const int oh = (x.h + p.top + p.bottom - ((kh - 1) * p.dilation_h + 1)) / p.stride_h + 1;
  const int ow = (x.w + p.left + p.right - ((kw - 1) * p.dilation_w + 1)) / p.stride_w + 1;
  Nchw y(x.n, o, oh, ow);
  for (int n = 0; n < x.n; ++n)
    for (int oc = 0; oc < o; ++oc)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          double sum = b.empty() ? 0.0 : b[oc];
          for (int ic = 0; ic < cg; ++ic)
            for (int ky = 0; ky < kh; ++ky)
              for (int kx = 0; kx < kw; ++kx) {
                const int iy = oy * p.stride_h - p.top + ky * p.dilation_h;
                const int ix = ox * p.stride_w - p.left + kx * p.dilation_w;
                if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
                sum += x.at(n, (oc / og) * cg + ic, iy, ix) * w[((size_t(oc) * cg + ic) * kh + ky) * kw + kx];
              }
          y.at(n, oc, oy, ox) = sum;
        }
  return y;
}

// Windows clipped to the input; out_h/out_w given (they encode ceil_mode). include_pad: divide
// by the window's positions inside the padded input, else by the input positions it covers.
Nchw pool_ref(const Nchw& x, bool max, int k, int s, int pad_before, int pad_after, int oh, int ow,
              bool include_pad = false) {
  Nchw y(x.n, x.c, oh, ow);
  for (int n = 0; n < x.n; ++n)
    for (int c = 0; c < x.c; ++c)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          double acc = max ? -std::numeric_limits<double>::infinity() : 0.0;
          int count = 0, padded_count = 0;
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx) {
              const int iy = oy * s - pad_before + ky, ix = ox * s - pad_before + kx;
              if (iy < x.h + pad_after && ix < x.w + pad_after) ++padded_count;
              if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
              acc = max ? std::max(acc, x.at(n, c, iy, ix)) : acc + x.at(n, c, iy, ix);
              ++count;
            }
          y.at(n, c, oy, ox) = max ? acc : acc / (include_pad ? padded_count : count);
        }
  return y;
}

std::vector<double> relu(std::vector<double> v) {
  for (double& x : v) x = std::max(x, 0.0);
  return v;
}

// y[n,m] = alpha * sum_k a[n,k] * B(k,m) + beta * c[m]; b is [m,k] when trans_b, else [k,m].
std::vector<double> gemm_ref(const std::vector<double>& a, int n, int k, const std::vector<float>& b, int m,
                             bool trans_b, float alpha, float beta, const std::vector<float>& c) {
  std::vector<double> y(size_t(n) * m);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < m; ++o) {
      double sum = 0.0;
      for (int j = 0; j < k; ++j) sum += a[size_t(i) * k + j] * (trans_b ? b[size_t(o) * k + j] : b[size_t(j) * m + o]);
      y[size_t(i) * m + o] = alpha * sum + (c.empty() ? 0.0 : beta * c[o]);
    }
  return y;
}

std::vector<double> softmax_rows(std::vector<double> v, int cols) {
  for (size_t r = 0; r < v.size() / cols; ++r) {
    double* row = &v[r * cols];
    double top = *std::max_element(row, row + cols), sum = 0.0;
    for (int j = 0; j < cols; ++j) sum += (row[j] = std::exp(row[j] - top));
    for (int j = 0; j < cols; ++j) row[j] /= sum;
  }
  return v;
}

// BatchNormalization parameters with var > 0.
struct BatchNorm {
  std::vector<float> gamma, beta, mean, var;
  float eps = 1e-3f;
  BatchNorm(std::mt19937& rng, int c)
      : gamma(random_floats(rng, c, 0.5f, 1.5f)),
        beta(random_floats(rng, c)),
        mean(random_floats(rng, c)),
        var(random_floats(rng, c, 0.2f, 2.0f)) {}
  void add_to(OnnxModel& m, const char* prefix) const {
    const int64_t c = static_cast<int64_t>(gamma.size());
    std::string p = prefix;
    m.init(p + ".gamma", {c}, gamma)
        .init(p + ".beta", {c}, beta)
        .init(p + ".mean", {c}, mean)
        .init(p + ".var", {c}, var);
  }
  double apply(double x, int c) const { return (x - mean[c]) / std::sqrt(double(var[c]) + eps) * gamma[c] + beta[c]; }
  void apply(Nchw* t) const {
    for (int n = 0; n < t->n; ++n)
      for (int c = 0; c < t->c; ++c)
        for (int y = 0; y < t->h; ++y)
          for (int x = 0; x < t->w; ++x) t->at(n, c, y, x) = apply(t->at(n, c, y, x), c);
  }
};

// ---------------------------------------------------------------- convolution

TEST_CASE("onnx: grouped conv with stride, dilation and asymmetric pads matches NCHW reference") {
  std::mt19937 rng(1);
  const int n = 2, c = 4, h = 9, w = 8, o = 6, k = 3;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w), wt = random_floats(rng, size_t(o) * 2 * k * k),
                     b = random_floats(rng, o);
  OnnxModel m;
  m.input("x", {-1, c, h, w}).output("y").init("w", {o, 2, k, k}, wt).init("b", {o}, b);
  m.node("Conv", {"x", "w", "b"}, {"y"}, "conv")
      .i("group", 2)
      .ints("strides", {2, 1})
      .ints("dilations", {1, 2})
      .ints("pads", {1, 0, 2, 1})
      .ints("kernel_shape", {k, k});
  Graph g = m.import();

  const Operator& conv = only_op(g, OpType::kConv2D);
  CHECK(conv.conv().groups == 2);
  CHECK(conv.conv().stride_h == 2);
  CHECK(conv.conv().stride_w == 1);
  CHECK(conv.conv().dilation_w == 2);
  CHECK(conv.conv().padding.top == 1);
  CHECK(conv.conv().padding.left == 0);
  CHECK(conv.conv().padding.bottom == 2);
  CHECK(conv.conv().padding.right == 1);
  CHECK(g.tensors[conv.inputs[1]].shape == std::vector<int32_t>{o, k, k, 2});  // OHWI
  CHECK(count_ops(g, OpType::kTranspose) == 2);  // NCHW -> NHWC at the input, back at the output
  CHECK(g.tensors[g.inputs[0]].shape == std::vector<int32_t>{-1, c, h, w});
  CHECK(g.tensors[g.outputs[0]].name == "y");

  ConvParams p;
  p.group = 2, p.stride_h = 2, p.dilation_w = 2, p.top = 1, p.bottom = 2, p.right = 1;
  Nchw want = conv_ref(Nchw(n, c, h, w, x), wt, b, o, k, k, p);
  check_close(run(g, {x}, n, {n, o, want.h, want.w}), want.v);
}

TEST_CASE("onnx: conv with group == C_in becomes DepthwiseConv2D with multiplier 2") {
  std::mt19937 rng(2);
  const int n = 1, c = 3, h = 7, w = 6, o = 6;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w), wt = random_floats(rng, size_t(o) * 3 * 3),
                     b = random_floats(rng, o);
  OnnxModel m;
  m.input("x", {-1, c, h, w}).output("y").init("w", {o, 1, 3, 3}, wt).init("b", {o}, b);
  m.node("Conv", {"x", "w", "b"}, {"y"}).i("group", c).ints("pads", {1, 1, 1, 1}).ints("strides", {2, 2});
  Graph g = m.import();
  const Operator& dw = only_op(g, OpType::kDepthwiseConv2D);
  CHECK(dw.conv().depth_multiplier == 2);
  CHECK(g.tensors[dw.inputs[1]].shape == std::vector<int32_t>{1, 3, 3, o});  // 1HWO
  // Element (o=4, ky=1, kx=2) of the ONNX weights lands at [0,1,2,4].
  CHECK(constant_values(g, dw.inputs[1])[(1 * 3 + 2) * o + 4] == wt[4 * 9 + 1 * 3 + 2]);

  ConvParams p;
  p.group = c, p.stride_h = p.stride_w = 2, p.top = p.left = p.bottom = p.right = 1;
  Nchw want = conv_ref(Nchw(n, c, h, w, x), wt, b, o, 3, 3, p);
  check_close(run(g, {x}, n, {n, o, want.h, want.w}), want.v);
}

TEST_CASE("onnx: auto_pad SAME_UPPER / SAME_LOWER give asymmetric padding") {
  std::mt19937 rng(3);
  const int h = 6, w = 7, o = 2;
  std::vector<float> x = random_floats(rng, size_t(h) * w), wt = random_floats(rng, size_t(o) * 3 * 3);
  for (const char* mode : {"SAME_UPPER", "SAME_LOWER"}) {
    CAPTURE(mode);
    OnnxModel m;
    m.input("x", {1, 1, h, w}).output("y").init("w", {o, 1, 3, 3}, wt);
    m.node("Conv", {"x", "w"}, {"y"}).s("auto_pad", mode).ints("strides", {2, 2});
    Graph g = m.import();
    const Operator& conv = only_op(g, OpType::kConv2D);
    // H: out 3, total pad (3-1)*2+3-6 = 1; W: out 4, total (4-1)*2+3-7 = 2.
    const bool upper = std::string(mode) == "SAME_UPPER";
    CHECK(conv.conv().padding.top == (upper ? 0 : 1));
    CHECK(conv.conv().padding.bottom == (upper ? 1 : 0));
    CHECK(conv.conv().padding.left == 1);
    CHECK(conv.conv().padding.right == 1);
    CHECK(conv.inputs[2] == -1);                 // no bias
    CHECK(count_ops(g, OpType::kReshape) == 1);  // C == 1: the input's layout change is a Reshape

    ConvParams p;
    p.stride_h = p.stride_w = 2, p.top = upper ? 0 : 1, p.bottom = upper ? 1 : 0, p.left = p.right = 1;
    Nchw want = conv_ref(Nchw(1, 1, h, w, x), wt, {}, o, 3, 3, p);
    check_close(run(g, {x}, 1, {1, o, 3, 4}), want.v);
  }
}

// ---------------------------------------------------------------- batch norm and activations

TEST_CASE("onnx: BatchNormalization folds into the Conv and Relu fuses") {
  std::mt19937 rng(4);
  const int n = 2, c = 3, h = 5, w = 5, o = 4;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w), wt = random_floats(rng, size_t(o) * c * 9);
  BatchNorm bn(rng, o);
  OnnxModel m;
  m.input("x", {-1, c, h, w}).output("y").init("w", {o, c, 3, 3}, wt);
  bn.add_to(m, "bn");
  m.node("Conv", {"x", "w"}, {"conv_out"}).ints("pads", {1, 1, 1, 1});
  m.node("BatchNormalization", {"conv_out", "bn.gamma", "bn.beta", "bn.mean", "bn.var"}, {"bn_out"})
      .f("epsilon", bn.eps);
  m.node("Relu", {"bn_out"}, {"y"});
  Graph g = m.import();

  const Operator& conv = only_op(g, OpType::kConv2D);
  CHECK(g.operators.size() == 3);  // transpose, conv, transpose
  CHECK(conv.activation.type == Activation::kRelu);
  REQUIRE(conv.inputs[2] >= 0);
  const double s1 = bn.gamma[1] / std::sqrt(double(bn.var[1]) + bn.eps);
  CHECK(constant_values(g, conv.inputs[2])[1] == doctest::Approx(bn.beta[1] - bn.mean[1] * s1).epsilon(1e-6));
  // OHWI element (o=1, y=0, x=2, i=2) is OIHW (1, 2, 0, 2) scaled.
  CHECK(constant_values(g, conv.inputs[1])[((1 * 3 + 0) * 3 + 2) * c + 2] ==
        doctest::Approx(wt[((1 * c + 2) * 3 + 0) * 3 + 2] * s1).epsilon(1e-6));

  ConvParams p;
  p.top = p.left = p.bottom = p.right = 1;
  Nchw want = conv_ref(Nchw(n, c, h, w, x), wt, {}, o, 3, 3, p);
  bn.apply(&want);
  check_close(run(g, {x}, n, {n, o, h, w}), relu(want.v));
}

TEST_CASE("onnx: BatchNormalization that cannot fold becomes a per-channel Mul + Add") {
  std::mt19937 rng(5);
  const int n = 2, c = 3, h = 4, w = 5;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w), wt = random_floats(rng, size_t(c) * c);
  BatchNorm bn(rng, c);
  OnnxModel m;
  // The conv output is also a graph output, so the BN cannot be folded into it.
  m.input("x", {-1, c, h, w}).output("y").output("conv_out").init("w", {c, c, 1, 1}, wt);
  bn.add_to(m, "bn");
  m.node("Conv", {"x", "w"}, {"conv_out"});
  m.node("BatchNormalization", {"conv_out", "bn.gamma", "bn.beta", "bn.mean", "bn.var"}, {"y"}).f("epsilon", bn.eps);
  Graph g = m.import();
  const Operator& mul = only_op(g, OpType::kMul);
  const Operator& add = only_op(g, OpType::kAdd);
  CHECK(g.tensors[mul.inputs[1]].shape == std::vector<int32_t>{c});  // [C,1,1] re-laid out for NHWC
  CHECK(g.tensors[add.inputs[1]].shape == std::vector<int32_t>{c});
  CHECK(g.tensors[g.outputs[0]].name == "y");
  CHECK(g.tensors[g.outputs[1]].name == "conv_out");

  Nchw want = conv_ref(Nchw(n, c, h, w, x), wt, {}, c, 1, 1, {});
  bn.apply(&want);
  check_close(run(g, {x}, n, {n, c, h, w}), want.v);
}

TEST_CASE("onnx: standalone BatchNormalization on a graph input") {
  std::mt19937 rng(6);
  const int n = 3, c = 2, h = 3, w = 4;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w);
  BatchNorm bn(rng, c);
  OnnxModel m;
  m.input("x", {-1, c, h, w}).output("y");
  bn.add_to(m, "bn");
  m.node("BatchNormalization", {"x", "bn.gamma", "bn.beta", "bn.mean", "bn.var"}, {"y"}).f("epsilon", bn.eps);
  Graph g = m.import();
  Nchw want(n, c, h, w, x);
  bn.apply(&want);
  check_close(run(g, {x}, n, {n, c, h, w}), want.v);
}

TEST_CASE("onnx: Clip fuses into the Conv; standalone Clip with an absent min") {
  std::mt19937 rng(7);
  const int c = 2, h = 4, w = 4, o = 3;
  std::vector<float> x = random_floats(rng, size_t(c) * h * w, -2, 2), wt = random_floats(rng, size_t(o) * c * 9);
  OnnxModel m(11);
  m.input("x", {1, c, h, w}).output("y").init("w", {o, c, 3, 3}, wt).init("lo", {}, {0.0f}).init("hi", {}, {6.0f});
  m.init("hi2", {}, {0.25f});
  m.node("Conv", {"x", "w"}, {"c"}).ints("pads", {1, 1, 1, 1});
  m.node("Clip", {"c", "lo", "hi"}, {"r6"});
  m.node("Clip", {"r6", "", "hi2"}, {"y"});
  Graph g = m.import();
  CHECK(only_op(g, OpType::kConv2D).activation.type == Activation::kRelu6);
  const Operator& clamp = only_op(g, OpType::kClamp);
  CHECK(clamp.activation.min == -std::numeric_limits<float>::infinity());
  CHECK(clamp.activation.max == 0.25f);

  ConvParams p;
  p.top = p.left = p.bottom = p.right = 1;
  Nchw want = conv_ref(Nchw(1, c, h, w, x), wt, {}, o, 3, 3, p);
  for (double& v : want.v) v = std::min(std::min(std::max(v, 0.0), 6.0), 0.25);
  check_close(run(g, {x}, 1, {1, o, h, w}), want.v);
}

// ---------------------------------------------------------------- elementwise

TEST_CASE("onnx: Add and Mul broadcast a [C,1,1] constant against NHWC values") {
  std::mt19937 rng(8);
  const int n = 2, c = 3, h = 3, w = 4;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w), x2 = random_floats(rng, size_t(n) * c * h * w),
                     wt = random_floats(rng, size_t(c) * c), scale = random_floats(rng, c),
                     shift = random_floats(rng, c), row = random_floats(rng, w);
  OnnxModel m;
  m.input("x", {-1, c, h, w}).input("x2", {-1, c, h, w}).output("y").init("w", {c, c, 1, 1}, wt);
  m.init("scale", {c, 1, 1}, scale).init("shift", {1, c, 1, 1}, shift).init("row", {w}, row);
  m.node("Conv", {"x", "w"}, {"a"});
  m.node("Mul", {"a", "scale"}, {"b"});
  m.node("Add", {"shift", "b"}, {"c"});  // constant first
  m.node("Relu", {"c"}, {"d"});
  m.node("Mul", {"d", "x2"}, {"e"});   // two activations
  m.node("Add", {"e", "row"}, {"y"});  // [W] broadcasts along the last NCHW axis
  Graph g = m.import();
  CHECK(count_ops(g, OpType::kClamp) == 0);  // Relu fused into the Add
  for (const Operator& op : g.operators)
    if (op.type == OpType::kAdd && g.tensors[op.inputs[0]].is_constant()) {
      CHECK(g.tensors[op.inputs[0]].shape == std::vector<int32_t>{c});
      CHECK(op.activation.type == Activation::kRelu);
    }

  Nchw want = conv_ref(Nchw(n, c, h, w, x), wt, {}, c, 1, 1, {});
  Nchw other(n, c, h, w, x2);
  for (int in = 0; in < n; ++in)
    for (int ic = 0; ic < c; ++ic)
      for (int iy = 0; iy < h; ++iy)
        for (int ix = 0; ix < w; ++ix) {
          double& v = want.at(in, ic, iy, ix);
          v = std::max(v * scale[ic] + shift[ic], 0.0) * other.at(in, ic, iy, ix) + row[ix];
        }
  check_close(run(g, {x, x2}, n, {n, c, h, w}), want.v);
}

// ---------------------------------------------------------------- pooling, concat

TEST_CASE("onnx: MaxPool ceil_mode becomes extra bottom/right padding") {
  // Output sizes as PyTorch computes them (the last window must start inside the input).
  struct Case {
    int size, kernel, stride, pad, out, bottom;
  };
  for (Case t : {Case{7, 2, 2, 0, 4, 1},     // floor 3, ceil 4
                 Case{8, 3, 2, 1, 5, 2},     // floor 4, ceil 5
                 Case{7, 3, 2, 1, 4, 1},     // ceil changes nothing
                 Case{6, 2, 3, 0, 2, 0}}) {  // a third window would start past the input
    CAPTURE(t.size);
    CAPTURE(t.kernel);
    std::mt19937 rng(9);
    const int n = 2, c = 3;
    std::vector<float> x = random_floats(rng, size_t(n) * c * t.size * t.size);
    OnnxModel m;
    m.input("x", {-1, c, t.size, t.size}).output("y");
    m.node("MaxPool", {"x"}, {"y"})
        .ints("kernel_shape", {t.kernel, t.kernel})
        .ints("strides", {t.stride, t.stride})
        .ints("pads", {t.pad, t.pad, t.pad, t.pad})
        .i("ceil_mode", 1);
    Graph g = m.import();
    const Operator& pool = only_op(g, OpType::kMaxPool2D);
    CHECK(pool.pool().padding.top == t.pad);
    CHECK(pool.pool().padding.bottom == t.bottom);
    CHECK(pool.pool().padding.right == t.bottom);
    Nchw want = pool_ref(Nchw(n, c, t.size, t.size, x), true, t.kernel, t.stride, t.pad, t.bottom, t.out, t.out);
    check_close(run(g, {x}, n, {n, c, t.out, t.out}), want.v);
  }
}

TEST_CASE("onnx: AveragePool with and without count_include_pad") {
  std::mt19937 rng(10);
  const int n = 1, c = 2, h = 6, w = 6;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w);
  for (int include : {0, 1}) {
    CAPTURE(include);
    OnnxModel m;
    m.input("x", {-1, c, h, w}).output("y");
    m.node("AveragePool", {"x"}, {"y"})
        .ints("kernel_shape", {3, 3})
        .ints("strides", {2, 2})
        .ints("pads", {1, 1, 1, 1})
        .i("count_include_pad", include);
    Graph g = m.import();
    CHECK(only_op(g, OpType::kAveragePool2D).pool().count_include_pad == (include == 1));
    // (6+2-3)/2+1 = 3
    check_close(run(g, {x}, n, {n, c, 3, 3}), pool_ref(Nchw(n, c, h, w, x), false, 3, 2, 1, 1, 3, 3, include).v);
  }
}

TEST_CASE("onnx: AveragePool ceil_mode that changes the output size is rejected") {
  OnnxModel m;
  m.input("x", {1, 2, 7, 7}).output("y");
  m.node("AveragePool", {"x"}, {"y"}, "pool").ints("kernel_shape", {2, 2}).ints("strides", {2, 2}).i("ceil_mode", 1);
  std::string e = m.error();
  CHECK(e.find("node 'pool' (AveragePool): attribute 'ceil_mode' = 1 is not supported") != std::string::npos);

  OnnxModel ok;  // ceil_mode that changes nothing is fine
  ok.input("x", {1, 2, 8, 8}).output("y");
  ok.node("AveragePool", {"x"}, {"y"}).ints("kernel_shape", {2, 2}).ints("strides", {2, 2}).i("ceil_mode", 1);
  ok.import();
}

TEST_CASE("onnx: Concat on channels concatenates NHWC on axis 3") {
  std::mt19937 rng(11);
  const int n = 2, c = 2, h = 3, w = 3;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w), w1 = random_floats(rng, 3 * c * 9),
                     w2 = random_floats(rng, 2 * c);
  OnnxModel m;
  m.input("x", {-1, c, h, w}).output("y").init("w1", {3, c, 3, 3}, w1).init("w2", {2, c, 1, 1}, w2);
  m.node("Conv", {"x", "w1"}, {"a"}).ints("pads", {1, 1, 1, 1});
  m.node("Conv", {"x", "w2"}, {"b"});
  m.node("Concat", {"a", "b"}, {"y"}).i("axis", 1);
  Graph g = m.import();
  CHECK(only_op(g, OpType::kConcat).axis == 3);

  ConvParams p;
  p.top = p.left = p.bottom = p.right = 1;
  Nchw a = conv_ref(Nchw(n, c, h, w, x), w1, {}, 3, 3, 3, p), b = conv_ref(Nchw(n, c, h, w, x), w2, {}, 2, 1, 1, {});
  Nchw want(n, 5, h, w);
  for (int in = 0; in < n; ++in)
    for (int ic = 0; ic < 5; ++ic)
      for (int iy = 0; iy < h; ++iy)
        for (int ix = 0; ix < w; ++ix)
          want.at(in, ic, iy, ix) = ic < 3 ? a.at(in, ic, iy, ix) : b.at(in, ic - 3, iy, ix);
  check_close(run(g, {x}, n, {n, 5, h, w}), want.v);
}

// ---------------------------------------------------------------- fully connected, softmax

TEST_CASE("onnx: Gemm with transB, alpha and beta") {
  std::mt19937 rng(12);
  const int n = 3, k = 5, mo = 4;
  std::vector<float> a = random_floats(rng, size_t(n) * k), b = random_floats(rng, size_t(mo) * k),
                     c = random_floats(rng, mo);
  for (int trans_b : {0, 1}) {
    CAPTURE(trans_b);
    OnnxModel m;
    m.input("a", {-1, k}).output("y").init("c", {1, mo}, c, /*raw=*/false);
    if (trans_b)
      m.init("b", {mo, k}, b);
    else
      m.init("b", {k, mo}, b);
    m.node("Gemm", {"a", "b", "c"}, {"y"}).f("alpha", 0.5f).f("beta", 2.0f).i("transB", trans_b);
    Graph g = m.import();
    const Operator& fc = only_op(g, OpType::kFullyConnected);
    CHECK(g.tensors[fc.inputs[1]].shape == std::vector<int32_t>{mo, k});
    CHECK(constant_values(g, fc.inputs[2])[1] == doctest::Approx(2.0f * c[1]));
    std::vector<double> ad(a.begin(), a.end());
    check_close(run(g, {a}, n, {n, mo}), gemm_ref(ad, n, k, b, mo, trans_b, 0.5f, 2.0f, c));
  }
}

TEST_CASE("onnx: MatMul with constant weights absorbs Add, BatchNormalization and Clip") {
  std::mt19937 rng(13);
  const int n = 4, k = 6, mo = 3;
  std::vector<float> a = random_floats(rng, size_t(n) * k), b = random_floats(rng, size_t(k) * mo),
                     bias = random_floats(rng, mo);
  BatchNorm bn(rng, mo);
  OnnxModel m;
  m.input("a", {-1, k}).output("y").init("b", {k, mo}, b).init("bias", {mo}, bias);
  m.init("lo", {}, {-0.3f}).init("hi", {}, {0.4f});
  bn.add_to(m, "bn");
  m.node("MatMul", {"a", "b"}, {"mm"});
  m.node("Add", {"mm", "bias"}, {"biased"});
  m.node("Identity", {"biased"}, {"alias"});
  m.node("BatchNormalization", {"alias", "bn.gamma", "bn.beta", "bn.mean", "bn.var"}, {"bn_out"}).f("epsilon", bn.eps);
  m.node("Clip", {"bn_out", "lo", "hi"}, {"y"});
  Graph g = m.import();
  REQUIRE(g.operators.size() == 1);
  const Operator& fc = g.operators[0];
  CHECK(fc.type == OpType::kFullyConnected);
  CHECK(fc.activation.type == Activation::kClip);
  CHECK(fc.activation.min == -0.3f);
  CHECK(g.tensors[fc.outputs[0]].name == "y");

  std::vector<double> ad(a.begin(), a.end());
  std::vector<double> want = gemm_ref(ad, n, k, b, mo, false, 1.0f, 1.0f, bias);
  for (size_t i = 0; i < want.size(); ++i) want[i] = std::min(std::max(bn.apply(want[i], int(i % mo)), -0.3), 0.4);
  check_close(run(g, {a}, n, {n, mo}), want);
}

TEST_CASE("onnx: Flatten -> Gemm permutes the weight columns instead of transposing") {
  std::mt19937 rng(14);
  const int n = 2, c = 3, h = 4, w = 4, o = 5, mo = 7, k = o * 2 * 2;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w), wt = random_floats(rng, size_t(o) * c * 9),
                     fw = random_floats(rng, size_t(mo) * k), fb = random_floats(rng, mo);
  for (bool use_reshape : {false, true}) {
    CAPTURE(use_reshape);
    OnnxModel m;
    m.input("x", {-1, c, h, w}).output("y").init("w", {o, c, 3, 3}, wt).init("fw", {mo, k}, fw).init("fb", {mo}, fb);
    m.init_i64("shape", {2}, {-1, k});
    m.node("Conv", {"x", "w"}, {"a"}).ints("pads", {1, 1, 1, 1}).ints("strides", {2, 2});
    m.node("Relu", {"a"}, {"r"});
    if (use_reshape)
      m.node("Reshape", {"r", "shape"}, {"f"});
    else
      m.node("Flatten", {"r"}, {"f"}).i("axis", 1);
    m.node("Dropout", {"f"}, {"d"});
    m.node("Gemm", {"d", "fw", "fb"}, {"g"}).i("transB", 1);
    m.node("Softmax", {"g"}, {"y"});
    Graph g = m.import();
    // The only layout change is the input's; the flatten reads NHWC bytes directly.
    CHECK(count_ops(g, OpType::kTranspose) == 1);
    CHECK(count_ops(g, OpType::kSoftmax) == 1);
    const Operator& fc = only_op(g, OpType::kFullyConnected);
    // Column (ch=1, p=3) of ONNX order sits at HWC index p*C + ch.
    CHECK(constant_values(g, fc.inputs[1])[2 * k + 3 * o + 1] == fw[2 * k + 1 * 4 + 3]);

    ConvParams p;
    p.stride_h = p.stride_w = 2, p.top = p.left = p.bottom = p.right = 1;
    std::vector<double> flat = relu(conv_ref(Nchw(n, c, h, w, x), wt, {}, o, 3, 3, p).v);
    check_close(run(g, {x}, n, {n, mo}), softmax_rows(gemm_ref(flat, n, k, fw, mo, true, 1, 1, fb), mo));
  }
}

TEST_CASE("onnx: GlobalAveragePool -> Flatten -> Gemm needs no layout change before the FC") {
  std::mt19937 rng(15);
  const int n = 2, c = 4, h = 3, w = 5, mo = 3;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w), fw = random_floats(rng, size_t(mo) * c);
  OnnxModel m;
  m.input("x", {-1, c, h, w}).output("y").init("fw", {mo, c}, fw);
  m.node("GlobalAveragePool", {"x"}, {"p"});
  m.node("Flatten", {"p"}, {"f"});
  m.node("Gemm", {"f", "fw"}, {"y"}).i("transB", 1);
  Graph g = m.import();
  CHECK(count_ops(g, OpType::kTranspose) == 1);  // the input only
  Nchw in(n, c, h, w, x);
  std::vector<double> mean(size_t(n) * c);
  for (int i = 0; i < n; ++i)
    for (int ic = 0; ic < c; ++ic) {
      for (int iy = 0; iy < h; ++iy)
        for (int ix = 0; ix < w; ++ix) mean[size_t(i) * c + ic] += in.at(i, ic, iy, ix) / (h * w);
    }
  check_close(run(g, {x}, n, {n, mo}), gemm_ref(mean, n, c, fw, mo, true, 1, 1, {}));
}

TEST_CASE("onnx: Softmax axis semantics (opset 13 channel axis, opset 11 flattening)") {
  std::mt19937 rng(16);
  const int n = 2, c = 3, h = 2, w = 2;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w, -3, 3), wt = random_floats(rng, size_t(c) * c);
  Nchw conv = conv_ref(Nchw(n, c, h, w, x), wt, {}, c, 1, 1, {});
  SUBCASE("opset 13, axis 1 of a 4-D NHWC value: softmax over the NHWC last axis") {
    OnnxModel m(13);
    m.input("x", {-1, c, h, w}).output("y").init("w", {c, c, 1, 1}, wt);
    m.node("Conv", {"x", "w"}, {"a"});
    m.node("Softmax", {"a"}, {"y"}).i("axis", 1);
    Graph g = m.import();
    Nchw want = conv;
    for (int i = 0; i < n; ++i)
      for (int iy = 0; iy < h; ++iy)
        for (int ix = 0; ix < w; ++ix) {
          double sum = 0;
          for (int ic = 0; ic < c; ++ic) sum += std::exp(conv.at(i, ic, iy, ix));
          for (int ic = 0; ic < c; ++ic) want.at(i, ic, iy, ix) = std::exp(conv.at(i, ic, iy, ix)) / sum;
        }
    check_close(run(g, {x}, n, {n, c, h, w}), want.v);
  }
  SUBCASE("opset 11, axis 1 of a 4-D value: softmax over C*H*W") {
    OnnxModel m(11);
    m.input("x", {-1, c, h, w}).output("y").init("w", {c, c, 1, 1}, wt);
    m.node("Conv", {"x", "w"}, {"a"});
    m.node("Softmax", {"a"}, {"y"});
    Graph g = m.import();
    check_close(run(g, {x}, n, {n, c, h, w}), softmax_rows(conv.v, c * h * w));
  }
  SUBCASE("opset 13, last axis of a 4-D NHWC value: changed back to NCHW first") {
    OnnxModel m(13);
    m.input("x", {-1, c, h, w}).output("y").init("w", {c, c, 1, 1}, wt);
    m.node("Conv", {"x", "w"}, {"a"});
    m.node("Softmax", {"a"}, {"y"});
    Graph g = m.import();
    CHECK(count_ops(g, OpType::kTranspose) == 2);  // input to NHWC, conv output back to NCHW
    check_close(run(g, {x}, n, {n, c, h, w}), softmax_rows(conv.v, w));
  }
  SUBCASE("opset 13, axis 2 is rejected") {
    OnnxModel m(13);
    m.input("x", {-1, c, h, w}).output("y");
    m.node("Softmax", {"x"}, {"y"}, "sm").i("axis", 2);
    CHECK(m.error().find("node 'sm' (Softmax): attribute 'axis' = 2 is not supported") != std::string::npos);
  }
}

TEST_CASE("onnx: Reshape to 4-D feeds a Conv; Identity keeps the output name") {
  std::mt19937 rng(17);
  const int n = 2, c = 2, h = 3, w = 3, o = 2;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w), wt = random_floats(rng, size_t(o) * c * 9);
  OnnxModel m;
  m.input("x", {-1, c * h * w}).output("out").init("w", {o, c, 3, 3}, wt);
  m.init_i64("shape", {4}, {0, c, h, w});
  m.node("Reshape", {"x", "shape"}, {"r"});
  m.node("Conv", {"r", "w"}, {"y"}).ints("pads", {1, 1, 1, 1});
  m.node("Identity", {"y"}, {"out"});
  Graph g = m.import();
  CHECK(g.tensors[g.outputs[0]].name == "out");
  CHECK(g.tensors[g.inputs[0]].shape == std::vector<int32_t>{-1, c * h * w});
  ConvParams p;
  p.top = p.left = p.bottom = p.right = 1;
  check_close(run(g, {x}, n, {n, o, h, w}), conv_ref(Nchw(n, c, h, w, x), wt, {}, o, 3, 3, p).v);
}

// ---------------------------------------------------------------- Pad and constant folding

// PyTorch exports F.pad(x, (0, 1, 0, 1)) as a Pad whose pads a small int64 subgraph computes
// (this is the pattern in zoo.onnx); the importer folds the subgraph and the Pad into the Conv.
TEST_CASE("onnx: a computed zero Pad folds into the following Conv's padding") {
  std::mt19937 rng(18);
  const int n = 2, c = 2, h = 6, w = 6, o = 3;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w), wt = random_floats(rng, size_t(o) * c * 9);
  OnnxModel m;
  m.input("x", {-1, c, h, w}).output("y").init("w", {o, c, 3, 3}, wt);
  m.init_i64("four", {1}, {4}).init_i64("tf_pads", {4}, {0, 1, 0, 1}).init_i64("pairs", {2}, {-1, 2});
  m.init_i64("start", {1}, {-1}).init_i64("end", {1}, {-9223372036854775807LL}).init_i64("axis0", {1}, {0});
  m.init_i64("step", {1}, {-1}).init_i64("flat", {1}, {-1});
  m.node("ConstantOfShape", {"four"}, {"zeros"});
  m.proto().mutable_graph()->mutable_node(0)->add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("value");
    a.set_type(onnx::AttributeProto::TENSOR);
    a.mutable_t()->set_data_type(onnx::TensorProto::INT64);
    a.mutable_t()->add_dims(1);
    a.mutable_t()->add_int64_data(0);
    return a;
  }());
  m.node("Concat", {"tf_pads", "zeros"}, {"cat"}).i("axis", 0);
  m.node("Reshape", {"cat", "pairs"}, {"pairs2d"});
  m.node("Slice", {"pairs2d", "start", "end", "axis0", "step"}, {"reversed"});
  m.node("Transpose", {"reversed"}, {"tr"}).ints("perm", {1, 0});
  m.node("Reshape", {"tr", "flat"}, {"pads"});
  m.node("Cast", {"pads"}, {"pads64"}).i("to", onnx::TensorProto::INT64);
  m.node("Pad", {"x", "pads64", ""}, {"padded"}).s("mode", "constant");
  m.node("Conv", {"padded", "w"}, {"y"}).ints("strides", {2, 2});
  Graph g = m.import();
  const Operator& conv = only_op(g, OpType::kConv2D);
  CHECK(conv.conv().padding.top == 0);
  CHECK(conv.conv().padding.left == 0);
  CHECK(conv.conv().padding.bottom == 1);
  CHECK(conv.conv().padding.right == 1);
  ConvParams p;
  p.stride_h = p.stride_w = 2, p.bottom = p.right = 1;
  check_close(run(g, {x}, n, {n, o, 3, 3}), conv_ref(Nchw(n, c, h, w, x), wt, {}, o, 3, 3, p).v);
}

TEST_CASE("onnx: Pad is an identity when all pads are 0 and an error before a MaxPool") {
  OnnxModel m;
  m.input("x", {-1, 2, 4, 4}).output("y").init_i64("zero", {8}, std::vector<int64_t>(8, 0));
  m.node("Pad", {"x", "zero"}, {"p"});
  m.node("AveragePool", {"p"}, {"y"}).ints("kernel_shape", {2, 2}).ints("strides", {2, 2});
  Graph g = m.import();
  CHECK(count_ops(g, OpType::kAveragePool2D) == 1);
  CHECK_FALSE(only_op(g, OpType::kAveragePool2D).pool().count_include_pad);

  OnnxModel bad;
  bad.input("x", {-1, 2, 4, 4}).output("y").init_i64("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
  bad.node("Pad", {"x", "pads"}, {"p"}, "pad");
  bad.node("MaxPool", {"p"}, {"y"}).ints("kernel_shape", {2, 2});
  CHECK(bad.error().find("node 'pad' (Pad): pads [0,0,1,1,0,0,1,1] are not supported") != std::string::npos);
}

TEST_CASE("onnx: a Pad before an AveragePool counts its zeros in the divisor") {
  std::mt19937 rng(19);
  const int n = 1, c = 2, h = 4, w = 4;
  std::vector<float> x = random_floats(rng, size_t(n) * c * h * w);
  OnnxModel m;
  m.input("x", {-1, c, h, w}).output("y").init_i64("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
  m.node("Pad", {"x", "pads"}, {"p"});
  m.node("AveragePool", {"p"}, {"y"}).ints("kernel_shape", {3, 3}).ints("strides", {2, 2});
  Graph g = m.import();
  CHECK(only_op(g, OpType::kAveragePool2D).pool().count_include_pad);
  // (4+2-3)/2+1 = 2; every window lies inside the padded input, so the divisor is always 9.
  check_close(run(g, {x}, n, {n, c, 2, 2}), pool_ref(Nchw(n, c, h, w, x), false, 3, 2, 1, 1, 2, 2, true).v);
}

// ---------------------------------------------------------------- errors

TEST_CASE("onnx: unsupported op, attribute and inputs are errors naming the node") {
  SUBCASE("op") {
    OnnxModel m;
    m.input("x", {1, 4}).output("y");
    m.node("Celu", {"x"}, {"y"}, "/act/Celu");
    std::string e = m.error();
    CHECK(e.find("node '/act/Celu' (Celu): operator is not supported at opset") != std::string::npos);
    CHECK(e.find("tq import --list-ops") != std::string::npos);  // where the list of what is supported is
    CHECK(e.find("test.onnx") != std::string::npos);
  }
  SUBCASE("attribute value") {
    OnnxModel m;
    m.input("x", {1, 1, 4, 4}).output("y");
    m.node("MaxPool", {"x"}, {"y"}, "mp").ints("kernel_shape", {2, 2}).i("storage_order", 1);
    CHECK(m.error().find("node 'mp' (MaxPool): attribute 'storage_order' = 1 is not supported (expected 0") !=
          std::string::npos);
  }
  SUBCASE("unknown attribute") {
    OnnxModel m;
    m.input("x", {1, 4}).output("y");
    m.node("Relu", {"x"}, {"y"}, "r").i("alpha", 1);
    CHECK(m.error().find("node 'r' (Relu): attribute 'alpha' is not supported") != std::string::npos);
  }
  SUBCASE("auto_pad") {
    OnnxModel m;
    m.input("x", {1, 1, 4, 4}).output("y").init("w", {1, 1, 1, 1}, {1.0f});
    m.node("Conv", {"x", "w"}, {"y"}, "c").s("auto_pad", "SAME_SIDEWAYS");
    CHECK(m.error().find("attribute 'auto_pad' = SAME_SIDEWAYS is not supported") != std::string::npos);
  }
  SUBCASE("Gemm transA") {
    OnnxModel m;
    m.input("x", {4, 2}).output("y").init("b", {4, 3}, std::vector<float>(12, 1.0f));
    m.node("Gemm", {"x", "b"}, {"y"}, "g").i("transA", 1);
    CHECK(m.error().find("node 'g' (Gemm): attribute 'transA' = 1 is not supported (expected 0)") != std::string::npos);
  }
  SUBCASE("non-constant Reshape shape") {
    OnnxModel m;
    m.input("x", {-1, 4}).input("s", {2}).output("y");
    m.node("Reshape", {"x", "s"}, {"y"}, "rs");
    CHECK(m.error().find("node 'rs' (Reshape): input 'shape' ('s') must be a constant") != std::string::npos);
  }
  SUBCASE("MatMul of two 2-D activations") {  // a batched product needs rank >= 3 (attention)
    OnnxModel m;
    m.input("a", {-1, 4}).input("b", {4, 3}).output("y");
    m.node("MatMul", {"a", "b"}, {"y"}, "mm");
    CHECK(m.error().find("node 'mm' (MatMul): shapes [-1,4] x [4,3] are not supported for a product of two "
                         "activations") != std::string::npos);
  }
  SUBCASE("BatchNormalization training mode") {
    OnnxModel m;
    m.input("x", {-1, 2}).output("y");
    for (const char* p : {"g", "b", "m", "v"}) m.init(p, {2}, {1.0f, 1.0f});
    m.node("BatchNormalization", {"x", "g", "b", "m", "v"}, {"y"}, "bn").i("training_mode", 1);
    CHECK(m.error().find("node 'bn' (BatchNormalization): attribute 'training_mode' = 1") != std::string::npos);
  }
  SUBCASE("Dropout mask used") {
    OnnxModel m;
    m.input("x", {-1, 2}).output("y").output("mask");
    m.node("Dropout", {"x"}, {"y", "mask"}, "do");
    CHECK(m.error().find("node 'do' (Dropout): output 'mask'") != std::string::npos);
  }
  SUBCASE("MaxPool Indices output") {
    OnnxModel m;
    m.input("x", {1, 1, 4, 4}).output("y").output("i");
    m.node("MaxPool", {"x"}, {"y", "i"}, "mp").ints("kernel_shape", {2, 2});
    CHECK(m.error().find("node 'mp' (MaxPool): output 'Indices'") != std::string::npos);
  }
  SUBCASE("Reshape allowzero with a 0") {
    OnnxModel m(14);
    m.input("x", {-1, 4}).output("y").init_i64("s", {2}, {0, 4});
    m.node("Reshape", {"x", "s"}, {"y"}, "rs").i("allowzero", 1);
    CHECK(m.error().find("attribute 'allowzero' = 1 is not supported") != std::string::npos);
  }
  SUBCASE("other domain") {
    OnnxModel m;
    m.input("x", {-1, 4}).output("y");
    m.node("Relu", {"x"}, {"y"}, "r");
    m.proto().mutable_graph()->mutable_node(0)->set_domain("com.microsoft");
    CHECK(m.error().find("node 'r' (Relu): domain 'com.microsoft' is not supported") != std::string::npos);
  }
}

TEST_CASE("onnx: bad models are errors") {
  SUBCASE("opset too old and too new") {
    for (int64_t opset : {6, 22}) {
      OnnxModel m(opset);
      m.input("x", {1, 4}).output("y");
      m.node("Relu", {"x"}, {"y"});
      CHECK(m.error().find("opset " + std::to_string(opset) + " is not supported") != std::string::npos);
    }
  }
  SUBCASE("garbage bytes") {
    const char junk[] = "\xff\xff\xff\xff this is not a protobuf \x01\x02";
    Graph g;
    Status s = import_onnx_bytes(junk, sizeof(junk), "junk.onnx", &g);
    CHECK(s.code() == StatusCode::kInvalidModel);
    CHECK(std::string(s.message()).find("junk.onnx") != std::string::npos);
  }
  SUBCASE("empty file") {
    Graph g;
    Status s = import_onnx_bytes("", 0, "empty.onnx", &g);
    CHECK(s.code() == StatusCode::kInvalidModel);
    CHECK(std::string(s.message()).find("empty") != std::string::npos);
  }
  SUBCASE("missing file") {
    Graph g;
    CHECK(import_onnx_file("/nonexistent/model.onnx", &g).code() == StatusCode::kNotFound);
  }
  SUBCASE("dynamic spatial dimension") {
    OnnxModel m;
    m.input("x", {-1, 1, 28, 28}).output("y");
    m.proto()
        .mutable_graph()
        ->mutable_input(0)
        ->mutable_type()
        ->mutable_tensor_type()
        ->mutable_shape()
        ->mutable_dim(2)
        ->set_dim_param("H");
    m.node("Relu", {"x"}, {"y"});
    CHECK(m.error().find("graph input 'x': dimension 2 is dynamic ('H')") != std::string::npos);
  }
  SUBCASE("float16 weights") {
    OnnxModel m;
    m.input("x", {-1, 2}).output("y");
    m.tensor("w16", {2, 2}, onnx::TensorProto::FLOAT16)->set_raw_data(std::string(8, '\0'));
    m.node("MatMul", {"x", "w16"}, {"y"});
    CHECK(m.error().find("tensor 'w16': dtype FLOAT16 is not supported") != std::string::npos);
  }
  SUBCASE("external data") {
    OnnxModel m;
    m.input("x", {-1, 2}).output("y");
    m.tensor("wx", {2, 2}, onnx::TensorProto::FLOAT)->set_data_location(onnx::TensorProto::EXTERNAL);
    m.node("MatMul", {"x", "wx"}, {"y"});
    CHECK(m.error().find("tensor 'wx': external data is not supported") != std::string::npos);
  }
}

TEST_CASE("onnx: unused initializers of any dtype are ignored; Constant nodes feed Reshape") {
  OnnxModel m;
  m.input("x", {-1, 2, 3}).output("y");
  m.tensor("unused16", {2}, onnx::TensorProto::FLOAT16)->set_raw_data(std::string(4, '\0'));
  auto* shape = m.proto().mutable_graph()->add_node();
  shape->set_op_type("Constant");
  shape->add_output("shape");
  auto* value = shape->add_attribute();
  value->set_name("value_ints");
  value->set_type(onnx::AttributeProto::INTS);
  value->add_ints(-1);
  value->add_ints(6);
  m.node("Reshape", {"x", "shape"}, {"y"});
  Graph g = m.import();
  const Operator& r = only_op(g, OpType::kReshape);
  CHECK(r.new_shape() == std::vector<int32_t>{-1, 6});
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  CHECK(run(g, {x}, 2, {2, 6}) == x);
}

// ---------------------------------------------------------------- the example models

TEST_CASE("onnx: the Fashion-MNIST example models import and infer shapes") {
  for (std::string name : {"lenet", "zoo", "resnet20", "mobilenetv2"}) {
    CAPTURE(name);
    const std::string path = TQ_MODELS_DIR "/" + name + ".onnx";
    if (!std::ifstream(path).good()) {
      MESSAGE("skipped (not trained yet): " << path);
      continue;
    }
    Graph g;
    Status s = import_onnx_file(path.c_str(), &g);
    REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
    REQUIRE(g.inputs.size() == 1);
    REQUIRE(g.outputs.size() == 1);
    CHECK(g.tensors[g.inputs[0]].name == "input");
    CHECK(g.tensors[g.inputs[0]].shape == std::vector<int32_t>{-1, 1, 28, 28});
    CHECK(g.tensors[g.outputs[0]].name == "logits");
    CHECK(count_ops(g, OpType::kTranspose) == 0);  // C == 1 input; flatten feeds the FC directly
    std::vector<Dims> dims;
    s = infer_shapes(g, 5, &dims);
    REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
    CHECK(dims[g.outputs[0]] == Dims::of({5, 10}));
  }
}

}  // namespace

// ---------------------------------------------------------------- forms other exporters write

TEST_CASE("onnx: NHWC<->NCHW Transpose pairs fold away; a real permutation runs once") {
  SUBCASE("NHWC input, conv sandwich, NHWC output: no Transpose runs") {
    OnnxModel m(9);
    m.input("x", {1, 5, 5, 3}).output("y");
    m.init("w", {4, 3, 3, 3}, std::vector<float>(4 * 3 * 3 * 3, 0.1f));
    m.node("Transpose", {"x"}, {"t0"}).ints("perm", {0, 3, 1, 2});
    m.node("Conv", {"t0", "w"}, {"c"}).ints("pads", {1, 1, 1, 1});
    m.node("Transpose", {"c"}, {"y"}).ints("perm", {0, 2, 3, 1});
    const Graph g = m.import();
    CHECK(count_ops(g, OpType::kTranspose) == 0);
    CHECK(count_ops(g, OpType::kConv2D) == 1);
    CHECK(g.tensors[g.outputs[0]].shape == std::vector<int32_t>{1, 5, 5, 4});
  }
  SUBCASE("H and W swapped between convs: one Transpose, composed with the NHWC layout") {
    OnnxModel m;
    m.input("x", {1, 2, 4, 6}).output("y");
    m.init("w", {3, 2, 1, 1}, std::vector<float>(6, 0.5f));
    m.node("Conv", {"x", "w"}, {"c"});
    m.node("Transpose", {"c"}, {"t"}).ints("perm", {0, 1, 3, 2});
    m.node("Conv", {"t", "w2"}, {"y"});
    m.init("w2", {2, 3, 1, 1}, std::vector<float>(6, 0.25f));
    const Graph g = m.import();
    std::vector<std::vector<int32_t>> perms;
    for (const Operator& op : g.operators)
      if (op.type == OpType::kTranspose) perms.push_back(op.perm());
    // input NCHW->NHWC, the swap of H and W in NHWC, output NHWC->NCHW
    REQUIRE(perms.size() == 3);
    CHECK(perms[1] == std::vector<int32_t>{0, 2, 1, 3});
  }
  SUBCASE("a Transpose that only moves a size-1 dim is a Reshape") {
    OnnxModel m;
    m.input("x", {2, 1, 5}).output("y");
    m.node("Transpose", {"x"}, {"y"}).ints("perm", {0, 2, 1});
    const Graph g = m.import();
    CHECK(count_ops(g, OpType::kTranspose) == 0);
    CHECK(count_ops(g, OpType::kReshape) == 1);
  }
}

TEST_CASE("onnx: Mul(x, HardSigmoid(x)) becomes one HardSwish; other elementwise ops one Unary each") {
  OnnxModel m;
  m.input("x", {1, 8}).output("y");
  m.node("HardSigmoid", {"x"}, {"h"}).f("alpha", 1.0f / 6.0f).f("beta", 0.5f);
  m.node("Mul", {"h", "x"}, {"s"});
  m.node("LeakyRelu", {"s"}, {"l"}).f("alpha", 0.2f);
  m.node("Pow", {"l", "p"}, {"y"});
  m.init("p", {}, {0.5f});
  const Graph g = m.import();
  REQUIRE(g.operators.size() == 3);
  CHECK(g.operators[0].unary().kind == UnaryKind::kHardSwish);
  CHECK(g.operators[1].unary().kind == UnaryKind::kLeakyRelu);
  CHECK(g.operators[1].unary().alpha == 0.2f);
  CHECK(g.operators[2].unary().kind == UnaryKind::kSqrt);
}

TEST_CASE("onnx: per-opset forms that cannot be imported are errors naming the node") {
  SUBCASE("BatchNormalization spatial=0 (opset 7)") {
    OnnxModel m(7);
    m.input("x", {1, 2, 3, 3}).output("y");
    for (const char* p : {"s", "b", "mu", "var"}) m.init(p, {2}, {1.0f, 1.0f});
    m.node("BatchNormalization", {"x", "s", "b", "mu", "var"}, {"y"}, "bn").i("spatial", 0);
    const std::string e = m.error();
    CHECK(e.find("node 'bn'") != std::string::npos);
    CHECK(e.find("'spatial'") != std::string::npos);
  }
  SUBCASE("an op newer than the declared opset") {
    OnnxModel m(13);
    m.input("x", {1, 4}).output("y");
    m.node("HardSwish", {"x"}, {"y"}, "hs");
    CHECK(m.error().find("exists from opset 14") != std::string::npos);
  }
  SUBCASE("ReduceMean over axes that are not consecutive, or over the batch") {
    OnnxModel m(13);
    m.input("x", {1, 4, 3, 3}).output("y");
    m.node("ReduceMean", {"x"}, {"y"}, "rm").ints("axes", {1, 3});
    const std::string e = m.error();
    CHECK(e.find("node 'rm' (ReduceMean)") != std::string::npos);
    CHECK(e.find("axes [1,3]") != std::string::npos);
    OnnxModel b(13);
    b.input("x", {2, 4}).output("y");
    b.node("ReduceMean", {"x"}, {"y"}, "rm").ints("axes", {0});
    CHECK(b.error().find("consecutive axes after the batch") != std::string::npos);
  }
  SUBCASE("Squeeze of a dim that is not 1") {
    OnnxModel m(11);
    m.input("x", {1, 4, 3}).output("y");
    m.node("Squeeze", {"x"}, {"y"}, "sq").ints("axes", {1});
    CHECK(m.error().find("cannot be squeezed") != std::string::npos);
  }
  SUBCASE("arithmetic on the dynamic batch size") {
    OnnxModel m(13);
    m.input("x", {-1, 4}).output("y");
    m.node("Shape", {"x"}, {"s"});
    m.node("Cast", {"s"}, {"sf"}, "cast").i("to", onnx::TensorProto::FLOAT);
    m.node("Add", {"x", "sf"}, {"y"});
    const std::string e = m.error();
    CHECK(e.find("node 'cast'") != std::string::npos);
    CHECK(e.find("dynamic batch") != std::string::npos);
  }
  SUBCASE("a Transpose that moves the dynamic batch") {
    OnnxModel m(13);
    m.input("x", {-1, 4}).output("y");
    m.node("Transpose", {"x"}, {"y"}, "tr").ints("perm", {1, 0});
    CHECK(m.error().find("keeps the dynamic batch") != std::string::npos);
  }
}

TEST_CASE("onnx: x.view(x.size(0), -1) with a dynamic batch keeps the batch dynamic") {
  OnnxModel m(13);
  m.input("x", {-1, 2, 3, 3}).output("y");
  m.init_i64("zero", {}, {0});
  m.init_i64("ax", {1}, {0});
  m.init_i64("minus1", {1}, {-1});
  m.node("Shape", {"x"}, {"s"});
  m.node("Gather", {"s", "zero"}, {"n"}).i("axis", 0);
  m.node("Unsqueeze", {"n", "ax"}, {"n1"});
  m.node("Concat", {"n1", "minus1"}, {"target"}).i("axis", 0);
  m.node("Reshape", {"x", "target"}, {"y"});
  const Graph g = m.import();
  CHECK(g.tensors[g.outputs[0]].shape == std::vector<int32_t>{-1, 18});
}

// ---------------------------------------------------------------- fuzzing

namespace {

// A small model with a bit of everything the importer handles: NHWC input and Transposes, conv,
// unary ops and the HardSwish pattern, a shape subgraph, ReduceMean, Squeeze, Gemm.
std::string fuzz_seed_model() {
  OnnxModel m(13);
  m.input("x", {1, 6, 6, 2}).output("y");
  m.init("w", {3, 2, 3, 3}, std::vector<float>(54, 0.05f));
  m.init("b", {3}, {0.1f, -0.1f, 0.2f});
  m.init("fc", {3, 4}, std::vector<float>(12, 0.3f));
  m.init_i64("axes", {2}, {2, 3});
  m.init_i64("zero", {}, {0});
  m.init_i64("ax0", {1}, {0});
  m.init_i64("minus1", {1}, {-1});
  m.node("Transpose", {"x"}, {"t"}).ints("perm", {0, 3, 1, 2});
  m.node("Conv", {"t", "w", "b"}, {"c"}).ints("pads", {1, 1, 1, 1});
  m.node("HardSigmoid", {"c"}, {"h"}).f("alpha", 1.0f / 6.0f).f("beta", 0.5f);
  m.node("Mul", {"c", "h"}, {"hs"});
  m.node("Sigmoid", {"hs"}, {"sg"});
  m.node("ReduceMean", {"sg"}, {"rm"}).ints("axes", {2, 3}).i("keepdims", 1);
  m.node("Squeeze", {"rm", "axes"}, {"sq"});
  m.node("Shape", {"sq"}, {"shape"});
  m.node("Gather", {"shape", "zero"}, {"n"}).i("axis", 0);
  m.node("Unsqueeze", {"n", "ax0"}, {"n1"});
  m.node("Concat", {"n1", "minus1"}, {"target"}).i("axis", 0);
  m.node("Reshape", {"sq", "target"}, {"flat"});
  m.node("Gemm", {"flat", "fc"}, {"g"});
  m.node("Softmax", {"g"}, {"y"}).i("axis", -1);
  REQUIRE(m.import().operators.size() > 3);
  return m.bytes();
}

// Imports bytes that may be anything: an error or a graph that validates, never a crash.
void import_must_not_crash(const std::string& bytes, int* ok) {
  Graph g;
  const Status s = import_onnx_bytes(bytes.data(), bytes.size(), "fuzz.onnx", &g);
  if (s.is_ok()) {
    ++*ok;
    std::vector<Dims> dims;
    CHECK(infer_shapes(g, 0, &dims).is_ok());
  } else {
    CHECK(std::strlen(s.message()) > 0);
    CHECK(g.operators.empty());
  }
}

}  // namespace

TEST_CASE("onnx fuzz: truncated, bit-flipped and structurally mutated models never crash the importer") {
  // TQ_FUZZ_SEED=N explores other mutations locally; CI runs the fixed seed.
  const char* env_seed = std::getenv("TQ_FUZZ_SEED");
  std::mt19937 rng(env_seed ? static_cast<uint32_t>(std::atoi(env_seed)) : 2024u);
  std::vector<std::string> seeds = {fuzz_seed_model()};
  {
    std::ifstream f(std::string(TQ_MODELS_DIR) + "/zoo.onnx", std::ios::binary);
    seeds.emplace_back((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    REQUIRE(seeds.back().size() > 1000);
  }
  int imported = 0, tried = 0;
  for (const std::string& seed : seeds) {
    for (int i = 0; i < 300; ++i, ++tried)  // every truncation length is a different parse
      import_must_not_crash(seed.substr(0, std::uniform_int_distribution<size_t>(0, seed.size() - 1)(rng)), &imported);
    for (int i = 0; i < 1500; ++i, ++tried) {
      std::string b = seed;
      const int flips = std::uniform_int_distribution<int>(1, 4)(rng);
      for (int k = 0; k < flips; ++k) {
        // Bias the flips toward the structure (nodes, attributes, shapes), away from the weights,
        // which sit at the end of the graph message in these files.
        const size_t span = std::min<size_t>(b.size(), i % 2 ? 4096 : b.size());
        b[std::uniform_int_distribution<size_t>(0, span - 1)(rng)] ^= static_cast<char>(1 << (rng() % 8));
      }
      import_must_not_crash(b, &imported);
    }
  }
  // Structural mutations the byte flips rarely reach: another op type, attribute values far out
  // of range, wrong dtypes and dims on initializers, inputs renamed.
  onnx::ModelProto base;
  REQUIRE(base.ParseFromString(seeds[0]));
  static const char* const kOps[] = {"Conv",      "Transpose", "ReduceMean", "Squeeze", "Unsqueeze", "Shape",
                                     "Gather",    "Concat",    "Reshape",    "Gemm",    "MatMul",    "Pad",
                                     "Sigmoid",   "Pow",       "Sub",        "Div",     "Clip",      "Softmax",
                                     "Flatten",   "AveragePool", "MaxPool",  "BatchNormalization", "Slice",
                                     "ConstantOfShape", "Cast", "HardSwish", "Gelu", "Identity"};
  const int64_t kValues[] = {-1, 0, 1, 2, 3, 7, -7, 1 << 20, -(int64_t{1} << 40), int64_t{1} << 40};
  for (int i = 0; i < 3000; ++i, ++tried) {
    onnx::ModelProto m = base;
    onnx::GraphProto* g = m.mutable_graph();
    const int kinds = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int k = 0; k < kinds; ++k) {
      onnx::NodeProto* n = g->mutable_node(std::uniform_int_distribution<int>(0, g->node_size() - 1)(rng));
      switch (rng() % 7) {
        case 0: n->set_op_type(kOps[rng() % (sizeof(kOps) / sizeof(kOps[0]))]); break;
        case 1:
          if (n->attribute_size() > 0) {
            onnx::AttributeProto* a = n->mutable_attribute(rng() % n->attribute_size());
            const int64_t v = kValues[rng() % (sizeof(kValues) / sizeof(kValues[0]))];
            if (a->ints_size() > 0) a->set_ints(rng() % a->ints_size(), v);
            a->set_i(v);
            a->set_f(static_cast<float>(v) * 0.37f);
          }
          break;
        case 2: {
          onnx::TensorProto* t = g->mutable_initializer(rng() % g->initializer_size());
          if (t->dims_size() > 0) t->set_dims(rng() % t->dims_size(), kValues[rng() % 10]);
          break;
        }
        case 3: g->mutable_initializer(rng() % g->initializer_size())->set_data_type(static_cast<int32_t>(rng() % 17)); break;
        case 4:
          if (n->input_size() > 0) n->set_input(rng() % n->input_size(), g->node(rng() % g->node_size()).output(0));
          break;
        case 5: n->add_input(g->initializer(rng() % g->initializer_size()).name()); break;
        default: m.mutable_opset_import(0)->set_version(std::uniform_int_distribution<int>(1, 25)(rng)); break;
      }
    }
    import_must_not_crash(m.SerializeAsString(), &imported);
  }
  MESSAGE(tried, " mutated models: ", imported, " imported (and passed infer_shapes), the rest were errors");
  CHECK(imported > 0);
}

TEST_CASE("onnx: dynamic spatial dims are bound with ImportOptions::input_shapes, or the error says how") {
  OnnxModel m(13);
  auto* shp = m.proto().mutable_graph()->add_input();
  shp->set_name("x");
  auto* tt = shp->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("N");
  tt->mutable_shape()->add_dim()->set_dim_value(2);
  tt->mutable_shape()->add_dim()->set_dim_param("height");
  tt->mutable_shape()->add_dim()->set_dim_param("width");
  m.output("y");
  m.init("w", {3, 2, 3, 3}, std::vector<float>(54, 0.1f));
  m.node("Conv", {"x", "w"}, {"y"}).ints("pads", {1, 1, 1, 1});
  const std::string e = m.error();
  CHECK(e.find("dimension 2 is dynamic ('height')") != std::string::npos);
  CHECK(e.find("--input-shape x=1,2,?,?") != std::string::npos);

  const std::string bytes = m.bytes();
  ImportOptions opt;
  InputShape b;
  REQUIRE(parse_input_shape("x=-1,2,48,64", &b).is_ok());
  opt.input_shapes = {b};
  Graph g;
  Status s = import_onnx_bytes(bytes.data(), bytes.size(), "dyn.onnx", &g, opt);
  REQUIRE_MESSAGE(s.is_ok(), std::string(s.message()));
  CHECK(g.tensors[g.inputs[0]].shape == std::vector<int32_t>{-1, 2, 48, 64});
  std::vector<Dims> dims;
  REQUIRE(infer_shapes(g, 3, &dims).is_ok());
  CHECK(dims[g.outputs[0]] == Dims::of({3, 3, 48, 64}));

  for (const char* bad : {"x=1,3,48,64", "z=1,2,4,4", "x=1,2,4"}) {
    CAPTURE(bad);
    REQUIRE(parse_input_shape(bad, &b).is_ok());
    opt.input_shapes = {b};
    s = import_onnx_bytes(bytes.data(), bytes.size(), "dyn.onnx", &g, opt);
    CHECK_FALSE(s.is_ok());
    CHECK(std::string(s.message()).find("--input-shape") != std::string::npos);
  }
  for (const char* bad : {"x", "=1,2", "x=", "x=1,,2", "x=1,-1", "x=0,2", "x=1,2,3,4,5,6,7"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_input_shape(bad, &b).is_ok());
  }
}

TEST_CASE("onnx: Slice, Resize, LayerNormalization forms we do not take are errors naming the node") {
  SUBCASE("negative Slice step") {
    OnnxModel m(13);
    m.input("x", {1, 8}).output("y");
    m.init_i64("s", {1}, {7});
    m.init_i64("e", {1}, {0});
    m.init_i64("a", {1}, {1});
    m.init_i64("st", {1}, {-1});
    m.node("Slice", {"x", "s", "e", "a", "st"}, {"y"}, "rev");
    const std::string e = m.error();
    CHECK(e.find("node 'rev' (Slice)") != std::string::npos);
    CHECK(e.find("step -1") != std::string::npos);
  }
  SUBCASE("cubic Resize") {
    OnnxModel m(13);
    m.input("x", {1, 2, 4, 4}).output("y");
    m.init("sc", {4}, {1, 1, 2, 2});
    m.node("Resize", {"x", "", "sc"}, {"y"}, "up").s("mode", "cubic");
    const std::string e = m.error();
    CHECK(e.find("node 'up' (Resize)") != std::string::npos);
    CHECK(e.find("'mode' = cubic") != std::string::npos);
  }
  SUBCASE("Resize of the channels") {
    OnnxModel m(13);
    m.input("x", {1, 2, 4, 4}).output("y");
    m.init("sc", {4}, {1, 2, 1, 1});
    m.node("Resize", {"x", "", "sc"}, {"y"}, "up");
    CHECK(m.error().find("batch or channel") != std::string::npos);
  }
  SUBCASE("LayerNormalization over more than the last axis") {
    OnnxModel m(17);
    m.input("x", {1, 3, 4}).output("y");
    m.init("g", {3, 4}, std::vector<float>(12, 1.0f));
    m.node("LayerNormalization", {"x", "g"}, {"y"}, "ln").i("axis", 1);
    CHECK(m.error().find("'axis' = 1") != std::string::npos);
  }
}

TEST_CASE("onnx: Split becomes one Slice per read output; PyTorch's decomposed GELU one Unary") {
  OnnxModel m(13);
  m.input("x", {1, 6}).output("y");
  m.init_i64("split", {3}, {1, 2, 3});
  m.init("sqrt2", {}, {1.41421356f});
  m.init("one", {}, {1.0f});
  m.init("half", {}, {0.5f});
  m.node("Split", {"x", "split"}, {"a", "b", "unused"}).i("axis", 1);
  m.node("Div", {"b", "sqrt2"}, {"d"});
  m.node("Erf", {"d"}, {"e"});
  m.node("Add", {"e", "one"}, {"p"});
  m.node("Mul", {"b", "p"}, {"q"});
  m.node("Mul", {"q", "half"}, {"g"});
  m.node("Concat", {"a", "g"}, {"y"}).i("axis", 1);
  const Graph g = m.import();
  std::vector<OpType> types;
  for (const Operator& op : g.operators) types.push_back(op.type);
  CHECK(types == std::vector<OpType>{OpType::kSlice, OpType::kSlice, OpType::kUnary, OpType::kConcat});
  CHECK(g.operators[2].unary().kind == UnaryKind::kGelu);
  CHECK(g.operators[1].slice().begin == std::vector<int32_t>{0, 1});
  CHECK(g.operators[1].slice().end == std::vector<int32_t>{kSliceToEnd, 3});
}

TEST_CASE("onnx: ConvTranspose forms we do not take are errors naming the node") {
  OnnxModel m(13);
  m.input("x", {1, 2, 4, 4}).output("y");
  m.init("w", {2, 3, 3, 3}, std::vector<float>(54, 0.1f));
  m.node("ConvTranspose", {"x", "w"}, {"y"}, "up").ints("strides", {2, 2}).ints("output_shape", {1, 3, 20, 20});
  const std::string e = m.error();
  CHECK(e.find("node 'up' (ConvTranspose)") != std::string::npos);
  CHECK(e.find("'output_shape'") != std::string::npos);
  OnnxModel same(13);
  same.input("x", {1, 2, 4, 4}).output("y");
  same.init("w", {2, 3, 3, 3}, std::vector<float>(54, 0.1f));
  same.node("ConvTranspose", {"x", "w"}, {"y"}, "up").s("auto_pad", "SAME_UPPER");
  CHECK(same.error().find("'auto_pad' = SAME_UPPER") != std::string::npos);
  OnnxModel ok(13);  // the same size the pads give: accepted
  ok.input("x", {1, 2, 4, 4}).output("y");
  ok.init("w", {2, 3, 3, 3}, std::vector<float>(54, 0.1f));
  ok.node("ConvTranspose", {"x", "w"}, {"y"}, "up").ints("strides", {2, 2}).ints("output_shape", {9, 9});
  const Graph g = ok.import();
  CHECK(g.tensors[g.outputs[0]].shape == std::vector<int32_t>{1, 3, 9, 9});
}

TEST_CASE("onnx: Sub of a constant is an Add of its negation (exact, and int8-capable); c - x stays a Sub") {
  OnnxModel m(13);
  m.input("x", {1, 3}).output("y");
  m.init("c", {3}, {0.5f, -1.0f, 2.0f});
  m.node("Sub", {"x", "c"}, {"d"});
  m.node("Sub", {"c", "d"}, {"y"});
  const Graph g = m.import();
  REQUIRE(g.operators.size() == 2);
  CHECK(g.operators[0].type == OpType::kAdd);
  const float* neg = g.constant_data<float>(g.operators[0].inputs[1]);
  CHECK(neg[0] == -0.5f);
  CHECK(neg[1] == 1.0f);
  CHECK(neg[2] == -2.0f);
  CHECK(g.operators[1].type == OpType::kSub);
}

TEST_CASE("onnx: ReduceMean over the channels of an NHWC-held value reduces in place (no Transpose)") {
  OnnxModel m(13);
  m.input("x", {1, 2, 5, 5}).output("y");
  m.init("w", {6, 2, 3, 3}, std::vector<float>(108, 0.1f));
  m.node("Conv", {"x", "w"}, {"c"}).ints("pads", {1, 1, 1, 1});
  m.node("ReduceMean", {"c"}, {"m"}).ints("axes", {1}).i("keepdims", 1);
  m.node("Mul", {"c", "m"}, {"y"});
  const Graph g = m.import();
  int transposes = 0, pools = 0;
  for (const Operator& op : g.operators) {
    transposes += op.type == OpType::kTranspose;
    pools += op.type == OpType::kGlobalAveragePool;
  }
  CHECK(pools == 1);
  CHECK(transposes == 2);  // the graph input's NCHW->NHWC and the output's NHWC->NCHW only
}

TEST_CASE("onnx: arithmetic on float constants is folded at import") {
  OnnxModel m(13);
  m.input("x", {1, 3}).output("y");
  m.init("a", {3}, {1.0f, 2.0f, 3.0f});
  m.init("b", {}, {0.5f});
  m.node("Mul", {"a", "b"}, {"ab"});  // a computed constant: [0.5, 1, 1.5]
  m.node("Sub", {"ab", "b"}, {"c"});  // [0, 0.5, 1]
  m.node("Add", {"x", "c"}, {"y"});
  const Graph g = m.import();
  REQUIRE(g.operators.size() == 1);
  const float* c = g.constant_data<float>(g.operators[0].inputs[1]);
  CHECK(c[0] == 0.0f);
  CHECK(c[1] == 0.5f);
  CHECK(c[2] == 1.0f);
}

TEST_CASE("onnx: a token embedding, Add(bias, MatMul) folded into the FC, and a product of two activations") {
  std::mt19937 rng(31);
  const int V = 5, D = 4, T = 3, O = 2;
  std::vector<float> table = random_floats(rng, V * D), w = random_floats(rng, D * O), bias = random_floats(rng, O);
  OnnxModel m;
  m.ids_input("tokens", {-1, T}).output("y").output("s");
  m.init("table", {V, D}, table).init("w", {D, O}, w).init("bias", {O}, bias);
  m.node("Gather", {"table", "tokens"}, {"emb"});
  m.node("MatMul", {"emb", "w"}, {"mm"});
  m.node("Add", {"bias", "mm"}, {"y"});  // PyTorch's order for a Linear on a sequence
  m.node("Transpose", {"emb"}, {"embT"}).ints("perm", {0, 2, 1});
  m.node("MatMul", {"emb", "embT"}, {"s"});
  Graph g = m.import();
  int gathers = 0, fcs = 0, adds = 0, matmuls = 0;
  for (const Operator& op : g.operators) {
    gathers += op.type == OpType::kGather;
    fcs += op.type == OpType::kFullyConnected && op.inputs.size() == 3 && op.inputs[2] >= 0;
    adds += op.type == OpType::kAdd;
    matmuls += op.type == OpType::kBatchMatMul;
  }
  CHECK(gathers == 1);
  CHECK(fcs == 1);   // the bias folded in
  CHECK(adds == 0);
  CHECK(matmuls == 1);
  CHECK(g.tensors[g.inputs[0]].dtype == DType::kFloat32);  // ids enter as float32
  const int N = 2;
  const std::vector<float> ids = {0, 4, 2, 3, 3, 1};
  Interpreter it;
  PrepareOptions opt;
  opt.batch = N;
  REQUIRE(it.prepare(g, opt).is_ok());
  std::copy(ids.begin(), ids.end(), it.input(0).as<float>());
  REQUIRE(it.invoke().is_ok());
  const float* y = it.output(0).as<const float>();
  const float* sc = it.output(1).as<const float>();
  for (int i = 0; i < N * T; ++i) {
    const float* e = &table[size_t(ids[i]) * D];
    for (int o = 0; o < O; ++o) {
      double want = bias[o];
      for (int d = 0; d < D; ++d) want += double(e[d]) * w[d * O + o];
      CHECK(y[i * O + o] == doctest::Approx(want).epsilon(1e-5));
    }
  }
  for (int n = 0; n < N; ++n)
    for (int a = 0; a < T; ++a)
      for (int b = 0; b < T; ++b) {
        double want = 0.0;
        for (int d = 0; d < D; ++d) want += double(table[size_t(ids[n * T + a]) * D + d]) * table[size_t(ids[n * T + b]) * D + d];
        CHECK(sc[(n * T + a) * T + b] == doctest::Approx(want).epsilon(1e-5));
      }
  SUBCASE("a Gather whose indices are computed is refused, naming the node") {
    OnnxModel bad;
    bad.input("x", {-1, T}).output("e").init("table", {V, D}, table);
    bad.node("Gather", {"table", "x"}, {"e"}, "emb");
    CHECK(bad.error().find("node 'emb' (Gather): indices 'x' must be a graph input of integer token ids") !=
          std::string::npos);
  }
}
