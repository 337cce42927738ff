#!/usr/bin/env bash
# cibuildwheel before-all on macOS: put an OpenMP runtime (libomp + omp.h) under PREFIX.
# Apple Clang ships no OpenMP runtime. As scikit-learn does, take conda-forge's llvm-openmp,
# which is built for old macOS releases (so the wheel's MACOSX_DEPLOYMENT_TARGET holds), link
# _core against it (pyproject.toml [tool.cibuildwheel.macos.environment]: OpenMP_ROOT,
# -Xpreprocessor -fopenmp, -lomp, an rpath to PREFIX/lib), and let delocate copy libomp.dylib
# into the wheel. Runs on the build host, native architecture only (archs = ["native"]).
set -euxo pipefail
prefix="${1:-/tmp/geoml-openmp}"
version=11.1.0
case "$(uname -m)" in
  arm64) url="https://anaconda.org/conda-forge/llvm-openmp/${version}/download/osx-arm64/llvm-openmp-${version}-hf3c4609_1.tar.bz2" ;;
  x86_64) url="https://anaconda.org/conda-forge/llvm-openmp/${version}/download/osx-64/llvm-openmp-${version}-hda6cdc1_1.tar.bz2" ;;
  *) echo "unsupported macOS architecture $(uname -m)" >&2; exit 1 ;;
esac
rm -rf "$prefix"
mkdir -p "$prefix"
curl -fsSL "$url" | tar -xj -C "$prefix"
ls "$prefix/lib/libomp.dylib" "$prefix/include/omp.h"
