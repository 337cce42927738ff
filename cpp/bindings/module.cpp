// The geoml._core extension module: one bind_* call per kernel family.
#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "geoml's compiled CPU kernels (private: use the geoml package)";
  geoml::bind_info(m);
  geoml::bind_neighbors(m);
  geoml::bind_spectral(m);
  geoml::bind_lowrank(m);
  geoml::bind_curvature(m);
  geoml::bind_ot(m);
  geoml::bind_spd(m);
  geoml::bind_diffusion(m);
  geoml::bind_measures(m);
}
