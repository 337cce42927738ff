#include "simd.hpp"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace geoml {
namespace {

SimdIsa detect() {
#if GEOML_SIMD_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
    return SimdIsa::AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdIsa::AVX2;
#endif
  return SimdIsa::Generic;
}

SimdIsa parse(const std::string& name) {
  if (name == "avx512") return SimdIsa::AVX512;
  if (name == "avx2") return SimdIsa::AVX2;
  if (name == "generic") return SimdIsa::Generic;
  throw std::invalid_argument("unknown SIMD ISA '" + name +
                              "'; expected 'auto', 'avx512', 'avx2' or 'generic'");
}

std::atomic<int> forced{-1};
std::atomic<bool> vnni_allowed{true};

bool detect_vnni() {
#if GEOML_SIMD_X86
  // CPUID leaf 7 ECX bit 11; libgcc's / compiler-rt's table also checks that the OS saves
  // the AVX-512 state (XCR0), as for the avx512* features above.
  __builtin_cpu_init();
  return detect() == SimdIsa::AVX512 && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

}  // namespace

SimdIsa simd_isa() {
  static const SimdIsa best = [] {
    const SimdIsa hw = detect();
    const char* env = std::getenv("GEOML_SIMD");
    if (env && *env && std::string(env) != "auto") {
      try {
        const SimdIsa want = parse(env);
        if (static_cast<int>(want) <= static_cast<int>(hw)) return want;
      } catch (const std::invalid_argument&) {
      }
    }
    return hw;
  }();
  const int f = forced.load();
  return f >= 0 ? static_cast<SimdIsa>(f) : best;
}

int simd_bytes(SimdIsa isa) {
  switch (isa) {
    case SimdIsa::AVX512:
      return 64;
    case SimdIsa::AVX2:
      return 32;
    default:
      return 16;
  }
}

std::string simd_isa_name(SimdIsa isa) {
  switch (isa) {
    case SimdIsa::AVX512:
      return "avx512";
    case SimdIsa::AVX2:
      return "avx2";
    default:
      return "generic";
  }
}

bool simd_vnni() {
  static const bool hw = detect_vnni();
  return hw && vnni_allowed.load() && simd_isa() == SimdIsa::AVX512;
}

void set_simd_vnni(bool allow) {
  vnni_allowed.store(allow);
}

void set_simd_isa(const std::string& name) {
  if (name == "auto") {
    forced.store(-1);
    return;
  }
  const SimdIsa want = parse(name);
  if (static_cast<int>(want) > static_cast<int>(detect()))
    throw std::invalid_argument("this CPU cannot run the '" + name + "' kernels (best: '" +
                                simd_isa_name(detect()) + "')");
  forced.store(static_cast<int>(want));
}

}  // namespace geoml
