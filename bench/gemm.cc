// The GEMM behind AdaQuant (quant/layer_kernels.h), measured on the shapes its conv forward /
// backward passes run: OpenBLAS sgemm (when the build found it), the portable loop, and XNNPACK's
// f32 fully-connected operator (forward form only, created per call as AdaQuant's weights change
// every step). Also the layer kernels themselves (im2col + GEMM forward, backward dX + dW) and a
// large square GEMM as the machine's reachable peak. Prints one table; JSON lines with --json.
//   build/bin/tq_bench_gemm [--seconds S] [--threads N] [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tinyquant/layer_kernels.h"
#if TQ_WITH_XNNPACK
#include <xnnpack.h>
#endif

using namespace tinyquant;
using Clock = std::chrono::steady_clock;

namespace {

double median_seconds(const std::function<void()>& fn, double budget) {
  fn();  // warm-up
  std::vector<double> t;
  const auto start = Clock::now();
  do {
    const auto a = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - a).count());
  } while (std::chrono::duration<double>(Clock::now() - start).count() < budget && t.size() < 1000);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Shape {
  const char* what;
  int64_t m, n, k;
  bool ta, tb;
};

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.5;
  int threads = 1;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--json")) json = true;
    else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--threads N] [--json]\n", argv[0]);
      return 2;
    }
  }
  quant::set_gemm_threads(threads);
  // resnet20 on 28x28 at AdaQuant's batch 50: conv 3x3 16->16 (28x28), 32->32 (14x14), 64->64 (7x7);
  // mobilenetv2's pointwise 16->96 at 28x28; forward, dW and dX forms of each.
  const Shape shapes[] = {
      {"r20 28x28x16 fwd", 39200, 16, 144, false, true},  {"r20 28x28x16 dW", 16, 144, 39200, true, false},
      {"r20 28x28x16 dX", 39200, 144, 16, false, false},  {"r20 14x14x32 fwd", 9800, 32, 288, false, true},
      {"r20 14x14x32 dW", 32, 288, 9800, true, false},    {"r20 7x7x64 fwd", 2450, 64, 576, false, true},
      {"mbv2 pw 16->96 fwd", 39200, 96, 16, false, true}, {"square 1024", 1024, 1024, 1024, false, true},
  };
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
#if TQ_WITH_XNNPACK
  const bool xnn = xnn_initialize(nullptr) == xnn_status_success;
#else
  const bool xnn = false;
#endif
  std::printf("GEMM GFLOP/s (median of repeated calls, %d thread(s)); build GEMM: %s\n", threads,
              quant::gemm_engine());
  std::printf("%-22s %7s %7s %7s   %9s %9s %9s\n", "shape", "M", "N", "K", quant::gemm_engine(), "portable",
              "xnnpack-fc");
  for (const Shape& s : shapes) {
    std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n);
    for (float& v : a) v = u(rng);
    for (float& v : b) v = u(rng);
    const int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    const double flop = 2.0 * s.m * s.n * s.k;
    const double t_build = median_seconds(
        [&] { quant::sgemm(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n); },
        seconds);
    const bool big = s.m * s.n * s.k > 2e8;
    const double t_port = big && std::strcmp(quant::gemm_engine(), "portable") ? 0.0 : median_seconds(
        [&] {
          quant::sgemm_portable(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n);
        },
        seconds);
    double t_xnn = 0.0;
#if TQ_WITH_XNNPACK
    if (xnn && !s.ta && s.tb) {  // Y[M,N] = X[M,K] · W[N,K]^T is the FC operator's form
      t_xnn = median_seconds(
          [&] {
            xnn_operator_t op = nullptr;
            xnn_create_fully_connected_nc_f32(s.k, s.n, s.k, s.n, b.data(), nullptr, -INFINITY, INFINITY, 0, &op);
            xnn_setup_fully_connected_nc_f32(op, s.m, a.data(), c.data(), nullptr);
            xnn_run_operator(op, nullptr);
            xnn_delete_operator(op);
          },
          seconds);
    }
#endif
    auto g = [&](double t) { return t > 0 ? flop / t / 1e9 : 0.0; };
    std::printf("%-22s %7lld %7lld %7lld   %9.1f %9.1f %9.1f\n", s.what, (long long)s.m, (long long)s.n,
                (long long)s.k, g(t_build), g(t_port), g(t_xnn));
    if (json)
      std::printf("{\"shape\": \"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, \"build\": %.2f, \"portable\": %.2f, "
                  "\"xnnpack_fc\": %.2f}\n",
                  s.what, (long long)s.m, (long long)s.n, (long long)s.k, g(t_build), g(t_port), g(t_xnn));
  }
  (void)xnn;
  // The layer kernels AdaQuant calls, per step at batch 50: forward, then backward (dX and dW).
  std::printf("\nlayer kernels (GFLOP/s; forward 2·MACs, backward 4·MACs)\n");
  const int64_t tiles[] = {0, 64, 256, 1024, 4096, 1 << 30};
  std::printf("%-26s %10s %10s", "layer", "forward", "backward");
  for (int64_t t : tiles) {
    char name[32];
    if (t == 0) std::snprintf(name, sizeof(name), "step-auto");
    else if (t == (1 << 30)) std::snprintf(name, sizeof(name), "step-untiled");
    else std::snprintf(name, sizeof(name), "step-%lld", static_cast<long long>(t));
    std::printf(" %12s", name);
  }
  std::printf("\n");
  struct L {
    const char* what;
    OpType type;
    int h, c_in, c_out, k, stride, mult;
    bool valid = false;  // no padding (else k/2 each side)
  } layers[] = {{"conv3x3 28x28 16->16", OpType::kConv2D, 28, 16, 16, 3, 1, 1},
                {"conv3x3 14x14 32->32", OpType::kConv2D, 14, 32, 32, 3, 1, 1},
                {"conv3x3 7x7 64->64", OpType::kConv2D, 7, 64, 64, 3, 1, 1},
                {"pointwise 28x28 16->96", OpType::kConv2D, 28, 16, 96, 1, 1, 1},
                {"depthwise3x3 28x28 96", OpType::kDepthwiseConv2D, 28, 96, 96, 3, 1, 1},
                {"lenet conv5x5 28x28 1->32", OpType::kConv2D, 28, 1, 32, 5, 1, 1},
                {"lenet conv5x5 14x14 32->64v", OpType::kConv2D, 14, 32, 64, 5, 1, 1, true}};
  for (const L& l : layers) {
    quant::LayerShape s;
    s.type = l.type;
    s.batch = 50;
    s.in_h = s.in_w = l.h;
    s.in_c = l.c_in;
    s.out_c = l.c_out;
    s.k_h = s.k_w = l.k;
    const int pad = l.valid ? 0 : l.k / 2;
    s.conv.padding = {pad, pad, pad, pad};
    s.out_h = s.out_w = l.h + 2 * pad - l.k + 1;
    std::vector<float> x(s.input_elements()), w(s.weight_elements()), bias(s.out_c), y(s.output_elements()),
        dy(s.output_elements()), dx(s.input_elements()), dw(s.weight_elements()), db(s.out_c);
    for (float& v : x) v = u(rng);
    for (float& v : w) v = u(rng);
    for (float& v : dy) v = u(rng);
    quant::LayerScratch scratch;
    const double tf = median_seconds([&] { quant::layer_forward(s, x.data(), w.data(), bias.data(), y.data(), &scratch); },
                                     seconds);
    const double tb = median_seconds(
        [&] { quant::layer_backward(s, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data(), &scratch); },
        seconds);
    std::printf("%-26s %10.1f %10.1f", l.what, 2.0 * s.macs() / tf / 1e9, 4.0 * s.macs() / tb / 1e9);
    for (int64_t t : tiles) {  // the fused reconstruction step (forward + loss + dx, dw, db)
      const double ts = median_seconds(
          [&] {
            quant::layer_mse_step(s, x.data(), w.data(), bias.data(), dy.data(), -1.0f, 1.0f, 1e-6f, dx.data(),
                                  dw.data(), db.data(), &scratch, t);
          },
          seconds);
      std::printf(" %12.1f", 6.0 * s.macs() / ts / 1e9);
    }
    std::printf("\n");
  }
  return 0;
}
