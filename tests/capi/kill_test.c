/* Power loss during recalibration, simulated: a child process recalibrates the model file over and
 * over; the parent SIGKILLs it at a random moment (uniform over 1.3x one job's duration, so kills
 * land in calibration, tuning, validation and writing alike), then checks that the file on disk
 * is a whole, valid model — it loads, it runs, it still carries its master weights — and that
 * some kills came after completed jobs (the file changed). Half the kills wait for the write
 * phase to begin, where a non-atomic write would leave a torn file. Usage: tq_kill_test MASTER.tqm WORKDIR [TRIALS]
 * (TRIALS default 60; the environment variable TQ_KILL_TRIALS overrides). */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS (not in POSIX 2008) */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tinyquant.h"

#include "capi_check.h"

enum { kCount = 60, kStages = 8 }; /* 48 to calibrate on, 12 held back */
static const char* kStageNames[kStages] = {"estimate", "calibrate", "adaquant", "stats tuning",
                                           "validate", "write", "done", "other"};
static volatile int* g_stage; /* shared with the child: the stage it last reported... */
static volatile int* g_done;  /* ...and how many recalibrations it has completed */
static double g_write_started = 0.0; /* the parent's timed job: when its write phase began */

static int stage_index(const char* s) {
  for (int i = 0; i < kStages - 1; ++i)
    if (strcmp(s, kStageNames[i]) == 0) return i;
  return kStages - 1;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int on_progress(void* user, const char* stage, double fraction) {
  (void)user;
  (void)fraction;
  const int s = stage_index(stage);
  if (s == 5 && *g_stage != 5) g_write_started = now_ms();
  *g_stage = s;
  return 0;
}

static void recalibrate_forever(const char* path, const float* samples) {
  tq_recal_options o;
  tq_recal_options_init(&o);
  o.max_agreement_drop = 100.0f; /* always install: the writes are what this test kills */
  o.progress = on_progress;
  for (uint64_t seed = 1;; ++seed) {
    o.seed = seed; /* a different held-back split each time: a different model each time */
    if (tq_recalibrate(path, samples, sizeof(float) * kCount * 784, kCount, &o, NULL) != TQ_OK) {
      fprintf(stderr, "child: %s\n", tq_last_error());
      _exit(3);
    }
    ++*g_done;
    *g_stage = kStages - 1;
  }
}

/* The file at path: loads, runs, has master weights. */
static int valid_model(const char* path, const float* x) {
  tq_model* m = NULL;
  if (tq_model_load_file(path, &m) != TQ_OK) {
    fprintf(stderr, "%s does not load: %s\n", path, tq_last_error());
    return 0;
  }
  int32_t has = 0;
  int ok = tq_model_has_master(m, &has) == TQ_OK && has == 1;
  tq_interpreter* it = NULL;
  float y[10];
  ok = ok && tq_interpreter_create(m, NULL, &it) == TQ_OK && tq_interpreter_set_input(it, 0, x, 784 * 4) == TQ_OK &&
       tq_interpreter_invoke(it) == TQ_OK && tq_interpreter_get_output(it, 0, y, sizeof y) == TQ_OK;
  for (int c = 0; ok && c < 10; ++c) ok = isfinite(y[c]);
  tq_interpreter_free(it);
  tq_model_free(m);
  return ok;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MASTER.tqm WORKDIR [TRIALS]\n", argv[0]);
    return 2;
  }
  int trials = argc > 3 ? atoi(argv[3]) : 60;
  if (getenv("TQ_KILL_TRIALS")) trials = atoi(getenv("TQ_KILL_TRIALS"));
  char path[512];
  snprintf(path, sizeof path, "%s/killed.tqm", argv[2]);
  size_t size = 0;
  unsigned char* original = read_all(argv[1], &size);
  CHECK(original && write_all(path, original, size));
  static float samples[kCount * 784];
  fill_samples(samples, kCount, 28, 28);
  void* shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(shared != MAP_FAILED);
  if (shared == MAP_FAILED) return 1;
  g_stage = (volatile int*)shared;
  g_done = g_stage + 1;

  /* One job, timed, not killed. */
  tq_recal_options o;
  tq_recal_options_init(&o);
  o.max_agreement_drop = 100.0f;
  o.progress = on_progress;
  const double t0 = now_ms();
  CHECK_STATUS(tq_recalibrate(path, samples, sizeof samples, kCount, &o, NULL), TQ_OK);
  const double job_ms = now_ms() - t0, write_ms = g_write_started > 0 ? now_ms() - g_write_started : 0.1 * job_ms;
  fprintf(stderr, "one recalibration: %.0f ms, its write phase %.0f ms; %d trials\n", job_ms, write_ms, trials);

  int killed_in[kStages] = {0}, changed = 0, invalid = 0;
  size_t last_size = 0;
  unsigned char* last = read_all(path, &last_size);
  for (int t = 0; t < trials; ++t) {
    *g_stage = 0;
    *g_done = 0;
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) recalibrate_forever(path, samples);
    /* Trial 0: right after the child's first completed job (so one kill surely follows an
     * install). Even trials: any moment of the job. Odd trials: once the child reports "write"
     * (serialize, write, fsync, load back, validate, rename), uniformly over 1.2x that phase's
     * measured length. */
    double wait = uniform01() * 1.3 * job_ms;
    if (t == 0 || t % 2 == 1) {
      const double start = now_ms();
      while ((t == 0 ? *g_done < 1 : *g_stage != 5) && now_ms() - start < 3 * job_ms) {
        struct timespec poll = {0, 200000};
        nanosleep(&poll, NULL);
      }
      wait = t == 0 ? 0.0 : uniform01() * 1.2 * write_ms;
    }
    struct timespec ts = {(time_t)(wait / 1e3), (long)(((long long)(wait * 1e6)) % 1000000000LL)};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL); /* it was still working, not failed */
    ++killed_in[*g_stage];
    const int ok = valid_model(path, samples);
    invalid += !ok;
    CHECK(ok);
    size_t n = 0;
    unsigned char* now = read_all(path, &n);
    if (now && (n != last_size || memcmp(now, last, n) != 0)) ++changed;
    free(last);
    last = now;
    last_size = n;
  }
  fprintf(stderr, "killed during:");
  for (int i = 0; i < kStages; ++i)
    if (killed_in[i]) fprintf(stderr, " %s %d", kStageNames[i], killed_in[i]);
  fprintf(stderr, "; the model on disk changed after %d kills, was invalid after %d\n", changed, invalid);
  /* The kills must have hit more than one phase, and some jobs must have completed in between. */
  int phases = 0;
  for (int i = 0; i < kStages; ++i) phases += killed_in[i] > 0;
  CHECK(phases >= 2);
  CHECK(changed > 0);
  CHECK(invalid == 0);
  free(last);
  free(original);
  return check_summary("kill");
}
