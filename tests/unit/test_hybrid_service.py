"""The hybrid ranker end to end on the tiny catalog: `train-hybrid`, the service serving it, and
`evaluate ranking` refusing checkpoints built for another catalog."""

from __future__ import annotations

import dataclasses
import shutil

import pandas as pd
import pytest

from mmrec import pipeline


def _copy(cfg, tmp_path):
    """The tiny build copied, so writing hybrid.pt never touches the shared fixture."""
    new = dataclasses.replace(cfg, paths=dataclasses.replace(cfg.paths))
    shutil.copytree(cfg.paths.checkpoints_dir, tmp_path / "ckpt")
    new.paths.checkpoints_dir = str(tmp_path / "ckpt")
    new.paths.db_path = str(tmp_path / "app.sqlite3")
    new.policy_eval = dataclasses.replace(
        cfg.policy_eval, ease_lambda_grid=(5.0, 50.0), knn_grid=(5,)
    )
    new.hybrid = dataclasses.replace(cfg.hybrid, epochs=3, candidates=15)
    return new


def test_evaluate_ranking_refuses_checkpoints_of_another_catalog(tiny_built, tmp_path, capsys):
    cfg = _copy(tiny_built, tmp_path)
    data = tmp_path / "other"
    shutil.copytree(tiny_built.paths.data_dir, data, ignore=shutil.ignore_patterns("*.sqlite3*"))
    movies = pd.read_csv(data / "movies.csv")
    gone = int(movies.movieId.iloc[-1])
    movies.iloc[:-1].to_csv(data / "movies.csv", index=False)
    ratings = pd.read_csv(data / "ratings.csv")
    ratings[ratings.movieId != gone].to_csv(data / "ratings.csv", index=False)
    cfg.paths.data_dir = str(data)
    with pytest.raises(ValueError, match="built for another catalog|not built from the catalog"):
        pipeline.evaluate_ranking(cfg, out_dir=tmp_path / "reports")
    with pytest.raises(ValueError, match="built for another catalog|not built from the catalog"):
        pipeline.build_hybrid(cfg)
    # the command line says so and exits non-zero instead of evaluating with the wrong models
    from mmrec.__main__ import main

    args = ["--data", str(data), "--checkpoints", cfg.paths.checkpoints_dir]
    assert main(["evaluate", "ranking", *args, "--out", str(tmp_path / "r")]) == 2
    assert main(["train-hybrid", *args]) == 2
    assert "built for another catalog" in capsys.readouterr().err
    assert not (tmp_path / "r" / "ranking.json").exists()


def test_service_serves_the_hybrid_when_one_is_built(tiny_built, tmp_path):
    from mmrec.service import Recommender

    cfg = _copy(tiny_built, tmp_path)
    plain = Recommender(cfg)
    assert plain.hybrid is None  # the demo (no hybrid.pt) keeps ranking with the DQN
    report = pipeline.build_hybrid(cfg)
    assert (tmp_path / "ckpt" / "hybrid.pt").exists() and report["lambda"] in (5.0, 50.0)
    svc = Recommender(cfg)
    assert svc.hybrid is not None
    liked = [mid for mid, _title in svc.popular_titles(3)]
    user = svc.create_user("fan", liked_movies=liked)
    picks = svc.recommend(user, k=6)
    assert len(picks) == 6 and not {p.movie_id for p in picks} & set(liked)
    state = svc.user_state(user)
    want = svc.hybrid.full_scores(state)
    pos = [svc.serving_state().row(p.movie_id) for p in picks]
    assert [p.q for p in picks] == pytest.approx(want[pos].tolist())  # ranked by the hybrid
    res = svc.rate(user, picks[0].movie_id, 5.0)  # rating still works and moves the list
    assert picks[0].movie_id not in {p.movie_id for p in res.picks}
    from mmrec.checkpoint import load_checkpoint, save_checkpoint
    from mmrec.rl.hybrid import N_BASE, N_EXTRA, N_TIME, Residual, load_hybrid

    dim = svc.hybrid.facts.emb.shape[1]
    assert svc.hybrid.f.inp.in_features == N_BASE + N_EXTRA + N_TIME + 3 + dim  # 3 adjacencies
    # app user 1 is not the catalog's rater 1: no app user reads a rater's active window
    assert svc.hybrid.times.user == {} and 1 in set(svc.catalog.ratings.userId)

    # A hybrid.pt saved before the time inputs existed (no such config keys, f reading the 21
    # earlier inputs) still loads, and ranks with those inputs only.
    path = tmp_path / "ckpt" / "hybrid.pt"
    _state, config, meta = load_checkpoint(path)
    old = {
        k: v
        for k, v in config.items()
        if k not in ("time_features", "time_kernel_days", "adjacency")
    }
    save_checkpoint(path, Residual(N_BASE + N_EXTRA, dim, old["hidden"]).state_dict(), old, meta)
    legacy, _meta = load_hybrid(tmp_path / "ckpt", svc.catalog, svc.default_emb)
    assert not legacy.cfg.time_features and legacy.times is None
    assert len(legacy.full_scores(state)) == len(svc.catalog.movies)


def test_results_page_flattens_the_ranking_protocols_into_one_table():
    from mmrec.ui.loaders import report_frame

    row = {"ndcg@10": {"mean": 0.1, "ci95": 0.01}, "recall@10": {"mean": 0.2, "ci95": 0.02},
           "coverage@10": 0.05, "n_users": 3, "n_seeds": 1}  # fmt: skip
    report = {"protocols": {"random": {"rankers": {"ease": row, "hybrid": row}},
                            "temporal": {"rankers": {"ease": row}}}}  # fmt: skip
    frame = report_frame("ranking", report)
    assert list(frame.index) == ["random: ease", "random: hybrid", "temporal: ease"]
    assert frame.loc["random: hybrid", "ndcg@10"] == 0.1 and frame["ndcg@10 ±"].iloc[0] == 0.01


def test_results_page_knows_which_folder_a_report_was_written_for(tmp_path, monkeypatch):
    from mmrec.ui.loaders import report_data_dir, same_folder

    assert report_data_dir({"data_dir": "/x/y", "command": "python -m mmrec --data /z"}) == "/x/y"
    cmd = "python -m mmrec evaluate live --data data/demo --checkpoints checkpoints/demo"
    assert report_data_dir({"command": cmd}) == "data/demo"
    assert report_data_dir({"command": "python -m mmrec x --data=/tmp/r"}) == "/tmp/r"
    assert report_data_dir({"command": "python -m mmrec bench"}) is None
    assert report_data_dir({}) is None and report_data_dir(None) is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "demo").mkdir(parents=True)
    assert same_folder("data/demo", str(tmp_path / "data" / "demo"))
    assert same_folder("data/demo/", "./data/demo")
    assert not same_folder("data/demo", "/tmp/mmrec-real") and not same_folder(None, "data/demo")


def test_results_verdicts_come_from_the_reports_numbers():
    from mmrec.ui.loaders import report_verdict

    modality = {
        "rows": [{"variant": "text only", "f1_micro": {"mean": 0.5}},
                 {"variant": "fused (text + image + audio)", "f1_micro": {"mean": 0.48}}],
        "fused_vs_best_single": {"f1_micro": {"best_single": "text only", "margin": -0.02,
                                              "holds": False}},
    }  # fmt: skip
    text = report_verdict("modality", modality)
    assert "0.480" in text and "trails the best single modality (text only) by 2.0" in text
    assert "not a clear win" in text
    policy = {"lifts": {
        "popularity": {"satisfaction": {"diff": 0.3, "diff_ci95": 0.1, "relative": 0.087}},
        "supervised": {"satisfaction": {"diff": 0.01, "diff_ci95": 0.02, "relative": 0.003}},
        "ease": {"satisfaction": {"diff": -0.2, "diff_ci95": 0.05, "relative": -0.05}},
    }}  # fmt: skip
    text = report_verdict("policy", policy)
    assert "popularity +8.7% (better)" in text and "supervised +0.3% (tie" in text
    assert "ease -5.0% (worse)" in text
    row = lambda x: {"ndcg@10": {"mean": x, "ci95": 0.01}}  # noqa: E731
    ranking = {"protocols": {"random": {"rankers": {"ease": row(0.4), "dqn": row(0.01)}}}}
    assert "random: best NDCG@10 ease 0.400, the DQN alone 0.0100 (40x lower)" in report_verdict(
        "ranking", ranking
    )
    assert report_verdict("policy", {"policies": []}) is None  # older format: no verdict
