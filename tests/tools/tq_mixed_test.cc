// tq quantize --pipeline and tq sweep, run as a user would: the budget honoured in the written
// file as tq inspect totals it, both backends equal, the sweep's report and SVG, and the errors
// (nothing written on failure).
#include <doctest/doctest.h>
#if TQ_WITH_QUANT

#include <string>
#include <vector>

#include "tools/cli_util.h"
#include "toolkit/json.h"
#include "toolkit/quantize.h"

using namespace tinyquant;
using namespace tinyquant::testing;

namespace {
const std::string kLenet = std::string(TQ_MODELS_DIR) + "/lenet.onnx";

// "= N bytes (float32: M bytes" from tq inspect's weights line.
std::pair<long long, long long> inspect_totals(const std::string& out) {
  const size_t eq = out.find("scales/zero points = ");
  REQUIRE_MESSAGE(eq != std::string::npos, out);
  const long long total = std::stoll(out.substr(eq + 21));
  const size_t f = out.find("(float32: ", eq);
  REQUIRE(f != std::string::npos);
  return {total, std::stoll(out.substr(f + 10))};
}

std::string field(const std::string& json, const std::string& key) {
  const size_t p = json.find("\"" + key + "\": ");
  REQUIRE_MESSAGE(p != std::string::npos, std::string(key + " in " + json));
  const size_t b = p + key.size() + 4;
  return json.substr(b, json.find_first_of(",}", b) - b);
}
}  // namespace

TEST_CASE("budget, bit-list and percentage parsing") {
  double f = 0;
  REQUIRE(parse_budget_percent("13%", &f).is_ok());
  CHECK(f == doctest::Approx(0.13));
  REQUIRE(parse_budget_percent("12.5", &f).is_ok());
  CHECK(f == doctest::Approx(0.125));
  for (const char* bad : {"", "%", "0%", "101%", "-5%", "13%%", "1e1", "abc", "13 %", "1.2.3"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_budget_percent(bad, &f).is_ok());
  }
  int64_t b = 0;
  REQUIRE(parse_budget_bytes("400000", &b).is_ok());
  CHECK(b == 400000);
  REQUIRE(parse_budget_bytes("400KB", &b).is_ok());
  CHECK(b == 400000);
  REQUIRE(parse_budget_bytes("390KiB", &b).is_ok());
  CHECK(b == 390 * 1024);
  REQUIRE(parse_budget_bytes("1.5MB", &b).is_ok());
  CHECK(b == 1500000);
  for (const char* bad : {"", "0", "KB", "12 KB", "12kb!", "-4", "4GB", "0.1"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_budget_bytes(bad, &b).is_ok());
  }
  std::vector<int32_t> bits;
  REQUIRE(parse_bit_options("2,3,4,8", &bits).is_ok());
  CHECK(bits == std::vector<int32_t>{2, 3, 4, 8});
  Status s = parse_bit_options("2,9", &bits);
  REQUIRE_FALSE(s.is_ok());
  CHECK(std::string(s.message()).find("9 bits is not one of 2..8") != std::string::npos);
  CHECK_FALSE(parse_bit_options("4,4", &bits).is_ok());
  CHECK_FALSE(parse_bit_options("4,", &bits).is_ok());
  CHECK_FALSE(parse_bit_options("four", &bits).is_ok());
  CHECK_FALSE(parse_bit_options("2.5", &bits).is_ok());
  std::vector<double> fr;
  REQUIRE(parse_percent_list("13,16,20,25", &fr).is_ok());
  CHECK(fr.size() == 4);
  CHECK(fr[3] == doctest::Approx(0.25));
  CHECK_FALSE(parse_percent_list("13,,20", &fr).is_ok());
}

TEST_CASE("tq quantize --pipeline light --budget 13%: the file honours the budget and runs on both backends") {
  const std::string dir = testing::temp_dir("tq_mixed");
  const std::string out = dir + "/lenet_13.tqm", report = dir + "/lenet_13.json";
  Run q = tq("quantize " + kLenet + " --pipeline light --budget 13% --calib-size 200 -o " + out + " --report " + report);
  REQUIRE_MESSAGE(q.code == 0, q.out);
  CHECK_MESSAGE(contains(q.out, "integer program: optimal"), q.out);
  Run ins = tq("inspect " + out);
  REQUIRE_MESSAGE(ins.code == 0, ins.out);
  const auto totals = inspect_totals(ins.out);
  CHECK(totals.first <= totals.second * 13 / 100);
  CHECK(totals.first > totals.second * 11 / 100);  // the budget is used, not wasted
  CHECK_MESSAGE(contains(ins.out, "quantized  light+stats, 200 calibration samples"), ins.out);
  CHECK(contains(ins.out, (", budget " + std::to_string(totals.second * 13 / 100) + " bytes").c_str()));
  CHECK(contains(ins.out, "4..8 bits"));  // mixed
  const std::string json = read_text_file(report);
  CHECK(field(json, "model_bytes") == std::to_string(totals.first));
  CHECK(std::stoll(field(json, "budget_bytes")) == totals.second * 13 / 100);
  Run ref = tq("eval " + out + " --limit 300 --backend reference --json");
  Run xnn = tq("eval " + out + " --limit 300 --backend xnnpack --json");
  REQUIRE(ref.code == 0);
  REQUIRE(xnn.code == 0);
  CHECK(field(ref.out, "checksum") == field(xnn.out, "checksum"));
  CHECK(std::stod(field(ref.out, "top1")) > 85.0);
}

TEST_CASE("tq quantize --pipeline: bad budgets and bit options are errors that write nothing") {
  const std::string dir = testing::temp_dir("tq_mixed_bad");
  const std::string out = dir + "/bad.tqm";
  const std::string base = "quantize " + kLenet + " --calib-size 100 -o " + out;
  Run small = tq(base + " --pipeline light --budget 1%");
  CHECK(small.code == 1);
  CHECK_MESSAGE(contains(small.out, "is below the smallest model these bit options allow: 119000 bytes (6.4%)"),
                small.out);
  Run bytes = tq(base + " --pipeline light --budget-bytes 100KB");
  CHECK(bytes.code == 1);
  CHECK_MESSAGE(contains(bytes.out, "budget 100000 bytes is below the smallest model these bit options allow"), bytes.out);
  Run nine = tq(base + " --pipeline light --budget 13% --bits 2,9");
  CHECK(nine.code == 2);
  CHECK_MESSAGE(contains(nine.out, "9 bits is not one of 2..8"), nine.out);
  Run syntax = tq(base + " --pipeline light --budget 13%%");
  CHECK(syntax.code == 2);
  CHECK_MESSAGE(contains(syntax.out, "expected a percentage"), syntax.out);
  Run unit = tq(base + " --pipeline light --budget-bytes 4GB");
  CHECK(unit.code == 2);
  CHECK_MESSAGE(contains(unit.out, "expected a size in bytes"), unit.out);
  Run two = tq(base + " --pipeline light --budget 13% --budget-bytes 400000");
  CHECK(two.code == 2);
  CHECK_MESSAGE(contains(two.out, "exactly one of --budget, --budget-bytes and --max-drop"), two.out);
  Run none = tq(base + " --pipeline light");
  CHECK(none.code == 2);
  Run no_pipeline = tq(base + " --budget 13%");
  CHECK(no_pipeline.code == 2);
  CHECK_MESSAGE(contains(no_pipeline.out, "need --pipeline"), no_pipeline.out);
  Run method = tq(base + " --pipeline light --budget 13% --method adaquant");
  CHECK(method.code == 2);
  Run pipe = tq(base + " --pipeline heavy --budget 13%");
  CHECK(pipe.code == 2);
  CHECK_MESSAGE(contains(pipe.out, "expected light or advanced"), pipe.out);
  Run drop = tq(base + " --pipeline light --max-drop -1");
  CHECK(drop.code == 2);
  CHECK_FALSE(file_exists(out));
}

TEST_CASE("tq quantize --pipeline light --max-drop: the smallest model within the measured drop") {
  const std::string dir = testing::temp_dir("tq_mixed_drop");
  const std::string out = dir + "/lenet_drop.tqm";
  Run q = tq("quantize " + kLenet + " --pipeline light --max-drop 1 --calib-size 200 --json -o " + out);
  REQUIRE_MESSAGE(q.code == 0, q.out);
  const size_t brace = q.out.find("{\"pipeline\"");
  REQUIRE(brace != std::string::npos);
  const std::string json = q.out.substr(brace);
  CHECK(std::stod(field(json, "calibration_drop")) <= 1.0);
  CHECK(std::stoi(field(json, "drop_searches")) >= 2);
  CHECK(std::stoll(field(json, "model_bytes")) < std::stoll(field(json, "largest_bytes")));
}

TEST_CASE("tq sweep: one set of candidates, several budgets, a JSON report and an SVG chart") {
  const std::string dir = testing::temp_dir("tq_sweep");
  const std::string svg = dir + "/pareto.svg", report = dir + "/sweep.json";
  Run s = tq("sweep " + kLenet + " --pipeline light --budgets 10,13 --uniform 4 --limit 500 --calib-size 200 --plot " +
             svg + " --report " + report + " --output-dir " + dir);
  REQUIRE_MESSAGE(s.code == 0, s.out);
  CHECK_MESSAGE(contains(s.out, "W4A8"), s.out);
  const Json j = Json::parse(read_text_file(report), nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  REQUIRE(j["points"].size() == 3);
  CHECK(j["points"][0]["label"] == "W4A8");
  CHECK(j["points"][1]["label"] == "10%");
  CHECK(j["points"][2]["label"] == "13%");
  const long long float_bytes = j["float32_bytes"].get<long long>();
  CHECK(j["points"][1]["model_bytes"].get<long long>() <= float_bytes / 10);
  CHECK(j["points"][2]["model_bytes"].get<long long>() <= float_bytes * 13 / 100);
  CHECK(j["points"][2]["bits"].size() == 4);
  CHECK(j["layers"].size() == 4);
  CHECK(file_exists(dir + "/lenet_light_13p.tqm"));
  const std::string text = read_text_file(svg);
  CHECK(text.rfind("<svg", 0) == 0);
  CHECK(contains(text, "<polyline"));
  CHECK(contains(text, "weight bits per layer"));
  CHECK(contains(text, "/fc1/Gemm"));
  Run bad = tq("sweep " + kLenet + " --pipeline light --budgets 13,x --calib-size 100");
  CHECK(bad.code == 2);
  CHECK_MESSAGE(contains(bad.out, "--budgets '13,x'"), bad.out);
  Run uni = tq("sweep " + kLenet + " --pipeline light --bits 2,4 --uniform 8 --calib-size 100");
  CHECK(uni.code == 2);
  CHECK_MESSAGE(contains(uni.out, "not one of --bits"), uni.out);
}

#endif  // TQ_WITH_QUANT
