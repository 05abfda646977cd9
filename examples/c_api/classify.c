/* classify MODEL.tqm [INPUT.f32]: loads a model through the installed C API, prints its inputs and
 * outputs, runs it once on a raw float32 file of one input (or on a constant image) and prints the
 * top class. The whole app side of tinyquant: one header, one library. */
#include <stdio.h>
#include <stdlib.h>

#include <tinyquant.h>

static int check(tq_status s, const char* what) {
  if (s == TQ_OK) return 1;
  fprintf(stderr, "classify: %s: %s (%s)\n", what, tq_last_error(), tq_status_name(s));
  return 0;
}

static void print_info(const char* kind, int32_t i, const tq_tensor_info* t) {
  printf("%s %d '%s' [", kind, i, t->name);
  for (int32_t d = 0; d < t->rank; ++d) printf(d ? ",%d" : "%d", t->dims[d]);
  printf("] %s, %zu bytes", t->dtype == TQ_FLOAT32 ? "float32" : "int8", t->bytes);
  if (t->quantized) printf(", scale %g zero point %d, %d bits", t->scale, t->zero_point, t->bits);
  printf("\n");
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.tqm [INPUT.f32]\n", argv[0]);
    return 2;
  }
  printf("tinyquant %s\n", tq_version());
  tq_model* model = NULL;
  if (!check(tq_model_load_file(argv[1], &model), "load")) return 1;
  tq_tensor_info in, out;
  if (!check(tq_model_input_info(model, 0, &in), "input") || !check(tq_model_output_info(model, 0, &out), "output"))
    return 1;
  print_info("input", 0, &in);
  print_info("output", 0, &out);
  float* x = (float*)calloc(in.bytes, 1);
  float* y = (float*)calloc(out.bytes, 1);
  if (!x || !y) return 1;
  if (argc > 2) {
    FILE* f = fopen(argv[2], "rb");
    if (!f || fread(x, 1, in.bytes, f) != in.bytes) {
      fprintf(stderr, "classify: %s: cannot read %zu bytes\n", argv[2], in.bytes);
      return 1;
    }
    fclose(f);
  }
  tq_interpreter* it = NULL;
  if (!check(tq_interpreter_create(model, NULL, &it), "create") ||
      !check(tq_interpreter_set_input(it, 0, x, in.bytes), "set input") || !check(tq_interpreter_invoke(it), "invoke") ||
      !check(tq_interpreter_get_output(it, 0, y, out.bytes), "get output"))
    return 1;
  size_t best = 0;
  for (size_t c = 1; c < out.bytes / sizeof(float); ++c) best = y[c] > y[best] ? c : best;
  tq_backend backend = TQ_BACKEND_AUTO;
  check(tq_interpreter_backend(it, &backend), "backend");
  printf("top class %zu (logit %g) on the %s backend\n", best, y[best],
         backend == TQ_BACKEND_XNNPACK ? "xnnpack" : "reference");
  tq_interpreter_free(it);
  tq_model_free(model);
  free(x);
  free(y);
  return 0;
}
