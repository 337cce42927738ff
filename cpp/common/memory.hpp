// Memory helpers shared by the kernel families.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace geoml {

/// Allocator for large arrays (the multigrid hierarchy, the permuted Laplacian): on Linux,
/// blocks of 4 MiB or more are 2 MiB aligned and marked MADV_HUGEPAGE (what NumPy does for
/// its own arrays). With transparent huge pages in "madvise" mode (the usual default) plain
/// malloc'd memory is first touched one 4 KiB page fault at a time: on the dev VM ~5 us each,
/// ~100 ms for 80 MB, against ~12 ms with huge pages. Elsewhere it is plain malloc.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T) > 0 ? n * sizeof(T) : 1;
    void* p = nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    constexpr std::size_t kHuge = std::size_t(2) << 20;
    if (bytes >= 2 * kHuge) {
      if (posix_memalign(&p, kHuge, bytes) != 0) throw std::bad_alloc();
      madvise(p, (bytes + kHuge - 1) / kHuge * kHuge, MADV_HUGEPAGE);
      return static_cast<T*>(p);
    }
#endif
    p = std::malloc(bytes);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const HugePageAllocator<U>&) const noexcept {
    return false;
  }
};
template <typename T>
using big_vector = std::vector<T, HugePageAllocator<T>>;

}  // namespace geoml
