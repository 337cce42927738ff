// Run-time choice of the SIMD instruction set for kernels compiled per ISA.
#pragma once
#include <string>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define GEOML_SIMD_X86 1
#else
#define GEOML_SIMD_X86 0
#endif

// Regions of a source file compiled for one x86 ISA (the per-ISA copies of a kernel .inc):
// GEOML_TARGET_AVX2_BEGIN / GEOML_TARGET_AVX512_BEGIN ... GEOML_TARGET_END, GCC and Clang.
// The rest of the file keeps the baseline flags (no -march=native).
#if GEOML_SIMD_X86
#if defined(__clang__)
#define GEOML_TARGET_AVX2_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,fma\"))), apply_to = function)")
// (_Pragma takes one string literal: no line splitting inside it)
#define GEOML_TARGET_AVX512_BEGIN \
  _Pragma(                        \
      "clang attribute push(__attribute__((target(\"avx512f,avx512dq,avx512vl,avx512bw,avx2,fma\"))), apply_to = function)")
// AVX-512 plus VNNI (vpdpwssd), for the few kernels that test simd_vnni() first
#define GEOML_TARGET_AVX512VNNI_BEGIN \
  _Pragma(                            \
      "clang attribute push(__attribute__((target(\"avx512f,avx512dq,avx512vl,avx512bw,avx512vnni,avx2,fma\"))), apply_to = function)")
#define GEOML_TARGET_END _Pragma("clang attribute pop")
#else
#define GEOML_TARGET_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define GEOML_TARGET_AVX512_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512dq,avx512vl,avx512bw,avx2,fma\")")
#define GEOML_TARGET_AVX512VNNI_BEGIN \
  _Pragma("GCC push_options")         \
      _Pragma("GCC target(\"avx512f,avx512dq,avx512vl,avx512bw,avx512vnni,avx2,fma\")")
#define GEOML_TARGET_END _Pragma("GCC pop_options")
#endif
#endif

namespace geoml {

enum class SimdIsa : int { Generic = 0, AVX2 = 1, AVX512 = 2 };

/// The best ISA this CPU (and OS) supports, or the one forced by set_simd_isa /
/// the GEOML_SIMD environment variable ("avx512", "avx2", "generic").
SimdIsa simd_isa();

/// Register width in bytes of an ISA's kernels.
int simd_bytes(SimdIsa isa);

std::string simd_isa_name(SimdIsa isa);

/// Whether kernels may use the AVX-512 VNNI integer dot products (vpdpwssd): the ISA in force
/// is AVX512 (so never under GEOML_SIMD=avx2 / generic), the CPU has AVX512_VNNI, and
/// set_simd_vnni(false) has not switched them off. A capability on top of the ISA, not an ISA
/// of its own: the kernels that use it (the exact kNN's integer screen) test it themselves.
bool simd_vnni();

/// false: no VNNI kernels for the rest of the process (the AVX-512 ones run instead); true:
/// restores detection.
void set_simd_vnni(bool allow);

/// Forces an ISA ("auto" restores detection). Throws std::invalid_argument for an unknown
/// name or one this CPU cannot run.
void set_simd_isa(const std::string& name);

/// The copy of a kernel for `isa` among the three a kernel file instantiates (see
/// GEOML_SIMD_PICK and common/simd_instantiate.inc).
template <class F>
inline F simd_pick(SimdIsa isa, F avx512, F avx2, F generic) {
  switch (isa) {
    case SimdIsa::AVX512:
      return avx512;
    case SimdIsa::AVX2:
      return avx2;
    default:
      return generic;
  }
}

}  // namespace geoml

// ---------------------------------------------------------------- the one dispatch mechanism
//
// A kernel family keeps its ISA-specific code in a `<name>_kernel.inc` file and compiles it
// once per ISA into the namespaces generic, avx2 and avx512 (see common/simd_instantiate.inc;
// a family without an AVX-512 copy gets `namespace avx512 = avx2`, and on non-x86 builds both
// alias generic). Call sites pick the copy for the ISA chosen at run time (simd_isa(), which
// GEOML_SIMD and set_simd_isa force), read once per call of the public entry point:
//
//   const SimdIsa isa = simd_isa();
//   GEOML_SIMD_CALL(isa, kernel<T>, args...)   // an expression: calls <ns>::kernel<T>(args...)
//   GEOML_SIMD_PICK(isa, kernel<T>)            // a function pointer: &<ns>::kernel<T>
//
// Both switch on `isa` alone; `fn` is resolved in the namespaces visible at the call site.
// docs/design/simd.md has the recipe for a new kernel.
#define GEOML_SIMD_CALL(isa, fn, ...)                            \
  (((isa) == ::geoml::SimdIsa::AVX512) ? avx512::fn(__VA_ARGS__) \
   : ((isa) == ::geoml::SimdIsa::AVX2) ? avx2::fn(__VA_ARGS__)   \
                                       : generic::fn(__VA_ARGS__))
#define GEOML_SIMD_PICK(isa, fn) ::geoml::simd_pick((isa), &avx512::fn, &avx2::fn, &generic::fn)
