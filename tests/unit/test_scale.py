"""``bench --scale``'s baselines part (issue 16, Deliver 5): the long-tailed synthetic ratings,
the fits in fresh processes with their memory and latency, the cap-quality table, the report.

The EASE cap itself is tested against the dense closed form in tests/unit/test_baselines.py.
"""

from __future__ import annotations

import json

import numpy as np


def test_synthetic_ratings_are_long_tailed_and_count_a_pair_once():
    from mmrec.scale import synthetic_ratings

    df = synthetic_ratings(films=2000, users=500, median_ratings=40, sigma=1.0, zipf_a=1.0,
                           zipf_q=20.0, seed=3)  # fmt: skip
    assert not df.duplicated(["userId", "movieId"]).any()
    assert df["movieId"].between(1, 2000).all() and df["userId"].between(1, 500).all()
    assert df["rating"].between(0.5, 5.0).all()
    counts = df["movieId"].value_counts()
    # the head: film 1 is the most rated, far above the median film
    assert counts.index[0] in (1, 2, 3) and counts.iloc[0] > 20 * counts.median()
    # deterministic for a seed
    again = synthetic_ratings(films=2000, users=500, median_ratings=40, sigma=1.0, zipf_a=1.0,
                              zipf_q=20.0, seed=3)  # fmt: skip
    assert again.equals(df)


def test_baselines_part_fits_capped_ease_and_knn_and_reports_them(tiny_built, tmp_path):
    from mmrec.scale import render_markdown, run_scale_bench

    out = tmp_path / "scale.json"
    out.write_text(json.dumps({"growth": [{"films": 10, "build_s": 1.0, "peak_rss_mb": 5}]}))
    report = run_scale_bench(
        tiny_built,
        out,
        sizes=[],
        parts=("baselines",),
        ease_caps=(200,),
        quality_data=tiny_built.paths.data_dir,
        synthetic={"films": 1500, "users": 300},
        log=lambda *_: None,
    )
    runs = {(r["model"], r["cap"]): r for r in report["baselines"]["runs"]}
    assert set(runs) == {("item_knn", None), ("ease", 200)}  # one fresh process each
    capped = runs[("ease", 200)]
    assert capped["rated_films"] > 1000  # nearly every film drew a rating
    assert capped["head_films"] == 200 and capped["tail_films"] == capped["rated_films"] - 200
    assert capped["tail_raters_nnz"] > 0 and runs[("item_knn", None)]["sim_nnz"] > 0
    for r in runs.values():
        assert r["peak_rss_mb"] >= r["rss_before_fit_mb"] > 0 and r["fit_s"] > 0
        assert r["recommend_ms_median"] > 0
    q = report["baselines"]["cap_quality"]
    assert q["rows"][0]["cap"] is None and q["rows"][0]["tail_films"] == 0
    assert all(0.0 <= row["ndcg@10"] <= 1.0 for row in q["rows"])
    assert report["growth"][0]["films"] == 10  # the parts not measured are kept
    md = render_markdown(json.loads(out.read_text()))
    assert "Collaborative baselines at 1,500 films" in md and "What the cap costs" in md
    assert np.isfinite(report["baselines"]["uncapped_ease_gb"])
