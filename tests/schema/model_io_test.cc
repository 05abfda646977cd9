// .tqm files: round trips, rejections with clear messages, and a mutation fuzzer whose
// loaded-OK survivors are run through shape inference, the writer and the interpreter.
#include "tinyquant/model_io.h"

#include <doctest/doctest.h>

#include <algorithm>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "schema/test_graphs.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/shape_inference.h"
#include "tinyquant_generated.h"

using namespace tinyquant;
using tinyquant::testing::check_same_graph;
using tinyquant::testing::make_every_op_graph;
using tinyquant::testing::make_quantized_graph;
using tinyquant::testing::make_small_graph;

namespace {

constexpr const char* kSource = "test.tqm";

std::vector<uint8_t> serialize(const Graph& g) {
  std::vector<uint8_t> bytes;
  const Status s = serialize_model(g, &bytes);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  return bytes;
}

// "" when `bytes` load, else the error, which must start with the source name.
std::string load_error(const std::vector<uint8_t>& bytes, Graph* out = nullptr) {
  Graph scratch;
  const Status s = load_model(bytes.data(), bytes.size(), out ? out : &scratch, kSource);
  if (s.is_ok()) return "";
  const std::string message = s.message();
  CHECK_MESSAGE(message.rfind(std::string(kSource) + ": ", 0) == 0, message);
  return message;
}

#define CHECK_REJECTED(bytes, expected)                                             \
  do {                                                                              \
    const std::string error_ = load_error(bytes);                                   \
    CHECK_MESSAGE(error_.find(expected) != std::string::npos, "got: '", error_, "'"); \
  } while (0)

int32_t tensor_index(const Graph& g, const char* name) {
  for (size_t i = 0; i < g.tensors.size(); ++i)
    if (g.tensors[i].name == name) return int32_t(i);
  FAIL("no tensor " << name);
  return -1;
}

// Tests find a field's bytes through the generated read-only accessors, then patch them.
size_t offset_in(const std::vector<uint8_t>& bytes, const void* p) {
  return size_t(static_cast<const uint8_t*>(p) - bytes.data());
}

template <typename Table>
size_t field_offset(const std::vector<uint8_t>& bytes, const Table* table, flatbuffers::voffset_t field) {
  const uint8_t* p = reinterpret_cast<const flatbuffers::Table*>(table)->GetAddressOf(field);
  REQUIRE_MESSAGE(p != nullptr, "field not stored (it equals its default)");
  return offset_in(bytes, p);
}

uint32_t peek32(const std::vector<uint8_t>& bytes, size_t offset) {
  uint32_t v;
  std::memcpy(&v, bytes.data() + offset, 4);  // .tqm is little-endian, like every host we test on
  return v;
}

std::vector<uint8_t> poke32(std::vector<uint8_t> bytes, size_t offset, uint32_t value) {
  std::memcpy(bytes.data() + offset, &value, 4);
  return bytes;
}

const fb::Model& model_of(const std::vector<uint8_t>& bytes) { return *fb::GetModel(bytes.data()); }

}  // namespace

TEST_CASE("tqm: round trip keeps every field") {
  for (const Graph& graph : {make_small_graph(), make_every_op_graph(), make_quantized_graph()}) {
    CAPTURE(graph.producer);
    const std::vector<uint8_t> bytes = serialize(graph);
    Graph loaded;
    REQUIRE(load_error(bytes, &loaded) == "");
    check_same_graph(graph, loaded);
    CHECK(serialize(loaded) == bytes);  // deterministic, and nothing lost
  }
}

TEST_CASE("tqm: constants are read in place, 16-byte aligned") {
  const std::vector<uint8_t> bytes = serialize(make_small_graph());
  Graph g;
  REQUIRE(load_error(bytes, &g) == "");
  CHECK(g.storage.get() == nullptr);  // the caller owns the bytes
  for (const Buffer& b : g.buffers) {
    CHECK(b.owned.empty());
    REQUIRE(b.external != nullptr);
    CHECK(b.external >= bytes.data());
    CHECK(b.external + b.size() <= bytes.data() + bytes.size());
    CHECK(offset_in(bytes, b.external) % 16 == 0);
  }
}

TEST_CASE("tqm: misaligned bytes are copied, not read unaligned") {
  const Graph graph = make_small_graph();
  const std::vector<uint8_t> bytes = serialize(graph);
  std::vector<uint8_t> shifted(bytes.size() + 1);
  std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
  Graph g;
  const Status s = load_model(shifted.data() + 1, bytes.size(), &g, kSource);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  CHECK(bool(g.storage));
  for (const Buffer& b : g.buffers) CHECK(reinterpret_cast<uintptr_t>(b.data()) % 16 == 0);
  check_same_graph(graph, g);
}

TEST_CASE("tqm: a model read in place views its names, scales, shapes and op tensor lists in the file") {
  const Graph graph = make_quantized_graph();
  std::vector<uint8_t> bytes = serialize(graph);
  const std::vector<uint8_t> original = bytes;
  Graph g;
  const Status s = load_model(bytes.data(), bytes.size(), &g, kSource);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  const uint8_t* lo = bytes.data();
  const uint8_t* hi = bytes.data() + bytes.size();
  auto inside = [&](const void* p) { return p >= static_cast<const void*>(lo) && p < static_cast<const void*>(hi); };
  int scales = 0;
  for (const Tensor& t : g.tensors) {
    CHECK(t.name.is_view());
    CHECK(inside(t.name.c_str()));
    CHECK(t.shape.is_view());
    CHECK(inside(static_cast<const FlatVector<int32_t>&>(t.shape).data()));
    if (!t.quant.scale.empty()) {
      ++scales;
      CHECK(t.quant.scale.is_view());
      CHECK(inside(static_cast<const FlatVector<float>&>(t.quant.scale).data()));
    }
  }
  CHECK(scales > 0);
  for (const Operator& op : g.operators) {
    CHECK(op.inputs.is_view());
    CHECK((op.name.empty() || (op.name.is_view() && inside(op.name.c_str()))));
  }
  check_same_graph(graph, g);
  // A copy of the loaded graph (e.g. the simulated graph quant/ derives) owns its names.
  const Graph copy = g;
  CHECK_FALSE(copy.tensors[0].name.is_view());
  CHECK(copy.tensors[0].name == g.tensors[0].name);
  // Editing the loaded graph (as recalibration does) copies first: the file's bytes stay.
  for (Tensor& t : g.tensors)
    if (!t.quant.scale.empty()) t.quant.scale[0] *= 2.0f;
  g.operators[0].outputs.push_back(0);
  g.tensors[0].name += ":renamed";
  CHECK(g.tensors[0].name == copy.tensors[0].name + ":renamed");
  CHECK(bytes == original);
}

TEST_CASE("tqm: bit-packed constants take exactly ceil(elements x bits / 8) bytes") {
  for (int bits = 2; bits <= 8; ++bits) {
    CAPTURE(bits);
    Graph graph = make_small_graph(bits);
    const int32_t q = tensor_index(graph, "fc/w_q4");
    graph.tensors[q].shape = {5, 7};  // 35 elements: most widths end in a partial byte
    const size_t expected = size_t(35 * bits + 7) / 8;
    graph.buffers[graph.tensors[q].buffer].owned.resize(expected);
    const std::vector<uint8_t> bytes = serialize(graph);
    Graph g;
    REQUIRE(load_error(bytes, &g) == "");
    CHECK(g.buffers[g.tensors[q].buffer].size() == expected);

    // One byte short in the file: the loader names tensor, buffer and the expected size.
    const fb::Model& m = model_of(bytes);
    const size_t length_at = offset_in(bytes, m.buffers()->Get(uint32_t(graph.tensors[q].buffer))->data());
    const std::string want = "tensor " + std::to_string(q) + " 'fc/w_q4': buffer " +
                             std::to_string(graph.tensors[q].buffer) + " holds " + std::to_string(expected - 1) +
                             " bytes, expected " + std::to_string(expected) + " (int8 [5,7] at " +
                             std::to_string(bits) + " bits)";
    CHECK_REJECTED(poke32(bytes, length_at, uint32_t(expected - 1)), want);

    // The writer refuses a wrongly sized constant before writing anything.
    graph.buffers[graph.tensors[q].buffer].owned.resize(expected + 1);
    std::vector<uint8_t> out;
    CHECK_FALSE(serialize_model(graph, &out).is_ok());
    CHECK(out.empty());
  }
}

TEST_CASE("tqm: truncated files are rejected at every length") {
  Graph no_constants;  // the writer pads this one itself; the others end in 16-byte-aligned weights
  const int32_t x = no_constants.add_tensor("x", DType::kFloat32, {-1, 3});
  const int32_t y = no_constants.add_tensor("y", DType::kFloat32, {-1, 3});
  no_constants.add_operator(tinyquant::testing::make_op(OpType::kSoftmax, "softmax", {x}, y));
  no_constants.inputs = {x};
  no_constants.outputs = {y};
  for (const Graph& graph : {make_small_graph(), make_every_op_graph(), make_quantized_graph(), no_constants}) {
    const std::vector<uint8_t> bytes = serialize(graph);
    CHECK(bytes.size() % 16 == 0);
    REQUIRE(load_error(bytes) == "");
    for (size_t length = 0; length < bytes.size(); ++length) {
      CAPTURE(length);
      Graph g;
      const Status s = load_model(bytes.data(), length, &g, kSource);
      REQUIRE_FALSE(s.is_ok());
      CHECK(std::string(s.message()).rfind("test.tqm: ", 0) == 0);
    }
    Graph g;
    CHECK(std::string(load_model(bytes.data(), bytes.size() - 4, &g, kSource).message()) ==
          "test.tqm: " + std::to_string(bytes.size() - 4) + " bytes is not a multiple of 16: the file is truncated");
  }
  Graph g;
  const std::vector<uint8_t> bytes = serialize(make_small_graph());
  CHECK(load_model(nullptr, bytes.size(), &g, kSource).code() == StatusCode::kInvalidArgument);
  CHECK(std::string(load_model(bytes.data(), 3, &g, kSource).message()) ==
        "test.tqm: 3 bytes is too small for a .tqm model");
}

TEST_CASE("tqm: other files are not tinyquant models") {
  std::vector<uint8_t> bytes = serialize(make_small_graph());
  std::memcpy(bytes.data() + 4, "TFL3", 4);
  CHECK_REJECTED(bytes, "test.tqm: not a tinyquant model (identifier 'TFL3', expected 'TQM0')");
  const std::string text = "just some text, certainly not a model";
  CHECK_REJECTED(std::vector<uint8_t>(text.begin(), text.end()), "not a tinyquant model (identifier ' som', expected 'TQM0')");
}

TEST_CASE("tqm: every single bit flip is rejected with a message or loads a valid graph") {
  std::vector<uint8_t> bytes = serialize(make_small_graph());
  int rejected = 0;
  for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    bytes[bit / 8] ^= uint8_t(1u << (bit % 8));
    Graph g;
    const Status s = load_model(bytes.data(), bytes.size(), &g, kSource);
    if (!s.is_ok()) {
      ++rejected;
      REQUIRE(std::strlen(s.message()) > std::strlen("test.tqm: "));
    } else {
      REQUIRE(validate_graph(g).is_ok());
    }
    if (bit / 8 >= 4 && bit / 8 < 8) CHECK(!s.is_ok());  // the identifier
    bytes[bit / 8] ^= uint8_t(1u << (bit % 8));
  }
  MESSAGE(rejected << " of " << bytes.size() * 8 << " bit flips rejected");
  CHECK(rejected > 0);
}

TEST_CASE("tqm: oversized declared vectors are rejected") {
  const std::vector<uint8_t> bytes = serialize(make_small_graph());
  const fb::Model& m = model_of(bytes);
  const size_t length_fields[] = {
      offset_in(bytes, m.tensors()),
      offset_in(bytes, m.operators()),
      offset_in(bytes, m.buffers()->Get(2)->data()),
      offset_in(bytes, m.tensors()->Get(0)->name()),
      offset_in(bytes, m.tensors()->Get(0)->shape()),
      offset_in(bytes, m.operators()->Get(0)->inputs()),
  };
  for (size_t at : length_fields) {
    for (uint32_t length : std::initializer_list<uint32_t>{uint32_t(bytes.size()), uint32_t(bytes.size() - at), 0x7fffffffu, 0x80000000u,
                            0xffffffffu}) {
      CAPTURE(at);
      CAPTURE(length);
      CHECK_REJECTED(poke32(bytes, at, length), "test.tqm: FlatBuffers verification failed");
    }
  }
}

TEST_CASE("tqm: out-of-range indices name the operator or tensor") {
  const std::vector<uint8_t> bytes = serialize(make_small_graph());
  const fb::Model& m = model_of(bytes);
  const size_t fc_inputs = offset_in(bytes, m.operators()->Get(2)->inputs()->data());
  CHECK_REJECTED(poke32(bytes, fc_inputs + 4, 999),
                 "test.tqm: operator 2 'fc' (FullyConnected): input 1 is tensor 999, expected -1 (absent) or 0..");
  CHECK_REJECTED(poke32(bytes, fc_inputs + 4, uint32_t(-7)), "input 1 is tensor -7");
  const size_t softmax_outputs = offset_in(bytes, m.operators()->Get(3)->outputs()->data());
  CHECK_REJECTED(poke32(bytes, softmax_outputs, 12345), "operator 3 'softmax' (Softmax): output 0 is tensor 12345");
  CHECK_REJECTED(poke32(bytes, offset_in(bytes, m.outputs()->data()), 64), "graph output 0 is tensor 64");
  CHECK_REJECTED(poke32(bytes, offset_in(bytes, m.inputs()->data()), uint32_t(-1)), "graph input 0 is tensor -1");
  const size_t conv_w_buffer = field_offset(bytes, m.tensors()->Get(1), fb::Tensor::VT_BUFFER);
  CHECK_REJECTED(poke32(bytes, conv_w_buffer, 99), "tensor 1 'conv/w': buffer index is 99, expected -1..");
}

TEST_CASE("tqm: buffer size must match dtype x shape") {
  const std::vector<uint8_t> bytes = serialize(make_small_graph());
  const fb::Model& m = model_of(bytes);
  // conv/w [3,3,3,2] float32 = 216 bytes; claim [4,3,3,2].
  const size_t dim0 = offset_in(bytes, m.tensors()->Get(1)->shape()->data());
  CHECK_REJECTED(poke32(bytes, dim0, 4),
                 "tensor 1 'conv/w': buffer 0 holds 216 bytes, expected 288 (float32 [4,3,3,2] at 8 bits)");
  CHECK_REJECTED(poke32(bytes, dim0, uint32_t(-1)), "tensor 1 'conv/w': dimension 0 is -1, expected >= 0");
  const size_t conv_dim3 = offset_in(bytes, m.tensors()->Get(3)->shape()->data()) + 12;
  CHECK_REJECTED(poke32(bytes, conv_dim3, 5), "tensor 3 'conv': stored shape [-1,4,4,5], but shape inference gives [1,4,4,3]");
}

TEST_CASE("tqm: options must be the opcode's union member") {
  const std::vector<uint8_t> bytes = serialize(make_small_graph());
  const fb::Model& m = model_of(bytes);
  const size_t type_at = field_offset(bytes, m.operators()->Get(0), fb::Operator::VT_OPTIONS_TYPE);
  std::vector<uint8_t> bad = bytes;
  bad[type_at] = uint8_t(fb::OperatorOptions::PoolOptions);
  CHECK_REJECTED(bad, "test.tqm: operator 0 'conv' (Conv2D): Conv2D takes ConvOptions, but the file has PoolOptions");
  bad[type_at] = 200;
  CHECK_REJECTED(bad, "Conv2D takes ConvOptions, but the file has options type 200");
}

TEST_CASE("tqm: unsupported format versions are rejected") {
  const std::vector<uint8_t> bytes = serialize(make_small_graph());
  const size_t version_at = field_offset(bytes, &model_of(bytes), fb::Model::VT_VERSION);
  CHECK(peek32(bytes, version_at) == kTqmVersion);
  CHECK_REJECTED(poke32(bytes, version_at, kTqmVersion + 1),
                 "test.tqm: format version 3 is not supported (this build reads 1..2)");
  CHECK_REJECTED(poke32(bytes, version_at, 0), "format version 0 is not supported");
}

TEST_CASE("tqm: semantic checks say what was expected") {
  // A nonzero zero point, so the file stores them (all-zero ones are left out).
  Graph with_zero_points = make_small_graph();
  const int32_t q = tensor_index(with_zero_points, "fc/w_q4");
  with_zero_points.tensors[size_t(q)].quant.zero_point = {0, 0, 0, 0, 1};
  const std::vector<uint8_t> bytes = serialize(with_zero_points);
  const fb::Model& m = model_of(bytes);
  const fb::Tensor* q4 = m.tensors()->Get(uint32_t(q));
  const std::string q4_name = "tensor " + std::to_string(q) + " 'fc/w_q4': ";
  const size_t scales = offset_in(bytes, q4->quantization()->scale()->data());
  CHECK_REJECTED(poke32(bytes, scales + 8, 0x7fc00000u), q4_name + "scale[2] is nan, expected finite and > 0");
  CHECK_REJECTED(poke32(bytes, scales, 0), q4_name + "scale[0] is 0, expected finite and > 0");
  const size_t zero_points = offset_in(bytes, q4->quantization()->zero_point()->data());
  CHECK_REJECTED(poke32(bytes, zero_points, 300), q4_name + "zero_point[0] is 300, outside the int8 range");
  const size_t scale_count = offset_in(bytes, q4->quantization()->scale());
  CHECK_REJECTED(poke32(bytes, scale_count, 4), q4_name + "4 scales, expected one per index of axis 0 (5)");

  std::vector<uint8_t> bad = bytes;
  bad[field_offset(bytes, q4, fb::Tensor::VT_DTYPE)] = 9;
  CHECK_REJECTED(bad, q4_name + "unknown dtype 9");
  bad = bytes;
  bad[field_offset(bytes, q4->quantization(), fb::Quantization::VT_BITS)] = 9;
  CHECK_REJECTED(bad, q4_name + "quantization bits is 9, expected 2..8");
  bad = bytes;
  bad[field_offset(bytes, m.operators()->Get(3), fb::Operator::VT_OPCODE)] = 77;
  CHECK_REJECTED(bad, "operator 3 'softmax' (?): unknown opcode 77");

  const fb::ConvOptions* conv = m.operators()->Get(0)->options_as_ConvOptions();
  CHECK_REJECTED(poke32(bytes, field_offset(bytes, conv, fb::ConvOptions::VT_PAD_TOP), uint32_t(-1)),
                 "operator 0 'conv' (Conv2D): pad_top is -1, expected 0..65536");
  const size_t relu_max = field_offset(bytes, conv, fb::ConvOptions::VT_ACTIVATION) + 8;  // {type, pad, min, max}
  CHECK_REJECTED(poke32(bytes, relu_max, 0xbf800000u), "relu bounds [0, -1] are not an interval");
  const size_t new_shape = offset_in(bytes, m.operators()->Get(1)->options_as_ReshapeOptions()->new_shape()->data());
  CHECK_REJECTED(poke32(bytes, new_shape, uint32_t(-1)), "new_shape has 2 dimensions of -1, at most one is inferred");

  // validate_graph's findings carry the source name too.
  const size_t softmax_output = offset_in(bytes, m.operators()->Get(3)->outputs()->data());
  CHECK_REJECTED(poke32(bytes, softmax_output, 0), "test.tqm: Softmax 'softmax' (operator 3): output 'input'");
}

namespace {

using flatbuffers::Offset;

// Hand-built files (for what our writer never emits), padded like the writer pads.
std::vector<uint8_t> finish(flatbuffers::FlatBufferBuilder& fbb, Offset<fb::Model> model) {
  fb::FinishModelBuffer(fbb, model);
  std::vector<uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  bytes.resize((bytes.size() + 15) / 16 * 16);
  return bytes;
}

// x [1,3] -> Softmax -> y, a constant w [3], one master-weights entry and a calibration record.
std::vector<uint8_t> model_with_master(int32_t tensor, fb::MasterDType dtype, int32_t buffer) {
  flatbuffers::FlatBufferBuilder fbb;
  const float w[3] = {1, 2, 3};
  const auto* w_bytes = reinterpret_cast<const uint8_t*>(w);
  const std::vector<Offset<fb::Buffer>> buffers = {fb::CreateBuffer(fbb, fbb.CreateVector(w_bytes, 12)),
                                                   fb::CreateBuffer(fbb, fbb.CreateVector(w_bytes, 12))};
  const std::vector<int32_t> row{1, 3}, in{0}, out{1};
  const std::vector<Offset<fb::Tensor>> tensors = {
      fb::CreateTensor(fbb, fbb.CreateString("x"), fbb.CreateVector(row)),
      fb::CreateTensor(fbb, fbb.CreateString("y"), fbb.CreateVector(row)),
      fb::CreateTensor(fbb, fbb.CreateString("w"), fbb.CreateVector(std::vector<int32_t>{3}), fb::DType::Float32, 0,
                       0)};
  const std::vector<Offset<fb::Operator>> ops = {
      fb::CreateOperator(fbb, fb::OpCode::Softmax, fbb.CreateString("softmax"), fbb.CreateVector(in),
                         fbb.CreateVector(out), fb::OperatorOptions::SoftmaxOptions,
                         fb::CreateSoftmaxOptions(fbb).Union())};
  const std::vector<Offset<fb::MasterWeights>> master = {fb::CreateMasterWeights(fbb, tensor, dtype, buffer)};
  return finish(fbb, fb::CreateModel(fbb, kTqmVersion, 0, fbb.CreateVector(tensors), fbb.CreateVector(ops),
                                     fbb.CreateVector(in), fbb.CreateVector(out), fbb.CreateVector(buffers), 0,
                                     fbb.CreateVector(master),
                                     fb::CreateCalibrationRecord(fbb, fbb.CreateString("adaquant"))));
}

}  // namespace

TEST_CASE("tqm: master weights must belong to a constant and match its size") {
  CHECK(load_error(model_with_master(2, fb::MasterDType::Float32, 1)) == "");
  CHECK_REJECTED(model_with_master(9, fb::MasterDType::Float32, 1), "test.tqm: master weights 0: tensor is 9, expected 0..2");
  CHECK_REJECTED(model_with_master(2, fb::MasterDType::Float32, 2), "master weights 0: buffer is 2, expected 0..1");
  CHECK_REJECTED(model_with_master(0, fb::MasterDType::Float32, 1), "master weights 0: tensor 0 'x' is not a constant");
  CHECK_REJECTED(model_with_master(2, fb::MasterDType::Float16, 1),
                 "master weights 0: buffer 1 holds 12 bytes, expected 6 for Float16");
  CHECK_REJECTED(model_with_master(2, fb::MasterDType(7), 1), "master weights 0: unknown dtype 7");
}

TEST_CASE("tqm: master weights and calibration record round trip") {
  const Graph graph = make_quantized_graph();
  REQUIRE(graph.master_weights.size() == 2);
  const std::vector<uint8_t> bytes = serialize(graph);
  Graph loaded;
  REQUIRE(load_error(bytes, &loaded) == "");
  check_same_graph(graph, loaded);
  CHECK(serialize(loaded) == bytes);

  REQUIRE(loaded.master_weights.size() == 2);
  const MasterWeights& fp32 = loaded.master_weights[0];
  CHECK(loaded.tensors[size_t(fp32.tensor)].name == "fc/w_q4");
  CHECK_FALSE(fp32.fp16);
  CHECK(loaded.buffers[size_t(fp32.buffer)].size() == 5 * 48 * 4);
  const MasterWeights& fp16 = loaded.master_weights[1];
  CHECK(loaded.tensors[size_t(fp16.tensor)].name == "conv/w_q8");
  CHECK(fp16.fp16);
  CHECK(loaded.buffers[size_t(fp16.buffer)].size() == 3 * 3 * 3 * 2 * 2);
  CHECK(std::memcmp(loaded.buffers[size_t(fp16.buffer)].data(), graph.buffers[size_t(fp16.buffer)].data(), 108) == 0);

  const CalibrationRecord& c = loaded.calibration;
  CHECK(c.present);
  CHECK(c.pipeline == "advanced");
  CHECK(c.weight_bits == std::vector<uint8_t>{8, 4, 2});
  CHECK(c.activation_bits == std::vector<uint8_t>{8, 8, 6});
  CHECK(c.budget_bytes == (uint64_t(1) << 40) + 3);
  CHECK(c.seed == 0xfeedfacecafebeefull);
  CHECK(c.calibration_samples == 4000000000u);
  CHECK(c.dataset == "fashion-mnist train[0:512]");
  // The full report stays out of the model (version 2): only the compact record above is stored.
  CHECK_FALSE(graph.calibration.report_json.empty());
  CHECK(c.report_json.empty());
  CHECK(std::search(bytes.begin(), bytes.end(), graph.calibration.report_json.begin(),
                    graph.calibration.report_json.begin() + 10) == bytes.end());

  // The file carries what the graph says: the sections are absent without master weights and
  // without a record (present = false), and an empty record still reads back as present.
  const fb::Model& m = model_of(bytes);
  REQUIRE(m.master_weights() != nullptr);
  CHECK(m.master_weights()->size() == 2);
  REQUIRE(m.calibration() != nullptr);
  const std::vector<uint8_t> plain = serialize(make_small_graph());
  CHECK(model_of(plain).master_weights() == nullptr);
  CHECK(model_of(plain).calibration() == nullptr);
  Graph g = make_small_graph();
  g.calibration.pipeline = "ignored: the record is not present";
  g.calibration.weight_bits = {9};  // not checked either
  const std::vector<uint8_t> absent = serialize(g);
  CHECK(absent == plain);
  Graph empty_record = make_small_graph();
  empty_record.calibration.present = true;
  const std::vector<uint8_t> empty_bytes = serialize(empty_record);  // `reloaded` reads it in place
  Graph reloaded;
  REQUIRE(load_error(empty_bytes, &reloaded) == "");
  CHECK(reloaded.calibration.present);
  check_same_graph(empty_record, reloaded);
}

TEST_CASE("tqm: the loader rejects bad master weights and calibration bits") {
  const Graph graph = make_quantized_graph();
  const std::vector<uint8_t> bytes = serialize(graph);
  const fb::Model& m = model_of(bytes);
  const int32_t probs = tensor_index(graph, "probs");

  // A master copy of an activation.
  const size_t tensor_at = field_offset(bytes, m.master_weights()->Get(0), fb::MasterWeights::VT_TENSOR);
  CHECK_REJECTED(poke32(bytes, tensor_at, uint32_t(probs)),
                 "test.tqm: master weights 0: tensor " + std::to_string(probs) + " 'probs' is not a constant");
  // Wrong byte counts: a short buffer, and float16 bytes declared float32.
  const int32_t fp32_buffer = graph.master_weights[0].buffer;
  const size_t length_at = offset_in(bytes, m.buffers()->Get(uint32_t(fp32_buffer))->data());
  CHECK_REJECTED(poke32(bytes, length_at, 956), "test.tqm: master weights 0: buffer " + std::to_string(fp32_buffer) +
                                                    " holds 956 bytes, expected 960 for Float32");
  std::vector<uint8_t> bad = bytes;
  bad[field_offset(bytes, m.master_weights()->Get(1), fb::MasterWeights::VT_DTYPE)] = uint8_t(fb::MasterDType::Float32);
  CHECK_REJECTED(bad, "test.tqm: master weights 1: buffer " + std::to_string(graph.master_weights[1].buffer) +
                          " holds 108 bytes, expected 216 for Float32");

  // Bit-widths outside 2..8 in the record.
  const fb::CalibrationRecord* record = m.calibration();
  bad = bytes;
  bad[offset_in(bytes, record->weight_bits()->data()) + 1] = 9;
  CHECK_REJECTED(bad, "test.tqm: calibration record: weight_bits[1] is 9, expected 2..8");
  bad = bytes;
  bad[offset_in(bytes, record->activation_bits()->data())] = 1;
  CHECK_REJECTED(bad, "test.tqm: calibration record: activation_bits[0] is 1, expected 2..8");
}

TEST_CASE("tqm: the writer refuses bad master weights and calibration bits") {
  const auto refused = [](const Graph& g) {
    std::vector<uint8_t> out;
    const Status s = serialize_model(g, &out);
    CHECK(s.code() == StatusCode::kInvalidModel);
    CHECK(out.empty());
    return std::string(s.message());
  };
  const Graph good = make_quantized_graph();
  Graph g = good;
  g.master_weights[0].tensor = tensor_index(g, "probs");
  CHECK(refused(g) == "master weights 0: tensor " + std::to_string(g.master_weights[0].tensor) +
                          " is not a constant of the graph");
  g = good;
  g.master_weights[1].buffer = int32_t(g.buffers.size());
  CHECK(refused(g) == "master weights 1: buffer " + std::to_string(g.buffers.size()) + " is out of range (" +
                          std::to_string(g.buffers.size()) + " buffers)");
  g = good;
  g.buffers[size_t(g.master_weights[0].buffer)].owned.pop_back();
  CHECK(refused(g) == "master weights 0: buffer " + std::to_string(g.master_weights[0].buffer) +
                          " holds 959 bytes, expected 960 for float32 'fc/w_q4'");
  g = good;
  g.master_weights[1].fp16 = false;
  CHECK(refused(g) == "master weights 1: buffer " + std::to_string(g.master_weights[1].buffer) +
                          " holds 108 bytes, expected 216 for float32 'conv/w_q8'");
  g = good;
  g.calibration.weight_bits[1] = 9;
  CHECK(refused(g) == "calibration record: weight_bits[1] is 9, expected 2..8");
  g = good;
  g.calibration.activation_bits.push_back(0);
  CHECK(refused(g) == "calibration record: activation_bits[3] is 0, expected 2..8");
}

TEST_CASE("tqm: shared tables cannot amplify a small file") {
  {  // 100 tensors, one table with a 4000-byte name: 400 kB of names from a 4 kB file
    flatbuffers::FlatBufferBuilder fbb;
    const auto t = fb::CreateTensor(fbb, fbb.CreateString(std::string(4000, 'n')));
    const std::vector<Offset<fb::Tensor>> tensors(100, t);
    CHECK_REJECTED(finish(fbb, fb::CreateModel(fbb, kTqmVersion, 0, fbb.CreateVector(tensors))),
                   "test.tqm: tensor 1 '': tables share data: the model expands beyond its file size");
  }
  {  // 3000 visits of one empty table: more tables than an 12 kB file can hold
    flatbuffers::FlatBufferBuilder fbb;
    const std::vector<Offset<fb::Tensor>> tensors(3000, fb::CreateTensor(fbb));
    CHECK_REJECTED(finish(fbb, fb::CreateModel(fbb, kTqmVersion, 0, fbb.CreateVector(tensors))),
                   "test.tqm: FlatBuffers verification failed");
  }
  {  // the record's three strings all point at one 4000-byte string
    flatbuffers::FlatBufferBuilder fbb;
    const auto text = fbb.CreateString(std::string(4000, 'j'));
    const auto record = fb::CreateCalibrationRecord(fbb, text, 0, 0, 0, 0, 0, text, text);
    CHECK_REJECTED(finish(fbb, fb::CreateModel(fbb, kTqmVersion, 0, 0, 0, 0, 0, 0, 0, 0, record)),
                   "test.tqm: calibration record: tables share data: the model expands beyond its file size");
  }
}

TEST_CASE("tqm: serialize_model refuses invalid graphs") {
  Graph graph = make_small_graph();
  graph.operators[2].inputs[1] = 99;
  std::vector<uint8_t> out;
  const Status s = serialize_model(graph, &out);
  CHECK(s.code() == StatusCode::kInvalidModel);
  CHECK(std::string(s.message()).find("fc") != std::string::npos);
  CHECK(out.empty());
}

// Regressions found by the fuzz test: the kernels size data-movement copies by the input, so
// these graphs used to load and then read or write out of bounds when run.
TEST_CASE("tqm: a bit-packed constant is only ever a weight") {
  Graph graph = make_small_graph();  // fc/w_q4 holds 240 4-bit values in 120 bytes
  const int32_t unpacked = graph.add_tensor("unpacked", DType::kInt8, {240});
  Operator op = tinyquant::testing::make_op(OpType::kReshape, "reshape", {tensor_index(graph, "fc/w_q4")}, unpacked);
  op.mutable_new_shape() = {-1};
  graph.add_operator(op);
  graph.outputs.push_back(unpacked);
  std::vector<uint8_t> bytes;
  CHECK_FALSE(serialize_model(graph, &bytes).is_ok());  // Reshape would copy 240 bytes out of 120
}

TEST_CASE("tqm: data movement keeps the dtype") {
  Graph graph = make_small_graph();
  graph.tensors[tensor_index(graph, "flat")].dtype = DType::kInt8;  // float32 [1,48] -> 192 bytes into 48
  std::vector<uint8_t> bytes;
  CHECK_FALSE(serialize_model(graph, &bytes).is_ok());
}

namespace {

void fill_inputs(const Interpreter& interp) {
  for (int i = 0; i < interp.num_inputs(); ++i) {
    const TensorView v = interp.input(i);
    const size_t n = size_t(v.elements());
    if (v.dtype == DType::kFloat32) {
      for (size_t k = 0; k < n; ++k) v.as<float>()[k] = 0.1f * float(int(k % 13) - 6);
    } else {
      std::memset(v.data, 1, n * dtype_size(v.dtype));
    }
  }
}

std::vector<float> run(const Graph& g, int32_t batch) {
  Interpreter interp;
  PrepareOptions options;
  options.batch = batch;
  Status s = interp.prepare(g, options);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  fill_inputs(interp);
  s = interp.invoke();
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  const TensorView out = interp.output(0);
  return std::vector<float>(out.as<float>(), out.as<float>() + out.elements());
}

}  // namespace

TEST_CASE("tqm: a loaded model runs exactly like the graph it was saved from") {
  for (const Graph& graph : {make_small_graph(), make_every_op_graph()}) {
    CAPTURE(graph.producer);
    const std::vector<uint8_t> bytes = serialize(graph);
    Graph loaded;
    REQUIRE(load_error(bytes, &loaded) == "");
    const std::vector<float> expected = run(graph, 2);
    const std::vector<float> got = run(loaded, 2);
    REQUIRE(got.size() == expected.size());
    CHECK(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)) == 0);
    const size_t classes = got.size() / 2;
    for (size_t row = 0; row < 2; ++row) {
      float sum = 0;
      for (size_t c = 0; c < classes; ++c) sum += got[row * classes + c];
      CHECK(sum == doctest::Approx(1.0f));
    }
  }
}

namespace {

// Random damage of the kinds files really suffer and attackers really try (fixed seed).
class Mutator {
 public:
  explicit Mutator(uint32_t seed) : rng_(seed) {}
  size_t below(size_t n) { return n ? size_t(rng_()) % n : 0; }

  void mutate(std::vector<uint8_t>* b) {
    if (b->empty()) return;
    const size_t size = b->size();
    switch (below(9)) {
      case 0: (*b)[below(size)] ^= uint8_t(1u << below(8)); break;
      case 1: (*b)[below(size)] = uint8_t(rng_()); break;
      case 2: {  // a run of random bytes
        const size_t at = below(size), n = 1 + below(16);
        for (size_t i = at; i < at + n && i < size; ++i) (*b)[i] = uint8_t(rng_());
        break;
      }
      case 3: b->resize(below(size)); break;
      case 4: {  // copy one region over another
        const size_t from = below(size), to = below(size), n = std::min(1 + below(64), size - std::max(from, to));
        std::memmove(b->data() + to, b->data() + from, n);
        break;
      }
      case 5: {  // insert or delete bytes: every offset that spans the cut goes stale
        const size_t at = below(size), n = 1 + below(16);
        if (below(2)) {
          b->insert(b->begin() + long(at), n, uint8_t(rng_()));
        } else {
          b->erase(b->begin() + long(at), b->begin() + long(std::min(size, at + n)));
        }
        break;
      }
      case 6:
      case 7: {  // a little-endian uint32 (offsets, lengths, indices, shapes)
        if (size < 4) break;
        const size_t at = below(size / 4) * 4;
        uint32_t v;
        std::memcpy(&v, b->data() + at, 4);
        const uint32_t interesting[] = {0, 1, 0xffffffffu, 0x7fffffffu, 0x80000000u, v + 1, v - 1, v + 4, v - 4,
                                        v * 2, uint32_t(size), uint32_t(size - at), uint32_t(rng_())};
        v = interesting[below(sizeof(interesting) / sizeof(interesting[0]))];
        std::memcpy(b->data() + at, &v, 4);
        break;
      }
      case 8: {  // a little-endian uint16 (vtable sizes and field offsets)
        if (size < 2) break;
        const size_t at = below(size / 2) * 2;
        uint16_t v;
        std::memcpy(&v, b->data() + at, 2);
        const uint16_t interesting[] = {0, 1, 0xffff, uint16_t(v + 2), uint16_t(v - 2), uint16_t(v + 4),
                                        uint16_t(rng_())};
        v = interesting[below(sizeof(interesting) / sizeof(interesting[0]))];
        std::memcpy(b->data() + at, &v, 2);
        break;
      }
    }
  }

 private:
  std::mt19937 rng_;
};

}  // namespace

TEST_CASE("tqm: fuzzed files load cleanly or fail with a message, and loaded ones run") {
  // Fixed in CI; TQ_FUZZ_MUTANTS / TQ_FUZZ_SEED run longer or different campaigns by hand.
  const int kMutantsPerModel = std::getenv("TQ_FUZZ_MUTANTS") ? std::atoi(std::getenv("TQ_FUZZ_MUTANTS")) : 1500;
  uint32_t seed = std::getenv("TQ_FUZZ_SEED") ? uint32_t(std::atoll(std::getenv("TQ_FUZZ_SEED"))) : 20240611u;
  // Caps what a fuzzed shape can make prepare() allocate (smaller on a microcontroller: tests/mcu).
#ifndef TQ_TEST_FUZZ_ARENA_BYTES
#define TQ_TEST_FUZZ_ARENA_BYTES (size_t(4) << 20)
#endif
  std::vector<uint8_t> arena(TQ_TEST_FUZZ_ARENA_BYTES);
  // The quantized graph puts the master-weights and calibration-record paths under the fuzzer.
  for (const Graph& graph : {make_small_graph(), make_every_op_graph(), make_quantized_graph()}) {
    CAPTURE(graph.producer);
    const std::vector<uint8_t> base = serialize(graph);
    Mutator mutator(seed++);
    int rejected = 0, loaded = 0, ran = 0;
    for (int i = 0; i < kMutantsPerModel; ++i) {
      CAPTURE(i);
      std::vector<uint8_t> bytes = base;
      for (size_t k = 1 + mutator.below(3); k > 0; --k) mutator.mutate(&bytes);
      Graph g;
      const Status s = load_model(bytes.data(), bytes.size(), &g, kSource);
      if (!s.is_ok()) {
        ++rejected;
        REQUIRE(std::strlen(s.message()) > std::strlen("test.tqm: "));
        continue;
      }
      ++loaded;
      std::vector<Dims> dims;
      const Status inferred = infer_shapes(g, 1, &dims);
      REQUIRE((inferred.is_ok() || inferred.message()[0] != '\0'));
      std::vector<uint8_t> rewritten;  // whatever loads can be written again
      const Status written = serialize_model(g, &rewritten);
      REQUIRE_MESSAGE(written.is_ok(), written.message());

      Interpreter interp;
      PrepareOptions options;
      options.arena = arena.data();
      options.arena_size = arena.size();
      const Status prepared = interp.prepare(g, options);
      if (!prepared.is_ok()) {
        REQUIRE(prepared.message()[0] != '\0');
        continue;
      }
      fill_inputs(interp);
      const Status invoked = interp.invoke();
      REQUIRE((invoked.is_ok() || invoked.message()[0] != '\0'));
      ran += invoked.is_ok();
    }
    MESSAGE(graph.producer << ": " << kMutantsPerModel << " mutants, " << rejected << " rejected, " << loaded
                           << " loaded, " << ran << " ran");
    CHECK(rejected > 0);
    CHECK(loaded > 0);
  }
}
