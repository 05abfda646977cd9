// Smallest use of the public API, built with -fno-exceptions -fno-rtti in CI: load a .tqm from
// memory, prepare in a caller-owned static arena, run once on zeros, print the first output.
#include <cstdio>
#include <cstring>
#include <vector>

#include "tinyquant/interpreter.h"
#include "tinyquant/model_io.h"

static uint8_t g_arena[4 << 20];

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.tqm\n", argv[0]);
    return 2;
  }
  std::FILE* f = std::fopen(argv[1], "rb");
  if (!f) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 1;
  }
  std::vector<uint8_t> bytes;
  uint8_t chunk[4096];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
  std::fclose(f);

  tinyquant::Graph graph;
  tinyquant::Status s = tinyquant::load_model(bytes.data(), bytes.size(), &graph, argv[1]);
  tinyquant::Interpreter interp;
  tinyquant::PrepareOptions opt;
  opt.arena = g_arena;
  opt.arena_size = sizeof(g_arena);
  if (s.is_ok()) s = interp.prepare(graph, opt);
  if (s.is_ok()) {
    tinyquant::TensorView in = interp.input(0);
    std::memset(in.data, 0, static_cast<size_t>(in.elements()) * tinyquant::dtype_size(in.dtype));
    s = interp.invoke();
  }
  if (!s.is_ok()) {
    std::fprintf(stderr, "error: %s\n", s.message());
    return 1;
  }
  std::printf("arena %zu bytes, output[0] = %g\n", interp.arena_bytes(), interp.output(0).as<float>()[0]);
  return 0;
}
