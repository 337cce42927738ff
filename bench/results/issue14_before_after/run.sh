#!/usr/bin/env bash
# Before/after benches: baseline geoml (913d7d9, its own bench scripts) and the new geoml (main's
# bench scripts), same venv, same data, back to back per family. Usage: bench_ab.sh fam [fam...]
set -u
PY=/work/venv-bench/bin/python
OUT=/work/bench_ab
declare -A ARGS=(
  [knn]="--sizes 50000x64 --repeats 3 --tools faiss"
  [eigsh]="--graphs swissroll --sizes 200000 --anchors scipy-SI"
  [eigsh3]="--graphs swissroll --sizes 200000 --anchors scipy-SI --repeats 3"
  [tucker]="--sizes tucker3 --repeats 9"
  [ot]="--quick"
  [otbatch]="--sections 3"
  [ricci]="--quick"
  [lowrank]="--sizes tucker3,svd_dense,svd_sparse --repeats 3"
)
for fam in "$@"; do
  script=$fam; [ "$fam" = otbatch ] && script=ot; [ "$fam" = eigsh3 ] && script=eigsh; [ "$fam" = tucker ] && script=lowrank
  for side in base new; do
    if [ $side = base ]; then src=/work/baseline/bench; pp=/work/geoml-base; else src=/work/main/bench; pp=/work/geoml-new; fi
    echo "== $fam $side $(date +%T)"
    (cd $src && PYTHONPATH=$pp:$src timeout 1500 $PY bench_$script.py ${ARGS[$fam]} --out $OUT/${fam}_$side.json > $OUT/${fam}_$side.txt 2>&1; echo "rc $?")
  done
done
