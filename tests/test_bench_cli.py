"""``geoml bench``: the shipped benchmark harness (tiny sizes; the timings are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from geoml.__main__ import main


def _run(argv, capsys):
    rc = main(argv)
    return rc, capsys.readouterr().out


def test_import_geoml_does_not_import_bench_or_anchors():
    code = (
        "import sys, geoml; a = sorted(m for m in sys.modules if m.startswith('geoml.bench')); "
        "import geoml.bench; b = sorted(m for m in sys.modules if m.startswith('geoml.bench.')); "
        "c = [m for m in ('ot', 'sklearn', 'networkx', 'skdim', 'pyriemann', 'dask', 'faiss') "
        "if m in sys.modules]; print(a, b, c)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[] [] []"


def test_list_and_usage(capsys):
    rc, out = _run(["bench", "list"], capsys)
    assert rc == 0
    for family in ("knn", "eigsh", "ot", "ricci", "lowrank", "measures", "spd", "diffusion"):
        assert f"\n{family} " in "\n" + out
    assert _run(["bench", "--help"], capsys)[0] == 0
    assert _run(["bench"], capsys)[0] == 2
    assert _run(["bench", "nosuchfamily"], capsys)[0] == 2


def test_measures_quick_with_anchors_missing(capsys, monkeypatch, tmp_path):
    # scikit-dimension and dse-dsmi hidden: a note names them, the geoml rows still run
    monkeypatch.setitem(sys.modules, "skdim", None)
    monkeypatch.setitem(sys.modules, "dse_dsmi", None)
    argv = ["bench", "measures", "--quick", "--scale", "0.01", "--cases", "id,magnitude"]
    rc, out = _run([*argv, "--repeats", "1", "--results-dir", str(tmp_path)], capsys)
    assert rc == 0
    assert "not installed" in out and "scikit-dimension" in out and "dse-dsmi" in out
    assert "id mle n=100 d=64" in out  # the table
    payload = json.loads((tmp_path / "measures.json").read_text())
    assert {"cpu", "cores", "simd", "geoml"} <= set(payload["machine"])
    cases = [r["case"] for r in payload["rows"]]
    assert any(c.startswith("id mle") for c in cases)
    assert any(c.startswith("magnitude") for c in cases)
    assert not any(r.get("anchor") == "skdim" for r in payload["rows"])


def test_partial_runs_do_not_overwrite_full_results(capsys, monkeypatch, tmp_path):
    # ot: the default JSON is named after the sections run; ricci: after --only and --quick
    argv = ["bench", "ot", "--sections", "5", "--assign-n", "40", "--assign-batch", "2"]
    argv += ["--assign-batch-n", "8", "--repeats", "1", "--results-dir", str(tmp_path)]
    rc, out = _run(argv, capsys)
    assert rc == 0
    assert (tmp_path / "ot_s5.json").exists() and not (tmp_path / "ot.json").exists()
    monkeypatch.setitem(sys.modules, "GraphRicciCurvature", None)
    argv = ["bench", "ricci", "--quick", "--no-grc", "--only", "weighted", "--n-weighted", "150"]
    rc, out = _run([*argv, "--repeats", "1", "--results-dir", str(tmp_path)], capsys)
    assert rc == 0
    assert "GraphRicciCurvature" in out  # the note
    rows = json.loads((tmp_path / "ricci_cpu_weighted_quick.json").read_text())["rows"]
    assert [r["tool"] for r in rows] == ["geoml exact"]
    assert not (tmp_path / "ricci_cpu.json").exists()


@pytest.mark.filterwarnings("ignore:the graph has:RuntimeWarning")  # tiny swiss roll
def test_diffusion_transform_section(capsys, monkeypatch, tmp_path):
    # phate and heatgeo hidden: geoml's rows run; a partial run is named after its sections
    monkeypatch.setitem(sys.modules, "phate", None)
    monkeypatch.setitem(sys.modules, "heatgeo", None)
    monkeypatch.setitem(sys.modules, "heatgeo.embedding", None)
    argv = ["bench", "diffusion", "--sections", "transform", "--transform-n", "300,60,200,40"]
    rc, out = _run([*argv, "--repeats", "1", "--results-dir", str(tmp_path)], capsys)
    assert rc == 0
    assert "not installed" in out and "phate" in out and "heatgeo" in out
    assert not (tmp_path / "diffusion.json").exists()
    payload = json.loads((tmp_path / "diffusion_transform.json").read_text())
    rows = payload["phate_transform"]
    assert [(r["data"], r["tool"]) for r in rows] == [
        ("swiss roll", "geoml PHATE.transform"),
        ("tree", "geoml PHATE.transform"),
    ]
    assert [(r["n_fit"], r["m_new"]) for r in rows] == [(300, 60), (300, 60)]
    assert all(-1 <= r["spearman_new"] <= 1 for r in rows)
    hg = payload["heatgeo_transform"]
    assert [r["tool"] for r in hg] == ["geoml HeatGeo.transform", "geoml HeatGeo refit on n + m"]
    assert 0 <= hg[0]["disparity_vs_refit"] < 1 and hg[0]["speedup_vs_refit"] > 0


def test_diffusion_bench_procrustes():
    import numpy as np

    from geoml.bench.diffusion import _disparity, _similarity_map

    rng = np.random.default_rng(0)
    A, Z = rng.normal(size=(50, 2)), rng.normal(size=(7, 2))
    R = np.array([[0.6, 0.8], [0.8, -0.6]])  # a reflection
    move = lambda P: 2.5 * P @ R + [3.0, -1.0]  # noqa: E731
    f = _similarity_map(A, move(A))
    assert _disparity(f(A), move(A)) < 1e-28 and _disparity(f(Z), move(Z)) < 1e-28
    noisy = move(A) + 0.1 * rng.normal(size=A.shape)
    f = _similarity_map(A, noisy)
    from scipy.spatial import procrustes  # the same disparity on the fitted rows

    assert abs(_disparity(f(A), noisy) - procrustes(noisy, A)[2]) < 1e-12


def test_missing_required_anchor_is_reported(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyriemann", None)
    argv = ["bench", "spd", "--n-matrices", "4", "--dim", "3", "--bw-matrices", "4"]
    rc = main([*argv, "--sections", "1", "--repeats", "1", "--results-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert rc == 2
    assert "pyriemann" in captured.out  # the note before the run
    assert "needs pyriemann" in captured.err


def _payload(times):
    return {
        "machine": {"cpu": "test", "cores": 2},
        "results": {
            "emd": [
                {"n": n, "tool": "geoml", "time_s": t, "goal": "met" if t < 1 else "MISSED"}
                for n, t in times.items()
            ]
        },
    }


def test_compare(capsys, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_payload({100: 1.0, 200: 2.0, 300: 3.0})))
    b.write_text(json.dumps(_payload({100: 2.0, 200: 1.0, 400: 3.0})))
    rc, out = _run(["bench", "compare", str(a), str(b)], capsys)
    assert rc == 0
    lines = [ln.split() for ln in out.splitlines() if ln.startswith("results/emd")]
    # rows pair by their labels and sizes (n=300 and n=400 have no partner); verdicts differ
    assert [(ln[1], ln[-2], ln[-1]) for ln in lines] == [
        ("n=100,", "2", "slower"),
        ("n=200,", "0.5", "faster"),
    ]
    assert "2 numbers compared: 1 slower, 1 faster" in out


def test_compare_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["bench", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])


def test_in_child():
    import time

    from geoml.bench._harness import in_child

    assert in_child(lambda conn: conn.send(("done", 3)), 30) == ("done", 3)
    t0 = time.perf_counter()
    assert in_child(lambda conn: time.sleep(30), 0.5, ("timeout",)) == ("timeout",)
    assert time.perf_counter() - t0 < 10  # the child was killed


def test_knn_auto_section(capsys, tmp_path):
    """``bench knn --auto``: exact / nndescent / auto rows per data set with the route auto
    took, recall against the exact lists and the ratios (anchors left out here)."""
    argv = ["bench", "knn", "--auto", "--sizes", "1500x8", "--datasets", "gaussian,swissroll"]
    rc, out = _run([*argv, "--tools", "", "--repeats", "1", "--results-dir", str(tmp_path)], capsys)
    assert rc == 0
    assert "gaussian n=1500 d=8" in out and "summary" in out
    payload = json.loads((tmp_path / "knn_auto.json").read_text())
    rows = {(r["dataset"], r["tool"]): r for r in payload["rows"]}
    assert set(rows) == {
        (ds, f"geoml {m}")
        for ds in ("gaussian", "swissroll")
        for m in ("exact", "nndescent", "auto")
    }
    for ds in ("gaussian", "swissroll"):
        assert rows[ds, "geoml exact"]["recall"] == 1.0
        auto = rows[ds, "geoml auto"]
        assert auto["route"] == "exact" and auto["recall"] == 1.0  # below 20,000 points
        assert auto["ratio_to_auto"] == 1.0 and auto["auto_over_best_geoml"] > 0
        assert 0.9 <= rows[ds, "geoml nndescent"]["recall"] <= 1.0
    assert [s["dataset"] for s in payload["summary"]] == ["gaussian", "swissroll"]
