// Shared helpers for the pybind11 binding files (one per kernel family).
//
// The binding contract (see CONTRIBUTING.md):
// - every function is bound as `m.def("name", &fn_py, py::arg(...)..., "one-line doc")`, with a
//   py::arg name for every argument (defaults in the binding where sensible), no inline lambdas;
// - dtype variants are overloads under one name, registered with def_overloads (float64 first),
//   the array that picks the variant marked `py::arg("X").noconvert()` and typed exact<T>: a
//   float32 array never runs the float64 kernel (and an int array is a TypeError, not a copy);
// - enums are bound once (py::native_enum, in the family that owns them) and passed as members;
// - options travel as bound structs (py::class_ with def_readwrite and a keyword __init__) or as
//   keyword arguments; Python calls _core with keywords for everything after the arrays.
#pragma once
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <utility>
#include <vector>

namespace geoml {
namespace py = pybind11;

/// A C-contiguous array of T; anything else is converted (copied) on the way in.
template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

/// The argument that picks a dtype overload: an array of exactly dtype T, any layout. Bind it
/// with .noconvert() and read it through contiguous().
template <typename T>
using exact = py::array_t<T>;

/// `a` as a C-contiguous array (a copy only when `a` is not contiguous).
template <typename T>
carray<T> contiguous(const py::array_t<T>& a) {
  return carray<T>::ensure(a);
}

/// Hands a vector (any allocator, e.g. multigrid's big_vector) to NumPy without copying: the
/// array owns it through a capsule.
template <typename T, typename Alloc>
py::array_t<T> to_numpy(std::vector<T, Alloc>&& v) {
  using V = std::vector<T, Alloc>;
  auto* heap = new V(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<V*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, heap->data(), owner);
}

/// A list of element types for def_overloads; tag<T> carries one into a generic lambda.
template <typename... Ts>
struct dtypes {};
template <typename T>
struct tag {
  using type = T;
};
using Floats = dtypes<double, float>;      // float64 first: the overload tried first
using Indices = dtypes<int64_t, int32_t>;  // int64 first

/// The picker def_overloads wants for a function template fn<T> (GEOML_PICK2: fn<T, I>).
#define GEOML_PICK(fn) [](auto t) { return &fn<typename decltype(t)::type>; }
#define GEOML_PICK2(fn) \
  [](auto t, auto i) { return &fn<typename decltype(t)::type, typename decltype(i)::type>; }

/// Binds pick(tag<T>{}) for each T of `types` under one name, in order, with the same py::arg
/// list and docstring: def_overloads(m, "ttm", Floats{}, GEOML_PICK(ttm_py),
/// py::arg("X").noconvert(), ..., "doc").
template <typename... Ts, typename Pick, typename... Extra>
void def_overloads(py::module_& m, const char* name, dtypes<Ts...>, Pick pick,
                   const Extra&... extra) {
  (m.def(name, pick(tag<Ts>{}), extra...), ...);
}

/// def_overloads over the pairs (T, I) of two lists (float dtype x index dtype).
template <typename... Ts, typename... Is, typename Pick, typename... Extra>
void def_overloads2(py::module_& m, const char* name, dtypes<Ts...>, dtypes<Is...> index, Pick pick,
                    const Extra&... extra) {
  (def_overloads(m, name, index, [&](auto i) { return pick(tag<Ts>{}, i); }, extra...), ...);
}

// One registration function per family; module.cpp calls them all.
void bind_info(py::module_& m);
void bind_neighbors(py::module_& m);
void bind_spectral(py::module_& m);
void bind_lowrank(py::module_& m);
void bind_curvature(py::module_& m);
void bind_ot(py::module_& m);
void bind_spd(py::module_& m);
void bind_diffusion(py::module_& m);
void bind_measures(py::module_& m);

}  // namespace geoml
