// What a source written by `tq embed MODEL.tqm --data fashion-mnist:test --count N -o DIR/NAME`
// defines (one model per program; see tools/toolkit/embed.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyquant/op_resolver.h"

namespace tq_embedded {

extern const char name[];             // NAME
extern const uint8_t model[];         // the .tqm file, 16-byte aligned, in flash (read in place)
extern const size_t model_size;
extern const uint8_t images[];        // count x rows x cols raw pixels (0..255)
extern const uint8_t labels[];        // count labels (0..9)
extern const int32_t count, rows, cols;
extern const int32_t token_ids;       // 1: images[] holds token ids (a text model), fed as float(id)
extern const float mean, std_dev;     // preprocessing: (pixel / 255 - mean) / std_dev
extern uint8_t arena[];               // 64-byte aligned, in .bss: the model's batch-1 arena
extern const size_t arena_size;       // planned on the host (+ the interpreter's slack)
extern const size_t min_live_bytes;   // the planner's floor
extern const size_t constant_bytes;   // the model's constant tensors (packed weights, biases)
// Adds the reference kernels the model's ops run, and no others: Interpreter::prepare with this
// resolver links only those (the program's flash).
void register_kernels(tinyquant::OpResolver* resolver);

}  // namespace tq_embedded
