// The text reference model (examples/langid) through tinyquant: import against PyTorch's record,
// RTN and AdaQuant (attention products included) on real words, backend bit-exactness of the
// quantized transformer, and bad input (token ids out of range, sequences too long).
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "data/npy.h"
#include "tools/cli_util.h"
#include "toolkit/quantize.h"
#include "toolkit/toolkit.h"
#include "tinyquant/mixed.h"
#include "tinyquant/model_io.h"
#include "tinyquant/op_info.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {
const std::string kLangid = std::string(TQ_SOURCE_DIR) + "/examples/langid/models/langid.onnx";
const std::string kLangidVocab = std::string(TQ_SOURCE_DIR) + "/examples/langid/models/langid.vocab";

const TokenDataset& test_words() {
  static TokenDataset ds;
  if (ds.count == 0) REQUIRE(load_langid(kDefaultDictDir, kLangidVocab, "test", &ds).is_ok());
  return ds;
}

quant::CalibrationData calibration(const Graph& g, int32_t count) {
  quant::CalibrationData c;
  TextDataPaths text;
  text.vocab = kLangidVocab;
  REQUIRE(load_calibration_set("langid:train", "", count, 0, 0.0f, 1.0f, g, &c, text).is_ok());
  return c;
}

EvalResult evaluate(const Graph& g, Backend backend, int32_t limit) {
  EvalOptions opt;
  opt.backend = backend;
  opt.limit = limit;
  opt.batch = 250;
  EvalResult r;
  REQUIRE(evaluate_token_classifier(g, test_words(), opt, &r).is_ok());
  return r;
}

const OpType kAttention = OpType::kBatchMatMul;
}  // namespace

TEST_CASE("langid: the imported transformer gives PyTorch's logits on its recorded words, on both backends") {
  Graph g;
  REQUIRE(load_any_model(kLangid, &g).is_ok());
  nlohmann::json rec;
  std::ifstream(std::string(TQ_SOURCE_DIR) + "/examples/langid/models/langid.json") >> rec;
  const auto& tokens = rec["tokens_first100"];
  const auto& logits = rec["logits_first100"];
  REQUIRE(tokens.size() == 100);
  for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
    Interpreter it;
    PrepareOptions opt;
    opt.batch = 100;
    opt.backend = backend;
    REQUIRE(it.prepare(g, opt).is_ok());
    float* in = it.input(0).as<float>();
    for (int i = 0; i < 100; ++i)
      for (int j = 0; j < 24; ++j) in[i * 24 + j] = tokens[i][j].get<float>();
    REQUIRE(it.invoke().is_ok());
    const float* y = it.output(0).as<const float>();
    double worst = 0.0;
    for (int i = 0; i < 100; ++i)
      for (int c = 0; c < 11; ++c) worst = std::max(worst, std::abs(double(y[i * 11 + c]) - logits[i][c].get<double>()));
    CAPTURE(static_cast<int>(backend));
    CHECK(worst < 1e-4);
  }
}

TEST_CASE("langid: RTN W8A8 keeps top-1, runs attention int8 and is bit-exact across backends") {
  Graph g;
  REQUIRE(load_any_model(kLangid, &g).is_ok());
  quant::RtnOptions opt;
  Graph q;
  quant::RtnReport report;
  REQUIRE(quant::quantize_graph_rtn(g, calibration(g, 500), opt, &q, nullptr, &report).is_ok());
  int int8_matmuls = 0, int8_softmax = 0, float_layernorm = 0, int8_fc = 0, int8_gather = 0;
  for (const Operator& op : q.operators) {
    const bool s8 = runs_int8(op, q);
    int8_matmuls += op.type == kAttention && s8;
    int8_softmax += op.type == OpType::kSoftmax && s8;
    float_layernorm += op.type == OpType::kLayerNorm && !s8;
    int8_fc += op.type == OpType::kFullyConnected && s8;
    int8_gather += op.type == OpType::kGather && s8;
  }
  CHECK(int8_fc == 13);          // every linear layer
  CHECK(int8_matmuls == 5);      // Q K^T and P V of both blocks, and the masked mean pool
  CHECK(int8_softmax == 3);      // the attention weights and the pooling weights
  CHECK(float_layernorm == 5);   // no int8 LayerNorm: it stays float
  CHECK(int8_gather == 2);       // the embedding table and the pad-mask table
  const int32_t limit = 2000;
  const EvalResult f = evaluate(g, Backend::kXnnpack, limit);
  const EvalResult x = evaluate(q, Backend::kXnnpack, limit);
  const EvalResult r = evaluate(q, Backend::kReference, limit);
  CHECK(x.checksum == r.checksum);  // every int8 op, the attention included, bit-exact
  CHECK(x.correct == r.correct);
  CHECK(std::abs(x.top1 - f.top1) <= 0.5);
  // The model written and read back is the same model.
  std::vector<uint8_t> bytes;
  REQUIRE(serialize_model(q, &bytes).is_ok());
  Graph back;
  REQUIRE(load_model(bytes.data(), bytes.size(), &back).is_ok());
  CHECK(evaluate(back, Backend::kXnnpack, limit).checksum == x.checksum);
}

TEST_CASE("langid: AdaQuant W4A8 learns the attention inputs' quantizers and beats RTN") {
  Graph g;
  REQUIRE(load_any_model(kLangid, &g).is_ok());
  const quant::CalibrationData calib = calibration(g, 500);
  quant::AdaQuantOptions opt;
  opt.rtn.weight_bits = 4;
  opt.rtn.activation_bits = 8;
  opt.iterations = 150;
  opt.sequential = true;
  opt.stats_tuning = true;
  Graph aq, rtn;
  quant::AdaQuantReport report;
  REQUIRE(quant::quantize_graph_adaquant(g, calib, opt, &aq, &report).is_ok());
  REQUIRE(report.matmuls.size() == 5);
  int learned = 0, improved = 0;
  for (const quant::AdaQuantMatMulReport& m : report.matmuls) {
    CAPTURE(m.name);
    CHECK((m.learned[0] || m.learned[1]));  // a softmax input is fixed, the other one learned
    learned += m.learned[0] + m.learned[1];
    improved += m.mse_after < m.mse_before;
    CHECK(m.mse_after <= m.mse_before);
  }
  CHECK(learned == 7);  // Q and K of two blocks, V of two blocks, the pooled features
  CHECK(improved >= 4);
  quant::RtnReport rr;
  REQUIRE(quant::quantize_graph_rtn(g, calib, opt.rtn, &rtn, nullptr, &rr).is_ok());
  const int32_t limit = 2000;
  const double f = evaluate(g, Backend::kXnnpack, limit).top1;
  const double a = evaluate(aq, Backend::kXnnpack, limit).top1;
  const double r = evaluate(rtn, Backend::kXnnpack, limit).top1;
  MESSAGE("langid first 2000 test words: float ", f, "%, W4A8 RTN ", r, "%, AdaQuant ", a, "%");
  CHECK(a > r + 3.0);
  CHECK(a > f - 2.0);
}

TEST_CASE("langid: mixed precision (the integer program) under a byte budget, embeddings kept at 8 bits") {
  Graph g;
  REQUIRE(load_any_model(kLangid, &g).is_ok());
  const quant::CalibrationData calib = calibration(g, 300);
  quant::MixedOptions opt;
  quant::MixedCandidates cand;
  REQUIRE(quant::prepare_mixed(g, calib, opt, &cand).is_ok());
  quant::MixedBudget budget;
  budget.fraction = 0.12;
  Graph q;
  quant::MixedReport report;
  REQUIRE(quant::quantize_graph_mixed(cand, budget, &q, &report).is_ok());
  const QuantizedBytes qb = quantized_bytes(q);
  CHECK(qb.total() <= int64_t(0.12 * double(qb.float32)) + 1);
  CHECK(qb.layers == 15);  // 13 linear layers and 2 embedding tables
  int narrow = 0;
  for (const Operator& op : q.operators) {
    if (op.type == OpType::kGather) CHECK(q.tensors[op.inputs[1]].quant.bits == 8);
    if (op.type == OpType::kFullyConnected) narrow += q.tensors[op.inputs[1]].quant.bits < 4;
  }
  CHECK(narrow >= 3);  // 12% of float32 needs some layers below 4 bits
  // The quick budget check sizes the smallest model as the candidates do (tables at 8 bits): a
  // budget just under it is refused before any candidate is built.
  quant::MixedBudget smallest;
  smallest.uniform_bits = 2;
  Graph q2;
  quant::MixedReport r2;
  REQUIRE(quant::quantize_graph_mixed(cand, smallest, &q2, &r2).is_ok());
  const int64_t floor_bytes = quantized_bytes(q2).total();
  quant::MixedBudget under;
  under.bytes = floor_bytes - 1000;
  Status s = quant::check_mixed_budget(g, calib, opt, under);
  CHECK_FALSE(s.is_ok());
  CHECK(contains(s.message(), "below the smallest model these bit options allow"));
  // (The check calibrates on the first batch only: its floor may differ by a few bytes of zero
  // points from the candidates', never by the ~4.7 KB of tables at 2 instead of 8 bits.)
  under.bytes = floor_bytes + 1000;
  CHECK(quant::check_mixed_budget(g, calib, opt, under).is_ok());
  const double f = evaluate(g, Backend::kXnnpack, 2000).top1;
  const double m = evaluate(q, Backend::kXnnpack, 2000).top1;
  MESSAGE("langid first 2000 test words: float ", f, "%, mixed 12% ", m, "%");
  CHECK(m > f - 4.0);
}

TEST_CASE("langid: token ids out of range and sequences longer than the model's are clear errors") {
  const std::string dir = temp_dir("langid");
  // An id past the vocabulary (96 rows).
  std::vector<float> ids(2 * 24, 0.0f);
  ids[0] = 5.0f;
  ids[24 + 3] = 96.0f;
  REQUIRE(write_npy(dir + "/ids.npy", {2, 24}, ids.data()).is_ok());
  Run r = tq("run " + kLangid + " --input " + dir + "/ids.npy -o " + dir + "/y.npy");
  CHECK(r.code == 1);
  CHECK(contains(r.out, "Gather '/tok_emb/Gather': index 96 at position 27 is not an integer in [0, 96)"));
  CHECK_FALSE(file_exists(dir + "/y.npy"));
  ids[24 + 3] = 2.5f;
  REQUIRE(write_npy(dir + "/frac.npy", {2, 24}, ids.data()).is_ok());
  r = tq("run " + kLangid + " --input " + dir + "/frac.npy -o " + dir + "/y.npy");
  CHECK(r.code == 1);
  CHECK(contains(r.out, "index 2.5 at position 27 is not an integer"));
  // A sequence of 30 ids for a model of 24.
  std::vector<float> longer(30, 3.0f);
  REQUIRE(write_npy(dir + "/long.npy", {1, 30}, longer.data()).is_ok());
  r = tq("run " + kLangid + " --input " + dir + "/long.npy -o " + dir + "/y.npy");
  CHECK(r.code == 1);
  CHECK(contains(r.out, "long.npy has shape [1,30]"));
  CHECK(contains(r.out, "expects [-1,24]"));
  // A word longer than 24 characters, through the encoder the data set uses.
  std::vector<uint32_t> vocab;
  REQUIRE(load_langid_vocab(kLangidVocab, &vocab).is_ok());
  int32_t out[24];
  Status s = encode_word("internationalisierungsprozess", vocab, 24, out);
  REQUIRE_FALSE(s.is_ok());
  CHECK(contains(s.message(), "more than the maximum 24"));
  // The evaluation tools refuse a text data set for an image model and the other way round.
  r = tq("eval " + kLangid + " --data fashion-mnist --limit 10");
  CHECK(r.code == 1);
  CHECK(contains(r.out, "model input 'tokens'"));
  r = tq("eval " + std::string(TQ_MODELS_DIR) + "/lenet.onnx --data langid --vocab " + kLangidVocab + " --limit 10");
  CHECK(r.code == 1);
  CHECK(contains(r.out, "the text data set gives token ids as [N,24]"));
}
