#!/usr/bin/env bash
# Build geoml's HTML documentation: API reference from the docstrings, design notes, benchmark
# tables (from the README) and the example gallery, whose examples all run during the build.
# Warnings are errors (-W --keep-going: every warning is reported, then the build fails), and
# so is an example that raises. Needs geoml installed and the docs extra:
#   pip install ".[docs]" && bash docs/build.sh [OUTDIR]      (default docs/_build/html)
# GEOML_DOCS_CLEAN=0 keeps the previous build's generated pages and executed examples.
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-_build/html}"
if [ "${GEOML_DOCS_CLEAN:-1}" != 0 ]; then
  rm -rf _build/doctrees "$out" api auto_examples
fi
start=$(date +%s)
MPLBACKEND=Agg OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" \
  python -m sphinx -b html -W --keep-going -q -d _build/doctrees . "$out"
echo "docs built in $(( $(date +%s) - start )) s: $out/index.html"
