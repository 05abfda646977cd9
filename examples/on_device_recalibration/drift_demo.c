/* drift_demo.c — on-device recalibration after a sensor drift, through the tinyquant C API.
 *
 * A quantized model is calibrated on the data it was trained on ("as shipped"). In the field the
 * sensor drifts (a dim, washed-out sensor, a defocused lens, inverted contrast): the activation
 * ranges recorded at quantization time no longer fit, and the quantized model loses more accuracy
 * than its float original. tq_recalibrate re-fits the model on the device from a few hundred
 * unlabeled drifted samples, against the float master weights the model file carries
 * (tq quantize --keep-master), within a memory budget, and installs the result only if it agrees
 * at least as well with the float master on held-back samples.
 *
 *   drift_demo --float F.tqm --model Q.tqm [--mode fast|full] [--shift gain|dim|blur|invert|none]
 *              [--count 1000] [--test-limit 10000] [--budget BYTES] [--iters 200] [--seed 0]
 *              [--threads 1] [--data-dir /usr/share/datasets/fashion-mnist] [--name NAME]
 *   drift_demo --header      (prints the Markdown table header the result rows belong to)
 *
 * Q.tqm is copied to Q.tqm.device.tqm, which is recalibrated; Q.tqm stays as it was. One Markdown
 * table row goes to stdout; progress and details go to stderr. Exit status 0 on success (the
 * recalibrated model installed or, rejected by the library's validation, not), 1 on any error,
 * 2 on a usage error.
 *
 * C99; only tinyquant.h, zlib and libc.
 */
#define _POSIX_C_SOURCE 200112L

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "tinyquant.h"

#define IMG_ROWS 28
#define IMG_COLS 28
#define IMG_PIXELS (IMG_ROWS * IMG_COLS)
#define NORM_MEAN 0.2860f
#define NORM_STD 0.3530f
#define MAX_CLASSES 4096

typedef enum { SHIFT_NONE, SHIFT_GAIN, SHIFT_BLUR, SHIFT_INVERT, SHIFT_DIM } shift_kind;

typedef struct {
  const char* float_path;
  const char* model_path;
  const char* data_dir;
  const char* name;
  tq_recal_mode mode;
  shift_kind shift;
  int32_t count;
  int32_t test_limit;
  size_t budget;
  int32_t iters;
  uint64_t seed;
  int32_t threads;
} args;

static const char* shift_name(shift_kind s) {
  switch (s) {
    case SHIFT_GAIN: return "gain";
    case SHIFT_BLUR: return "blur";
    case SHIFT_INVERT: return "invert";
    case SHIFT_DIM: return "dim";
    case SHIFT_NONE: break;
  }
  return "none";
}

static void usage(void) {
  fprintf(stderr,
          "usage: drift_demo --float F.tqm --model Q.tqm [--mode fast|full] [--shift gain|dim|blur|invert|none]\n"
          "                  [--count N] [--test-limit N] [--budget BYTES[K|M|G]] [--iters N] [--seed S]\n"
          "                  [--threads N] [--data-dir DIR] [--name NAME]\n"
          "       drift_demo --header\n");
}

static void print_header(void) {
  printf("| model | mode | shift | float top-1 (drifted) | quantized before | after | drift loss recovered "
         "| installed | memory measured / estimated / budget (MiB) | seconds |\n");
  printf("|---|---|---|---:|---:|---:|---:|:---:|---:|---:|\n");
}

/* ---- argument parsing ---- */

static int parse_i32(const char* opt, const char* s, int32_t lo, int32_t hi, int32_t* out) {
  char* end = NULL;
  long long v;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno || end == s || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "drift_demo: %s '%s': expected an integer in %ld..%ld\n", opt, s, (long)lo, (long)hi);
    return 0;
  }
  *out = (int32_t)v;
  return 1;
}

/* BYTES with an optional K / M / G suffix (binary: 128M = 134217728 bytes). 0: no limit. */
static int parse_bytes(const char* opt, const char* s, size_t* out) {
  char* end = NULL;
  unsigned long long v, mul = 1;
  errno = 0;
  if (s[0] == '-') goto bad;
  v = strtoull(s, &end, 10);
  if (errno || end == s) goto bad;
  if (*end == 'K' || *end == 'k') mul = 1ull << 10, ++end;
  else if (*end == 'M' || *end == 'm') mul = 1ull << 20, ++end;
  else if (*end == 'G' || *end == 'g') mul = 1ull << 30, ++end;
  if (*end == 'i') ++end;
  if (*end == 'B' || *end == 'b') ++end;
  if (*end != '\0' || v > (unsigned long long)SIZE_MAX / mul) goto bad;
  *out = (size_t)(v * mul);
  return 1;
bad:
  fprintf(stderr, "drift_demo: %s '%s': expected a byte count such as 134217728 or 128M\n", opt, s);
  return 0;
}

static int parse_args(int argc, char** argv, args* a) {
  int i;
  memset(a, 0, sizeof *a);
  a->data_dir = "/usr/share/datasets/fashion-mnist";
  a->mode = TQ_RECAL_FAST;
  a->shift = SHIFT_GAIN;
  a->count = 1000;
  a->test_limit = 10000;
  a->budget = (size_t)128 << 20;
  a->iters = 200;
  a->seed = 0;
  a->threads = 1;
  for (i = 1; i < argc; ++i) {
    const char* o = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
      usage();
      exit(0);
    }
    if (strcmp(o, "--header") == 0) {
      print_header();
      exit(0);
    }
    if (!v) {
      fprintf(stderr, "drift_demo: %s needs a value\n", o);
      return 0;
    }
    ++i;
    if (strcmp(o, "--float") == 0) {
      a->float_path = v;
    } else if (strcmp(o, "--model") == 0) {
      a->model_path = v;
    } else if (strcmp(o, "--data-dir") == 0) {
      a->data_dir = v;
    } else if (strcmp(o, "--name") == 0) {
      a->name = v;
    } else if (strcmp(o, "--mode") == 0) {
      if (strcmp(v, "fast") == 0) a->mode = TQ_RECAL_FAST;
      else if (strcmp(v, "full") == 0) a->mode = TQ_RECAL_FULL;
      else {
        fprintf(stderr, "drift_demo: --mode '%s': expected fast or full\n", v);
        return 0;
      }
    } else if (strcmp(o, "--shift") == 0) {
      if (strcmp(v, "gain") == 0) a->shift = SHIFT_GAIN;
      else if (strcmp(v, "blur") == 0) a->shift = SHIFT_BLUR;
      else if (strcmp(v, "invert") == 0) a->shift = SHIFT_INVERT;
      else if (strcmp(v, "none") == 0) a->shift = SHIFT_NONE;
      else if (strcmp(v, "dim") == 0) a->shift = SHIFT_DIM;
      else {
        fprintf(stderr, "drift_demo: --shift '%s': expected gain, dim, blur, invert or none\n", v);
        return 0;
      }
    } else if (strcmp(o, "--count") == 0) {
      if (!parse_i32(o, v, 1, 60000, &a->count)) return 0;
    } else if (strcmp(o, "--test-limit") == 0) {
      if (!parse_i32(o, v, 1, INT32_MAX, &a->test_limit)) return 0;
    } else if (strcmp(o, "--budget") == 0) {
      if (!parse_bytes(o, v, &a->budget)) return 0;
    } else if (strcmp(o, "--iters") == 0) {
      if (!parse_i32(o, v, 1, 1000000, &a->iters)) return 0;
    } else if (strcmp(o, "--threads") == 0) {
      if (!parse_i32(o, v, 1, 256, &a->threads)) return 0;
    } else if (strcmp(o, "--seed") == 0) {
      char* end = NULL;
      errno = 0;
      a->seed = (uint64_t)strtoull(v, &end, 10);
      if (errno || end == v || *end != '\0' || v[0] == '-') {
        fprintf(stderr, "drift_demo: --seed '%s': expected a non-negative integer\n", v);
        return 0;
      }
    } else {
      fprintf(stderr, "drift_demo: unknown option '%s'\n", o);
      return 0;
    }
  }
  if (!a->float_path || !a->model_path) {
    fprintf(stderr, "drift_demo: --float and --model are required\n");
    return 0;
  }
  return 1;
}

/* ---- Fashion-MNIST IDX files (gzip) ---- */

static int read_exact(gzFile f, const char* path, void* buf, size_t n, const char* what) {
  unsigned char* p = (unsigned char*)buf;
  while (n > 0) {
    unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
    int got = gzread(f, p, chunk);
    if (got <= 0) {
      int zerr = Z_OK;
      const char* msg = gzerror(f, &zerr);
      if (got < 0 || zerr != Z_OK)
        fprintf(stderr, "drift_demo: %s: reading %s: %s\n", path, what, msg ? msg : "zlib error");
      else
        fprintf(stderr, "drift_demo: %s: truncated (ends inside %s)\n", path, what);
      return 0;
    }
    p += got;
    n -= (size_t)got;
  }
  return 1;
}

static uint32_t be32(const unsigned char* b) {
  return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | (uint32_t)b[3];
}

/* Opens DIR/NAME, checks the IDX magic (0x00000803 images of 28x28, 0x00000801 labels) and returns
 * the item count; the stream is left at the first item. */
static gzFile idx_open(const char* dir, const char* name, int images, char* path, size_t path_size, int32_t* items) {
  unsigned char h[16];
  const uint32_t want_magic = images ? 0x00000803u : 0x00000801u;
  const size_t header = images ? 16 : 8;
  uint32_t magic, n;
  gzFile f;
  FILE* probe;
  snprintf(path, path_size, "%s/%s", dir, name);
  probe = fopen(path, "rb");
  if (!probe) {
    fprintf(stderr, "drift_demo: %s: %s (Fashion-MNIST IDX files expected in %s; see --data-dir)\n", path,
            strerror(errno), dir);
    return NULL;
  }
  fclose(probe);
  f = gzopen(path, "rb");
  if (!f) {
    fprintf(stderr, "drift_demo: %s: cannot open with zlib\n", path);
    return NULL;
  }
  if (!read_exact(f, path, h, header, "the IDX header")) goto fail;
  magic = be32(h);
  n = be32(h + 4);
  if (magic != want_magic) {
    fprintf(stderr, "drift_demo: %s: IDX magic 0x%08lx, expected 0x%08lx (%s)\n", path, (unsigned long)magic,
            (unsigned long)want_magic, images ? "unsigned bytes, 3 dimensions" : "unsigned bytes, 1 dimension");
    goto fail;
  }
  if (n == 0 || n > 10000000u) {
    fprintf(stderr, "drift_demo: %s: %lu items is not a plausible count\n", path, (unsigned long)n);
    goto fail;
  }
  if (images && (be32(h + 8) != IMG_ROWS || be32(h + 12) != IMG_COLS)) {
    fprintf(stderr, "drift_demo: %s: images are %lux%lu, expected %dx%d\n", path, (unsigned long)be32(h + 8),
            (unsigned long)be32(h + 12), IMG_ROWS, IMG_COLS);
    goto fail;
  }
  *items = (int32_t)n;
  return f;
fail:
  gzclose(f);
  return NULL;
}

/* After the last item: the file must end there. */
static int idx_check_end(gzFile f, const char* path) {
  unsigned char extra;
  int got = gzread(f, &extra, 1);
  if (got != 0) {
    fprintf(stderr, "drift_demo: %s: %s after the items the header declares\n", path,
            got > 0 ? "extra bytes" : "a read error");
    return 0;
  }
  return 1;
}

/* The image count an IDX file's header declares (< 0 on error). */
static int32_t idx_count(const char* dir, const char* name) {
  char path[4096];
  int32_t items = -1;
  gzFile f = idx_open(dir, name, 1, path, sizeof path, &items);
  if (!f) return -1;
  gzclose(f);
  return items;
}

/* Reads the images whose indices `wanted` (ascending, n of them; NULL: the first n) lists. */
static unsigned char* idx_read_images(const char* dir, const char* name, const int32_t* wanted, int32_t n,
                                      int32_t* total) {
  char path[4096];
  unsigned char skip[IMG_PIXELS];
  unsigned char* out = NULL;
  int32_t items = 0, at = 0, k;
  gzFile f = idx_open(dir, name, 1, path, sizeof path, &items);
  if (!f) return NULL;
  *total = items;
  if (n > items || (wanted && n > 0 && wanted[n - 1] >= items)) {
    fprintf(stderr, "drift_demo: %s holds %ld images; %ld requested\n", path, (long)items,
            (long)(wanted ? wanted[n - 1] + 1 : n));
    goto fail;
  }
  out = (unsigned char*)malloc((size_t)n * IMG_PIXELS);
  if (!out) {
    fprintf(stderr, "drift_demo: out of memory for %ld images\n", (long)n);
    goto fail;
  }
  for (k = 0; k < n; ++k) {
    const int32_t idx = wanted ? wanted[k] : k;
    for (; at < idx; ++at)
      if (!read_exact(f, path, skip, IMG_PIXELS, "an image")) goto fail;
    if (!read_exact(f, path, out + (size_t)k * IMG_PIXELS, IMG_PIXELS, "an image")) goto fail;
    ++at;
  }
  /* Validate the declared size: the rest of the images are there and nothing follows them. */
  for (; at < items; ++at)
    if (!read_exact(f, path, skip, IMG_PIXELS, "an image")) goto fail;
  if (!idx_check_end(f, path)) goto fail;
  gzclose(f);
  return out;
fail:
  free(out);
  gzclose(f);
  return NULL;
}

static unsigned char* idx_read_labels(const char* dir, const char* name, int32_t expect_total) {
  char path[4096];
  unsigned char* all = NULL;
  int32_t items = 0, i;
  gzFile f = idx_open(dir, name, 0, path, sizeof path, &items);
  if (!f) return NULL;
  if (items != expect_total) {
    fprintf(stderr, "drift_demo: %s has %ld labels, the images file %ld images\n", path, (long)items,
            (long)expect_total);
    goto fail;
  }
  all = (unsigned char*)malloc((size_t)items);
  if (!all) goto fail;
  if (!read_exact(f, path, all, (size_t)items, "the labels") || !idx_check_end(f, path)) goto fail;
  for (i = 0; i < items; ++i)
    if (all[i] > 9) {
      fprintf(stderr, "drift_demo: %s: label %ld is %d, expected 0..9\n", path, (long)i, all[i]);
      goto fail;
    }
  gzclose(f);
  return all;
fail:
  free(all);
  gzclose(f);
  return NULL;
}

/* ---- drift and preprocessing ---- */

/* One image: pixels -> [0,1] -> the drift -> (v - mean) / std, NCHW [1,28,28]. */
static void preprocess(const unsigned char* px, shift_kind shift, float* out) {
  float v[IMG_PIXELS];
  int r, c, i;
  for (i = 0; i < IMG_PIXELS; ++i) v[i] = (float)px[i] / 255.0f;
  switch (shift) {
    case SHIFT_GAIN: /* a dim, washed-out sensor: low gain, raised black level */
      for (i = 0; i < IMG_PIXELS; ++i) {
        float g = 0.55f * v[i] + 0.35f;
        v[i] = g < 0.0f ? 0.0f : g > 1.0f ? 1.0f : g;
      }
      break;
    case SHIFT_DIM: /* a milder one: 65 % gain, black level 0.15 */
      for (i = 0; i < IMG_PIXELS; ++i) {
        float g = 0.65f * v[i] + 0.15f;
        v[i] = g < 0.0f ? 0.0f : g > 1.0f ? 1.0f : g;
      }
      break;
    case SHIFT_INVERT:
      for (i = 0; i < IMG_PIXELS; ++i) v[i] = 1.0f - v[i];
      break;
    case SHIFT_BLUR: { /* 3x3 box blur (defocus); at the border, the mean of the pixels inside */
      float src[IMG_PIXELS];
      memcpy(src, v, sizeof src);
      for (r = 0; r < IMG_ROWS; ++r)
        for (c = 0; c < IMG_COLS; ++c) {
          float sum = 0.0f;
          int n = 0, dr, dc;
          for (dr = -1; dr <= 1; ++dr)
            for (dc = -1; dc <= 1; ++dc) {
              const int rr = r + dr, cc = c + dc;
              if (rr < 0 || rr >= IMG_ROWS || cc < 0 || cc >= IMG_COLS) continue;
              sum += src[rr * IMG_COLS + cc];
              ++n;
            }
          v[r * IMG_COLS + c] = sum / (float)n;
        }
      break;
    }
    case SHIFT_NONE: break;
  }
  for (i = 0; i < IMG_PIXELS; ++i) out[i] = (v[i] - NORM_MEAN) / NORM_STD;
}

/* ---- models ---- */

static int tq_check(tq_status s, const char* what) {
  if (s == TQ_OK) return 1;
  fprintf(stderr, "drift_demo: %s: %s: %s\n", what, tq_status_name(s), tq_last_error());
  return 0;
}

static tq_model* load_model(const char* path) {
  tq_model* m = NULL;
  char what[4200];
  tq_tensor_info in, out;
  int32_t n_in = 0, n_out = 0;
  snprintf(what, sizeof what, "loading %s", path);
  if (!tq_check(tq_model_load_file(path, &m), what)) return NULL;
  if (!tq_check(tq_model_num_inputs(m, &n_in), what) || !tq_check(tq_model_num_outputs(m, &n_out), what)) goto fail;
  if (n_in != 1 || n_out < 1) {
    fprintf(stderr, "drift_demo: %s: %ld inputs and %ld outputs; one image in and logits out expected\n", path,
            (long)n_in, (long)n_out);
    goto fail;
  }
  if (!tq_check(tq_model_input_info(m, 0, &in), what) || !tq_check(tq_model_output_info(m, 0, &out), what)) goto fail;
  if (in.dtype != TQ_FLOAT32 || in.bytes != IMG_PIXELS * sizeof(float)) {
    fprintf(stderr, "drift_demo: %s: input '%s' is %s of %zu bytes; a float32 [1,1,28,28] image (%zu bytes) expected\n",
            path, in.name, in.dtype == TQ_FLOAT32 ? "float32" : "not float32", in.bytes,
            (size_t)(IMG_PIXELS * sizeof(float)));
    goto fail;
  }
  if (out.dtype != TQ_FLOAT32 || out.bytes < 2 * sizeof(float) || out.bytes > MAX_CLASSES * sizeof(float)) {
    fprintf(stderr, "drift_demo: %s: output '%s' (%zu bytes) is not float32 logits\n", path, out.name, out.bytes);
    goto fail;
  }
  return m;
fail:
  tq_model_free(m);
  return NULL;
}

/* Top-1 accuracy (%) on n preprocessed images, batch 1. Returns < 0 on error. */
static double evaluate(const tq_model* m, const char* path, const float* images, const unsigned char* labels,
                       int32_t n, int32_t threads) {
  tq_options opt;
  tq_interpreter* it = NULL;
  tq_tensor_info out;
  float logits[MAX_CLASSES];
  int32_t i, correct = 0, classes;
  char what[4200];
  snprintf(what, sizeof what, "running %s", path);
  tq_options_init(&opt);
  opt.backend = TQ_BACKEND_AUTO;
  opt.threads = threads;
  if (!tq_check(tq_model_output_info(m, 0, &out), what)) return -1.0;
  classes = (int32_t)(out.bytes / sizeof(float));
  if (!tq_check(tq_interpreter_create(m, &opt, &it), what)) return -1.0;
  for (i = 0; i < n; ++i) {
    int32_t k, best = 0;
    if (!tq_check(tq_interpreter_set_input(it, 0, images + (size_t)i * IMG_PIXELS, IMG_PIXELS * sizeof(float)), what) ||
        !tq_check(tq_interpreter_invoke(it), what) || !tq_check(tq_interpreter_get_output(it, 0, logits, out.bytes), what)) {
      tq_interpreter_free(it);
      return -1.0;
    }
    for (k = 1; k < classes; ++k)
      if (logits[k] > logits[best]) best = k;
    correct += best == (int32_t)labels[i];
  }
  tq_interpreter_free(it);
  return 100.0 * (double)correct / (double)n;
}

static double eval_file(const char* path, const float* images, const unsigned char* labels, int32_t n,
                        int32_t threads, int32_t* has_master) {
  double acc;
  tq_model* m = load_model(path);
  if (!m) return -1.0;
  if (has_master && !tq_check(tq_model_has_master(m, has_master), path)) {
    tq_model_free(m);
    return -1.0;
  }
  acc = evaluate(m, path, images, labels, n, threads);
  tq_model_free(m);
  return acc;
}

static int copy_file(const char* from, const char* to) {
  char buf[1 << 16];
  size_t got;
  int ok = 1;
  FILE* in = fopen(from, "rb");
  FILE* out;
  if (!in) {
    fprintf(stderr, "drift_demo: %s: %s\n", from, strerror(errno));
    return 0;
  }
  out = fopen(to, "wb");
  if (!out) {
    fprintf(stderr, "drift_demo: %s: %s\n", to, strerror(errno));
    fclose(in);
    return 0;
  }
  while ((got = fread(buf, 1, sizeof buf, in)) > 0)
    if (fwrite(buf, 1, got, out) != got) {
      fprintf(stderr, "drift_demo: writing %s: %s\n", to, strerror(errno));
      ok = 0;
      break;
    }
  if (ok && ferror(in)) {
    fprintf(stderr, "drift_demo: reading %s: %s\n", from, strerror(errno));
    ok = 0;
  }
  fclose(in);
  if (fclose(out) != 0 && ok) {
    fprintf(stderr, "drift_demo: writing %s: %s\n", to, strerror(errno));
    ok = 0;
  }
  return ok;
}

/* ---- recalibration progress ---- */

typedef struct {
  char stage[32];
  int last_tenth;
} progress_state;

static int on_progress(void* user, const char* stage, double fraction) {
  progress_state* p = (progress_state*)user;
  const int tenth = (int)(fraction * 10.0);
  if (strcmp(p->stage, stage) != 0 || tenth != p->last_tenth) {
    fprintf(stderr, "  recalibrate: %-13s %5.1f%%\n", stage, 100.0 * fraction);
    snprintf(p->stage, sizeof p->stage, "%s", stage);
    p->last_tenth = tenth;
  }
  return 0; /* nonzero would cancel */
}

/* splitmix64: the seeded subset of the training split. */
static uint64_t next_random(uint64_t* s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int cmp_i32(const void* a, const void* b) {
  const int32_t x = *(const int32_t*)a, y = *(const int32_t*)b;
  return (x > y) - (x < y);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char* base_name(const char* path, char* buf, size_t size) {
  const char* slash = strrchr(path, '/');
  size_t len;
  snprintf(buf, size, "%s", slash ? slash + 1 : path);
  len = strlen(buf);
  if (len > 4 && strcmp(buf + len - 4, ".tqm") == 0) buf[len - 4] = '\0';
  return buf;
}

int main(int argc, char** argv) {
  args a;
  int rc = 1;
  int32_t test_total = 0, train_total = 0, i, has_master = 0, n_test;
  unsigned char *test_px = NULL, *test_labels = NULL, *train_px = NULL;
  float *test = NULL, *train = NULL;
  int32_t* order = NULL;
  char work[4200], name_buf[512];
  double acc_float, acc_before, acc_after, t0, wall;
  tq_recal_options ro;
  tq_recal_result rr;
  tq_status st;
  progress_state ps;
  const double mib = 1024.0 * 1024.0;
  char recovered[32], budget[32];

  if (!parse_args(argc, argv, &a)) {
    usage();
    return 2;
  }
  fprintf(stderr, "drift_demo: tinyquant %s, shift %s, %s recalibration on %ld drifted training images\n",
          tq_version(), shift_name(a.shift), a.mode == TQ_RECAL_FULL ? "full" : "fast", (long)a.count);

  /* The drifted test set: the first test_limit images. */
  test_total = idx_count(a.data_dir, "t10k-images-idx3-ubyte.gz");
  if (test_total < 0) goto done;
  n_test = a.test_limit < test_total ? a.test_limit : test_total;
  test_px = idx_read_images(a.data_dir, "t10k-images-idx3-ubyte.gz", NULL, n_test, &test_total);
  if (!test_px) goto done;
  test_labels = idx_read_labels(a.data_dir, "t10k-labels-idx1-ubyte.gz", test_total);
  if (!test_labels) goto done;
  test = (float*)malloc((size_t)n_test * IMG_PIXELS * sizeof(float));
  if (!test) {
    fprintf(stderr, "drift_demo: out of memory for %ld test images\n", (long)n_test);
    goto done;
  }
  for (i = 0; i < n_test; ++i) preprocess(test_px + (size_t)i * IMG_PIXELS, a.shift, test + (size_t)i * IMG_PIXELS);
  free(test_px);
  test_px = NULL;

  /* Before: the float model and the model as shipped, on the drifted test images. */
  acc_float = eval_file(a.float_path, test, test_labels, n_test, a.threads, NULL);
  if (acc_float < 0.0) goto done;
  acc_before = eval_file(a.model_path, test, test_labels, n_test, a.threads, &has_master);
  if (acc_before < 0.0) goto done;
  if (!has_master) {
    fprintf(stderr, "drift_demo: %s carries no float master weights; quantize it with --keep-master fp16\n",
            a.model_path);
    goto done;
  }
  fprintf(stderr, "drift_demo: %ld drifted test images: float %.2f%%, quantized %.2f%%\n", (long)n_test, acc_float,
          acc_before);

  /* The device's new samples: a seeded random subset of the drifted training split. */
  {
    uint64_t s = a.seed;
    const int32_t probe_total = idx_count(a.data_dir, "train-images-idx3-ubyte.gz");
    if (probe_total < 0) goto done;
    if (a.count > probe_total) {
      fprintf(stderr, "drift_demo: --count %ld: the training split has %ld images\n", (long)a.count, (long)probe_total);
      goto done;
    }
    order = (int32_t*)malloc((size_t)probe_total * sizeof(int32_t));
    if (!order) goto done;
    for (i = 0; i < probe_total; ++i) order[i] = i;
    for (i = 0; i < a.count; ++i) { /* partial Fisher-Yates */
      const int32_t j = i + (int32_t)(next_random(&s) % (uint64_t)(probe_total - i));
      const int32_t t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    qsort(order, (size_t)a.count, sizeof(int32_t), cmp_i32);
    train_px = idx_read_images(a.data_dir, "train-images-idx3-ubyte.gz", order, a.count, &train_total);
    if (!train_px) goto done;
    train = (float*)malloc((size_t)a.count * IMG_PIXELS * sizeof(float));
    if (!train) {
      fprintf(stderr, "drift_demo: out of memory for %ld samples\n", (long)a.count);
      goto done;
    }
    for (i = 0; i < a.count; ++i)
      preprocess(train_px + (size_t)i * IMG_PIXELS, a.shift, train + (size_t)i * IMG_PIXELS);
    free(train_px);
    train_px = NULL;
  }

  /* Recalibrate a working copy; the shipped file stays as it was. */
  snprintf(work, sizeof work, "%s.device.tqm", a.model_path);
  if (!copy_file(a.model_path, work)) goto done;
  tq_recal_options_init(&ro);
  ro.mode = a.mode;
  ro.memory_budget_bytes = a.budget;
  ro.iterations = a.iters;
  ro.seed = a.seed;
  ro.backend = TQ_BACKEND_AUTO;
  ro.threads = a.threads;
  memset(&ps, 0, sizeof ps);
  ps.last_tenth = -1;
  ro.progress = on_progress;
  ro.progress_user = &ps;
  tq_recal_result_init(&rr);
  t0 = now_seconds();
  st = tq_recalibrate(work, train, (size_t)a.count * IMG_PIXELS * sizeof(float), a.count, &ro, &rr);
  wall = now_seconds() - t0;
  if (st != TQ_OK && st != TQ_REJECTED) {
    fprintf(stderr, "drift_demo: tq_recalibrate %s (budget %zu bytes): %s: %s\n", work, a.budget, tq_status_name(st),
            tq_last_error());
    goto done;
  }
  fprintf(stderr,
          "drift_demo: %s: %ld samples given, %ld calibrated on%s, %ld held back; agreement with the float master "
          "%.2f%% -> %.2f%%; %s%s%s\n",
          work, (long)rr.samples_given, (long)rr.calibration_samples, rr.subsampled ? " (subsampled by the budget)" : "",
          (long)rr.holdout_samples, rr.old_agreement, rr.new_agreement, rr.installed ? "installed" : "not installed",
          rr.installed ? "" : ": ", rr.installed ? "" : rr.reason);
  free(train);
  train = NULL;

  /* After: the file on disk, reloaded. */
  acc_after = eval_file(work, test, test_labels, n_test, a.threads, NULL);
  if (acc_after < 0.0) goto done;

  if (acc_float - acc_before <= 0.05)
    snprintf(recovered, sizeof recovered, "n/a");
  else
    snprintf(recovered, sizeof recovered, "%.1f%%", 100.0 * (acc_after - acc_before) / (acc_float - acc_before));
  if (a.budget) snprintf(budget, sizeof budget, "%.0f", (double)a.budget / mib);
  else snprintf(budget, sizeof budget, "none");
  printf("| %s | %s | %s | %.2f | %.2f | %.2f | %s | %s | %.1f / %.1f / %s | %.1f |\n",
         a.name ? a.name : base_name(a.model_path, name_buf, sizeof name_buf), a.mode == TQ_RECAL_FULL ? "full" : "fast",
         shift_name(a.shift), acc_float, acc_before, acc_after, recovered, rr.installed ? "yes" : "no",
         (double)rr.peak_bytes / mib, (double)rr.estimated_bytes / mib, budget, wall);
  fflush(stdout);
  rc = 0;
done:
  free(test_px);
  free(test_labels);
  free(test);
  free(train_px);
  free(train);
  free(order);
  return rc;
}
