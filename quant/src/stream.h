// Internal to quant/: the calibration set streamed through a network one op range at a time.
//
// A Frontier holds, over every calibration sample, the values of the activations live across
// one op boundary of a "key graph" (the float graph, or the quantized graph whose simulated
// twin is run). Advancing it to a later boundary runs only the ops in between, so a pipeline
// that visits its layers in order runs the network once in total rather than once per layer
// (ARCHITECTURE "memory rules": calibration streams layer by layer; the sensitivity pass
// re-runs only a network's tail the same way).
//
// The graph actually run may differ from the key graph (the simulated twin of a quantized
// graph has extra Quantize / Dequantize ops and its own tensor ids): a FrontierView maps key
// tensors and key boundaries onto it. Values are shared (shared_ptr), so a tensor that is both
// wanted by the caller and still live costs its bytes once. A tensor the view computes with a
// Dequantize (every quantized activation of a simulated twin) is held as its int8 codes, a
// quarter of the bytes, and expanded exactly as the Dequantize kernel does: float(q − z)·s.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/interpreter.h"
#include "tinyquant/pipeline.h"

namespace tinyquant {
namespace quant {

// Large buffers straight from the OS (mmap), so freeing one returns its pages: glibc's malloc
// raises its mmap threshold after the first large free and then serves later buffers from a heap
// it does not shrink, which held ~36 MiB of freed frontier values on resnet20.
void* page_alloc(size_t bytes);
void page_free(void* p, size_t bytes);
template <class T>
struct PageAllocator {
  using value_type = T;
  PageAllocator() = default;
  template <class U>
  PageAllocator(const PageAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(page_alloc(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { page_free(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const PageAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const PageAllocator<U>&) const { return false; }
};
using FloatBuffer = std::vector<float, PageAllocator<float>>;
using CodeBuffer = std::vector<int8_t, PageAllocator<int8_t>>;
using SampleValues = std::shared_ptr<const FloatBuffer>;  // all samples, sample-major

struct FrontierView {
  const Graph* graph = nullptr;   // the graph run
  std::vector<int32_t> tensor;    // key tensor -> graph tensor (empty: identity)
  std::vector<int32_t> op_begin;  // key boundary b -> graph op index (size key ops + 1; empty: identity)
  bool unchanged = false;         // the same graph, unmodified, as the last run's: reuse its preparation
};

class Frontier {
 public:
  // Boundary 0 of key_graph: its (single) input holds the calibration samples.
  Status init(const Graph& key_graph, const CalibrationData& calibration, int64_t per_sample,
              const RtnOptions& options);

  // Runs the view's ops for key boundaries [boundary(), end) over all samples and returns the
  // key tensors `want` (each live at boundary() or produced in the range). With advance, the
  // frontier then stands at `end`; without, it stays where it was (a look ahead).
  Status run(const FrontierView& view, int32_t end, const std::vector<int32_t>& want, bool advance,
             std::vector<SampleValues>* got);

  int32_t boundary() const { return boundary_; }
  int64_t bytes() const;  // the values held
  double seconds() const { return seconds_; }  // spent in run()

 private:
  bool live_at(int32_t t, int32_t b) const { return producer_[t] < b && last_use_[t] >= b; }

  struct Stored {  // one of: float values, or int8 codes with their per-tensor quantization
    SampleValues values;
    std::shared_ptr<const CodeBuffer> codes;
    float scale = 1.0f;
    int32_t zero_point = 0;
    int64_t bytes() const;
    SampleValues as_float() const;
    void expand(int64_t first, int64_t count, float* out) const;  // codes [first, first + count) as floats
  };

  const Graph* key_ = nullptr;
  const CalibrationData* calib_ = nullptr;
  RtnOptions opt_;
  std::vector<int32_t> producer_, last_use_;  // per key tensor (producer -1: graph input)
  std::vector<int64_t> per_sample_;           // elements per sample, per key tensor
  std::map<int32_t, Stored> live_;
  int32_t boundary_ = 0;
  double seconds_ = 0.0;
  std::unique_ptr<Interpreter> interps_[2];
  int32_t prepared_[2] = {0, 0};
  const Graph* cached_graph_ = nullptr;
};

}  // namespace quant
}  // namespace tinyquant
