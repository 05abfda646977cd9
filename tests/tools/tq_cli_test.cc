// The tq command line, run as a user would: exit codes, messages, files written.
#include <doctest/doctest.h>

#include <onnx/onnx_pb.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "data/npy.h"
#include "tools/cli_util.h"
#include "tinyquant/interpreter.h"
#include "toolkit/toolkit.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {

std::string temp_dir() { return testing::temp_dir("tq_cli"); }

const std::string kLenet = std::string(TQ_MODELS_DIR) + "/lenet.onnx";

}  // namespace

TEST_CASE("tq import, inspect and eval --json on the bundled lenet") {
  const std::string dir = temp_dir();
  Run imp = tq("import " + kLenet + " -o " + dir + "/lenet.tqm");
  REQUIRE_MESSAGE(imp.code == 0, imp.out);
  CHECK(file_exists(dir + "/lenet.tqm"));

  Run ins = tq("inspect " + dir + "/lenet.tqm");
  REQUIRE_MESSAGE(ins.code == 0, ins.out);
  CHECK(contains(ins.out, "Conv2D"));
  CHECK(contains(ins.out, "FullyConnected"));
  CHECK(contains(ins.out, "arena"));

  Run ev = tq("eval " + dir + "/lenet.tqm --data fashion-mnist --split test --limit 300 --backend reference --json");
  REQUIRE_MESSAGE(ev.code == 0, ev.out);
  CHECK(contains(ev.out, "\"samples\": 300"));
  CHECK(contains(ev.out, "\"backend\": \"reference\""));
  CHECK(contains(ev.out, "\"seconds\": "));
  const size_t p = ev.out.find("\"top1\": ");
  REQUIRE(p != std::string::npos);
  const double top1 = std::stod(ev.out.substr(p + 8));
  CHECK(top1 > 80.0);
  CHECK(top1 <= 100.0);
}

TEST_CASE("tq run writes the model's output for a .npy batch and rejects a wrong shape") {
  const std::string dir = temp_dir();
  ImageDataset test;
  REQUIRE(load_fashion_mnist(kDefaultFashionMnistDir, "test", &test).is_ok());
  std::vector<float> x(3 * 784);
  preprocess_images(test, 0, 3, kFashionMnistMean, kFashionMnistStd, x.data());
  REQUIRE(write_npy(dir + "/x.npy", {3, 1, 28, 28}, x.data()).is_ok());
  Run r = tq("run " + kLenet + " --input " + dir + "/x.npy -o " + dir + "/y.npy --backend reference");
  REQUIRE_MESSAGE(r.code == 0, r.out);
  NpyArray y;
  REQUIRE(read_npy(dir + "/y.npy", &y).is_ok());
  CHECK(y.shape == std::vector<int32_t>{3, 10});

  // Same numbers as the library gives directly.
  Graph g;
  REQUIRE(load_any_model(kLenet, &g).is_ok());
  Interpreter interp;
  PrepareOptions opt;
  opt.batch = 3;
  REQUIRE(interp.prepare(g, opt).is_ok());
  std::copy(x.begin(), x.end(), interp.input(0).as<float>());
  REQUIRE(interp.invoke().is_ok());
  for (int i = 0; i < 30; ++i) CHECK(y.data[i] == interp.output(0).as<float>()[i]);

  REQUIRE(write_npy(dir + "/bad.npy", {3, 28, 28}, x.data()).is_ok());
  Run bad = tq("run " + kLenet + " --input " + dir + "/bad.npy -o " + dir + "/y2.npy");
  CHECK(bad.code == 1);
  CHECK(contains(bad.out, "bad.npy has shape [3,28,28]"));
  CHECK(contains(bad.out, "expects [-1,1,28,28]"));
  CHECK_FALSE(file_exists(dir + "/y2.npy"));

  std::ofstream(dir + "/junk.npy") << "not numpy";
  Run junk = tq("run " + kLenet + " --input " + dir + "/junk.npy -o " + dir + "/y3.npy");
  CHECK(junk.code == 1);
  CHECK(contains(junk.out, "not a .npy file"));
}

TEST_CASE("tq reports missing dataset files, unsupported ONNX ops and bad arguments clearly") {
  const std::string dir = temp_dir();
  Run missing = tq("eval " + kLenet + " --data-dir " + dir + "/nowhere --limit 10");
  CHECK(missing.code == 1);
  CHECK(contains(missing.out, "Fashion-MNIST test images not found"));
  CHECK(contains(missing.out, "nowhere"));

  // A one-node ONNX model with an op we do not support.
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  onnx::GraphProto* g = m.mutable_graph();
  g->set_name("g");
  onnx::NodeProto* n = g->add_node();
  n->set_op_type("Sin");
  n->set_name("the_sine");
  n->add_input("x");
  n->add_output("y");
  for (const char* name : {"x", "y"}) {
    onnx::ValueInfoProto* v = name[0] == 'x' ? g->add_input() : g->add_output();
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_value(1);
    t->mutable_shape()->add_dim()->set_dim_value(4);
  }
  std::ofstream(dir + "/sin.onnx", std::ios::binary) << m.SerializeAsString();
  Run sin = tq("import " + dir + "/sin.onnx -o " + dir + "/sin.tqm");
  CHECK(sin.code == 1);
  CHECK(contains(sin.out, "the_sine"));
  CHECK(contains(sin.out, "Sin"));
  CHECK_FALSE(file_exists(dir + "/sin.tqm"));

  CHECK(tq("eval " + kLenet + " --bogus 1").code == 2);
  CHECK(tq("eval " + kLenet + " --threads zero").code == 2);
  CHECK(tq("eval " + kLenet + " --backend gpu").code == 2);
  CHECK(tq("frobnicate x").code == 2);
  CHECK(tq("import " + kLenet).code == 2);  // no -o
  Run nofile = tq("inspect " + dir + "/absent.tqm");
  CHECK(nofile.code == 1);
  CHECK(contains(nofile.out, "absent.tqm"));

  // Writing into a directory that does not exist fails and leaves nothing behind.
  Run unwritable = tq("import " + kLenet + " -o " + dir + "/no/such/dir/m.tqm");
  CHECK(unwritable.code == 1);
  CHECK(contains(unwritable.out, "m.tqm"));
}

TEST_CASE("npy parser rejects malformed files") {
  NpyArray a;
  const uint8_t junk[] = {1, 2, 3};
  CHECK(parse_npy(junk, sizeof(junk), "j.npy", &a).code() == StatusCode::kInvalidArgument);
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
  std::string file = std::string("\x93NUMPY\x01\x00", 8) + char(header.size()) + char(0) + header + std::string(16, '\0');
  Status s = parse_npy(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "f8.npy", &a);
  CHECK(std::string(s.message()).find("float32") != std::string::npos);
  header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  file = std::string("\x93NUMPY\x01\x00", 8) + char(header.size()) + char(0) + header + std::string(8, '\0');
  s = parse_npy(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "short.npy", &a);
  CHECK(std::string(s.message()).find("needs 12 bytes") != std::string::npos);
}

TEST_CASE("the README's list of ONNX ops is the importer's own table (tq import --list-ops)") {
  const std::string listed = onnx_support_markdown();
  CHECK(contains(listed, "ONNX opsets 7 to 21"));
  CHECK(contains(listed, "- Transpose — NHWC<->NCHW pairs fold away\n"));
  CHECK(contains(listed, "- HardSwish — opset 14+\n"));
  Run r = tq("import --list-ops");
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, listed.c_str()));
  std::ifstream in(std::string(TQ_SOURCE_DIR) + "/README.md");
  const std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string begin = "<!-- onnx-ops:begin -->\n", end = "<!-- onnx-ops:end -->";
  const size_t b = readme.find(begin), e = readme.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  CHECK_MESSAGE(readme.substr(b + begin.size(), e - b - begin.size()) == listed,
                "README.md's op list is stale: replace it with the output of `build/bin/tq import --list-ops`");
}

TEST_CASE("tq eval --against reports output fidelity without labels, on .npy data or Fashion-MNIST") {
  const std::string dir = temp_dir();
  REQUIRE(tq("import " + kLenet + " -o " + dir + "/lenet.tqm").code == 0);
  Run q = tq("quantize " + kLenet + " --method rtn --wbits 8 --abits 8 --calib-size 64 -o " + dir + "/lenet.w8.tqm");
  REQUIRE_MESSAGE(q.code == 0, q.out);
  std::vector<float> x(16 * 28 * 28);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  REQUIRE(write_npy(dir + "/x.npy", {16, 1, 28, 28}, x.data()).is_ok());

  // The float model against itself: identical outputs.
  Run same = tq("eval " + dir + "/lenet.tqm --against " + kLenet + " --data npy:" + dir + "/x.npy --json");
  REQUIRE_MESSAGE(same.code == 0, same.out);
  CHECK(contains(same.out, "\"sqnr_db\": \"inf\""));
  CHECK(contains(same.out, "\"top1_agreement\": 100.0"));
  CHECK(contains(same.out, "\"samples\": 16"));

  Run w8 = tq("eval " + dir + "/lenet.w8.tqm --against " + dir + "/lenet.tqm --data npy:" + dir + "/x.npy");
  REQUIRE_MESSAGE(w8.code == 0, w8.out);
  CHECK(contains(w8.out, "SQNR"));
  CHECK(contains(w8.out, "top-1 agreement"));
  Run fm = tq("eval " + dir + "/lenet.w8.tqm --against " + dir + "/lenet.tqm --limit 50 --json");
  REQUIRE_MESSAGE(fm.code == 0, fm.out);
  CHECK(contains(fm.out, "\"samples\": 50"));

  std::vector<float> bad(4 * 3 * 28 * 28, 0.0f);
  REQUIRE(write_npy(dir + "/bad.npy", {4, 3, 28, 28}, bad.data()).is_ok());
  Run shape = tq("eval " + dir + "/lenet.w8.tqm --against " + dir + "/lenet.tqm --data npy:" + dir + "/bad.npy");
  CHECK(shape.code == 1);
  CHECK(contains(shape.out, "expected [-1,1,28,28]"));
  Run two = tq("eval " + dir + "/lenet.w8.tqm --against " + dir + "/lenet.tqm --data npy:" + dir + "/x.npy," + dir +
               "/x.npy");
  CHECK(two.code == 1);
  CHECK(contains(two.out, "the model has 1 inputs; got data for 2"));
  CHECK(tq("eval " + dir + "/lenet.w8.tqm --data npy:" + dir + "/x.npy").code == 2);  // no labels, no --against
  // The simulated twin against the integer model it was rebuilt from: one level apart at most.
  Run sim = tq("eval " + dir + "/lenet.w8.tqm --simulate --against " + dir + "/lenet.w8.tqm --data npy:" + dir +
               "/x.npy");
  REQUIRE_MESSAGE(sim.code == 0, sim.out);
  CHECK(contains(sim.out, "top-1 agreement"));
  CHECK(tq("eval " + dir + "/lenet.w8.tqm --data cifar").code == 2);
}

TEST_CASE("tq inspect of a quantized model: only weighted ops show weight bits (a lookup table is no weight)") {
  const std::string dir = temp_dir();
  // x [N,4] -> Gemm (constant W) -> Sigmoid -> y
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  onnx::GraphProto* g = m.mutable_graph();
  g->set_name("g");
  onnx::TensorProto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(3);
  w->add_dims(4);
  for (int i = 0; i < 12; ++i) w->add_float_data(0.1f * static_cast<float>(i % 5) - 0.2f);
  onnx::NodeProto* gemm = g->add_node();
  gemm->set_op_type("Gemm");
  gemm->set_name("fc");
  gemm->add_input("x");
  gemm->add_input("w");
  gemm->add_output("h");
  onnx::AttributeProto* tb = gemm->add_attribute();
  tb->set_name("transB");
  tb->set_type(onnx::AttributeProto::INT);
  tb->set_i(1);
  onnx::NodeProto* sig = g->add_node();
  sig->set_op_type("Sigmoid");
  sig->set_name("sig");
  sig->add_input("h");
  sig->add_output("y");
  for (const char* name : {"x", "y"}) {
    onnx::ValueInfoProto* v = name[0] == 'x' ? g->add_input() : g->add_output();
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_param("N");
    t->mutable_shape()->add_dim()->set_dim_value(name[0] == 'x' ? 4 : 3);
  }
  std::ofstream(dir + "/sig.onnx", std::ios::binary) << m.SerializeAsString();
  std::vector<float> calib(32 * 4);
  for (size_t i = 0; i < calib.size(); ++i) calib[i] = std::cos(0.7f * static_cast<float>(i));
  REQUIRE(write_npy(dir + "/c.npy", {32, 4}, calib.data()).is_ok());
  Run q = tq("quantize " + dir + "/sig.onnx --calib npy:" + dir + "/c.npy -o " + dir + "/sig.q.tqm");
  REQUIRE_MESSAGE(q.code == 0, q.out);
  Run ins = tq("inspect " + dir + "/sig.q.tqm");
  REQUIRE(ins.code == 0);
  std::string unary_line;
  for (size_t at = ins.out.find("Unary"); at != std::string::npos && unary_line.empty();) {
    const size_t end = ins.out.find('\n', at);
    unary_line = ins.out.substr(at, end - at);
  }
  CAPTURE(unary_line);
  CHECK(contains(unary_line, "int8        -     8"));  // dtype, wbits '-', abits
  CHECK(contains(unary_line, "int8 lookup table"));
  CHECK(contains(ins.out, "weights    12 bytes packed at 8 bits in 1 layers"));
}
