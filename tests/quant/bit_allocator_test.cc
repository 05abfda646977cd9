// The bit-allocation integer program against brute force on small random instances (both
// objectives, with and without the BOPs and activation limits), and its errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "tinyquant/bit_allocator.h"

using namespace tinyquant;
using namespace tinyquant::quant;

namespace {

AllocationProblem random_problem(std::mt19937* rng, int layers, int options) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  AllocationProblem p;
  p.fixed_bytes = 100 + (*rng)() % 50;
  for (int l = 0; l < layers; ++l) {
    AllocationLayer layer;
    layer.name = "layer" + std::to_string(l);
    const int64_t elements = 50 + (*rng)() % 2000;
    for (int k = 0; k < options; ++k) {
      const int bits = 2 + k * 2;  // 2, 4, 6, 8: more bits, more bytes, less loss (mostly)
      AllocationOption o;
      o.bytes = (elements * bits + 7) / 8 + 8 * (1 + l % 3);
      o.cost = 1e-6 + u(*rng) * std::pow(2.0, -bits) * (1 + l);
      o.bops = double(elements) * 9 * bits * 8;
      o.activation_bytes = int64_t(u(*rng) * 1000);
      layer.options.push_back(o);
    }
    p.layers.push_back(layer);
  }
  return p;
}

struct Best {
  bool found = false;
  double objective = 0;
};

// Every combination: the best objective among those meeting every limit.
Best brute_force(const AllocationProblem& p, AllocationObjective obj, const AllocationLimits& lim) {
  Best best;
  std::vector<int> c(p.layers.size(), 0);
  for (;;) {
    double cost = 0, bops = 0;
    int64_t bytes = p.fixed_bytes;
    bool ok = true;
    for (size_t l = 0; l < c.size(); ++l) {
      const AllocationOption& o = p.layers[l].options[c[l]];
      cost += o.cost;
      bytes += o.bytes;
      bops += o.bops;
      if (lim.max_activation_bytes >= 0 && o.activation_bytes > lim.max_activation_bytes) ok = false;
    }
    ok = ok && (lim.max_bytes < 0 || bytes <= lim.max_bytes) && (lim.max_cost < 0 || cost <= lim.max_cost) &&
         (lim.max_bops < 0 || bops <= lim.max_bops);
    const double value = obj == AllocationObjective::kMinCost ? cost : double(bytes);
    if (ok && (!best.found || value < best.objective)) best = {true, value};
    size_t l = 0;
    while (l < c.size() && ++c[l] == int(p.layers[l].options.size())) c[l++] = 0;
    if (l == c.size()) break;
  }
  return best;
}

}  // namespace

TEST_CASE("bit allocation is optimal against brute force on random instances") {
  std::mt19937 rng(12345);
  int solved = 0, infeasible = 0;
  for (int trial = 0; trial < 120; ++trial) {
    const int layers = 2 + trial % 5, options = 2 + (trial / 5) % 3;
    const AllocationProblem p = random_problem(&rng, layers, options);
    const int64_t lo = smallest_bytes(p), hi = largest_bytes(p);
    AllocationLimits lim;
    const AllocationObjective obj = trial % 2 ? AllocationObjective::kMinBytes : AllocationObjective::kMinCost;
    std::uniform_real_distribution<double> u(0.0, 1.0);
    if (obj == AllocationObjective::kMinCost) {
      lim.max_bytes = lo + int64_t(u(rng) * double(hi - lo));
    } else {
      double min_cost = 0, max_cost = 0;
      for (const AllocationLayer& l : p.layers) {
        double a = 1e9, b = 0;
        for (const AllocationOption& o : l.options) a = std::min(a, o.cost), b = std::max(b, o.cost);
        min_cost += a;
        max_cost += b;
      }
      lim.max_cost = min_cost + u(rng) * (max_cost - min_cost);
    }
    if (trial % 3 == 1) {  // a BOPs limit between the fewest and the most
      double a = 0, b = 0;
      for (const AllocationLayer& l : p.layers) a += l.options.front().bops, b += l.options.back().bops;
      lim.max_bops = a + u(rng) * (b - a);
    }
    if (trial % 7 == 3) lim.max_activation_bytes = 700;
    const Best want = brute_force(p, obj, lim);
    Allocation got;
    const Status s = allocate_bits(p, obj, lim, &got);
    CAPTURE(trial);
    if (!want.found) {
      CHECK_FALSE(s.is_ok());
      ++infeasible;
      continue;
    }
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    ++solved;
    const double value = obj == AllocationObjective::kMinCost ? got.cost : double(got.bytes);
    CHECK(value == doctest::Approx(want.objective).epsilon(1e-9));
    // The returned choice is consistent and within every limit.
    double cost = 0;
    int64_t bytes = p.fixed_bytes;
    for (size_t l = 0; l < p.layers.size(); ++l) {
      REQUIRE(got.choice[l] >= 0);
      REQUIRE(got.choice[l] < int(p.layers[l].options.size()));
      cost += p.layers[l].options[got.choice[l]].cost;
      bytes += p.layers[l].options[got.choice[l]].bytes;
      if (lim.max_activation_bytes >= 0)
        CHECK(p.layers[l].options[got.choice[l]].activation_bytes <= lim.max_activation_bytes);
    }
    CHECK(bytes == got.bytes);
    CHECK(cost == doctest::Approx(got.cost));
    if (lim.max_bytes >= 0) CHECK(got.bytes <= lim.max_bytes);
    if (lim.max_cost >= 0) CHECK(got.cost <= lim.max_cost * (1 + 1e-9));
    CHECK(got.status == "optimal");
  }
  CHECK(solved >= 90);  // the instances are mostly feasible by construction
  MESSAGE(solved << " solved, " << infeasible << " infeasible");
}

TEST_CASE("bit allocation: a budget below the smallest model names the smallest size") {
  AllocationProblem p;
  p.fixed_bytes = 40;
  p.layers.push_back({"conv1", {{0.5, 100}, {0.1, 400}}});
  p.layers.push_back({"fc", {{0.3, 60}, {0.01, 240}}});
  AllocationLimits lim;
  lim.max_bytes = 199;  // smallest: 40 + 100 + 60 = 200
  Allocation a;
  Status s = allocate_bits(p, AllocationObjective::kMinCost, lim, &a);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(std::string(s.message()).find("smallest model these bit options allow: 200 bytes") != std::string::npos);
  lim.max_bytes = 200;  // exactly the smallest: feasible, every layer at its smallest option
  REQUIRE(allocate_bits(p, AllocationObjective::kMinCost, lim, &a).is_ok());
  CHECK(a.choice == std::vector<int32_t>{0, 0});
  CHECK(a.bytes == 200);
  lim.max_bytes = 380;  // room for one upgrade: fc's (0.29 gain for 180) beats conv1's (0.4 for 300)
  REQUIRE(allocate_bits(p, AllocationObjective::kMinCost, lim, &a).is_ok());
  CHECK(a.choice == std::vector<int32_t>{0, 1});
  lim.max_bytes = 500;  // conv1's upgrade (0.4) now fits and beats fc's
  REQUIRE(allocate_bits(p, AllocationObjective::kMinCost, lim, &a).is_ok());
  CHECK(a.choice == std::vector<int32_t>{1, 0});

  AllocationLimits dual;  // the dual: the smallest model with Σ cost ≤ 0.45
  dual.max_cost = 0.45;
  REQUIRE(allocate_bits(p, AllocationObjective::kMinBytes, dual, &a).is_ok());
  CHECK(a.choice == std::vector<int32_t>{1, 0});  // 0.4 at 500 bytes; {0,1} is 0.51, over
  CHECK(a.bytes == 500);
  dual.max_cost = 0.05;  // below the lowest reachable (0.11)
  s = allocate_bits(p, AllocationObjective::kMinBytes, dual, &a);
  REQUIRE_FALSE(s.is_ok());
  CHECK(std::string(s.message()).find("lowest these bit options reach: 0.11") != std::string::npos);
  AllocationLimits none;
  CHECK_FALSE(allocate_bits(p, AllocationObjective::kMinCost, none, &a).is_ok());  // no budget given
  p.layers[0].options[0].cost = std::nan("");
  lim.max_bytes = 1000;
  s = allocate_bits(p, AllocationObjective::kMinCost, lim, &a);
  REQUIRE_FALSE(s.is_ok());
  CHECK(std::string(s.message()).find("conv1") != std::string::npos);
}
