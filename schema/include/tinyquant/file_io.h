// tinyquant/file_io.h — whole-file reads and atomic writes (host / POSIX).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tinyquant/status.h"

namespace tinyquant {

// Reads all of `path`; fails (naming the file) if it is missing, unreadable or over max_bytes.
Status read_file(const char* path, size_t max_bytes, std::vector<uint8_t>* out);

// Writes `path` atomically: a temp file beside it, fsync, rename over `path`, fsync the
// directory. On failure `path` is unchanged and the temp file is removed.
Status write_file_atomic(const char* path, const void* data, size_t size);

// The same, with a check between the fsync and the rename: `validate(user, temp_path)` reads the
// written temp file back (e.g. loads and runs the model in it); only if it returns ok is the temp
// renamed over `path`. The temp is `<path>.tq-new`, replaced if a crashed earlier write left it:
// one writer per path at a time. On any failure `path` is untouched and the temp removed.
using FileValidator = Status (*)(void* user, const char* temp_path);
Status write_file_validated(const char* path, const void* data, size_t size, FileValidator validate, void* user);

}  // namespace tinyquant
