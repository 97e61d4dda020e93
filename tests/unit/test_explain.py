"""Explanations (issue 6): Shapley shares, Integrated Gradients completeness, shapes, weight 0,
missing modalities, the randomisation sanity check, caching, renders.

The first block runs on hand-made values and small random models (no build); the rest on the
tiny demo catalog built by the real pipeline (``tiny_built`` from conftest) and on a copy of it
with one poster and one trailer removed.

Stated tolerances: Integrated Gradients completeness -- the attributions of a modality sum to
``Q(input) - Q(baseline)`` within ``COMPLETENESS_REL`` (5 %) of the attributions' total magnitude
``sum |attr|`` at ``COMPLETENESS_STEPS`` (64) Gauss-Legendre steps for the synopsis and the
trailer, within 10 % at 128 steps for the poster (ReLU6 tail, see that test); exact Shapley
efficiency and the wrapper forward's Q within float32 rounding (``Q_ATOL``).
"""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mmrec.config import FusionConfig
from mmrec.explain.forward import ItemContext, QForward, randomized_copy
from mmrec.explain.shares import COALITIONS, SHAPLEY_MATRIX, coalition_values, normalise, shapley
from mmrec.models.fusion import FusionModel
from mmrec.rl.dqn import QNetwork

COMPLETENESS_STEPS = 64
COMPLETENESS_REL = 0.05
Q_ATOL = 1e-5


# ----------------------------------------------------------------------------- pure: Shapley


def test_shapley_matrix_on_hand_made_games():
    # additive game: v(S) = sum of the members' worth -> phi = worth
    worth = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    v = COALITIONS.double() @ worth  # (8,)
    assert torch.allclose(v @ SHAPLEY_MATRIX, worth)
    # pure interaction of text and image (worth 3 only together): split evenly, audio gets 0
    v = (COALITIONS[:, 0] * COALITIONS[:, 1]).double() * 3.0
    assert torch.allclose(v @ SHAPLEY_MATRIX, torch.tensor([1.5, 1.5, 0.0], dtype=torch.float64))
    # unanimity game of all three: 1/3 each
    v = COALITIONS.prod(dim=1).double()
    assert torch.allclose(v @ SHAPLEY_MATRIX, torch.full((3,), 1 / 3, dtype=torch.float64))


def test_normalise_shares():
    shares = normalise(np.array([[1.0, -3.0, 0.0], [0.0, 0.0, 0.0]]))
    assert np.allclose(shares[0], [0.25, 0.75, 0.0])
    assert np.array_equal(shares[1], [0.0, 0.0, 0.0])


def _random_parts(seed: int = 0, n: int = 5, hidden: int = 16, embed: int = 8):
    torch.manual_seed(seed)
    cfg = FusionConfig(hidden_dim=hidden, embed_dim=embed, audio_dim=6, audio_lstm_hidden=8)
    model = FusionModel(cfg, n_genres=4).eval()
    q_network = QNetwork(state_dim=10, item_dim=embed + 2, hidden=12, embed=7).eval()
    branches = {m: torch.rand(n, hidden) for m in ("text", "image", "audio")}
    user_vec = torch.randn(7)
    side = torch.rand(n, 2)
    return model, q_network, branches, user_vec, side


def test_shapley_efficiency_and_null_players_on_a_random_model():
    model, q_network, branches, user_vec, side = _random_parts()
    present = torch.tensor(
        [[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 1, 1]], dtype=torch.bool
    )
    weights = torch.tensor([1.0, 0.5, 0.0])  # audio muted
    values = coalition_values(model, q_network, user_vec, branches, present, side, weights)
    gate = present.double() * weights.double()
    phi = shapley(values, gate)
    # efficiency: the values add up to Q(all) - Q(none) for every movie
    assert torch.allclose(phi.sum(1), values[:, -1].double() - values[:, 0].double(), atol=1e-6)
    # weight 0 (audio) and missing modalities are exactly 0
    assert bool((phi[:, 2] == 0).all())
    assert phi[1, 1] == 0 and phi[2, 0] == 0
    # coalition values agree with the single-item wrapper forward
    ctx = ItemContext(
        pos=0,
        movie_id=0,
        user_vec=user_vec,
        side=side[0],
        present=present[0],
        weights=weights,
        branches={m: b[0] for m, b in branches.items()},
    )
    qf = QForward(model, q_network, ctx)
    assert abs(qf.q() - float(values[0, -1])) < 1e-6
    assert torch.allclose(qf.from_coalitions(COALITIONS), values[0], atol=1e-6)


def test_randomized_copy_changes_every_layer_and_leaves_the_original():
    q_network = QNetwork(state_dim=10, item_dim=6, hidden=12, embed=4)
    before = {k: v.clone() for k, v in q_network.state_dict().items()}
    clone = randomized_copy(q_network, seed=5)
    for name, value in q_network.state_dict().items():
        assert torch.equal(value, before[name])  # original untouched
    changed = [
        k
        for k, v in clone.state_dict().items()
        if k.endswith("weight") and "0." not in k[:2] and not torch.equal(v, before[k])
    ]
    linear_weights = [k for k, v in before.items() if k.endswith("weight") and v.ndim == 2]
    assert set(linear_weights) <= set(changed)


def test_best_span_and_spearman():
    from mmrec.explain.audio import best_span
    from mmrec.explain.explainer import spearman

    scores = np.array([0, 1, -1, 2, 3, 1, -5, 0.5])
    assert best_span(scores, 3) == (3, 6.0)
    assert best_span(scores, 100)[0] == 0  # window wider than the clip: the whole clip
    assert best_span(scores, 2, n_active=3) == (0, 1.0)  # padded silence is never chosen
    assert best_span(np.array([-1.0, -3.0, -0.5, 0.0, 0.0]), 1, n_active=3) == (1, -3.0)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([0, 0, 0, 0], [0, 0, 0, 0]))


def test_renders(tmp_path):
    from PIL import Image

    from mmrec.explain import render

    poster = tmp_path / "p.png"
    Image.new("RGB", (150, 225), (128, 128, 128)).save(poster)
    heat = torch.zeros(224, 224)
    heat[:112] = 1.0  # top half raises the score
    img = render.overlay(poster, heat, alpha=1.0)
    assert img.size == (150, 225)
    arr = np.asarray(img).astype(int)
    assert arr[10, 75, 0] > 200 and arr[10, 75, 2] < 60  # red on top
    assert tuple(arr[200, 75]) == (128, 128, 128)  # untouched below
    assert np.array_equal(
        np.asarray(render.overlay(poster, heat, alpha=0.0)), np.full((225, 150, 3), 128)
    )
    spec = render.spectrogram_image(
        torch.randn(8, 50), torch.randn(8, 50), seconds_per_frame=0.1, span=(1.0, 2.0)
    )
    assert spec.width >= 50 and spec.height > 8
    text = render.highlighted_text_image([("<b>bold</b>", 1.0, 0, 11), ("word", -0.5, 12, 16)])
    assert text.width == 720
    legend = render.legend_image(200)
    arr = np.asarray(legend)
    assert legend.width == 200 and arr[5, 2, 2] > 200 and arr[5, 2, 0] < 60  # blue on the left
    assert arr[5, 197, 0] > 200 and arr[5, 197, 2] < 60  # red on the right


def test_synopsis_markdown_is_escaped_text_with_colour_directives():
    from mmrec.explain import render
    from mmrec.ui.loaders import md

    words = [
        ("<img", 1.0, 0, 4),  # strongest: red background
        ("src=x]", 0.3, 5, 11),  # moderate: red letters
        ("calm", 0.01, 12, 16),  # plain
        ("night", -1.0, 17, 22),  # blue background
        (".", 0.0, 22, 23),  # glued to the previous word
    ]
    out = render.synopsis_markdown(words, md)
    assert out.startswith(":red-background[\\<img]")
    assert ":red[src\\=x\\]]" in out
    assert " calm " in out and ":blue-background[night]\\." in out
    assert "<img" not in out.replace("\\<img", "")  # no raw tag survives
    assert render.synopsis_markdown([], md) == ""


def test_share_line_names_the_largest_share_and_its_sign():
    from mmrec.explain.reasons import share_line

    line = share_line(
        {"text": 0.2, "image": 0.69, "audio": 0.11}, {"text": 0.1, "image": 0.5, "audio": -0.08}
    )
    assert line.startswith("what carries this score: mostly the poster (69%, raises it)")
    assert "the synopsis (20%, raises it)" in line and "the trailer (11%, lowers it)" in line
    assert share_line({"text": 0.0, "image": 0.0, "audio": 0.0}, {}) is None


# ----------------------------------------------------------------------------- the tiny build


@pytest.fixture(scope="module")
def svc(tiny_built, tmp_path_factory):
    from mmrec.service import Recommender
    from mmrec.store import RatingsStore

    db = tmp_path_factory.mktemp("explain-db") / "ratings.sqlite3"
    return Recommender(tiny_built, store=RatingsStore(db))


@pytest.fixture(scope="module")
def user_and_picks(svc):
    uid = svc.create_user("explain-test")
    first = svc.recommend(uid, k=4)
    svc.rate(uid, first[0].movie_id, 5.0)
    svc.rate(uid, first[1].movie_id, 4.5)
    svc.rate(uid, first[2].movie_id, 1.0)
    return uid, svc.recommend(uid, k=6)


@pytest.fixture(scope="module")
def explanation(svc, user_and_picks):
    uid, picks = user_and_picks
    return svc.explain(uid, picks[0].movie_id, steps=COMPLETENESS_STEPS)


def test_q_is_the_ranking_score_and_shares_are_exact(svc, user_and_picks, explanation):
    _uid, picks = user_and_picks
    e = explanation
    assert e.movie_id == picks[0].movie_id
    assert e.q == pytest.approx(picks[0].q, abs=Q_ATOL)  # the score that ranked it
    assert e.q_check == pytest.approx(e.q, abs=Q_ATOL)  # the wrapper forward reproduces it
    assert sum(e.shapley.values()) == pytest.approx(e.q_check - e.q_no_modalities, abs=Q_ATOL)
    assert sum(e.shares.values()) == pytest.approx(1.0)
    assert all(0 <= s <= 1 for s in e.shares.values())
    assert e.absent == [] and e.muted == []


def test_summary_matches_the_full_explanation_without_loading_encoders(
    tiny_built, tmp_path, svc, user_and_picks, explanation
):
    """The Why page's instant part (shares, Q, reasons) equals the full explanation's, and on a
    fresh service it loads no encoder."""
    from mmrec.service import Recommender
    from mmrec.store import RatingsStore

    uid, picks = user_and_picks
    s = svc.explain_summary(uid, picks[0].movie_id)
    assert s["q"] == pytest.approx(explanation.q, abs=Q_ATOL)
    assert s["shares"] == pytest.approx(explanation.shares)
    assert s["shapley"] == pytest.approx(explanation.shapley)
    assert s["reasons"] == explanation.reasons
    fresh = Recommender(tiny_built, store=RatingsStore(svc.store.path))
    fresh.explain_summary(uid, picks[0].movie_id)
    assert fresh._get_explainer()._encoders == {}
    # the background warm-up loads them without a request
    fresh.warm_explainer_in_background().join(timeout=600)
    assert set(fresh._get_explainer()._encoders) == {"text", "image", "audio"}


def test_attribution_shapes_match_inputs(svc, explanation):
    e = explanation
    fcfg = svc.cfg.features
    # synopsis: one score per word piece, words map back onto the synopsis text
    tok = (
        svc._get_explainer()
        .encoder("text")
        .tokenizer(
            svc.movie(e.movie_id)["overview"], truncation=True, max_length=fcfg.text_max_tokens
        )
    )
    assert len(e.text.tokens) == len(tok["input_ids"]) - 2  # without [CLS], [SEP]
    overview = svc.movie(e.movie_id)["overview"]
    for word, _score, start, end in e.text.words:
        assert overview[start:end] == word
    # poster: the model's square frame
    assert tuple(e.poster.heatmap.shape) == (fcfg.image_size, fcfg.image_size)
    # trailer: exactly the spectrogram the configured audio front end reads
    if fcfg.audio_kind == "aisfx":
        from mmrec.features.audio import AISFX_MELS, aisfx_frames

        n_mels, frames = AISFX_MELS, aisfx_frames(fcfg)
        assert e.trailer.seconds_per_frame == pytest.approx(1024 / 44_100)
    else:
        n_mels = fcfg.n_mels
        frames = 1 + int(round(fcfg.clip_seconds * fcfg.sample_rate)) // fcfg.hop_length
    assert e.trailer.method == fcfg.audio_kind
    # built with the default, position-invariant audio pooling: the page shows no caveat
    assert e.trailer.audio_pooling == "meanmax" and e.trailer.position_caveat is None
    assert tuple(e.trailer.heatmap.shape) == tuple(e.trailer.logmel.shape) == (n_mels, frames)
    assert e.trailer.frame_scores.shape == (frames,)
    start, end = e.trailer.span
    assert 0 <= start < end <= frames * e.trailer.seconds_per_frame + 1e-9
    assert end - start == pytest.approx(svc.cfg.explain.audio_span_seconds, abs=0.05)
    # the tiny demo's clips are shorter than the encoder's window: the span stays in the sound
    assert end <= svc.cfg.demo.clip_seconds + 0.1


def _check_completeness(part, rel: float) -> None:
    gap = part.q_input - part.q_baseline
    magnitude = float(np.abs(_scores(part)).sum())
    assert magnitude > 0
    err = abs(part.total - gap)
    assert err <= rel * magnitude + 1e-7, (type(part).__name__, part.total, gap, magnitude)
    assert abs(part.delta - err) < 1e-5  # Captum's convergence delta is exactly that error


def test_integrated_gradients_completeness(explanation):
    # smooth paths (MiniLM, LSTM): well inside the tolerance at 64 steps
    _check_completeness(explanation.text, COMPLETENESS_REL)
    _check_completeness(explanation.trailer, COMPLETENESS_REL)


def test_poster_completeness_needs_more_steps(svc, user_and_picks):
    # The poster path runs through EfficientNet's ReLU6 / BatchNorm tail: the IG integrand is
    # piecewise constant with many jumps, so quadrature converges slowly (measured: 5-20 % at
    # 16-64 steps, under 5 % at 128). Stated tolerance here: 10 % at 128 steps.
    from mmrec.explain.forward import QForward
    from mmrec.explain.image import attribute_poster

    uid, picks = user_and_picks
    ex = svc._get_explainer()
    pos = svc.serving_state().row(picks[0].movie_id)
    weights = (1.0, 1.0, 1.0)
    state, personal, emb = ex._user(uid, weights)
    ctx = ex._context(svc.agent.q_network, state, personal, emb, pos, weights)
    qf = QForward(svc.model, svc.agent.q_network, ctx)
    poster = svc.movie(picks[0].movie_id)["poster"]
    part = attribute_poster(qf, ex.encoder("image"), poster, 128, internal_batch_size=32)
    _check_completeness(part, 0.10)


def _scores(part):
    if hasattr(part, "tokens"):
        return np.array([s for _, s in part.tokens])
    if hasattr(part, "grid"):
        return part.grid.numpy()
    return part.heatmap.numpy()


def test_reencoded_inputs_reproduce_the_cached_features(svc, explanation):
    # The encoders re-entered for attribution must see what the feature store saw at build time.
    # The cache may hold bf16-encoded vectors (features.precision "auto" on CPUs with native
    # bfloat16) while attribution runs in float32, so the vectors agree to a cosine of 0.998,
    # not bit for bit; a different preprocessing (other resize, other text, other clip length)
    # falls far below that.
    from mmrec.features.store import compute_features

    cached = compute_features(svc.catalog, svc.cfg.features)  # from the on-disk cache
    ex = svc._get_explainer()
    pos = svc.serving_state().row(explanation.movie_id)
    movie = svc.movie(explanation.movie_id)
    with torch.no_grad():
        tok = ex.encoder("text").tokenize([movie["overview"]])
        fresh = {
            "text": ex.encoder("text").forward_ids(**tok)[0],  # (384,)
            "image": ex.encoder("image").forward(
                ex.encoder("image").preprocess(movie["poster"])[None]
            )[0],  # (1280,)
            "audio": torch.from_numpy(ex.encoder("audio").sequence(movie["audio"])).flatten(),
        }
    for name, vec in fresh.items():
        ref = torch.from_numpy(np.asarray(getattr(cached, name)[pos], np.float32)).flatten()
        cos = torch.nn.functional.cosine_similarity(vec, ref, dim=0)
        assert cos >= 0.998, (name, float(cos))
    # and the maps explain a Q within 1 % of the ranked one (text, poster: re-encoded in fp32)
    for part in (explanation.text, explanation.poster):
        assert part.q_input == pytest.approx(
            explanation.q_check, abs=0.01 * max(1.0, abs(explanation.q))
        )
    # the aisfx trailer map comes from the store's own trunk (int8 on CPU): the same Q
    tol = 1e-3 * max(1.0, abs(explanation.q)) if svc.cfg.features.audio_kind == "aisfx" else 0.01
    assert explanation.trailer.q_input == pytest.approx(explanation.q_check, abs=tol)


def test_audio_weight_zero_gives_zero_audio_share(svc, user_and_picks):
    from mmrec.service import Weights

    uid, picks = user_and_picks
    e = svc.explain(uid, picks[1].movie_id, Weights(1.0, 1.0, 0.0), steps=4)
    assert e.shares["audio"] == 0.0 and e.shapley["audio"] == 0.0
    assert e.trailer is None and e.muted == ["audio"] and e.status("audio") == "weight 0"
    assert e.shares["text"] + e.shares["image"] == pytest.approx(1.0)
    grid = svc.explain_shares(uid, [p.movie_id for p in picks], Weights(1.0, 1.0, 0.0))
    assert set(grid) == {p.movie_id for p in picks}
    assert all(s[2] == 0.0 for s in grid.values())
    full = svc.explain_shares(uid, [p.movie_id for p in picks], Weights(1.0, 1.0, 1.0))
    assert any(s[2] > 0 for s in full.values())  # the trailer does count when weighted


def test_cache_hit_is_fast_and_keyed_by_user_state(svc, user_and_picks):
    import time

    uid, picks = user_and_picks
    movie = picks[2].movie_id
    cold = svc.explain(uid, movie, steps=4)
    t0 = time.perf_counter()
    warm = svc.explain(uid, movie, steps=4)
    assert time.perf_counter() - t0 < 0.5  # ~10 ms; generous for a loaded CI machine
    assert warm.cached and not cold.cached and warm.shares == cold.shares
    assert not svc.explain(uid, movie, steps=5).cached  # the step count is part of the key
    other = svc.create_user("explain-other")
    assert not svc.explain(other, movie, steps=4).cached  # another user's state


def test_randomising_the_q_network_changes_the_maps(svc, user_and_picks):
    uid, picks = user_and_picks
    rho = svc.explain_sanity(uid, picks[0].movie_id, steps=16)
    assert set(rho) == {"text", "image", "audio"}
    for modality, r in rho.items():
        assert np.isfinite(r) and r < 0.9, (modality, r)


def test_trailer_front_end_follows_audio_kind(svc, user_and_picks):
    # the configured front end is the one re-entered; a runtime config whose audio front end
    # does not match the built model, or an unknown one, gives no map but a note saying why
    import dataclasses

    from mmrec.explain import Explainer
    from mmrec.features.audio import AisfxEncoder, AudioFrontend

    uid, picks = user_and_picks
    kind = svc.cfg.features.audio_kind
    enc = svc._get_explainer().encoder("audio")
    assert isinstance(enc, AisfxEncoder if kind == "aisfx" else AudioFrontend)
    other = "logmel" if kind == "aisfx" else "aisfx"
    for audio_kind, why in ((other, "was trained on"), ("wav2vec", "not one of")):
        twin = dataclasses.replace(
            svc.serving_state(),
            cfg=dataclasses.replace(
                svc.cfg, features=dataclasses.replace(svc.cfg.features, audio_kind=audio_kind)
            ),
        )
        e = Explainer(twin).explain(uid, picks[0].movie_id, steps=2)
        assert e.trailer is None and e.status("audio") == "failed"
        assert why in e.missing_message("audio") and audio_kind in e.missing_message("audio")
        assert e.text is not None and e.poster is not None  # the rest still comes


def test_reasons_name_a_liked_movie(svc, user_and_picks, explanation):
    from mmrec.service import Filters

    uid, picks = user_and_picks
    liked = {m for m, r in svc.user_state(uid).history if r >= 4}
    assert explanation.neighbours and all(n.movie_id in liked for n in explanation.neighbours)
    nb = explanation.neighbours[0]
    assert nb.because and set(nb.because) <= {"text", "image", "audio"}
    assert nb.title in explanation.reasons[1] and f"{nb.rating:g}★" in explanation.reasons[1]
    # the first reason names what the share bar shows: the largest share, with its value
    top = max(explanation.shares, key=explanation.shares.get)
    name = {"text": "synopsis", "image": "poster", "audio": "trailer"}[top]
    first = explanation.reasons[0]
    assert first.startswith("what carries this score:"), first
    assert f"the {name} ({explanation.shares[top]:.0%}" in first.split(";")[0], first
    genre = svc.movie(picks[0].movie_id)["genres"][0]
    filtered = svc.explain(
        uid, picks[0].movie_id, steps=COMPLETENESS_STEPS, filters=Filters(include_genres=(genre,))
    )
    assert any(genre in r and r.startswith("rules") for r in filtered.reasons)


# ----------------------------------------------------------------------------- missing modalities


def _blank_media(data_dir: Path, poster_row: int, audio_row: int) -> tuple[int, int]:
    path = data_dir / "movies.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    rows[poster_row]["poster"] = ""
    rows[audio_row]["audio"] = ""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return int(rows[poster_row]["movieId"]), int(rows[audio_row]["movieId"])


@pytest.fixture(scope="module")
def svc_missing(tiny_built, tmp_path_factory):
    """A copy of the tiny catalog where one movie lost its poster and another its trailer."""
    import dataclasses

    from mmrec.pipeline import build
    from mmrec.service import Recommender
    from mmrec.store import RatingsStore

    root = tmp_path_factory.mktemp("explain-missing")
    shutil.copytree(
        tiny_built.paths.data_dir, root / "data", ignore=shutil.ignore_patterns("*.sqlite3*")
    )
    no_poster, no_audio = _blank_media(root / "data", 0, 1)
    cfg = dataclasses.replace(
        tiny_built,
        paths=dataclasses.replace(
            tiny_built.paths,
            data_dir=(root / "data").as_posix(),
            checkpoints_dir=(root / "ckpt").as_posix(),
            db_path=(root / "db.sqlite3").as_posix(),
        ),
    )
    build(cfg)
    return Recommender(cfg, store=RatingsStore(cfg.paths.db)), no_poster, no_audio


def test_missing_modality_explains_and_says_so(svc_missing):
    svc, no_poster, no_audio = svc_missing
    uid = svc.create_user("explain-missing")
    e = svc.explain(uid, no_poster, steps=4)
    assert e.absent == ["image"] and e.status("image") == "absent"
    assert e.poster is None and e.poster_path is None and e.shares["image"] == 0.0
    assert e.text is not None and e.trailer is not None
    assert any("no poster" in n for n in e.notes) and any("no poster" in r for r in e.reasons)
    e = svc.explain(uid, no_audio, steps=4)
    assert e.absent == ["audio"] and e.trailer is None and e.shares["audio"] == 0.0
    assert any("no trailer" in n for n in e.notes)
    assert sum(e.shapley.values()) == pytest.approx(e.q_check - e.q_no_modalities, abs=Q_ATOL)
