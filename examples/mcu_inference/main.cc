// examples/mcu_inference — Fashion-MNIST on a microcontroller (or the host: the same source).
//
// The model and the test images are compiled in (`tq embed`); the model is read in place from
// flash (no copy of the weights), the interpreter plans its activations into a static arena sized
// on the host, and every image runs at batch 1 on the reference kernels. All heap use happens in
// load_model() + prepare(); invoke() must not allocate, and the program fails if it does.
//
// Prints one line and exits 0 on success (nonzero on any error):
//   mcu_inference model=NAME images=N correct=C top1=XX.XX checksum=0x... arena=B heap_after_init=0 ...
// checksum: FNV-1a 64 over the output bytes of every image in order, as `tq eval` computes it.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "embedded_model.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/model_io.h"
#include "tinyquant/port.h"

// ---- heap accounting: every C++ allocation (all of tinyquant's) goes through these ----
namespace {
struct HeapStats {
  size_t calls = 0;  // operator new calls
  size_t live = 0;   // bytes currently allocated
  size_t peak = 0;   // most bytes ever allocated at once
};
HeapStats g_heap;
constexpr size_t kHeader = 16;  // the size, kept in front of the block (16 keeps max_align_t alignment)
}  // namespace

void* operator new(std::size_t size) {
  ++g_heap.calls;
  void* block = std::malloc(size + kHeader);
  if (!block) {
    std::fprintf(stderr, "mcu_inference: out of heap allocating %lu bytes\n", static_cast<unsigned long>(size));
    std::abort();
  }
  *static_cast<size_t*>(block) = size;
  g_heap.live += size;
  if (g_heap.live > g_heap.peak) g_heap.peak = g_heap.live;
  return static_cast<char*>(block) + kHeader;
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept {
  if (!p) return;
  char* block = static_cast<char*>(p) - kHeader;
  g_heap.live -= *reinterpret_cast<size_t*>(block);
  std::free(block);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }

#if TQ_BAREMETAL
// Linked with -Wl,--wrap=_malloc_r,... : counts C allocations too (newlib's included).
extern "C" {
struct _reent;
void* __real__malloc_r(struct _reent* r, size_t n);
void* __real__calloc_r(struct _reent* r, size_t n, size_t m);
void* __real__realloc_r(struct _reent* r, void* p, size_t n);
size_t g_malloc_calls = 0;
void* __wrap__malloc_r(struct _reent* r, size_t n) {
  ++g_malloc_calls;
  return __real__malloc_r(r, n);
}
void* __wrap__calloc_r(struct _reent* r, size_t n, size_t m) {
  ++g_malloc_calls;
  return __real__calloc_r(r, n, m);
}
void* __wrap__realloc_r(struct _reent* r, void* p, size_t n) {
  ++g_malloc_calls;
  return __real__realloc_r(r, p, n);
}
extern char* tq_heap_high_water;  // ports/baremetal/syscalls.c: highest _sbrk break
extern char __heap_start;
}
static size_t malloc_calls() { return g_malloc_calls; }
static size_t sbrk_bytes() { return static_cast<size_t>(tq_heap_high_water - &__heap_start); }
#else
static size_t malloc_calls() { return 0; }
static size_t sbrk_bytes() { return 0; }
#endif

namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
uint64_t fnv1a64(uint64_t hash, const void* data, size_t size) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) hash = (hash ^ p[i]) * 0x100000001b3ull;
  return hash;
}

int fail(const char* what, const tinyquant::Status& s) {
  std::fprintf(stderr, "mcu_inference: %s failed: %s\n", what, s.message());
  return 1;
}

// ---- per-op timing (bench/mcu_speed.sh): the port's timer around every op ----
struct OpTimes {
  uint64_t last = 0;
  uint64_t* ticks = nullptr;  // per op
};
bool time_op(void* user, int32_t op, const tinyquant::Interpreter&) {
  OpTimes* t = static_cast<OpTimes*>(user);
  const uint64_t now = tinyquant::port::timer_ticks();
  t->ticks[op] += now - t->last;
  t->last = tinyquant::port::timer_ticks();  // the callback's own time is not the next op's
  return true;
}

// Multiply-accumulates of a weighted op (padding taps included, as every MAC count does).
int64_t op_macs(const tinyquant::Graph& g, const tinyquant::Operator& op, const tinyquant::Interpreter& interp,
                char* kind, size_t kind_size) {
  using namespace tinyquant;
  if (op.inputs.size() < 2 || op.inputs[1] < 0) return 0;
  const TensorView out = interp.tensor(op.outputs[0]);
  const std::vector<int32_t>& w = g.tensors[op.inputs[1]].shape;
  switch (op.type) {
    case OpType::kConv2D:
      std::snprintf(kind, kind_size, "conv%dx%d", static_cast<int>(w[1]), static_cast<int>(w[2]));
      return out.elements() * w[1] * w[2] * w[3];
    case OpType::kDepthwiseConv2D:
      std::snprintf(kind, kind_size, "dw%dx%d", static_cast<int>(w[1]), static_cast<int>(w[2]));
      return out.elements() * w[1] * w[2];
    case OpType::kFullyConnected:
      std::snprintf(kind, kind_size, "fc");
      return out.elements() * w[1];
    default: return 0;
  }
}

// Runs the first kProfileImages images once with the Cortex-M kernels (where this CPU has the DSP
// extension, else the portable ones again) and once with the portable kernels, timing every op,
// and checks both give the same output bytes. Prints one mcu_op line per weighted op and an
// mcu_profile total. Heap use here (a second prepare) comes after the no-allocation check.
constexpr int32_t kProfileImages = 1;
int profile(const tinyquant::Graph& graph, tinyquant::Interpreter& interp, const tinyquant::OpResolver& resolver) {
  namespace tq = tq_embedded;
  using namespace tinyquant;
  const size_t num_ops = graph.operators.size();
  std::vector<uint64_t> ticks[2] = {std::vector<uint64_t>(num_ops, 0), std::vector<uint64_t>(num_ops, 0)};
  std::vector<uint8_t> outputs[2];
  std::vector<size_t> scratch(num_ops, 0);
  std::vector<uint8_t> fast(num_ops, 0);
  const int64_t pixels = int64_t(tq::rows) * tq::cols;
  const int32_t images = tq::count < kProfileImages ? tq::count : kProfileImages;
  for (int set = 0; set < 2; ++set) {
    PrepareOptions opt;
    opt.arena = tq::arena;
    opt.arena_size = tq::arena_size;
    opt.kernels = set == 0 ? KernelSet::kAuto : KernelSet::kPortable;
    Status s = interp.prepare(graph, opt, resolver);
    if (!s.is_ok()) return fail("prepare (profile)", s);
    if (set == 0)
      for (size_t i = 0; i < num_ops; ++i) {
        fast[i] = interp.op_cortex_m(static_cast<int>(i));
        scratch[i] = interp.op_scratch_bytes(static_cast<int>(i));
      }
    OpTimes t;
    t.ticks = ticks[set].data();
    interp.set_op_callback(time_op, &t);
    for (int32_t i = 0; i < images; ++i) {
      const uint8_t* src = tq::images + i * pixels;
      float* x = interp.input(0).as<float>();
      for (int64_t p = 0; p < pixels; ++p)
        x[p] = tq::token_ids ? static_cast<float>(src[p])
                             : (static_cast<float>(src[p]) / 255.0f - tq::mean) / tq::std_dev;
      t.last = port::timer_ticks();
      s = interp.invoke();
      if (!s.is_ok()) return fail("invoke (profile)", s);
      const TensorView out = interp.output(0);
      const uint8_t* o = static_cast<const uint8_t*>(out.data);
      outputs[set].insert(outputs[set].end(), o, o + out.elements() * dtype_size(out.dtype));
    }
    interp.set_op_callback(nullptr, nullptr);
  }
  uint64_t total[2] = {0, 0};
  int64_t macs_total = 0;
  for (size_t i = 0; i < num_ops; ++i) {
    total[0] += ticks[0][i];
    total[1] += ticks[1][i];
    const Operator& op = graph.operators[i];
    char kind[16] = "";
    const int64_t macs = op_macs(graph, op, interp, kind, sizeof(kind)) * images;
    if (macs == 0) continue;
    macs_total += macs;
    const int wbits = graph.tensors[op.inputs[1]].quant.scale.empty() ? 32 : graph.tensors[op.inputs[1]].quant.bits;
    std::printf("mcu_op model=%s op=%d kind=%s wbits=%d macs=%lld ticks=%llu ticks_portable=%llu cortex_m=%d scratch=%lu\n",
                tq::name, static_cast<int>(i), kind, wbits, static_cast<long long>(macs),
                static_cast<unsigned long long>(ticks[0][i]), static_cast<unsigned long long>(ticks[1][i]),
                static_cast<int>(fast[i]), static_cast<unsigned long>(scratch[i]));
  }
  // The timer against a loop of known length: 2 instructions (SUBS, BNE) per iteration. Under
  // -icount shift=0 this gives the instructions per tick the benchmark converts with.
  uint64_t loop_ticks = 0;
  const uint32_t kLoop = 1000000;
#if TQ_BAREMETAL
  {
    uint32_t n = kLoop;
    const uint64_t t0 = port::timer_ticks();
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
    loop_ticks = port::timer_ticks() - t0;
  }
#endif
  const bool same = outputs[0] == outputs[1];
  std::printf("mcu_profile model=%s images=%d macs=%lld ticks=%llu ticks_portable=%llu timer_hz=%lu loop_instructions=%lu loop_ticks=%llu same_outputs=%d\n",
              tq::name, static_cast<int>(images), static_cast<long long>(macs_total),
              static_cast<unsigned long long>(total[0]), static_cast<unsigned long long>(total[1]),
              static_cast<unsigned long>(port::timer_hz()), static_cast<unsigned long>(2 * kLoop),
              static_cast<unsigned long long>(loop_ticks), same ? 1 : 0);
  if (!same) {
    std::fprintf(stderr, "mcu_inference: FAIL: the Cortex-M and the portable kernels gave different outputs\n");
    return 4;
  }
  return 0;
}

}  // namespace

int main() {
  namespace tq = tq_embedded;
  using namespace tinyquant;

  // 1. Load in place: constant buffers point into tq::model (flash), nothing is copied.
  Graph graph;
  Status s = load_model(tq::model, tq::model_size, &graph, tq::name);
  if (!s.is_ok()) return fail("load_model", s);
  const size_t heap_graph = g_heap.live;  // what the loaded graph keeps (load_model's temporaries freed)
  for (const Buffer& b : graph.buffers) {
    if (b.size() == 0) continue;
    if (!b.external || b.data() < tq::model || b.data() + b.size() > tq::model + tq::model_size) {
      std::fprintf(stderr, "mcu_inference: a constant buffer was copied out of the model instead of read in place\n");
      return 1;
    }
  }

  // 2. Prepare at batch 1, reference kernels, in the static arena sized on the host; only the
  // kernels this model runs are linked (the resolver tq embed wrote; 184 bytes on the stack).
  OpResolver resolver;
  tq::register_kernels(&resolver);
  Interpreter interp;
  PrepareOptions opt;
  opt.batch = 1;
  opt.backend = Backend::kReference;
  opt.arena = tq::arena;
  opt.arena_size = tq::arena_size;
  s = interp.prepare(graph, opt, resolver);
  if (!s.is_ok()) return fail("prepare", s);
  const TensorView in = interp.input(0);
  const int64_t pixels = int64_t(tq::rows) * tq::cols;
  if (in.dtype != DType::kFloat32 || in.elements() != pixels || interp.num_outputs() != 1) {
    std::fprintf(stderr, "mcu_inference: the model must take one float32 %dx%d image and have one output\n",
                 static_cast<int>(tq::rows), static_cast<int>(tq::cols));
    return 1;
  }

  // 3. Every image, one at a time. No allocation from here on.
  const size_t new_calls_init = g_heap.calls, malloc_calls_init = malloc_calls();
  const size_t heap_init_peak = g_heap.peak, sbrk_init = sbrk_bytes();
  int32_t correct = 0;
  uint64_t checksum = kFnvOffset;
  const uint64_t t0 = port::now_us();
  for (int32_t i = 0; i < tq::count; ++i) {
    const uint8_t* src = tq::images + i * pixels;
    float* x = in.as<float>();
    // Exactly tools/data preprocess_images: (pixel / 255 - mean) / std in float32; token ids as
    // tq eval feeds them (float(id)).
    for (int64_t p = 0; p < pixels; ++p)
      x[p] = tq::token_ids ? static_cast<float>(src[p])
                           : (static_cast<float>(src[p]) / 255.0f - tq::mean) / tq::std_dev;
    s = interp.invoke();
    if (!s.is_ok()) return fail("invoke", s);
    const TensorView out = interp.output(0);
    checksum = fnv1a64(checksum, out.data, static_cast<size_t>(out.elements()) * dtype_size(out.dtype));
    const float* logits = out.as<const float>();
    int32_t best = 0;
    for (int32_t c = 1; c < static_cast<int32_t>(out.elements()); ++c)
      if (logits[c] > logits[best]) best = c;  // first maximum, as std::max_element
    correct += best == tq::labels[i];
  }
  const uint64_t us = port::now_us() - t0;
  const size_t heap_after_init = (g_heap.calls - new_calls_init) + (malloc_calls() - malloc_calls_init);

  std::printf(
      "mcu_inference model=%s images=%d correct=%d top1=%.2f checksum=0x%016llx arena=%lu heap_after_init=%lu "
      "arena_static=%lu min_live=%lu heap_init=%lu heap_graph=%lu heap_interpreter=%lu sbrk=%lu constants=%lu model_bytes=%lu us=%llu\n",
      tq::name, static_cast<int>(tq::count), static_cast<int>(correct), 100.0 * correct / tq::count,
      static_cast<unsigned long long>(checksum), static_cast<unsigned long>(interp.arena_bytes()),
      static_cast<unsigned long>(heap_after_init), static_cast<unsigned long>(tq::arena_size),
      static_cast<unsigned long>(interp.min_live_bytes()), static_cast<unsigned long>(heap_init_peak),
      static_cast<unsigned long>(heap_graph), static_cast<unsigned long>(g_heap.live - heap_graph),
      static_cast<unsigned long>(sbrk_init), static_cast<unsigned long>(tq::constant_bytes),
      static_cast<unsigned long>(tq::model_size), static_cast<unsigned long long>(us));
  if (heap_after_init != 0) {
    std::fprintf(stderr, "mcu_inference: FAIL: %lu heap allocations during inference (invoke must not allocate)\n",
                 static_cast<unsigned long>(heap_after_init));
    return 3;
  }
  return profile(graph, interp, resolver);
}
