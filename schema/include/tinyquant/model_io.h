// tinyquant/model_io.h — .tqm files (schema/tinyquant.fbs, file_identifier "TQM0").
//
// Loading verifies before it trusts: the FlatBuffers verifier, then our semantic checks (every
// index in range, op arity and options, dtypes, buffer sizes = dtype x shape x bits, each
// activation produced once and before use, shapes consistent under shape inference at batch 1).
// Errors name the file (source_name), tensor or operator and what was expected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tinyquant/graph.h"

namespace tinyquant {

// Current format version written by serialize_model; the loader accepts 1..kTqmVersion.
//   1  the first format
//   2  no zero points when all are zero; int32 bias scales implied by the op that reads them
//      (Quantization.bias_scale_implied); no report JSON in the calibration record (the report
//      file has it). Version 1 files load unchanged (tests/schema/format_version_test.cc).
constexpr uint32_t kTqmVersion = 2;
// Largest file the host loader reads (FlatBuffers' own limit is 2 GiB).
constexpr size_t kMaxModelFileBytes = size_t(1) << 30;

// In place: constant buffers of `graph` point into `data`, which must stay alive and unchanged
// while the graph is used, and be 16-byte aligned (a const array in flash, an mmap, ...).
Status load_model(const uint8_t* data, size_t size, Graph* graph, const char* source_name = "<memory>");

// Host: reads the file into memory the graph keeps alive (Graph::storage), then load_model().
Status load_model_file(const char* path, Graph* graph);

// Graph -> .tqm bytes. Runs validate_graph() and shape inference first; never emits a file the
// loader would reject.
Status serialize_model(const Graph& graph, std::vector<uint8_t>* out);

// serialize_model() + atomic write (temp file in the same directory, fsync, rename, fsync dir).
// On failure the destination is untouched and no temp file is left behind.
Status save_model_file(const Graph& graph, const char* path);

}  // namespace tinyquant
