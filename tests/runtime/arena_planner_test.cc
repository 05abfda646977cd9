#include <doctest/doctest.h>

#include <random>

#include "tinyquant/arena_planner.h"

using namespace tinyquant;

TEST_CASE("arena planner shares bytes between tensors whose lifetimes do not overlap") {
  // A chain a -> b -> c: a and c never live together, so they share offset 0.
  std::vector<ArenaRequest> req = {{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}};
  ArenaPlan plan;
  REQUIRE(plan_arena(req, 64, &plan).is_ok());
  CHECK(plan.offsets[0] == plan.offsets[2]);
  CHECK(plan.offsets[0] != plan.offsets[1]);
  CHECK(plan.total_bytes == 2048);  // 1000 rounded up to 1024, twice
  CHECK(plan.min_live_bytes == 2000);
}

TEST_CASE("arena planner never overlaps live tensors (random lifetimes)") {
  std::mt19937 rng(3);
  for (int iter = 0; iter < 200; ++iter) {
    const int n = std::uniform_int_distribution<int>(1, 40)(rng);
    std::vector<ArenaRequest> req(n);
    for (ArenaRequest& r : req) {
      r.first_op = std::uniform_int_distribution<int>(0, 30)(rng);
      r.last_op = r.first_op + std::uniform_int_distribution<int>(0, 6)(rng);
      r.bytes = std::uniform_int_distribution<int>(0, 5000)(rng);
    }
    ArenaPlan plan;
    REQUIRE(plan_arena(req, 16, &plan).is_ok());
    CHECK(plan.total_bytes >= plan.min_live_bytes);
    for (int i = 0; i < n; ++i) {
      CHECK(plan.offsets[i] % 16 == 0);
      CHECK(plan.offsets[i] + req[i].bytes <= plan.total_bytes);
      for (int j = i + 1; j < n; ++j) {
        const bool live_together = req[i].first_op <= req[j].last_op && req[j].first_op <= req[i].last_op;
        const bool disjoint = plan.offsets[i] + std::max<size_t>(req[i].bytes, 1) <= plan.offsets[j] ||
                              plan.offsets[j] + std::max<size_t>(req[j].bytes, 1) <= plan.offsets[i];
        if (live_together) CHECK(disjoint);
      }
    }
  }
}

TEST_CASE("arena planner rejects bad input") {
  ArenaPlan plan;
  CHECK(plan_arena({{10, 3, 1}}, 16, &plan).code() == StatusCode::kInvalidArgument);
  CHECK(plan_arena({{10, 0, 1}}, 12, &plan).code() == StatusCode::kInvalidArgument);
}
