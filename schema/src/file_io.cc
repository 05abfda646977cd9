// Whole-file reads and atomic writes on POSIX. On bare metal (no file system) both report
// kUnsupported, so linking the loader pulls in no system calls.
#include "tinyquant/file_io.h"

#if defined(__unix__) || defined(__APPLE__)

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace tinyquant {
namespace {

// Closes on scope exit; one cleanup path for every early return.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

Status write_all(int fd, const uint8_t* p, size_t size, const char* path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    TQ_ENSURE(n > 0, kIoError, "cannot write '%s': %s", path, n < 0 ? std::strerror(errno) : "no progress");
    p += n;
    size -= size_t(n);
  }
  return Status::ok();
}

// Writes, flushes and closes the temp file; the caller renames it into place.
Status write_temp(Fd& fd, const void* data, size_t size, const char* path) {
  TQ_RETURN_IF_ERROR(write_all(fd.get(), static_cast<const uint8_t*>(data), size, path));
  TQ_ENSURE(::fsync(fd.get()) == 0, kIoError, "cannot sync '%s': %s", path, std::strerror(errno));
  // close() can report a deferred write error (e.g. NFS), so it is checked, not left to ~Fd.
  TQ_ENSURE(::close(fd.release()) == 0, kIoError, "cannot close '%s': %s", path, std::strerror(errno));
  return Status::ok();
}

}  // namespace

Status read_file(const char* path, size_t max_bytes, std::vector<uint8_t>* out) {
  TQ_ENSURE(path && out, kInvalidArgument, "read_file needs a path and an output vector");
  Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    TQ_ENSURE(err != ENOENT, kNotFound, "'%s' does not exist", path);
    return Status::error(StatusCode::kIoError, "cannot open '%s': %s", path, std::strerror(err));
  }
  struct stat st;
  TQ_ENSURE(::fstat(fd.get(), &st) == 0, kIoError, "cannot stat '%s': %s", path, std::strerror(errno));
  TQ_ENSURE(S_ISREG(st.st_mode), kIoError, "'%s' is not a regular file", path);
  TQ_ENSURE(uint64_t(st.st_size) <= max_bytes, kInvalidArgument, "'%s' is %lld bytes, over the %zu-byte limit",
            path, (long long)st.st_size, max_bytes);
  out->resize(size_t(st.st_size));
  size_t done = 0;
  while (done < out->size()) {
    const ssize_t n = ::read(fd.get(), out->data() + done, out->size() - done);
    if (n < 0 && errno == EINTR) continue;
    TQ_ENSURE(n >= 0, kIoError, "cannot read '%s': %s", path, std::strerror(errno));
    TQ_ENSURE(n > 0, kIoError, "'%s' shrank while being read (%zu of %zu bytes)", path, done, out->size());
    done += size_t(n);
  }
  return Status::ok();
}

namespace {

// The directory holding `path` (rename() is only atomic within one file system, so temp files
// live there).
std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// The open temp file becomes `path`: the permissions of the file it replaces (else 0644), data
// written and synced, validated (when a validator is given), renamed over `path`, the directory
// synced. On failure the temp is removed and `path` is untouched.
Status replace_with_temp(Fd& fd, const std::string& temp, const char* path, const void* data, size_t size,
                         FileValidator validate, void* user) {
  struct stat st;
  const mode_t mode = ::stat(path, &st) == 0 ? (st.st_mode & 07777) : 0644;
  Status s = ::fchmod(fd.get(), mode) == 0
                 ? Status::ok()
                 : Status::error(StatusCode::kIoError, "cannot chmod '%s': %s", temp.c_str(), std::strerror(errno));
  if (s.is_ok()) s = write_temp(fd, data, size, temp.c_str());
  if (s.is_ok() && validate) s = validate(user, temp.c_str());
  if (s.is_ok() && ::rename(temp.c_str(), path) != 0)
    s = Status::error(StatusCode::kIoError, "cannot rename '%s' to '%s': %s", temp.c_str(), path, std::strerror(errno));
  if (!s.is_ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  // Make the rename itself durable.
  const std::string dir = dir_of(path);
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  TQ_ENSURE(dir_fd.get() >= 0 && ::fsync(dir_fd.get()) == 0, kIoError, "'%s' written, but syncing '%s' failed: %s",
            path, dir.c_str(), std::strerror(errno));
  return Status::ok();
}

}  // namespace

Status write_file_atomic(const char* path, const void* data, size_t size) {
  TQ_ENSURE(path && (data || size == 0), kInvalidArgument, "write_file_atomic needs a path and data");
  const std::string dir = dir_of(path);
  std::string temp = dir + "/.tq-XXXXXX";
  Fd fd(::mkstemp(&temp[0]));
  TQ_ENSURE(fd.get() >= 0, kIoError, "cannot create a temporary file in '%s' to write '%s': %s", dir.c_str(), path,
            std::strerror(errno));
  return replace_with_temp(fd, temp, path, data, size, nullptr, nullptr);
}

Status write_file_validated(const char* path, const void* data, size_t size, FileValidator validate, void* user) {
  TQ_ENSURE(path && (data || size == 0) && validate, kInvalidArgument,
            "write_file_validated needs a path, data and a validator");
  const std::string temp = std::string(path) + ".tq-new";
  ::unlink(temp.c_str());  // left by a write that was killed: never loaded, replaced now
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  TQ_ENSURE(fd.get() >= 0, kIoError, "cannot create '%s' to write '%s': %s", temp.c_str(), path, std::strerror(errno));
  return replace_with_temp(fd, temp, path, data, size, validate, user);
}

}  // namespace tinyquant

#else  // no file system

namespace tinyquant {

Status read_file(const char* path, size_t, std::vector<uint8_t>*) {
  return Status::error(StatusCode::kUnsupported, "cannot read '%s': no file system on this platform",
                       path ? path : "");
}

Status write_file_atomic(const char* path, const void*, size_t) {
  return Status::error(StatusCode::kUnsupported, "cannot write '%s': no file system on this platform",
                       path ? path : "");
}

Status write_file_validated(const char* path, const void*, size_t, FileValidator, void*) {
  return Status::error(StatusCode::kUnsupported, "cannot write '%s': no file system on this platform",
                       path ? path : "");
}

}  // namespace tinyquant

#endif
