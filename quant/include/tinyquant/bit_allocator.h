// tinyquant/bit_allocator.h — the integer program that picks each layer's bit option
// (ALGORITHMS.md §3), solved with lp_solve's branch and bound over binary variables.
//
// Layer l has options k = 0..n_l−1, each with a cost (the sensitivity ΔL[l,k]: the calibration
// loss of the model with only layer l at option k), its bytes in the file (packed weights + bias
// + scales), and optionally its BOPs (MACs × w_bits × a_bits) and the activation bytes the layer
// holds live. With x[l,k] ∈ {0,1}, Σ_k x[l,k] = 1 for every l:
//
//   kMinCost   minimise Σ cost·x   subject to  fixed_bytes + Σ bytes·x ≤ max_bytes
//   kMinBytes  minimise Σ bytes·x  subject to  Σ cost·x ≤ max_cost      (the dual, which the
//                                               paper describes and its code lacks)
//
// and, when set, Σ bops·x ≤ max_bops and, per layer, activation_bytes[l,k] ≤ max_activation_bytes
// (the peak is the largest layer's, so the bound is per layer: options over it are dropped).
//
//   quant::AllocationProblem p;  // p.layers[l].options[k] = {cost, bytes, bops, act_bytes}
//   quant::AllocationLimits lim; lim.max_bytes = 400 * 1024;
//   quant::Allocation a;
//   TQ_RETURN_IF_ERROR(quant::allocate_bits(p, quant::AllocationObjective::kMinCost, lim, &a));
//   // a.choice[l]: the option of layer l
//
// Errors: a limit below what any choice reaches is kInvalidArgument and says the smallest (or
// lowest) achievable figure, e.g. "budget 20000 bytes is below the smallest model these bit
// options allow: 23456 bytes"; a layer with no option left; a build without lp_solve
// (kUnsupported). The solution is re-checked in integers against every limit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyquant/status.h"

namespace tinyquant {
namespace quant {

struct AllocationOption {
  double cost = 0.0;          // ΔL, floored by the caller at a tiny positive value
  int64_t bytes = 0;
  double bops = 0.0;
  int64_t activation_bytes = 0;
};

struct AllocationLayer {
  std::string name;
  std::vector<AllocationOption> options;
};

struct AllocationProblem {
  std::vector<AllocationLayer> layers;
  int64_t fixed_bytes = 0;    // bytes no choice changes (activation scales / zero points)
};

enum class AllocationObjective : uint8_t { kMinCost = 0, kMinBytes };

struct AllocationLimits {  // a negative value: no such limit
  int64_t max_bytes = -1;  // including fixed_bytes
  double max_cost = -1.0;
  double max_bops = -1.0;
  int64_t max_activation_bytes = -1;
};

struct Allocation {
  std::vector<int32_t> choice;  // per layer: the option index
  double cost = 0.0, bops = 0.0;
  int64_t bytes = 0;            // including fixed_bytes
  std::string status;           // lp_solve's ("optimal")
  double seconds = 0.0;
  int64_t nodes = 0;            // branch-and-bound nodes
};

Status allocate_bits(const AllocationProblem& problem, AllocationObjective objective, const AllocationLimits& limits,
                     Allocation* out);

// The smallest and largest bytes any choice reaches (every layer at its smallest / largest
// option among those the activation limit leaves), with fixed_bytes.
int64_t smallest_bytes(const AllocationProblem& problem, int64_t max_activation_bytes = -1);
int64_t largest_bytes(const AllocationProblem& problem, int64_t max_activation_bytes = -1);

}  // namespace quant
}  // namespace tinyquant
