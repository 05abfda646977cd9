// The bit-allocation integer program on lp_solve (contract in tinyquant/bit_allocator.h). The
// only file of tinyquant that includes or links lp_solve.
#include "tinyquant/bit_allocator.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tinyquant/port.h"

#if TQ_WITH_LPSOLVE
#include <lpsolve/lp_lib.h>
#endif

namespace tinyquant {
namespace quant {
namespace {

bool allowed(const AllocationOption& o, int64_t max_act) { return max_act < 0 || o.activation_bytes <= max_act; }

template <class F>
double extreme(const AllocationProblem& p, int64_t max_act, bool largest, F value) {
  double total = 0.0;
  for (const AllocationLayer& l : p.layers) {
    double best = largest ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    for (const AllocationOption& o : l.options)
      if (allowed(o, max_act)) best = largest ? std::max(best, value(o)) : std::min(best, value(o));
    total += best;
  }
  return total;
}

}  // namespace

int64_t smallest_bytes(const AllocationProblem& p, int64_t max_act) {
  return p.fixed_bytes + static_cast<int64_t>(extreme(p, max_act, false, [](const AllocationOption& o) {
           return double(o.bytes);
         }));
}
int64_t largest_bytes(const AllocationProblem& p, int64_t max_act) {
  return p.fixed_bytes + static_cast<int64_t>(extreme(p, max_act, true, [](const AllocationOption& o) {
           return double(o.bytes);
         }));
}

Status allocate_bits(const AllocationProblem& p, AllocationObjective objective, const AllocationLimits& lim,
                     Allocation* out) {
  const uint64_t t0 = port::now_us();
  TQ_ENSURE(!p.layers.empty(), kInvalidArgument, "bit allocation: no layers to allocate");
  TQ_ENSURE(objective == AllocationObjective::kMinCost ? lim.max_bytes >= 0 : lim.max_cost >= 0, kInvalidArgument,
            "bit allocation: %s", objective == AllocationObjective::kMinCost
                                      ? "minimising the loss needs a size budget"
                                      : "minimising the size needs an allowed degradation");
  for (const AllocationLayer& l : p.layers) {
    bool any = false;
    for (const AllocationOption& o : l.options) {
      TQ_ENSURE(std::isfinite(o.cost) && o.cost >= 0 && o.bytes >= 0 && std::isfinite(o.bops), kInvalidArgument,
                "bit allocation: layer '%s' has an option with a negative or non-finite cost, size or BOPs",
                l.name.c_str());
      any |= allowed(o, lim.max_activation_bytes);
    }
    TQ_ENSURE(any, kInvalidArgument,
              "bit allocation: layer '%s' has no bit option within the activation limit of %lld bytes", l.name.c_str(),
              static_cast<long long>(lim.max_activation_bytes));
  }
  const int64_t act = lim.max_activation_bytes;
  const int64_t smallest = smallest_bytes(p, act);
  if (lim.max_bytes >= 0)
    TQ_ENSURE(lim.max_bytes >= smallest, kInvalidArgument,
              "budget %lld bytes is below the smallest model these bit options allow: %lld bytes (every layer at its "
              "fewest bits)",
              static_cast<long long>(lim.max_bytes), static_cast<long long>(smallest));
  const double min_cost = extreme(p, act, false, [](const AllocationOption& o) { return o.cost; });
  if (lim.max_cost >= 0)
    TQ_ENSURE(lim.max_cost >= min_cost * (1 - 1e-12), kInvalidArgument,
              "allowed degradation %.6g is below the lowest these bit options reach: %.6g (every layer at its "
              "least sensitive option)",
              lim.max_cost, min_cost);
  const double min_bops = extreme(p, act, false, [](const AllocationOption& o) { return o.bops; });
  if (lim.max_bops >= 0)
    TQ_ENSURE(lim.max_bops >= min_bops * (1 - 1e-12), kInvalidArgument,
              "BOPs limit %.6g is below the fewest these bit options allow: %.6g", lim.max_bops, min_bops);

#if !TQ_WITH_LPSOLVE
  (void)t0;
  (void)out;
  return Status::error(StatusCode::kUnsupported,
                       "bit allocation needs lp_solve, and this build has none (install liblpsolve55-dev and reconfigure)");
#else
  // Columns 1..n: x[l,k] for the allowed options, layer by layer.
  std::vector<int32_t> col_layer, col_option;
  for (size_t l = 0; l < p.layers.size(); ++l)
    for (size_t k = 0; k < p.layers[l].options.size(); ++k)
      if (allowed(p.layers[l].options[k], act)) {
        col_layer.push_back(static_cast<int32_t>(l));
        col_option.push_back(static_cast<int32_t>(k));
      }
  const int n = static_cast<int>(col_layer.size());
  lprec* lp = make_lp(0, n);
  TQ_ENSURE(lp, kOutOfMemory, "bit allocation: lp_solve could not create a %d-variable model", n);
  struct Free {
    lprec* lp;
    ~Free() { delete_lp(lp); }
  } free_lp{lp};
  set_verbose(lp, NEUTRAL);
  // Costs are scaled to at most 1 so the solver's absolute tolerances mean the same on every model.
  double cost_scale = 0.0;
  for (int c = 0; c < n; ++c) cost_scale = std::max(cost_scale, p.layers[col_layer[c]].options[col_option[c]].cost);
  cost_scale = cost_scale > 0 ? 1.0 / cost_scale : 1.0;
  auto option = [&](int c) -> const AllocationOption& { return p.layers[col_layer[c]].options[col_option[c]]; };
  std::vector<double> row(n);
  std::vector<int> cols(n);
  for (int c = 0; c < n; ++c) cols[c] = c + 1;
  set_add_rowmode(lp, TRUE);
  for (size_t l = 0, c0 = 0; l < p.layers.size(); ++l) {  // one option per layer
    size_t c1 = c0;
    while (c1 < size_t(n) && col_layer[c1] == int32_t(l)) ++c1;
    std::vector<double> ones(c1 - c0, 1.0);
    add_constraintex(lp, static_cast<int>(c1 - c0), ones.data(), cols.data() + c0, EQ, 1.0);
    c0 = c1;
  }
  if (lim.max_bytes >= 0) {
    for (int c = 0; c < n; ++c) row[c] = double(option(c).bytes);
    add_constraintex(lp, n, row.data(), cols.data(), LE, double(lim.max_bytes - p.fixed_bytes));
  }
  if (lim.max_cost >= 0) {
    for (int c = 0; c < n; ++c) row[c] = option(c).cost * cost_scale;
    add_constraintex(lp, n, row.data(), cols.data(), LE, lim.max_cost * cost_scale * (1 + 1e-12));
  }
  if (lim.max_bops >= 0) {
    double bops_scale = 0.0;
    for (int c = 0; c < n; ++c) bops_scale = std::max(bops_scale, option(c).bops);
    bops_scale = bops_scale > 0 ? 1.0 / bops_scale : 1.0;
    for (int c = 0; c < n; ++c) row[c] = option(c).bops * bops_scale;
    add_constraintex(lp, n, row.data(), cols.data(), LE, lim.max_bops * bops_scale * (1 + 1e-12));
  }
  set_add_rowmode(lp, FALSE);
  for (int c = 0; c < n; ++c)
    row[c] = objective == AllocationObjective::kMinCost ? option(c).cost * cost_scale : double(option(c).bytes);
  set_obj_fnex(lp, n, row.data(), cols.data());
  set_minim(lp);
  for (int c = 1; c <= n; ++c) set_binary(lp, c, TRUE);
  set_timeout(lp, 60);
  const int r = solve(lp);
  const char* names[] = {"optimal", "suboptimal", "infeasible", "unbounded", "degenerate", "numerical failure"};
  const std::string status = r >= 0 && r <= 5 ? names[r] : "lp_solve status " + std::to_string(r);
  if (r == INFEASIBLE) {
    return Status::error(StatusCode::kInvalidArgument,
                         "no choice of bit options meets every limit together (size budget %lld bytes, smallest %lld; "
                         "degradation %.6g, lowest %.6g; BOPs %.6g, fewest %.6g)",
                         static_cast<long long>(lim.max_bytes), static_cast<long long>(smallest), lim.max_cost,
                         min_cost, lim.max_bops, min_bops);
  }
  TQ_ENSURE(r == OPTIMAL || r == SUBOPTIMAL, kInternal, "bit allocation: lp_solve returned '%s'", status.c_str());
  std::vector<double> x(n);
  get_variables(lp, x.data());

  Allocation a;
  a.choice.assign(p.layers.size(), -1);
  for (int c = 0; c < n; ++c)
    if (x[c] > 0.5) {
      TQ_ENSURE(a.choice[col_layer[c]] < 0, kInternal, "bit allocation: layer '%s' got two options",
                p.layers[col_layer[c]].name.c_str());
      a.choice[col_layer[c]] = col_option[c];
    }
  a.bytes = p.fixed_bytes;
  for (size_t l = 0; l < p.layers.size(); ++l) {
    TQ_ENSURE(a.choice[l] >= 0, kInternal, "bit allocation: layer '%s' got no option", p.layers[l].name.c_str());
    const AllocationOption& o = p.layers[l].options[a.choice[l]];
    a.cost += o.cost;
    a.bytes += o.bytes;
    a.bops += o.bops;
  }
  // The limits again, in exact arithmetic where they are integers.
  TQ_ENSURE(lim.max_bytes < 0 || a.bytes <= lim.max_bytes, kInternal,
            "bit allocation: the solution has %lld bytes, over the budget of %lld", static_cast<long long>(a.bytes),
            static_cast<long long>(lim.max_bytes));
  TQ_ENSURE(lim.max_cost < 0 || a.cost <= lim.max_cost * (1 + 1e-9), kInternal,
            "bit allocation: the solution's degradation %.6g is over the limit %.6g", a.cost, lim.max_cost);
  TQ_ENSURE(lim.max_bops < 0 || a.bops <= lim.max_bops * (1 + 1e-9), kInternal,
            "bit allocation: the solution's BOPs %.6g are over the limit %.6g", a.bops, lim.max_bops);
  a.status = status;
  a.nodes = static_cast<int64_t>(get_total_nodes(lp));
  a.seconds = (port::now_us() - t0) / 1e6;
  *out = std::move(a);
  return Status::ok();
#endif
}

}  // namespace quant
}  // namespace tinyquant
