// idle_cores(): the load-aware cap on default thread counts (see common.hpp).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/common.hpp"

#if defined(__linux__)
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#endif

namespace geoml {
namespace {

int cores() {
#ifdef _OPENMP
  return omp_get_num_procs();
#else
  return 1;
#endif
}

#if defined(__linux__)
/// Read a small /proc file into buf (NUL-terminated); bytes read, or -1.
int read_small(const char* path, char* buf, int cap) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  const ssize_t got = ::read(fd, buf, cap - 1);
  ::close(fd);
  if (got < 0) return -1;
  buf[got] = '\0';
  return static_cast<int>(got);
}

/// Tasks running machine-wide: the "R/T" field of /proc/loadavg; -1 if unreadable.
int machine_running() {
  char buf[256];
  if (read_small("/proc/loadavg", buf, sizeof buf) <= 0) return -1;
  double a, b, c;
  int running = 0, total = 0;
  if (std::sscanf(buf, "%lf %lf %lf %d/%d", &a, &b, &c, &running, &total) != 5) return -1;
  return running;
}

/// This process's threads in state R (running or runnable), the calling one included.
int own_running() {
  DIR* dir = ::opendir("/proc/self/task");
  if (!dir) return 1;
  int n = 0;
  char path[96], buf[512];
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
    if (read_small(path, buf, sizeof buf) <= 0) continue;
    const char* p = std::strrchr(buf, ')');  // "tid (name) S ...": the name may hold spaces
    if (p && p[1] == ' ' && p[2] == 'R') ++n;
  }
  ::closedir(dir);
  return n > 0 ? n : 1;
}

int measure_idle(int ncpu) {
  const int running = machine_running();
  if (running < 0) return ncpu;
  const int others = running - own_running();
  const int idle = ncpu - (others > 0 ? others : 0);
  return idle < 1 ? 1 : (idle > ncpu ? ncpu : idle);
}
#endif

bool load_aware() {
  static const bool on = [] {
    const char* env = std::getenv("GEOML_LOAD_AWARE");
    return !(env && env[0] == '0');
  }();
  return on;
}

}  // namespace

int idle_cores() {
  const int ncpu = cores();
#if defined(__linux__)
  if (ncpu <= 1 || !load_aware()) return ncpu;
  static std::atomic<int64_t> stamp{-1};
  static std::atomic<int> cached{0};
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  const int64_t last = stamp.load(std::memory_order_acquire);
  const int have = cached.load(std::memory_order_relaxed);
  if (last >= 0 && have > 0 && now - last < 50000) return have;
  const int idle = measure_idle(ncpu);
  cached.store(idle, std::memory_order_relaxed);
  stamp.store(now, std::memory_order_release);
  return idle;
#else
  return ncpu;
#endif
}

int load_capped(int want) {
#if defined(__linux__)
  if (!load_aware()) return want;
  const int idle = idle_cores();
  return want < idle ? want : idle;
#else
  return want;
#endif
}

}  // namespace geoml
