/* A minimal assertion harness for the C API's tests, which are written in C (the API's callers
 * are C, JNI and Swift, so the tests compile as C99 with no C++ in sight). */
#ifndef TQ_CAPI_CHECK_H_
#define TQ_CAPI_CHECK_H_

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_checks = 0, g_failures = 0;

#define CHECK(cond)                                                               \
  do {                                                                            \
    ++g_checks;                                                                   \
    if (!(cond)) {                                                                \
      ++g_failures;                                                               \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__,     \
              __LINE__, #cond, tq_last_error());                                  \
    }                                                                             \
  } while (0)

#define CHECK_STATUS(expr, want)                                                    \
  do {                                                                              \
    tq_status got_ = (expr);                                                        \
    ++g_checks;                                                                     \
    if (got_ != (want)) {                                                           \
      ++g_failures;                                                                 \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (last error: %s)\n",      \
              __FILE__, __LINE__, #expr, tq_status_name(got_), tq_status_name(want), \
              tq_last_error());                                                     \
    }                                                                               \
  } while (0)

/* The last error mentions `text`. */
#define CHECK_ERROR_HAS(text)                                                         \
  do {                                                                                \
    ++g_checks;                                                                       \
    if (!strstr(tq_last_error(), (text))) {                                           \
      ++g_failures;                                                                   \
      fprintf(stderr, "%s:%d: the last error '%s' does not mention '%s'\n", __FILE__, \
              __LINE__, tq_last_error(), (text));                                     \
    }                                                                                 \
  } while (0)

static int check_summary(const char* suite) {
  fprintf(stderr, "%s: %d checks, %d failed\n", suite, g_checks, g_failures);
  return g_failures == 0 && g_checks > 0 ? 0 : 1;
}

/* Deterministic image-like samples: a few Gaussian blobs on a dark background, normalised as the
 * Fashion-MNIST models expect ((pixel/255 - 0.2860) / 0.3530). */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static double uniform01(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (double)(g_rng >> 11) / 9007199254740992.0;
}
static void fill_samples(float* x, int count, int h, int w) {
  for (int n = 0; n < count; ++n) {
    float* img = x + (size_t)n * h * w;
    for (int i = 0; i < h * w; ++i) img[i] = 0.0f;
    const int blobs = 2 + (int)(uniform01() * 3);
    for (int b = 0; b < blobs; ++b) {
      const double cy = uniform01() * h, cx = uniform01() * w, r = 2.0 + uniform01() * 6.0, a = 0.4 + 0.6 * uniform01();
      for (int y = 0; y < h; ++y)
        for (int xx = 0; xx < w; ++xx) {
          const double d2 = (y - cy) * (y - cy) + (xx - cx) * (xx - cx);
          img[y * w + xx] += (float)(a * exp(-d2 / (2 * r * r)));
        }
    }
    for (int i = 0; i < h * w; ++i) {
      const float p = img[i] > 1.0f ? 1.0f : img[i];
      img[i] = (p - 0.2860f) / 0.3530f;
    }
  }
}

static unsigned char* read_all(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  const long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* p = (unsigned char*)malloc(n > 0 ? (size_t)n : 1);
  if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
    free(p);
    p = NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return p;
}

static int write_all(const char* path, const unsigned char* p, size_t n) {
  FILE* f = fopen(path, "wb");
  if (!f) return 0;
  const int ok = fwrite(p, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}

#endif
