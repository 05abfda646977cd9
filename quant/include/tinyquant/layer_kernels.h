// tinyquant/layer_kernels.h — float forward and backward passes of one weighted layer, the
// arithmetic AdaQuant and statistics tuning train with (host and ARM Linux; never the MCU build).
//
// Layouts are the runtime's (tinyquant/graph.h): activations NHWC, Conv2D weights OHWI
// ([O, KH, KW, I/groups]), DepthwiseConv2D weights 1HWO ([1, KH, KW, C·m]), FullyConnected
// weights [O, I] with input rows [rows, I]. No fused activation here: callers apply and
// differentiate it (a clamp passes gradient strictly inside its bounds).
//
//   forward   y = conv(x, w) + b
//   backward  dx = ∂L/∂x, dw = ∂L/∂w, db = ∂L/∂b from dy = ∂L/∂y (each optional; dw and db
//             are overwritten, not accumulated)
//
// Conv2D runs as im2col + one GEMM per group (a 1x1 stride-1 unpadded conv skips im2col); the
// backward pass is two GEMMs per group (dW = dYᵀ·col, dcol = dY·W) and col2im. Depthwise runs as
// direct loops (its arithmetic intensity is too low for a GEMM). The GEMM is OpenBLAS's sgemm
// where the build found it (TQ_WITH_OPENBLAS; chosen by measurement, bench/README.md "GEMM"),
// else a portable blocked loop; gemm_engine() says which. layer_mse_step, the training step,
// runs its forward and dcol products on XNNPACK's f32 fully-connected operator where the build
// has XNNPACK (faster on these skinny shapes; its weights are packed once per step) and dW on
// sgemm.
#pragma once

#include <cstdint>
#include <vector>

#include "tinyquant/graph.h"
#include "tinyquant/status.h"

namespace tinyquant {
namespace quant {

// C[M,N] = alpha · op(A) · op(B) + beta · C, row-major; op(A) is [M,K] (A stored [K,M] when
// trans_a), op(B) is [K,N] (B stored [N,K] when trans_b).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
const char* gemm_engine();
// The portable loop, whatever the build chose (for comparison).
void sgemm_portable(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                    int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// Threads of the layer kernels' XNNPACK operators (forward, dX); the dW GEMM (OpenBLAS) stays
// single-threaded, since its spin-waiting workers and XNNPACK's took the cores from each other;
// the portable loop is single-threaded.
void set_gemm_threads(int32_t threads);

struct LayerShape {
  OpType type = OpType::kConv2D;  // kConv2D, kDepthwiseConv2D, kFullyConnected
  ConvOptions conv;
  int32_t batch = 0;              // FC: rows
  int32_t in_h = 1, in_w = 1, in_c = 0;
  int32_t out_h = 1, out_w = 1, out_c = 0;
  int32_t k_h = 1, k_w = 1;
  int64_t input_elements() const { return int64_t(batch) * in_h * in_w * in_c; }
  int64_t output_elements() const { return int64_t(batch) * out_h * out_w * out_c; }
  int64_t weight_elements() const;
  int64_t macs() const;           // multiply-accumulates of one forward pass
  // The shape of `op` at `batch` from the dims shape inference gives its input and weights.
  static Status of(const Operator& op, const int32_t* in_dims, int in_rank, const int32_t* w_dims, int32_t batch,
                   LayerShape* out);
};

// Reusable buffers (im2col, a tile's output and gradient); grow on first use, then no allocation
// per call.
struct LayerScratch {
  std::vector<float> col, dcol, z, dz, wt;
};

void layer_forward(const LayerShape& s, const float* x, const float* w, const float* b, float* y,
                   LayerScratch* scratch);
void layer_backward(const LayerShape& s, const float* x, const float* w, const float* dy, float* dx, float* dw,
                    float* db, LayerScratch* scratch);

// One reconstruction step of a layer against a target, fused and tiled over output rows so the
// im2col matrix, the output and its gradient stay in cache (one pass over x instead of five over
// a batch-sized im2col matrix):
//   z = conv(x, w) + b,  y = clamp(z, lo, hi),  returns Σ (y − target)²  (over all outputs)
//   dz = grad_scale · 2 (y − target) where lo < z < hi, else 0; then dx, dw, db from dz as
//   layer_backward (each optional, overwritten). With all three null it is a forward + loss.
// tile_rows: output rows per tile (≤ 0: about kLayerStepTileBytes of im2col per tile).
constexpr int64_t kLayerStepTileBytes = 65536;
double layer_mse_step(const LayerShape& s, const float* x, const float* w, const float* b, const float* target,
                      float lo, float hi, float grad_scale, float* dx, float* dw, float* db, LayerScratch* scratch,
                      int64_t tile_rows = 0);

// The reconstruction step of a product of two activations (attention), `heads` products
// [M,K] x [K,N] stored one after another: y = a b, returns Σ (y − target)²; with da / db non-null,
// fills them with grad_scale · ∂Σ/∂a and ∂Σ/∂b (da = dy bᵀ, db = aᵀ dy, dy = 2 (y − target)).
// y_scratch holds heads·M·N floats.
double matmul_mse_step(int64_t heads, int32_t m, int32_t k, int32_t n, const float* a, const float* b,
                       const float* target, float grad_scale, float* da, float* db, float* y_scratch);

// [N,H,W,C] -> [N·OH·OW, KH·KW·(C/groups)] for channel group g (zeros where the window is padding).
void im2col(const LayerShape& s, int32_t group, const float* x, float* col);
// The adjoint: accumulates col back into dx (which the caller zeroed).
void col2im(const LayerShape& s, int32_t group, const float* col, float* dx);

}  // namespace quant
}  // namespace tinyquant
