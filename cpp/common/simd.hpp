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
  _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512dq,avx512vl,avx512bw,avx2,fma\"))), apply_to = function)")
#define GEOML_TARGET_END _Pragma("clang attribute pop")
#else
#define GEOML_TARGET_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define GEOML_TARGET_AVX512_BEGIN \
  _Pragma("GCC push_options")     \
  _Pragma("GCC target(\"avx512f,avx512dq,avx512vl,avx512bw,avx2,fma\")")
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

/// Forces an ISA ("auto" restores detection). Throws std::invalid_argument for an unknown
/// name or one this CPU cannot run.
void set_simd_isa(const std::string& name);

}  // namespace geoml
