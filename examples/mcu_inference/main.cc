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

}  // namespace

int main() {
  namespace tq = tq_embedded;
  using namespace tinyquant;

  // 1. Load in place: constant buffers point into tq::model (flash), nothing is copied.
  Graph graph;
  Status s = load_model(tq::model, tq::model_size, &graph, tq::name);
  if (!s.is_ok()) return fail("load_model", s);
  for (const Buffer& b : graph.buffers) {
    if (b.size() == 0) continue;
    if (!b.external || b.data() < tq::model || b.data() + b.size() > tq::model + tq::model_size) {
      std::fprintf(stderr, "mcu_inference: a constant buffer was copied out of the model instead of read in place\n");
      return 1;
    }
  }

  // 2. Prepare at batch 1, reference kernels, in the static arena sized on the host.
  Interpreter interp;
  PrepareOptions opt;
  opt.batch = 1;
  opt.backend = Backend::kReference;
  opt.arena = tq::arena;
  opt.arena_size = tq::arena_size;
  s = interp.prepare(graph, opt);
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
    // Exactly tools/data preprocess_images: (pixel / 255 - mean) / std in float32.
    for (int64_t p = 0; p < pixels; ++p) x[p] = (static_cast<float>(src[p]) / 255.0f - tq::mean) / tq::std_dev;
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
      "arena_static=%lu min_live=%lu heap_init=%lu sbrk=%lu constants=%lu model_bytes=%lu us=%llu\n",
      tq::name, static_cast<int>(tq::count), static_cast<int>(correct), 100.0 * correct / tq::count,
      static_cast<unsigned long long>(checksum), static_cast<unsigned long>(interp.arena_bytes()),
      static_cast<unsigned long>(heap_after_init), static_cast<unsigned long>(tq::arena_size),
      static_cast<unsigned long>(interp.min_live_bytes()), static_cast<unsigned long>(heap_init_peak),
      static_cast<unsigned long>(sbrk_init), static_cast<unsigned long>(tq::constant_bytes),
      static_cast<unsigned long>(tq::model_size), static_cast<unsigned long long>(us));
  if (heap_after_init != 0) {
    std::fprintf(stderr, "mcu_inference: FAIL: %lu heap allocations during inference (invoke must not allocate)\n",
                 static_cast<unsigned long>(heap_after_init));
    return 3;
  }
  return 0;
}
