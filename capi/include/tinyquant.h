/* tinyquant.h — the stable C API of tinyquant (C99; callable from C, C++, JNI, Swift).
 *
 *   tq_model* model = NULL;
 *   if (tq_model_load_file("lenet.tqm", &model) != TQ_OK) { fprintf(stderr, "%s\n", tq_last_error()); ... }
 *   tq_options opt;  tq_options_init(&opt);  opt.backend = TQ_BACKEND_XNNPACK;
 *   tq_interpreter* it = NULL;
 *   tq_interpreter_create(model, &opt, &it);
 *   tq_interpreter_set_input(it, 0, pixels, sizeof pixels);
 *   tq_interpreter_invoke(it);
 *   tq_interpreter_get_output(it, 0, logits, sizeof logits);
 *   tq_interpreter_free(it);  tq_model_free(model);
 *
 * Errors. Every function that can fail returns a tq_status (TQ_OK = 0). The message of the last
 * failure on the calling thread — naming the file, tensor, layer or argument and what was expected —
 * is tq_last_error(); it stays valid until the next failing call on that thread. No C++ exception
 * and no C++ type crosses this boundary; a null handle or out-pointer is TQ_INVALID_ARGUMENT, never
 * a crash.
 *
 * Ownership. Handles are created by *_load_* / *_create and released by the matching *_free
 * (which accepts NULL). tq_model_load_memory copies the bytes: the caller's buffer may be freed on
 * return. An interpreter keeps its model alive: tq_model_free may be called before the interpreters
 * made from it are freed. Strings returned (names, messages, the version) belong to the library.
 *
 * Thread safety. A tq_model is immutable after loading: any number of threads may query it and
 * create interpreters from it at once. A tq_interpreter is used by one thread at a time (its
 * inputs, outputs and arena are its own); different interpreters run concurrently.
 * tq_recalibrate may run on any thread; it touches no handle, only the files it is given, and two
 * recalibrations must not target the same file at once.
 *
 * ABI. Structs the caller fills carry their size in their first member (set by *_init); fields are
 * only ever appended. TQ_ABI_VERSION changes only when that promise is broken (the SONAME
 * libtinyquant.so.<TQ_ABI_VERSION> follows it).
 */
#ifndef TINYQUANT_H_
#define TINYQUANT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define TQ_API
#elif defined(__GNUC__)
#define TQ_API __attribute__((visibility("default")))
#else
#define TQ_API
#endif

#define TQ_VERSION_MAJOR 0
#define TQ_VERSION_MINOR 2
#define TQ_VERSION_PATCH 0
#define TQ_ABI_VERSION 0

typedef enum tq_status {
  TQ_OK = 0,
  TQ_INVALID_ARGUMENT = 1, /* a null handle, a wrong size, an option out of range */
  TQ_INVALID_MODEL = 2,    /* a malformed or inconsistent model file */
  TQ_UNSUPPORTED = 3,      /* well-formed, but not something this build can run */
  TQ_NOT_FOUND = 4,        /* a file that does not exist */
  TQ_IO_ERROR = 5,         /* reading or writing a file failed */
  TQ_OUT_OF_MEMORY = 6,    /* an allocation failed, or a memory budget is too small */
  TQ_INTERNAL = 7,         /* a bug or a backend failure: please report it with the message */
  TQ_CANCELLED = 8,        /* the progress callback asked to stop */
  TQ_REJECTED = 9          /* recalibration: the new model failed validation; the old one stays */
} tq_status;

typedef enum tq_dtype { TQ_FLOAT32 = 0, TQ_INT8 = 1, TQ_INT32 = 2, TQ_UINT8 = 3 } tq_dtype;
typedef enum tq_backend { TQ_BACKEND_AUTO = 0, TQ_BACKEND_REFERENCE = 1, TQ_BACKEND_XNNPACK = 2 } tq_backend;

typedef struct tq_model tq_model;
typedef struct tq_interpreter tq_interpreter;

/* Library version "0.2.0" and its number 10000*major + 100*minor + patch. */
TQ_API const char* tq_version(void);
TQ_API int32_t tq_version_number(void);
/* The last failure's message on this thread ("" if none), and a status code's name ("TQ_OK", ...). */
TQ_API const char* tq_last_error(void);
TQ_API const char* tq_status_name(tq_status status);

/* ---- models ---- */
/* Loads and verifies a .tqm file (FlatBuffers verifier, then every index, shape, dtype and size). */
TQ_API tq_status tq_model_load_file(const char* path, tq_model** model);
/* The same from memory (copied). */
TQ_API tq_status tq_model_load_memory(const void* data, size_t size, tq_model** model);
TQ_API void tq_model_free(tq_model* model);

#define TQ_MAX_RANK 8
typedef struct tq_tensor_info {
  const char* name;           /* owned by the model */
  tq_dtype dtype;
  int32_t rank;
  int32_t dims[TQ_MAX_RANK];  /* the layout the model declares (an ONNX model's NCHW input stays NCHW);
                                 a dynamic batch dimension is reported as 1, what an interpreter runs */
  size_t bytes;               /* of one batch-1 tensor: what set_input / get_output move */
  int32_t quantized;          /* 1: int8 with the scale / zero point / bits below */
  float scale;
  int32_t zero_point;
  int32_t bits;
} tq_tensor_info;

TQ_API tq_status tq_model_num_inputs(const tq_model* model, int32_t* count);
TQ_API tq_status tq_model_num_outputs(const tq_model* model, int32_t* count);
TQ_API tq_status tq_model_input_info(const tq_model* model, int32_t index, tq_tensor_info* info);
TQ_API tq_status tq_model_output_info(const tq_model* model, int32_t index, tq_tensor_info* info);
/* 1 if the model carries float master weights (so it can be recalibrated), else 0. */
TQ_API tq_status tq_model_has_master(const tq_model* model, int32_t* has_master);

/* ---- interpreters ---- */
typedef struct tq_options {
  size_t struct_size;  /* sizeof(tq_options): set by tq_options_init */
  tq_backend backend;  /* AUTO: XNNPACK where the build has it, else the reference kernels */
  int32_t threads;     /* XNNPACK threads (>= 1; the reference kernels are single-threaded) */
} tq_options;
TQ_API void tq_options_init(tq_options* options);

/* options may be NULL (the defaults). Plans the arena and prepares the kernels; invoke never allocates. */
TQ_API tq_status tq_interpreter_create(const tq_model* model, const tq_options* options, tq_interpreter** interpreter);
TQ_API void tq_interpreter_free(tq_interpreter* interpreter);
/* bytes must equal the tensor's info.bytes. */
TQ_API tq_status tq_interpreter_set_input(tq_interpreter* interpreter, int32_t index, const void* data, size_t bytes);
TQ_API tq_status tq_interpreter_invoke(tq_interpreter* interpreter);
TQ_API tq_status tq_interpreter_get_output(const tq_interpreter* interpreter, int32_t index, void* data, size_t bytes);
/* Arena bytes planned, and the backend that runs (never AUTO). */
TQ_API tq_status tq_interpreter_arena_bytes(const tq_interpreter* interpreter, size_t* bytes);
TQ_API tq_status tq_interpreter_backend(const tq_interpreter* interpreter, tq_backend* backend);

/* ---- on-device recalibration ---- */
typedef enum tq_recal_mode {
  TQ_RECAL_FAST = 0, /* range calibration + statistics tuning: seconds */
  TQ_RECAL_FULL = 1  /* sequential AdaQuant + statistics tuning at the recorded bit-widths: minutes */
} tq_recal_mode;

/* stage: "estimate", "calibrate", "adaquant", "stats tuning", "validate", "write", "done"; fraction
 * of the whole job in [0, 1]. Return nonzero to cancel: tq_recalibrate then returns TQ_CANCELLED
 * and the model file is untouched. Called on the recalibrating thread. */
typedef int (*tq_progress_fn)(void* user, const char* stage, double fraction);

typedef struct tq_recal_options {
  size_t struct_size;          /* sizeof(tq_recal_options): set by tq_recal_options_init */
  tq_recal_mode mode;          /* default TQ_RECAL_FAST */
  size_t memory_budget_bytes;  /* working memory the job may use; 0: no limit. The calibration set
                                  is subsampled to fit; too small for min_samples: TQ_OUT_OF_MEMORY
                                  with the bytes needed in the message */
  float holdout;               /* share of the samples held back for validation (default 0.2) */
  int32_t min_samples;         /* fewest calibration samples to accept (default 32) */
  int32_t iterations;          /* full mode: Adam steps per layer (default 200) */
  float max_agreement_drop;    /* install only if new agreement >= old - this (points; default 1.0) */
  uint64_t seed;               /* the held-back split, subsampling, AdaQuant batches (default 0) */
  tq_backend backend;          /* kernels for calibration and validation (default AUTO) */
  int32_t threads;             /* default 1 */
  tq_progress_fn progress;     /* may be NULL */
  void* progress_user;
} tq_recal_options;
TQ_API void tq_recal_options_init(tq_recal_options* options);

typedef struct tq_recal_result {
  size_t struct_size;            /* sizeof(tq_recal_result): set by the caller (or tq_recal_result_init) */
  int32_t installed;             /* 1: the new model replaced the file; 0: the old one stays (see reason) */
  int32_t samples_given, calibration_samples, holdout_samples;
  int32_t subsampled;            /* 1: the memory budget cut the calibration set */
  double old_agreement;          /* % of held-back samples whose top-1 matches the float master's */
  double new_agreement;
  size_t memory_budget_bytes;    /* as given (0: none) */
  size_t estimated_bytes;        /* the working-memory estimate the budget was checked against */
  size_t peak_bytes;             /* measured: peak resident-set growth of the process during the job
                                    (Linux; 0 elsewhere; other threads' allocations count too) */
  double seconds;                /* the whole call: calibration, writing, validation, install */
  char reason[256];              /* why it was not installed, or "" */
} tq_recal_result;
TQ_API void tq_recal_result_init(tq_recal_result* result);

/* The plan, without recalibrating: for `count` samples, what tq_recalibrate would do with these
 * options — result->samples_given, holdout_samples, calibration_samples (after the budget's
 * subsampling), subsampled, estimated_bytes. Errors as tq_recalibrate's before it starts: on
 * TQ_OUT_OF_MEMORY, estimated_bytes is the least the job needs (min_samples samples). */
TQ_API tq_status tq_recal_plan(const char* model_path, int32_t count, const tq_recal_options* options,
                               tq_recal_result* result);

/* Recalibrates the model at model_path (written by tq quantize --keep-master) on `count` new unlabeled
 * samples (float32, each one model input as tq_model_input_info describes it; samples_bytes must be
 * count * that size). The new model is written beside the old one, fsynced, loaded back, run on
 * the held-back samples, and renamed over model_path only if it matches the model's inputs, outputs
 * and bit-widths and its agreement with the float master is within max_agreement_drop of the old
 * one's; otherwise the old file stays and the result says why (TQ_REJECTED). Killed at any moment,
 * model_path holds the old or the new model, whole. result may be NULL; it is filled on errors
 * too (a refused budget: estimated_bytes = the bytes needed). */
TQ_API tq_status tq_recalibrate(const char* model_path, const float* samples, size_t samples_bytes, int32_t count,
                                const tq_recal_options* options, tq_recal_result* result);

#ifdef __cplusplus
}
#endif

#endif /* TINYQUANT_H_ */
