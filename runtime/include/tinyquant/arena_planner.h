// tinyquant/arena_planner.h — lifetime-based placement of activations in one arena.
//
//   arena (one block, caller-owned or allocated once by the posix port)
//   +-----------+-----------------+-----------+------------------------------+
//   | tensor A  | tensor C        | tensor B  |          ... free ...        |
//   | ops 0..2  | ops 3..5        | ops 1..4  |                              |
//   +-----------+-----------------+-----------+------------------------------+
//   0         offset(C)                                               total_bytes
//
// Tensors whose lifetimes [first_op, last_op] do not overlap may share bytes. Placement is greedy
// by size (largest first, lowest offset that fits), as in TFLite Micro's GreedyMemoryPlanner.
// Every offset is a multiple of `alignment`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tinyquant/status.h"

namespace tinyquant {

struct ArenaRequest {
  size_t bytes = 0;
  int32_t first_op = 0;  // the op that writes it (0 for graph inputs)
  int32_t last_op = 0;   // the last op that reads it (last op of the graph for graph outputs)
};

struct ArenaPlan {
  std::vector<size_t> offsets;  // one per request
  size_t total_bytes = 0;       // arena size needed (without the base alignment slack)
  size_t min_live_bytes = 0;    // the floor: the largest sum of simultaneously live tensors
};

Status plan_arena(const std::vector<ArenaRequest>& requests, size_t alignment, ArenaPlan* plan);

}  // namespace tinyquant
