// Float forward / backward of conv, depthwise and FC layers (contract in tinyquant/layer_kernels.h).
#include "tinyquant/layer_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#if TQ_WITH_OPENBLAS
#include <cblas.h>
#endif
// XNNPACK's operators for the training step's products on 64-bit targets (x86-64, aarch64), where
// they were measured. On 32-bit ARM (armhf) they gave AdaQuant a clearly worse result in the quant
// suite's synthetic layer (held-out MSE 0.92 of round-to-nearest's against 0.74 with the portable
// GEMM) although each product agrees with the portable one to 1e-5; until that is understood,
// armhf keeps the portable GEMM.
#if TQ_WITH_XNNPACK && !defined(__arm__)
#define TQ_QUANT_XNNPACK 1
#else
#define TQ_QUANT_XNNPACK 0
#endif
#if TQ_QUANT_XNNPACK
#include <pthreadpool.h>
#include <xnnpack.h>
#endif

namespace tinyquant {
namespace quant {

// Portable: C rows in blocks, op(B) copied once into a [K, N] panel so the inner loop is a
// contiguous axpy the compiler vectorises. Always built (bench/gemm.cc measures it).
void sgemm_portable(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                    int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  std::vector<float> panel(static_cast<size_t>(k * n));
  for (int64_t p = 0; p < k; ++p)
    for (int64_t j = 0; j < n; ++j) panel[p * n + j] = trans_b ? b[j * ldb + p] : b[p * ldb + j];
  std::vector<float> row(static_cast<size_t>(n));
  for (int64_t i = 0; i < m; ++i) {
    std::fill(row.begin(), row.end(), 0.0f);
    for (int64_t p = 0; p < k; ++p) {
      const float av = trans_a ? a[p * lda + i] : a[i * lda + p];
      const float* bp = panel.data() + p * n;
      float* rp = row.data();
      for (int64_t j = 0; j < n; ++j) rp[j] += av * bp[j];
    }
    float* cp = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) cp[j] = alpha * row[j] + (beta == 0.0f ? 0.0f : beta * cp[j]);
  }
}

#if TQ_WITH_OPENBLAS
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}
const char* gemm_engine() { return "openblas"; }
static void set_gemm_threads_engine(int32_t threads) { openblas_set_num_threads(std::max(1, threads)); }
#else
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  sgemm_portable(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
const char* gemm_engine() { return "portable"; }
static void set_gemm_threads_engine(int32_t) {}
#endif

namespace {

int32_t g_gemm_threads = 1;

#if TQ_QUANT_XNNPACK
// XNNPACK's f32 fully-connected operator as a GEMM with a fixed right-hand side: created (and
// its weights packed) once per step, then run on each row tile.
pthreadpool_t gemm_pool() {
  static pthreadpool_t pool = nullptr;
  static int32_t pool_threads = 1;
  if (pool_threads != g_gemm_threads) {
    if (pool) pthreadpool_destroy(pool);
    pool = g_gemm_threads > 1 ? pthreadpool_create(static_cast<size_t>(g_gemm_threads)) : nullptr;
    pool_threads = g_gemm_threads;
  }
  return pool;
}

bool xnn_ready() {
  static const bool ok = xnn_initialize(nullptr) == xnn_status_success;
  return ok;
}

// Y[rows, n] (row stride ldy) = X[rows, k] (row stride ldx) · op(W) + bias: W is [n, k], or
// [k, n] with transpose_w.
class FcGemm {
 public:
  FcGemm() = default;
  FcGemm(const FcGemm&) = delete;
  FcGemm& operator=(const FcGemm&) = delete;
  ~FcGemm() {
    if (op_) xnn_delete_operator(op_);
  }
  bool create(int64_t k, int64_t n, int64_t ldx, int64_t ldy, const float* w, const float* bias, bool transpose_w) {
    if (!xnn_ready()) return false;
    return xnn_create_fully_connected_nc_f32(static_cast<size_t>(k), static_cast<size_t>(n), static_cast<size_t>(ldx),
                                             static_cast<size_t>(ldy), w, bias, -INFINITY, INFINITY,
                                             transpose_w ? XNN_FLAG_TRANSPOSE_WEIGHTS : 0, &op_) == xnn_status_success;
  }
  bool run(int64_t rows, const float* x, float* y) {
    pthreadpool_t pool = gemm_pool();
    return xnn_setup_fully_connected_nc_f32(op_, static_cast<size_t>(rows), x, y, pool) == xnn_status_success &&
           xnn_run_operator(op_, pool) == xnn_status_success;
  }

 private:
  xnn_operator_t op_ = nullptr;
};

// dX of a single-group convolution as XNNPACK's transposed convolution of dY (an indirect GEMM:
// no dcol matrix, no col2im). Its filter is W with the channel axes swapped, [C_in, KH, KW, C_out].
bool deconv_dx(const LayerShape& s, const float* w, const float* dy, float* dx, std::vector<float>* wt) {
  if (!xnn_ready()) return false;
  const ConvOptions& c = s.conv;
  const int32_t taps = s.k_h * s.k_w;
  wt->resize(static_cast<size_t>(int64_t(s.in_c) * taps * s.out_c));
  for (int32_t o = 0; o < s.out_c; ++o)
    for (int32_t t = 0; t < taps; ++t)
      for (int32_t i = 0; i < s.in_c; ++i)
        (*wt)[(int64_t(i) * taps + t) * s.out_c + o] = w[(int64_t(o) * taps + t) * s.in_c + i];
  const int32_t adj_h = s.in_h - ((s.out_h - 1) * c.stride_h + c.dilation_h * (s.k_h - 1) + 1 - c.padding.top -
                                  c.padding.bottom);
  const int32_t adj_w = s.in_w - ((s.out_w - 1) * c.stride_w + c.dilation_w * (s.k_w - 1) + 1 - c.padding.left -
                                  c.padding.right);
  if (adj_h < 0 || adj_h >= c.stride_h || adj_w < 0 || adj_w >= c.stride_w) return false;
  xnn_operator_t op = nullptr;
  if (xnn_create_deconvolution2d_nhwc_f32(c.padding.top, c.padding.right, c.padding.bottom, c.padding.left, s.k_h,
                                          s.k_w, c.stride_h, c.stride_w, c.dilation_h, c.dilation_w, 1, s.out_c,
                                          s.in_c, s.out_c, s.in_c, wt->data(), nullptr, -INFINITY, INFINITY, 0,
                                          &op) != xnn_status_success)
    return false;
  pthreadpool_t pool = gemm_pool();
  const bool ok = xnn_setup_deconvolution2d_nhwc_f32(op, s.batch, s.out_h, s.out_w, adj_h, adj_w, dy, dx, pool) ==
                      xnn_status_success &&
                  xnn_run_operator(op, pool) == xnn_status_success;
  xnn_delete_operator(op);
  return ok;
}

// Y = conv(X, W) + b over the whole batch as XNNPACK's f32 convolution (an indirect GEMM: no
// im2col copy), in runs of images whose indirection buffer (a pointer per output pixel and tap)
// stays under kConvIndirectionBytes. W is [C_out, KH, KW, C_in / groups], XNNPACK's layout.
constexpr int64_t kConvIndirectionBytes = int64_t(4) << 20;
bool conv_forward_xnn(const LayerShape& s, const float* x, const float* w, const float* b, float* y) {
  if (!xnn_ready()) return false;
  const ConvOptions& c = s.conv;
  const int32_t groups = c.groups, gin = s.in_c / groups, gout = s.out_c / groups;
  xnn_operator_t op = nullptr;
  if (xnn_create_convolution2d_nhwc_f32(c.padding.top, c.padding.right, c.padding.bottom, c.padding.left, s.k_h,
                                        s.k_w, c.stride_h, c.stride_w, c.dilation_h, c.dilation_w, groups, gin, gout,
                                        s.in_c, s.out_c, w, b, -INFINITY, INFINITY, 0, &op) != xnn_status_success)
    return false;
  const int64_t per_image = int64_t(s.out_h) * s.out_w * s.k_h * s.k_w * int64_t(sizeof(void*));
  const int32_t run = static_cast<int32_t>(std::max<int64_t>(1, std::min<int64_t>(s.batch, kConvIndirectionBytes / per_image)));
  pthreadpool_t pool = gemm_pool();
  bool ok = true;
  for (int32_t n0 = 0; ok && n0 < s.batch; n0 += run) {
    const int32_t nn = std::min(run, s.batch - n0);
    ok = xnn_setup_convolution2d_nhwc_f32(op, nn, s.in_h, s.in_w, x + int64_t(n0) * s.in_h * s.in_w * s.in_c,
                                          y + int64_t(n0) * s.out_h * s.out_w * s.out_c, pool) == xnn_status_success &&
         xnn_run_operator(op, pool) == xnn_status_success;
  }
  xnn_delete_operator(op);
  return ok;
}
#endif

}  // namespace

void set_gemm_threads(int32_t threads) {
  g_gemm_threads = std::max(1, threads);
  // The threads go to XNNPACK's pool (forward, dX); OpenBLAS (dW) stays single-threaded. Both
  // pools spin-wait for work between calls, so with two threads each on two cores they took the
  // cores from each other: lenet's AdaQuant ran 2x slower at 2 threads than at 1 (resnet20 1.7x).
  // Measured (lenet, 2 cores): 1/1 5.3 s, OpenBLAS 2 + XNNPACK 1 5.9 s, OpenBLAS 1 + XNNPACK 2 4.6 s.
  set_gemm_threads_engine(1);
}

int64_t LayerShape::weight_elements() const {
  switch (type) {
    case OpType::kConv2D: return int64_t(out_c) * k_h * k_w * (in_c / conv.groups);
    case OpType::kDepthwiseConv2D: return int64_t(k_h) * k_w * out_c;
    default: return int64_t(out_c) * in_c;
  }
}

int64_t LayerShape::macs() const {
  if (type == OpType::kFullyConnected) return int64_t(batch) * in_c * out_c;
  const int64_t per_out = type == OpType::kConv2D ? int64_t(k_h) * k_w * (in_c / conv.groups) : int64_t(k_h) * k_w;
  return output_elements() * per_out;
}

Status LayerShape::of(const Operator& op, const int32_t* in_dims, int in_rank, const int32_t* w_dims, int32_t batch,
                      LayerShape* out) {
  LayerShape s;
  s.type = op.type;
  s.conv = op.conv();
  s.batch = batch;
  if (op.type == OpType::kFullyConnected) {
    TQ_ENSURE(in_rank >= 1, kInvalidModel, "FullyConnected '%s': input has rank 0", op.name.c_str());
    int64_t rows = batch;
    for (int i = 1; i < in_rank - 1; ++i) rows *= in_dims[i];
    s.batch = static_cast<int32_t>(rows);
    s.in_c = w_dims[1];
    s.out_c = w_dims[0];
    TQ_ENSURE(in_dims[in_rank - 1] == s.in_c, kInvalidModel, "FullyConnected '%s': input has %d features, weights %d",
              op.name.c_str(), in_dims[in_rank - 1], s.in_c);
  } else {
    TQ_ENSURE(in_rank == 4, kInvalidModel, "%s '%s': input must be NHWC", op_name(op.type), op.name.c_str());
    s.in_h = in_dims[1];
    s.in_w = in_dims[2];
    s.in_c = in_dims[3];
    s.k_h = w_dims[1];
    s.k_w = w_dims[2];
    s.out_c = op.type == OpType::kConv2D ? w_dims[0] : w_dims[3];
    const ConvOptions& c = op.conv();
    s.out_h = (s.in_h + c.padding.top + c.padding.bottom - c.dilation_h * (s.k_h - 1) - 1) / c.stride_h + 1;
    s.out_w = (s.in_w + c.padding.left + c.padding.right - c.dilation_w * (s.k_w - 1) - 1) / c.stride_w + 1;
    if (op.type == OpType::kDepthwiseConv2D) s.conv.groups = 1;
  }
  *out = s;
  return Status::ok();
}

namespace {
bool is_pointwise(const LayerShape& s) {
  const ConvOptions& c = s.conv;
  return s.k_h == 1 && s.k_w == 1 && c.stride_h == 1 && c.stride_w == 1 && c.padding.top == 0 &&
         c.padding.left == 0 && c.padding.bottom == 0 && c.padding.right == 0 && c.groups == 1;
}
}  // namespace

namespace {

// Rows [r0, r1) of im2col (row r = output pixel r of the batch, all images in order). Where a
// window row lies inside the image and the channels are not split into groups, its k_w pixels
// are one contiguous run of k_w·C floats in NHWC: copied (or, in col2im, accumulated) as one
// loop instead of k_w calls.
void im2col_rows(const LayerShape& s, int32_t group, const float* x, int64_t r0, int64_t r1, float* col) {
  const int32_t gin = s.in_c / s.conv.groups;
  const int64_t kdim = int64_t(s.k_h) * s.k_w * gin;
  const ConvOptions& c = s.conv;
  const int64_t plane = int64_t(s.out_h) * s.out_w;
  const bool runs = s.conv.groups == 1 && c.dilation_w == 1;
  const int32_t run_len = s.k_w * gin;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / plane;
    const int32_t oy = static_cast<int32_t>((r % plane) / s.out_w), ox = static_cast<int32_t>(r % s.out_w);
    float* row = col + (r - r0) * kdim;
    const int32_t ix0 = ox * c.stride_w - c.padding.left;
    const bool inside_w = runs && ix0 >= 0 && ix0 + s.k_w <= s.in_w;
    for (int32_t ky = 0; ky < s.k_h; ++ky) {
      const int32_t iy = oy * c.stride_h - c.padding.top + ky * c.dilation_h;
      float* __restrict__ dst_row = row + int64_t(ky) * run_len;
      if (iy < 0 || iy >= s.in_h) {
        for (int32_t i = 0; i < run_len; ++i) dst_row[i] = 0.0f;
        continue;
      }
      const float* src_line = x + (n * s.in_h + iy) * int64_t(s.in_w) * s.in_c;
      if (inside_w) {
        const float* __restrict__ src = src_line + int64_t(ix0) * s.in_c;
        for (int32_t i = 0; i < run_len; ++i) dst_row[i] = src[i];
        continue;
      }
      for (int32_t kx = 0; kx < s.k_w; ++kx) {
        const int32_t ix = ix0 + kx * c.dilation_w;
        float* __restrict__ dst = dst_row + int64_t(kx) * gin;
        if (ix < 0 || ix >= s.in_w) {
          for (int32_t i = 0; i < gin; ++i) dst[i] = 0.0f;
        } else {
          const float* __restrict__ src = src_line + int64_t(ix) * s.in_c + int64_t(group) * gin;
          for (int32_t i = 0; i < gin; ++i) dst[i] = src[i];
        }
      }
    }
  }
}

// The adjoint of im2col_rows: accumulates rows [r0, r1) of col into dx.
void col2im_rows(const LayerShape& s, int32_t group, const float* col, int64_t r0, int64_t r1, float* dx) {
  const int32_t gin = s.in_c / s.conv.groups;
  const int64_t kdim = int64_t(s.k_h) * s.k_w * gin;
  const ConvOptions& c = s.conv;
  const int64_t plane = int64_t(s.out_h) * s.out_w;
  const bool runs = s.conv.groups == 1 && c.dilation_w == 1;
  const int32_t run_len = s.k_w * gin;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / plane;
    const int32_t oy = static_cast<int32_t>((r % plane) / s.out_w), ox = static_cast<int32_t>(r % s.out_w);
    const float* row = col + (r - r0) * kdim;
    const int32_t ix0 = ox * c.stride_w - c.padding.left;
    const bool inside_w = runs && ix0 >= 0 && ix0 + s.k_w <= s.in_w;
    for (int32_t ky = 0; ky < s.k_h; ++ky) {
      const int32_t iy = oy * c.stride_h - c.padding.top + ky * c.dilation_h;
      if (iy < 0 || iy >= s.in_h) continue;
      const float* src_row = row + int64_t(ky) * run_len;
      float* dst_line = dx + (n * s.in_h + iy) * int64_t(s.in_w) * s.in_c;
      if (inside_w) {
        const float* __restrict__ src = src_row;
        float* __restrict__ dst = dst_line + int64_t(ix0) * s.in_c;
        for (int32_t i = 0; i < run_len; ++i) dst[i] += src[i];
        continue;
      }
      for (int32_t kx = 0; kx < s.k_w; ++kx) {
        const int32_t ix = ix0 + kx * c.dilation_w;
        if (ix < 0 || ix >= s.in_w) continue;
        const float* __restrict__ src = src_row + int64_t(kx) * gin;
        float* __restrict__ dst = dst_line + int64_t(ix) * s.in_c + int64_t(group) * gin;
        for (int32_t i = 0; i < gin; ++i) dst[i] += src[i];
      }
    }
  }
}

}  // namespace

void im2col(const LayerShape& s, int32_t group, const float* x, float* col) {
  im2col_rows(s, group, x, 0, int64_t(s.batch) * s.out_h * s.out_w, col);
}

void col2im(const LayerShape& s, int32_t group, const float* col, float* dx) {
  col2im_rows(s, group, col, 0, int64_t(s.batch) * s.out_h * s.out_w, dx);
}

namespace {

// Output rows [r0, r1) (row = output pixel of the batch) of the depthwise conv; y points at row r0.
void depthwise_forward(const LayerShape& s, const float* x, const float* w, const float* b, int64_t r0, int64_t r1,
                       float* y) {
  const int32_t mult = s.conv.depth_multiplier, C = s.out_c;
  const ConvOptions& c = s.conv;
  const int64_t plane = int64_t(s.out_h) * s.out_w;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / plane;
    const int32_t oy = static_cast<int32_t>((r % plane) / s.out_w), ox = static_cast<int32_t>(r % s.out_w);
    float* __restrict__ out = y + (r - r0) * C;
    for (int32_t oc = 0; oc < C; ++oc) out[oc] = b ? b[oc] : 0.0f;
    for (int32_t ky = 0; ky < s.k_h; ++ky) {
      const int32_t iy = oy * c.stride_h - c.padding.top + ky * c.dilation_h;
      if (iy < 0 || iy >= s.in_h) continue;
      for (int32_t kx = 0; kx < s.k_w; ++kx) {
        const int32_t ix = ox * c.stride_w - c.padding.left + kx * c.dilation_w;
        if (ix < 0 || ix >= s.in_w) continue;
        const float* __restrict__ xp = x + ((n * s.in_h + iy) * s.in_w + ix) * s.in_c;
        const float* __restrict__ wp = w + (int64_t(ky) * s.k_w + kx) * C;
        if (mult == 1) {
          for (int32_t oc = 0; oc < C; ++oc) out[oc] += xp[oc] * wp[oc];
        } else {
          for (int32_t oc = 0; oc < C; ++oc) out[oc] += xp[oc / mult] * wp[oc];
        }
      }
    }
  }
}

// Rows [r0, r1) of dy (dy points at row r0) accumulated into dx, dw, db (each optional; the caller
// zeroed them).
void depthwise_backward(const LayerShape& s, const float* x, const float* w, const float* dy, int64_t r0, int64_t r1,
                        float* dx, float* dw, float* db) {
  const int32_t mult = s.conv.depth_multiplier, C = s.out_c;
  const ConvOptions& c = s.conv;
  const int64_t plane = int64_t(s.out_h) * s.out_w;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / plane;
    const int32_t oy = static_cast<int32_t>((r % plane) / s.out_w), ox = static_cast<int32_t>(r % s.out_w);
    const float* g = dy + (r - r0) * C;
    if (db)
      for (int32_t oc = 0; oc < C; ++oc) db[oc] += g[oc];
    for (int32_t ky = 0; ky < s.k_h; ++ky) {
      const int32_t iy = oy * c.stride_h - c.padding.top + ky * c.dilation_h;
      if (iy < 0 || iy >= s.in_h) continue;
      for (int32_t kx = 0; kx < s.k_w; ++kx) {
        const int32_t ix = ox * c.stride_w - c.padding.left + kx * c.dilation_w;
        if (ix < 0 || ix >= s.in_w) continue;
        const int64_t xo = ((n * s.in_h + iy) * s.in_w + ix) * s.in_c;
        const int64_t wo = (int64_t(ky) * s.k_w + kx) * C;
        float* __restrict__ dwp = dw ? dw + wo : nullptr;
        float* __restrict__ dxp = dx ? dx + xo : nullptr;
        const float* __restrict__ xp = x + xo;
        const float* __restrict__ wp = w + wo;
        if (mult == 1) {  // the common case: contiguous, vectorised loops
          if (dwp)
            for (int32_t oc = 0; oc < C; ++oc) dwp[oc] += g[oc] * xp[oc];
          if (dxp)
            for (int32_t oc = 0; oc < C; ++oc) dxp[oc] += g[oc] * wp[oc];
        } else {
          if (dwp)
            for (int32_t oc = 0; oc < C; ++oc) dwp[oc] += g[oc] * xp[oc / mult];
          if (dxp)
            for (int32_t oc = 0; oc < C; ++oc) dxp[oc / mult] += g[oc] * wp[oc];
        }
      }
    }
  }
}

}  // namespace

void layer_forward(const LayerShape& s, const float* x, const float* w, const float* b, float* y,
                   LayerScratch* scratch) {
  const int64_t rows = int64_t(s.batch) * s.out_h * s.out_w;
  if (s.type == OpType::kDepthwiseConv2D) return depthwise_forward(s, x, w, b, 0, rows, y);
  const bool direct = s.type == OpType::kFullyConnected || is_pointwise(s);
#if TQ_QUANT_XNNPACK
  if (!direct && conv_forward_xnn(s, x, w, b, y)) return;
#endif
  const int32_t groups = direct ? 1 : s.conv.groups, gin = s.in_c / groups, gout = s.out_c / groups;
  const int64_t kdim = direct ? s.in_c : int64_t(s.k_h) * s.k_w * gin;
  // Tiled over output rows like layer_mse_step, so the im2col matrix stays in cache.
  const int64_t tile = std::max<int64_t>(1, std::min<int64_t>(rows, kLayerStepTileBytes / int64_t(sizeof(float) * kdim)));
  if (!direct) scratch->col.resize(static_cast<size_t>(tile * kdim));
  bool xnn = false;
#if TQ_QUANT_XNNPACK
  std::vector<std::unique_ptr<FcGemm>> fc;
  xnn = true;
  for (int32_t g = 0; xnn && g < groups; ++g) {
    fc.emplace_back(new FcGemm);
    xnn = fc.back()->create(kdim, gout, kdim, s.out_c, w + int64_t(g) * gout * kdim, b ? b + g * gout : nullptr, false);
  }
#endif
  for (int64_t r0 = 0; r0 < rows; r0 += (direct ? rows : tile)) {
    const int64_t r1 = direct ? rows : std::min(rows, r0 + tile), nr = r1 - r0;
    for (int32_t g = 0; g < groups; ++g) {
      const float* a = direct ? x : scratch->col.data();
      if (!direct) im2col_rows(s, g, x, r0, r1, scratch->col.data());
      float* yg = y + r0 * s.out_c + g * gout;
#if TQ_QUANT_XNNPACK
      if (xnn) {
        fc[g]->run(nr, a, yg);
        continue;
      }
#endif
      sgemm(false, true, nr, gout, kdim, 1.0f, a, kdim, w + int64_t(g) * gout * kdim, kdim, 0.0f, yg, s.out_c);
    }
  }
  if (b && !xnn)
    for (int64_t r = 0; r < rows; ++r) {
      float* yr = y + r * s.out_c;
      for (int32_t c = 0; c < s.out_c; ++c) yr[c] += b[c];
    }
}

void layer_backward(const LayerShape& s, const float* x, const float* w, const float* dy, float* dx, float* dw,
                    float* db, LayerScratch* scratch) {
  const int64_t rows = int64_t(s.batch) * s.out_h * s.out_w;
  if (s.type == OpType::kDepthwiseConv2D) {
    if (dx) std::fill(dx, dx + s.input_elements(), 0.0f);
    if (dw) std::fill(dw, dw + s.weight_elements(), 0.0f);
    if (db) std::fill(db, db + s.out_c, 0.0f);
    return depthwise_backward(s, x, w, dy, 0, rows, dx, dw, db);
  }
  if (db) {
    std::fill(db, db + s.out_c, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const float* g = dy + r * s.out_c;
      for (int32_t c = 0; c < s.out_c; ++c) db[c] += g[c];
    }
  }
  if (s.type == OpType::kFullyConnected || is_pointwise(s)) {
    if (dw) sgemm(true, false, s.out_c, s.in_c, rows, 1.0f, dy, s.out_c, x, s.in_c, 0.0f, dw, s.in_c);
    if (dx) sgemm(false, false, rows, s.in_c, s.out_c, 1.0f, dy, s.out_c, w, s.in_c, 0.0f, dx, s.in_c);
    return;
  }
  const int32_t groups = s.conv.groups, gin = s.in_c / groups, gout = s.out_c / groups;
  const int64_t kdim = int64_t(s.k_h) * s.k_w * gin;
  if (dx) std::fill(dx, dx + s.input_elements(), 0.0f);
  scratch->col.resize(static_cast<size_t>(rows * kdim));
  if (dx) scratch->dcol.resize(static_cast<size_t>(rows * kdim));
  for (int32_t g = 0; g < groups; ++g) {
    const float* dyg = dy + int64_t(g) * gout;
    if (dw) {
      im2col(s, g, x, scratch->col.data());
      sgemm(true, false, gout, kdim, rows, 1.0f, dyg, s.out_c, scratch->col.data(), kdim, 0.0f,
            dw + int64_t(g) * gout * kdim, kdim);
    }
    if (dx) {
      sgemm(false, false, rows, kdim, gout, 1.0f, dyg, s.out_c, w + int64_t(g) * gout * kdim, kdim, 0.0f,
            scratch->dcol.data(), kdim);
      col2im(s, g, scratch->dcol.data(), dx);
    }
  }
}

double layer_mse_step(const LayerShape& s, const float* x, const float* w, const float* b, const float* target,
                      float lo, float hi, float grad_scale, float* dx, float* dw, float* db, LayerScratch* scratch,
                      int64_t tile_rows) {
  const int64_t rows = int64_t(s.batch) * s.out_h * s.out_w;
  const int32_t C = s.out_c;
  const bool depthwise = s.type == OpType::kDepthwiseConv2D;
  const bool direct = s.type == OpType::kFullyConnected || is_pointwise(s);  // GEMM straight on x's rows
  const int32_t groups = depthwise || direct ? 1 : s.conv.groups;
  const int32_t gin = s.in_c / groups, gout = C / groups;
  const int64_t kdim = depthwise ? 0 : direct ? s.in_c : int64_t(s.k_h) * s.k_w * gin;
  const bool grads = dx || dw || db;
  // The tile bounds what it holds per row: the im2col row (kdim floats) and the output and its
  // gradient (C each). A direct layer reads x in place and holds no im2col row, so only C counts:
  // sized by kdim, an FC layer's tile was a few rows (lenet fc1, K = 1600: 10 of a batch of 50),
  // and its GEMMs ran at M = 10.
  if (tile_rows <= 0)
    tile_rows = kLayerStepTileBytes / int64_t(sizeof(float) * (direct ? C : std::max<int64_t>(kdim, C)));
  const int64_t tile = std::max<int64_t>(1, std::min(tile_rows, rows));
  scratch->z.resize(static_cast<size_t>(tile * C));
  scratch->dz.resize(static_cast<size_t>(tile * C));
  if (!depthwise && !direct) {
    scratch->col.resize(static_cast<size_t>(tile * kdim));
    if (dx) scratch->dcol.resize(static_cast<size_t>(tile * kdim));
  }
  // dX of a single-group im2col conv as one transposed convolution after the tiles (XNNPACK):
  // the tiles then keep dY for the whole batch.
#if TQ_QUANT_XNNPACK
  const bool dx_deconv = dx && !depthwise && !direct && groups == 1;
#else
  const bool dx_deconv = false;
#endif
  if (dx_deconv) scratch->dz.resize(static_cast<size_t>(rows * C));
  if (dx && !dx_deconv) std::fill(dx, dx + s.input_elements(), 0.0f);
  if (db) std::fill(db, db + C, 0.0f);
  if (dw && depthwise) std::fill(dw, dw + s.weight_elements(), 0.0f);
  float* z = scratch->z.data();
  float* dz = scratch->dz.data();
#if TQ_QUANT_XNNPACK
  // Forward (bias folded in) and dX on XNNPACK, weights packed once for all tiles.
  std::vector<std::unique_ptr<FcGemm>> fwd, bwd;
  bool xnn = !depthwise;
  for (int32_t g = 0; xnn && g < groups; ++g) {
    const float* wg = w + int64_t(g) * gout * kdim;
    fwd.emplace_back(new FcGemm);
    xnn = fwd.back()->create(kdim, gout, kdim, C, wg, b ? b + g * gout : nullptr, false);
    if (xnn && dx && !dx_deconv) {
      bwd.emplace_back(new FcGemm);
      xnn = bwd.back()->create(gout, kdim, C, direct ? s.in_c : kdim, wg, nullptr, true);
    }
  }
#else
  const bool xnn = false;
#endif
  double loss = 0.0;
  for (int64_t r0 = 0; r0 < rows; r0 += tile) {
    const int64_t r1 = std::min(rows, r0 + tile), nr = r1 - r0;
    if (dx_deconv) dz = scratch->dz.data() + r0 * C;
    // Forward for the tile.
    if (depthwise) {
      depthwise_forward(s, x, w, b, r0, r1, z);
    } else {
      for (int32_t g = 0; g < groups; ++g) {
        const float* a = direct ? x + r0 * s.in_c : scratch->col.data();
        if (!direct) im2col_rows(s, g, x, r0, r1, scratch->col.data());
#if TQ_QUANT_XNNPACK
        if (xnn) {
          fwd[g]->run(nr, a, z + g * gout);
          continue;
        }
#endif
        sgemm(false, true, nr, gout, kdim, 1.0f, a, kdim, w + int64_t(g) * gout * kdim, kdim, 0.0f, z + g * gout, C);
      }
      if (b && !xnn)
        for (int64_t r = 0; r < nr; ++r)
          for (int32_t c = 0; c < C; ++c) z[r * C + c] += b[c];
    }
    // Clamp, squared error and its gradient (zero where the clamp is active).
    // Eight float partial sums per block of 512 (independent chains the compiler vectorises; a
    // single double chain cost more than the GEMMs on pointwise layers), summed in double.
    const float* t = target + r0 * C;
    const int64_t m = nr * C;
    const float g2 = 2.0f * grad_scale;
    for (int64_t e0 = 0; e0 < m; e0 += 512) {
      const int64_t e1 = std::min(m, e0 + 512);
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t e = e0;
      for (; e + 8 <= e1; e += 8)
        for (int k = 0; k < 8; ++k) {  // branch-free: the clamp mask as a 0/1 factor
          const float ze = z[e + k];
          const float yc = ze < lo ? lo : (ze > hi ? hi : ze);
          const float d = yc - t[e + k];
          acc[k] += d * d;
          dz[e + k] = g2 * d * (float(ze > lo) * float(ze < hi));
        }
      for (; e < e1; ++e) {
        const float ze = z[e];
        const float d = std::min(std::max(ze, lo), hi) - t[e];
        acc[0] += d * d;
        dz[e] = (ze > lo && ze < hi) ? g2 * d : 0.0f;
      }
      double part = 0.0;
      for (int k = 0; k < 8; ++k) part += acc[k];
      loss += part;
    }
    if (!grads) continue;
    if (db)
      for (int64_t r = 0; r < nr; ++r)
        for (int32_t c = 0; c < C; ++c) db[c] += dz[r * C + c];
    if (depthwise) {
      depthwise_backward(s, x, w, dz, r0, r1, dx, dw, nullptr);
      continue;
    }
    for (int32_t g = 0; g < groups; ++g) {
      const float* dzg = dz + g * gout;
      const float* wg = w + int64_t(g) * gout * kdim;
      if (dw) {
        const float* a = direct ? x + r0 * s.in_c : scratch->col.data();
        if (!direct && groups > 1) im2col_rows(s, g, x, r0, r1, scratch->col.data());  // col holds the last group
        sgemm(true, false, gout, kdim, nr, 1.0f, dzg, C, a, kdim, r0 == 0 ? 0.0f : 1.0f, dw + int64_t(g) * gout * kdim,
              kdim);
      }
      if (dx && !dx_deconv) {
        float* out = direct ? dx + r0 * s.in_c : scratch->dcol.data();
#if TQ_QUANT_XNNPACK
        if (xnn) bwd[g]->run(nr, dzg, out);
        else
#endif
          sgemm(false, false, nr, kdim, gout, 1.0f, dzg, C, wg, kdim, 0.0f, out, direct ? s.in_c : kdim);
        if (!direct) col2im_rows(s, g, scratch->dcol.data(), r0, r1, dx);
      }
    }
  }
#if TQ_QUANT_XNNPACK
  if (dx_deconv && !deconv_dx(s, w, scratch->dz.data(), dx, &scratch->wt)) {
    // XNNPACK refused the shape: dcol = dY·W and col2im, all rows at once.
    std::fill(dx, dx + s.input_elements(), 0.0f);
    scratch->dcol.resize(static_cast<size_t>(rows * kdim));
    sgemm(false, false, rows, kdim, C, 1.0f, scratch->dz.data(), C, w, kdim, 0.0f, scratch->dcol.data(), kdim);
    col2im_rows(s, 0, scratch->dcol.data(), 0, rows, dx);
  }
#endif
  return loss;
}

double matmul_mse_step(int64_t heads, int32_t m, int32_t k, int32_t n, const float* a, const float* b,
                       const float* target, float grad_scale, float* da, float* db, float* y) {
  double sum = 0.0;
  for (int64_t h = 0; h < heads; ++h) {
    const float* ah = a + h * m * k;
    const float* bh = b + h * k * n;
    const float* th = target + h * m * n;
    float* yh = y + h * m * n;
    for (int32_t i = 0; i < m; ++i) {
      float* yr = yh + int64_t(i) * n;
      for (int32_t j = 0; j < n; ++j) yr[j] = 0.0f;
      for (int32_t p = 0; p < k; ++p) {
        const float av = ah[int64_t(i) * k + p];
        const float* br = bh + int64_t(p) * n;
        for (int32_t j = 0; j < n; ++j) yr[j] += av * br[j];
      }
    }
    for (int64_t e = 0; e < int64_t(m) * n; ++e) {  // y becomes dy
      const float d = yh[e] - th[e];
      sum += double(d) * d;
      yh[e] = 2.0f * d * grad_scale;
    }
    if (da) {
      float* dah = da + h * m * k;
      for (int32_t i = 0; i < m; ++i)
        for (int32_t p = 0; p < k; ++p) {
          float acc = 0.0f;
          const float* dyr = yh + int64_t(i) * n;
          const float* br = bh + int64_t(p) * n;
          for (int32_t j = 0; j < n; ++j) acc += dyr[j] * br[j];
          dah[int64_t(i) * k + p] = acc;
        }
    }
    if (db) {
      float* dbh = db + h * k * n;
      for (int64_t e = 0; e < int64_t(k) * n; ++e) dbh[e] = 0.0f;
      for (int32_t i = 0; i < m; ++i)
        for (int32_t p = 0; p < k; ++p) {
          const float av = ah[int64_t(i) * k + p];
          const float* dyr = yh + int64_t(i) * n;
          float* dbr = dbh + int64_t(p) * n;
          for (int32_t j = 0; j < n; ++j) dbr[j] += av * dyr[j];
        }
    }
  }
  return sum;
}

}  // namespace quant
}  // namespace tinyquant
