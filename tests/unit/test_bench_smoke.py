"""Smoke test of `python -m mmrec bench --quick`: the benchmark runs end to end and writes its
report and chart. No timing is asserted (timings belong to the benchmark, not to tests)."""

import json
import os

from mmrec.bench import run_bench
from mmrec.provenance import git_commit


def test_bench_quick_writes_report_and_chart(tiny_built, tmp_path):
    out = tmp_path / "bench.json"
    result = run_bench(tiny_built, out=out, quick=True, sizes=[200, 1_000], log=lambda *_: None)
    saved = json.loads(out.read_text())
    assert saved["quick"] is True
    assert [r["n_items"] for r in saved["scaling"]] == [200, 1_000]
    for r in saved["scaling"]:
        assert r["recommend"]["p95_ms"] >= r["recommend"]["median_ms"] > 0
        assert r["bandwidth_floor_ms"] > 0
    assert saved["rate"]["n"] > 0 and saved["slider_change"]["n"] > 0
    assert "cold" in saved["explain"], saved["explain"]
    assert saved["memory_bandwidth"]["read_gb_s"] > 0
    assert (tmp_path / "bench-latency.png").stat().st_size > 0
    md = (tmp_path / "bench.md").read_text()
    assert "| catalog size |" in md
    # the report names the machine, the commit and the command (README quotes them)
    assert result["machine"]["cores"] == os.cpu_count() == saved["machine"]["cpu_count"]
    assert saved["machine"]["cpu"] and saved["machine"]["python"]
    assert saved["commit"] == git_commit() and saved["commit"]
    assert f"commit {saved['commit']}" in md
    assert saved["command"].startswith("python")
