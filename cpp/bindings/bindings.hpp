// Shared helpers for the pybind11 binding files (one per kernel family).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <utility>
#include <vector>

namespace geoml {
namespace py = pybind11;

template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

/// Hands a std::vector to NumPy without copying: the array owns it through a capsule.
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, heap->data(), owner);
}

// One registration function per family; module.cpp calls them all.
void bind_info(py::module_& m);
void bind_neighbors(py::module_& m);
void bind_spectral(py::module_& m);
void bind_lowrank(py::module_& m);
void bind_curvature(py::module_& m);
void bind_ot(py::module_& m);

}  // namespace geoml
