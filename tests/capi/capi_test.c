/* The C API end to end, in C: loading, queries, inference on both backends, recalibration, and
 * every error path a caller can hit. Usage: tq_capi_test MASTER.tqm PLAIN.tqm WORKDIR
 * (MASTER: lenet W8A8 written with --keep-master fp16; PLAIN: lenet W4A8 without master). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "tinyquant.h"

#include "capi_check.h"

static const char* g_master;
static const char* g_plain;
static const char* g_dir;

static void test_version(void) {
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", TQ_VERSION_MAJOR, TQ_VERSION_MINOR, TQ_VERSION_PATCH);
  CHECK(strcmp(tq_version(), want) == 0);
  CHECK(tq_version_number() == 10000 * TQ_VERSION_MAJOR + 100 * TQ_VERSION_MINOR + TQ_VERSION_PATCH);
  CHECK(strcmp(tq_status_name(TQ_REJECTED), "TQ_REJECTED") == 0);
  CHECK(strcmp(tq_status_name((tq_status)99), "TQ_UNKNOWN_STATUS") == 0);
}

static void test_load_errors(void) {
  tq_model* m = (tq_model*)&m; /* must be reset to NULL on failure */
  CHECK_STATUS(tq_model_load_file(NULL, &m), TQ_INVALID_ARGUMENT);
  CHECK(m == NULL);
  CHECK_STATUS(tq_model_load_file(g_master, NULL), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_model_load_file("/nonexistent/model.tqm", &m), TQ_NOT_FOUND);
  CHECK_ERROR_HAS("/nonexistent/model.tqm");
  CHECK(m == NULL);
  /* A file that is not a model, and a truncated model. */
  char path[512];
  snprintf(path, sizeof path, "%s/garbage.tqm", g_dir);
  const unsigned char junk[64] = "this is not a FlatBuffer at all, just some bytes of text......";
  CHECK(write_all(path, junk, sizeof junk));
  CHECK_STATUS(tq_model_load_file(path, &m), TQ_INVALID_MODEL);
  CHECK_ERROR_HAS(path);
  size_t size = 0;
  unsigned char* bytes = read_all(g_master, &size);
  CHECK(bytes != NULL && size > 1000);
  if (!bytes) return;
  CHECK_STATUS(tq_model_load_memory(bytes, size / 2, &m), TQ_INVALID_MODEL);
  CHECK_ERROR_HAS("<memory>");
  CHECK_STATUS(tq_model_load_memory(NULL, size, &m), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_model_load_memory(bytes, size, NULL), TQ_INVALID_ARGUMENT);
  /* Flipped bytes in the middle: the verifier or the semantic checks refuse, never a crash. */
  int refused = 0;
  for (int k = 0; k < 20; ++k) {
    unsigned char* copy = (unsigned char*)malloc(size);
    memcpy(copy, bytes, size);
    for (int j = 0; j < 8; ++j) copy[(size_t)(uniform01() * 256)] ^= (unsigned char)(1 + uniform01() * 254);
    tq_model* mm = NULL;
    const tq_status s = tq_model_load_memory(copy, size, &mm);
    refused += s != TQ_OK;
    CHECK(s == TQ_OK || mm == NULL);
    tq_model_free(mm);
    free(copy);
  }
  CHECK(refused > 0);
  free(bytes);
  tq_model_free(NULL); /* accepted */
}

static void run_once(const tq_model* m, tq_backend backend, const float* x, float* y) {
  tq_options o;
  tq_options_init(&o);
  o.backend = backend;
  tq_interpreter* it = NULL;
  CHECK_STATUS(tq_interpreter_create(m, &o, &it), TQ_OK);
  if (!it) return;
  tq_backend used = TQ_BACKEND_AUTO;
  CHECK_STATUS(tq_interpreter_backend(it, &used), TQ_OK);
  CHECK(backend == TQ_BACKEND_AUTO ? used != TQ_BACKEND_AUTO : used == backend);
  size_t arena = 0;
  CHECK_STATUS(tq_interpreter_arena_bytes(it, &arena), TQ_OK);
  CHECK(arena > 0);
  CHECK_STATUS(tq_interpreter_set_input(it, 0, x, 28 * 28 * sizeof(float)), TQ_OK);
  CHECK_STATUS(tq_interpreter_invoke(it), TQ_OK);
  CHECK_STATUS(tq_interpreter_get_output(it, 0, y, 10 * sizeof(float)), TQ_OK);
  tq_interpreter_free(it);
}

static void test_inference(void) {
  tq_model* m = NULL;
  CHECK_STATUS(tq_model_load_file(g_master, &m), TQ_OK);
  if (!m) return;
  int32_t n = -1;
  CHECK_STATUS(tq_model_num_inputs(m, &n), TQ_OK);
  CHECK(n == 1);
  CHECK_STATUS(tq_model_num_outputs(m, &n), TQ_OK);
  CHECK(n == 1);
  tq_tensor_info in, out;
  CHECK_STATUS(tq_model_input_info(m, 0, &in), TQ_OK);
  CHECK(in.dtype == TQ_FLOAT32 && in.rank == 4 && in.dims[0] == 1 && in.dims[1] == 1 && in.dims[2] == 28 &&
        in.dims[3] == 28 && in.bytes == 28 * 28 * 4 && !in.quantized);
  CHECK(in.name && strcmp(in.name, "input") == 0);
  CHECK_STATUS(tq_model_output_info(m, 0, &out), TQ_OK);
  CHECK(out.dtype == TQ_FLOAT32 && out.bytes == 40 && out.dims[out.rank - 1] == 10);
  CHECK_STATUS(tq_model_input_info(m, 1, &in), TQ_INVALID_ARGUMENT);
  CHECK_ERROR_HAS("input 1 does not exist");
  CHECK_STATUS(tq_model_output_info(m, -1, &out), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_model_input_info(NULL, 0, &in), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_model_input_info(m, 0, NULL), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_model_num_inputs(NULL, &n), TQ_INVALID_ARGUMENT);
  int32_t has = -1;
  CHECK_STATUS(tq_model_has_master(m, &has), TQ_OK);
  CHECK(has == 1);

  float x[28 * 28], y_ref[10], y_xnn[10], y_mem[10];
  fill_samples(x, 1, 28, 28);
  run_once(m, TQ_BACKEND_REFERENCE, x, y_ref);
  run_once(m, TQ_BACKEND_XNNPACK, x, y_xnn);
  /* The integer kernels agree bit for bit between backends. */
  CHECK(memcmp(y_ref, y_xnn, sizeof y_ref) == 0);
  /* The same model from memory gives the same logits. */
  size_t size = 0;
  unsigned char* bytes = read_all(g_master, &size);
  tq_model* mm = NULL;
  CHECK_STATUS(tq_model_load_memory(bytes, size, &mm), TQ_OK);
  free(bytes); /* the model keeps its own copy */
  if (mm) {
    run_once(mm, TQ_BACKEND_AUTO, x, y_mem);
    CHECK(memcmp(y_ref, y_mem, sizeof y_ref) == 0);
  }
  int best = 0;
  for (int c = 1; c < 10; ++c) best = y_ref[c] > y_ref[best] ? c : best;
  CHECK(isfinite(y_ref[best]));

  /* Interpreter errors. */
  tq_interpreter* it = (tq_interpreter*)&it;
  CHECK_STATUS(tq_interpreter_create(NULL, NULL, &it), TQ_INVALID_ARGUMENT);
  CHECK(it == NULL);
  CHECK_STATUS(tq_interpreter_create(m, NULL, NULL), TQ_INVALID_ARGUMENT);
  tq_options o;
  tq_options_init(&o);
  o.threads = 0;
  CHECK_STATUS(tq_interpreter_create(m, &o, &it), TQ_INVALID_ARGUMENT);
  CHECK_ERROR_HAS("threads 0");
  tq_options_init(&o);
  o.struct_size = 3;
  CHECK_STATUS(tq_interpreter_create(m, &o, &it), TQ_INVALID_ARGUMENT);
  CHECK_ERROR_HAS("struct_size");
  tq_options_init(&o);
  o.backend = (tq_backend)7;
  CHECK_STATUS(tq_interpreter_create(m, &o, &it), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_interpreter_create(m, NULL, &it), TQ_OK);
  /* The interpreter keeps the model alive: free the model first. */
  tq_model_free(m);
  if (it) {
    CHECK_STATUS(tq_interpreter_set_input(it, 0, x, 100), TQ_INVALID_ARGUMENT);
    CHECK_ERROR_HAS("takes 3136 bytes, 100 given");
    CHECK_STATUS(tq_interpreter_set_input(it, 1, x, sizeof x), TQ_INVALID_ARGUMENT);
    CHECK_STATUS(tq_interpreter_set_input(it, 0, NULL, sizeof x), TQ_INVALID_ARGUMENT);
    CHECK_STATUS(tq_interpreter_set_input(NULL, 0, x, sizeof x), TQ_INVALID_ARGUMENT);
    CHECK_STATUS(tq_interpreter_invoke(NULL), TQ_INVALID_ARGUMENT);
    CHECK_STATUS(tq_interpreter_set_input(it, 0, x, sizeof x), TQ_OK);
    CHECK_STATUS(tq_interpreter_invoke(it), TQ_OK);
    float y[10];
    CHECK_STATUS(tq_interpreter_get_output(it, 0, y, 8), TQ_INVALID_ARGUMENT);
    CHECK_STATUS(tq_interpreter_get_output(it, 0, y, sizeof y), TQ_OK);
    CHECK(memcmp(y, y_mem, sizeof y) == 0);
    tq_interpreter_free(it);
  }
  tq_interpreter_free(NULL);
  tq_model_free(mm);
}

/* The header's thread-safety contract: one model shared by several threads, one interpreter each. */
typedef struct {
  const tq_model* model;
  const float* x;
  const float* want;
  int ok;
} Worker;

static void* worker(void* arg) {
  Worker* w = (Worker*)arg;
  tq_interpreter* it = NULL;
  float y[10];
  w->ok = tq_interpreter_create(w->model, NULL, &it) == TQ_OK;
  for (int k = 0; w->ok && k < 25; ++k)
    w->ok = tq_interpreter_set_input(it, 0, w->x, 28 * 28 * sizeof(float)) == TQ_OK &&
            tq_interpreter_invoke(it) == TQ_OK && tq_interpreter_get_output(it, 0, y, sizeof y) == TQ_OK &&
            memcmp(y, w->want, sizeof y) == 0;
  tq_interpreter_free(it);
  return NULL;
}

static void test_threads(void) {
  tq_model* m = NULL;
  CHECK_STATUS(tq_model_load_file(g_master, &m), TQ_OK);
  if (!m) return;
  enum { kThreads = 4 };
  static float x[kThreads][28 * 28], want[kThreads][10];
  pthread_t th[kThreads];
  Worker w[kThreads];
  for (int i = 0; i < kThreads; ++i) {
    fill_samples(x[i], 1, 28, 28);
    run_once(m, TQ_BACKEND_AUTO, x[i], want[i]);
    w[i].model = m;
    w[i].x = x[i];
    w[i].want = want[i];
    w[i].ok = 0;
  }
  for (int i = 0; i < kThreads; ++i) CHECK(pthread_create(&th[i], NULL, worker, &w[i]) == 0);
  for (int i = 0; i < kThreads; ++i) {
    pthread_join(th[i], NULL);
    CHECK(w[i].ok);
  }
  tq_model_free(m);
}

typedef struct {
  int calls;
  int cancel_at;
  double last;
  int monotonic;
} Progress;

static int on_progress(void* user, const char* stage, double fraction) {
  Progress* p = (Progress*)user;
  ++p->calls;
  if (fraction + 1e-9 < p->last) p->monotonic = 0;
  p->last = fraction;
  (void)stage;
  return p->cancel_at > 0 && p->calls >= p->cancel_at;
}

static int same_file(const char* a, const unsigned char* bytes, size_t size) {
  size_t n = 0;
  unsigned char* p = read_all(a, &n);
  const int same = p && n == size && memcmp(p, bytes, n) == 0;
  free(p);
  return same;
}

static void test_recalibration(void) {
  enum { kCount = 200 };
  static float samples[kCount * 28 * 28];
  fill_samples(samples, kCount, 28, 28);
  const size_t bytes = sizeof samples;
  char work[512];
  snprintf(work, sizeof work, "%s/device.tqm", g_dir);
  size_t size = 0;
  unsigned char* original = read_all(g_master, &size);
  CHECK(original && write_all(work, original, size));

  tq_recal_options o;
  tq_recal_options_init(&o);
  tq_recal_result r;
  tq_recal_result_init(&r);
  /* Argument errors: nothing is touched. */
  CHECK_STATUS(tq_recalibrate(NULL, samples, bytes, kCount, &o, &r), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_recalibrate(work, NULL, bytes, kCount, &o, &r), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_recalibrate(work, samples, bytes, 0, &o, &r), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_recalibrate(work, samples, bytes - 4, kCount, &o, &r), TQ_INVALID_ARGUMENT);
  CHECK_ERROR_HAS("expected 200 samples x 784 floats");
  CHECK_STATUS(tq_recalibrate(work, samples, bytes - 2, kCount, &o, &r), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_recalibrate("/nonexistent/device.tqm", samples, bytes, kCount, &o, &r), TQ_NOT_FOUND);
  tq_recal_options bad = o;
  bad.mode = (tq_recal_mode)5;
  CHECK_STATUS(tq_recalibrate(work, samples, bytes, kCount, &bad, &r), TQ_INVALID_ARGUMENT);
  bad = o;
  bad.holdout = 1.5f;
  CHECK_STATUS(tq_recalibrate(work, samples, bytes, kCount, &bad, &r), TQ_INVALID_ARGUMENT);
  bad = o;
  bad.min_samples = 500;
  CHECK_STATUS(tq_recalibrate(work, samples, bytes, kCount, &bad, &r), TQ_INVALID_ARGUMENT);
  CHECK_ERROR_HAS("at least 500 are needed");
  tq_recal_result bad_result;
  tq_recal_result_init(&bad_result);
  bad_result.struct_size = 0;
  CHECK_STATUS(tq_recalibrate(work, samples, bytes, kCount, &o, &bad_result), TQ_INVALID_ARGUMENT);
  /* A model without master weights cannot be recalibrated. */
  char plain[512];
  snprintf(plain, sizeof plain, "%s/plain.tqm", g_dir);
  size_t plain_size = 0;
  unsigned char* plain_bytes = read_all(g_plain, &plain_size);
  CHECK(plain_bytes && write_all(plain, plain_bytes, plain_size));
  CHECK_STATUS(tq_recalibrate(plain, samples, bytes, kCount, &o, &r), TQ_INVALID_ARGUMENT);
  CHECK_ERROR_HAS("--keep-master");
  CHECK(same_file(plain, plain_bytes, plain_size));
  free(plain_bytes);
  /* A budget too small: refused before any work, naming the bytes it needs. */
  bad = o;
  bad.memory_budget_bytes = 1 << 20;
  CHECK_STATUS(tq_recalibrate(work, samples, bytes, kCount, &bad, &r), TQ_OUT_OF_MEMORY);
  CHECK_ERROR_HAS("needs at least");
  CHECK_ERROR_HAS("the budget is 1048576 bytes");
  CHECK(r.installed == 0);
  /* ...and the result says how much it would need, so the app can retry without parsing text. */
  CHECK(r.estimated_bytes > bad.memory_budget_bytes && r.samples_given == kCount);
  const size_t needed = r.estimated_bytes;
  char msg[64];
  snprintf(msg, sizeof msg, "needs at least %zu bytes", needed);
  CHECK_ERROR_HAS(msg);
  /* The plan, asked for beforehand, agrees. */
  tq_recal_result plan;
  tq_recal_result_init(&plan);
  CHECK_STATUS(tq_recal_plan(work, kCount, &bad, &plan), TQ_OUT_OF_MEMORY);
  CHECK(plan.estimated_bytes == needed);
  bad.memory_budget_bytes = needed;
  CHECK_STATUS(tq_recal_plan(work, kCount, &bad, &plan), TQ_OK);
  CHECK(plan.calibration_samples == 32 && plan.subsampled && plan.estimated_bytes == needed &&
        plan.holdout_samples == 40);
  CHECK_STATUS(tq_recal_plan(NULL, kCount, &bad, &plan), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_recal_plan(work, 0, &bad, &plan), TQ_INVALID_ARGUMENT);
  CHECK_STATUS(tq_recal_plan(plain, kCount, &o, &plan), TQ_INVALID_ARGUMENT);
  CHECK_ERROR_HAS("--keep-master");
  /* Cancelled from the progress callback: the file is untouched. */
  Progress p = {0, 3, 0.0, 1};
  bad = o;
  bad.progress = on_progress;
  bad.progress_user = &p;
  CHECK_STATUS(tq_recalibrate(work, samples, bytes, kCount, &bad, &r), TQ_CANCELLED);
  CHECK(p.calls == 3);
  CHECK(same_file(work, original, size));

  /* Fast mode under a budget that forces subsampling: installed, measured peak within budget. */
  Progress q = {0, 0, 0.0, 1};
  o.progress = on_progress;
  o.progress_user = &q;
  o.memory_budget_bytes = (size_t)80 << 20; /* below the ~95 MB estimate for all 160 */
  tq_recal_result planned;
  tq_recal_result_init(&planned);
  CHECK_STATUS(tq_recal_plan(work, kCount, &o, &planned), TQ_OK);
  CHECK_STATUS(tq_recalibrate(work, samples, bytes, kCount, &o, &r), TQ_OK);
  CHECK(r.installed == 1 && r.reason[0] == 0);
  CHECK(planned.calibration_samples == r.calibration_samples && planned.estimated_bytes == r.estimated_bytes);
  CHECK(r.seconds > 0.0);
  CHECK(r.samples_given == kCount && r.holdout_samples == 40);
  CHECK(r.calibration_samples >= 32 && r.calibration_samples <= kCount - 40);
  CHECK(r.subsampled == (r.calibration_samples < kCount - 40));
  CHECK(r.estimated_bytes <= o.memory_budget_bytes);
  CHECK(r.peak_bytes <= r.estimated_bytes);
#if defined(__linux__)
  CHECK(r.peak_bytes > 0);
#endif
  CHECK(r.old_agreement >= 0 && r.old_agreement <= 100 && r.new_agreement >= r.old_agreement - o.max_agreement_drop);
  CHECK(q.calls >= 4 && q.monotonic && q.last == 1.0);
  fprintf(stderr, "fast: %d of %d samples, agreement %.1f -> %.1f, peak %zu of estimate %zu, budget %zu, %.2f s\n",
          r.calibration_samples, r.samples_given, r.old_agreement, r.new_agreement, r.peak_bytes, r.estimated_bytes,
          r.memory_budget_bytes, r.seconds);
  CHECK(!same_file(work, original, size)); /* a new model was written */
  tq_model* m = NULL;
  CHECK_STATUS(tq_model_load_file(work, &m), TQ_OK);
  int32_t has = 0;
  if (m) CHECK_STATUS(tq_model_has_master(m, &has), TQ_OK);
  CHECK(has == 1); /* and it can be recalibrated again */
  tq_model_free(m);

  /* Full mode (AdaQuant), a few steps: recalibrates the recalibrated model. */
  tq_recal_options_init(&o);
  o.mode = TQ_RECAL_FULL;
  o.iterations = 10;
  o.max_agreement_drop = 100.0f; /* ten steps on synthetic images: installed whatever it learned */
  tq_recal_result_init(&r);
  CHECK_STATUS(tq_recalibrate(work, samples, bytes, kCount, &o, &r), TQ_OK);
  CHECK(r.installed == 1 && r.calibration_samples == kCount - 40 && !r.subsampled);
  CHECK_STATUS(tq_model_load_file(work, &m), TQ_OK);
  tq_model_free(m);
  free(original);
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MASTER.tqm PLAIN.tqm WORKDIR\n", argv[0]);
    return 2;
  }
  g_master = argv[1];
  g_plain = argv[2];
  g_dir = argv[3];
  test_version();
  test_load_errors();
  test_inference();
  test_threads();
  test_recalibration();
  return check_summary("capi");
}
