// ports/baremetal/syscalls.c — the newlib system calls a tinyquant program needs on bare metal:
// console writes over semihosting, a bounded heap for malloc (_sbrk between the end of .bss and
// the stack limit, from the linker script), exit with the program's status, and stubs for the rest
// (no file system: open/read fail with ENOSYS-like errors).
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/times.h>

#include "semihosting.h"

#undef errno
extern int errno;

extern char __heap_start, __heap_end;

int tq_semihost_write(int fd, const void* data, uint32_t n) {
  // One console handle per stream: ":tt" opened for writing ("w" = 4) or appending ("a" = 8).
  static int32_t handles[3] = {-1, -1, -1};
  if (fd < 1 || fd > 2) return -1;
  if (handles[fd] < 0) {
    const uint32_t open_args[3] = {(uint32_t)(uintptr_t)":tt", fd == 1 ? 4u : 8u, 3u};
    handles[fd] = tq_semihost(TQ_SYS_OPEN, open_args);
    if (handles[fd] < 0) return -1;
  }
  const uint32_t args[3] = {(uint32_t)handles[fd], (uint32_t)(uintptr_t)data, n};
  const int32_t not_written = tq_semihost(TQ_SYS_WRITE, args);
  return (int)(n - (uint32_t)not_written);
}

void tq_semihost_exit(int code) {
  // SYS_EXIT_EXTENDED takes {reason, code} on AArch32 too, so any status (not only 0/1) reaches
  // the host: QEMU exits with `code`.
  const uint32_t args[2] = {TQ_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
  tq_semihost(TQ_SYS_EXIT_EXTENDED, args);
  // Only reached without a semihosting host: fall back to plain SYS_EXIT, then stop.
  tq_semihost(TQ_SYS_EXIT, (const void*)(uintptr_t)(code == 0 ? TQ_ADP_STOPPED_APPLICATION_EXIT : 0x20024u));
  for (;;) __asm__ volatile("wfi");
}

// ---- newlib ----

int _write(int fd, const char* buf, int len) {
  if (fd != 1 && fd != 2) {
    errno = EBADF;
    return -1;
  }
  const int n = tq_semihost_write(fd, buf, (uint32_t)len);
  if (n < 0) {
    errno = EIO;
    return -1;
  }
  return n;
}

int _read(int fd, char* buf, int len) {
  (void)fd, (void)buf, (void)len;
  errno = ENOSYS;
  return -1;
}

// The heap: [__heap_start, __heap_end) from the linker script; never grows into the stack.
static char* g_brk = &__heap_start;
char* tq_heap_high_water = &__heap_start;  // the highest break so far (heap bytes ever claimed)

void* _sbrk(ptrdiff_t increment) {
  char* prev = g_brk;
  if (increment > 0 && (size_t)increment > (size_t)(&__heap_end - g_brk)) {
    errno = ENOMEM;
    return (void*)-1;
  }
  g_brk += increment;
  if (g_brk > tq_heap_high_water) tq_heap_high_water = g_brk;
  return prev;
}

void _exit(int status) { tq_semihost_exit(status); }

int _close(int fd) {
  (void)fd;
  return 0;
}
int _fstat(int fd, struct stat* st) {
  memset(st, 0, sizeof(*st));
  if (fd >= 0 && fd <= 2) {
    st->st_mode = S_IFCHR;  // a terminal: newlib line-buffers stdout
    return 0;
  }
  errno = EBADF;
  return -1;
}
int _isatty(int fd) { return fd >= 0 && fd <= 2; }
int _lseek(int fd, int offset, int whence) {
  (void)fd, (void)offset, (void)whence;
  errno = ESPIPE;
  return -1;
}
int _open(const char* path, int flags, int mode) {
  (void)path, (void)flags, (void)mode;
  errno = ENOSYS;  // no file system
  return -1;
}
int _getpid(void) { return 1; }
int _kill(int pid, int sig) {
  (void)pid;
  // abort() raises SIGABRT: exit 128 + signal, as a shell reports it on the host.
  tq_semihost_exit(128 + sig);
}
// abort() without newlib's signal machinery (raise, signal tables): exit 134 (128 + SIGABRT),
// as the shell reports an abort on the host.
void abort(void) {
  static const char kMessage[] = "abort\n";
  tq_semihost_write(2, kMessage, sizeof(kMessage) - 1);
  tq_semihost_exit(134);
}

int _gettimeofday(struct timeval* tv, void* tz) {
  (void)tz;
  const int32_t cs = tq_semihost(TQ_SYS_CLOCK, 0);
  tv->tv_sec = cs / 100;
  tv->tv_usec = (cs % 100) * 10000;
  return 0;
}
clock_t _times(struct tms* buf) {
  (void)buf;
  errno = ENOSYS;
  return (clock_t)-1;
}
int _unlink(const char* path) {
  (void)path;
  errno = ENOSYS;
  return -1;
}
int _link(const char* a, const char* b) {
  (void)a, (void)b;
  errno = ENOSYS;
  return -1;
}
