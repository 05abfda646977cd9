#include "tinyquant/arena_planner.h"

#include <algorithm>
#include <numeric>

namespace tinyquant {

namespace {
size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }
bool overlaps(const ArenaRequest& a, const ArenaRequest& b) {
  return a.first_op <= b.last_op && b.first_op <= a.last_op;
}
}  // namespace

Status plan_arena(const std::vector<ArenaRequest>& requests, size_t alignment, ArenaPlan* plan) {
  TQ_ENSURE(alignment > 0 && (alignment & (alignment - 1)) == 0, kInvalidArgument,
            "arena alignment %zu is not a power of two", alignment);
  const size_t n = requests.size();
  plan->offsets.assign(n, 0);
  plan->total_bytes = 0;
  plan->min_live_bytes = 0;
  for (const ArenaRequest& r : requests)
    TQ_ENSURE(r.first_op <= r.last_op, kInvalidArgument, "arena request lives from op %d to op %d", r.first_op,
              r.last_op);

  // Largest first; ties by earlier start, then index, so the plan is deterministic.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (requests[a].bytes != requests[b].bytes) return requests[a].bytes > requests[b].bytes;
    if (requests[a].first_op != requests[b].first_op) return requests[a].first_op < requests[b].first_op;
    return a < b;
  });

  std::vector<size_t> placed;  // indices already placed, kept sorted by offset
  placed.reserve(n);
  for (size_t idx : order) {
    const ArenaRequest& r = requests[idx];
    const size_t size = align_up(std::max<size_t>(r.bytes, 1), alignment);
    size_t candidate = 0;
    for (size_t p : placed) {  // first gap among lifetime-overlapping neighbours that fits
      if (!overlaps(requests[p], r)) continue;
      const size_t p_begin = plan->offsets[p];
      const size_t p_end = p_begin + align_up(std::max<size_t>(requests[p].bytes, 1), alignment);
      if (candidate + size <= p_begin) break;
      candidate = std::max(candidate, p_end);
    }
    plan->offsets[idx] = candidate;
    plan->total_bytes = std::max(plan->total_bytes, candidate + size);
    placed.insert(std::upper_bound(placed.begin(), placed.end(), idx,
                                   [&](size_t a, size_t b) { return plan->offsets[a] < plan->offsets[b]; }),
                  idx);
  }

  // The floor no placement can beat: the largest set of simultaneously live tensors.
  int32_t last = 0;
  for (const ArenaRequest& r : requests) last = std::max(last, r.last_op);
  for (int32_t op = 0; op <= last && n; ++op) {
    size_t live = 0;
    for (const ArenaRequest& r : requests)
      if (r.first_op <= op && op <= r.last_op) live += r.bytes;
    plan->min_live_bytes = std::max(plan->min_live_bytes, live);
  }
  return Status::ok();
}

}  // namespace tinyquant
