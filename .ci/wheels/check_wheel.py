"""Check built geoml wheels: size, vendored libraries, and no CUDA library in a CPU wheel.

Usage: python .ci/wheels/check_wheel.py WHEEL_OR_DIR [...]. Exits 1 when a wheel holds a CUDA
runtime/library (libcudart, cuBLAS, cuSPARSE, cuRAND, cuFFT, cuSOLVER, NVRTC, libcuda) or the
CUDA module geoml._cuda: the CPU wheel must never carry them (docs/design/packaging.md).
Standard library only (cibuildwheel runs it in its own environment).
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

CUDA = re.compile(
    r"(cudart|cublas|cusparse|curand|cufft|cusolver|nvrtc|nvjitlink|libcuda\b|_cuda\.)"
)


def check(wheel: Path) -> bool:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    size = wheel.stat().st_size
    libs = [n for n in names if re.search(r"\.(so(\.\d+)*|dylib|dll|pyd)$", n)]
    print(f"{wheel.name}: {size / 2**20:.2f} MiB, {len(names)} files")
    for n in libs:
        print(f"  {n}")
    bad = [n for n in libs if CUDA.search(Path(n).name)]
    if bad:
        print(f"  ERROR: CUDA libraries in a CPU wheel: {bad}")
    return not bad


def main(argv: list[str]) -> int:
    wheels: list[Path] = []
    for a in argv:
        p = Path(a)
        wheels += sorted(p.glob("*.whl")) if p.is_dir() else [p]
    if not wheels:
        print("no wheels given", file=sys.stderr)
        return 1
    ok = [check(w) for w in wheels]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
