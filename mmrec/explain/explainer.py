"""``Explainer``: one pick's full explanation for one user, cached.

Glue between the service's loaded parts and the attribution modules: it builds the
:class:`~mmrec.explain.forward.ItemContext` (the user's state vector held fixed, the movie's
cached branch outputs, side features, weights), runs the Shapley shares, the three encoder
attributions and the reasons, and keeps the results in an LRU keyed by
(user state hash, movie, weights, steps). Encoders load once, on first use.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from mmrec.config import ExplainConfig
from mmrec.explain import reasons as R
from mmrec.explain.audio import (
    TrailerAttribution,
    attribute_trailer,
    attribute_trailer_aisfx,
    silence_map,
)
from mmrec.explain.forward import ItemContext, QForward, randomized_copy, state_vector
from mmrec.explain.image import PosterAttribution, attribute_poster
from mmrec.explain.serving import ServingState
from mmrec.explain.shares import coalition_values, normalise, shapley
from mmrec.explain.text import TextAttribution, attribute_text
from mmrec.lru import LRU
from mmrec.models.fusion import MODALITIES
from mmrec.values import Weights

MEDIA = {"text": "synopsis", "image": "poster", "audio": "trailer"}
AUDIO_KINDS = ("logmel", "aisfx")  # audio front ends with a trailer attribution


@dataclass
class Explanation:
    user_id: int
    movie_id: int
    title: str
    weights: tuple[float, float, float]  # text, image, audio as applied
    q: float  # Q_u(s, a) as the policy ranked it
    q_check: float  # the same Q recomputed by the wrapper forward (equal up to float error)
    q_no_modalities: float  # Q with all three branch outputs at the zero baseline
    shapley: dict[str, float]  # signed exact Shapley values; sum = q_check - q_no_modalities
    shares: dict[str, float]  # |shapley| normalised to sum to 1 (0 where weight or input is 0)
    present: dict[str, bool]  # which media the movie has
    absent: list[str]  # modalities the movie lacks ("text" / "image" / "audio")
    muted: list[str]  # modalities with weight 0
    text: TextAttribution | None
    poster: PosterAttribution | None
    trailer: TrailerAttribution | None
    poster_path: str | None
    audio_path: str | None
    reasons: list[str]
    neighbours: list[R.Neighbour]
    steps: dict[str, int]
    notes: list[str] = field(default_factory=list)  # why a part is missing, truncation, ...
    timings: dict[str, float] = field(default_factory=dict)  # seconds per part + "total"
    cached: bool = False  # served from the LRU

    # ----------------------------------------------------------------- pictures (for pages)
    def synopsis_image(self, width: int = 720):
        """The synopsis with each word on a red (raises Q) / blue (lowers Q) background."""
        from mmrec.explain import render

        if self.text is None:
            return render.message_image(self.missing_message("text"), width=width, height=60)
        return render.highlighted_text_image(self.text.words, width=width)

    def synopsis_markdown(self, escape) -> str:
        """The synopsis as Markdown text with the strongest words highlighted (accessible; see
        ``render.synopsis_markdown``); ``escape`` makes catalog text inert. "" without a map."""
        from mmrec.explain import render

        return render.synopsis_markdown(self.text.words, escape) if self.text is not None else ""

    @staticmethod
    def legend_image(width: int = 320):
        """The colour scale shared by every map (blue lowers the score, red raises it)."""
        from mmrec.explain import render

        return render.legend_image(width)

    def poster_image(self, alpha: float = 0.5):
        """The poster with the attribution heatmap at opacity ``alpha`` (0..1)."""
        from mmrec.explain import render

        if self.poster is None or not self.poster_path:
            return render.message_image(self.missing_message("image"), width=240, height=120)
        return render.overlay(self.poster_path, self.poster.heatmap, alpha)

    def spectrogram_image(self, alpha: float = 0.8):
        """Log-mel spectrogram with its attribution heatmap and the influential span framed."""
        from mmrec.explain import render

        t = self.trailer
        if t is None:
            return render.message_image(self.missing_message("audio"), width=640, height=80)
        return render.spectrogram_image(t.logmel, t.heatmap, t.seconds_per_frame, t.span, alpha)

    def missing_message(self, modality: str) -> str:
        status = self.status(modality)
        media = MEDIA[modality]
        if status == "absent":
            return f"This movie has no {media}: nothing to attribute."
        if status == "weight 0":
            return f"The {modality} weight is 0: the {media} does not affect the score."
        failed = [n for n in self.notes if n.startswith(media)]
        return failed[0] if failed else f"No {media} attribution."

    def top_words(self, k: int = 8) -> list[tuple[str, float]]:
        """The ``k`` synopsis words with the largest absolute attribution, strongest first."""
        if self.text is None:
            return []
        ranked = sorted(self.text.words, key=lambda w: -abs(w[1]))[:k]
        return [(w[0], float(w[1])) for w in ranked]

    def status(self, modality: str) -> str:
        """Why a modality has (no) attribution: "explained", "absent", "weight 0", "failed"."""
        if modality in self.absent:
            return "absent"
        if modality in self.muted:
            return "weight 0"
        part = {"text": self.text, "image": self.poster, "audio": self.trailer}[modality]
        return "explained" if part is not None else "failed"


def _share_dicts(phi) -> tuple[dict[str, float], dict[str, float]]:
    """``(shares, signed Shapley values)`` per modality of the first movie of ``phi (n, 3)``."""
    shares = {m: float(x) for m, x in zip(MODALITIES, normalise(phi)[0])}
    return shares, {m: float(phi[0, k]) for k, m in enumerate(MODALITIES)}


def _with_shares(reasons: list[str], shares: dict, shapley: dict) -> list[str]:
    """The reasons with the share line (what carries the score, as the share bar shows) first,
    so a "similar story to X" line is read next to which input actually drives the score."""
    line = R.share_line(shares, shapley)
    return ([line] if line else []) + list(reasons)


def _weights_tuple(weights) -> tuple[float, float, float]:
    if weights is None:
        return (1.0, 1.0, 1.0)
    if hasattr(weights, "as_tuple"):
        weights = weights.as_tuple()
    w = tuple(float(min(1.0, max(0.0, x))) for x in weights)
    if len(w) != 3:
        raise ValueError(f"expected 3 modality weights, got {len(w)}")
    return w


def state_hash(state, personal: dict) -> str:
    """Everything about the user that changes Q: history, onboarding genres, personal delta."""
    payload = json.dumps(
        [
            [[int(m), float(r)] for m, r in state.history],
            sorted(state.liked_genres),
            [round(float(x), 7) for x in personal.get("delta", [])],
        ]
    )
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def spearman(a, b) -> float:
    """Spearman rank correlation of two equally shaped maps (entries where both are exactly
    zero, such as padded silence, are left out: they carry no information)."""
    from scipy.stats import spearmanr

    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    keep = (x != 0) | (y != 0)
    if keep.sum() < 3:
        return float("nan")
    return float(spearmanr(x[keep], y[keep]).statistic)


class Explainer:
    """Explanations over what the service serves (``state``: a :class:`ServingState`, from
    ``Recommender.serving_state()``)."""

    def __init__(self, state: ServingState, cfg: ExplainConfig | None = None):
        self.serving = state
        self.cfg = cfg or getattr(state.cfg, "explain", None) or ExplainConfig()
        self.device = state.model.device
        self._cache = LRU(max(1, self.cfg.cache_size))  # finished explanations
        # Captum registers hooks on the shared encoders: one attribution at a time
        self._attr_lock = threading.Lock()
        self._encoders: dict[str, object] = {}
        self._encoder_lock = threading.RLock()  # a background warm() and a request load once
        self._titles = state.catalog.movies["title"].to_numpy()
        self._side = state.item_side  # (N, F)

    # ----------------------------------------------------------------- encoders (lazy, once)
    def encoder(self, modality: str):
        with self._encoder_lock:
            return self._load_encoder(modality)

    def _load_encoder(self, modality: str):
        if modality not in self._encoders:
            fcfg = self.serving.cfg.features
            if modality == "text":
                from mmrec.features.text import TextEncoder

                enc = TextEncoder(fcfg, self.device)
            elif modality == "image":
                from mmrec.features.image import ImageEncoder

                enc = ImageEncoder(fcfg, self.device)
            elif fcfg.audio_kind == "aisfx":
                from mmrec.features.audio import AisfxEncoder

                enc = AisfxEncoder(fcfg, self.device)
            elif fcfg.audio_kind == "logmel":
                from mmrec.features.audio import AudioFrontend

                enc = AudioFrontend(fcfg)
            else:
                raise ValueError(f"features.audio_kind={fcfg.audio_kind!r}: expected {AUDIO_KINDS}")
            self._encoders[modality] = enc
        return self._encoders[modality]

    def warm(self) -> float:
        """Load the three encoders now (seconds taken); otherwise the first explanation does.
        The audio front end's mel filter bank (librosa import, ~1 s) and, for aisfx, the CNN
        map of the silent baseline (one forward, the same for every trailer) are built too."""
        t0 = time.perf_counter()
        for m in MODALITIES:
            if m == "audio" and self.serving.cfg.features.audio_kind not in AUDIO_KINDS:
                continue  # explain() says why there is no trailer map
            enc = self.encoder(m)
            if m == "audio":
                enc.mel_basis  # noqa: B018  (a lazily built property)
                if self.serving.cfg.features.audio_kind == "aisfx":
                    from mmrec.features.audio import aisfx_frames

                    silence_map(enc, aisfx_frames(self.serving.cfg.features))
        return time.perf_counter() - t0

    # ----------------------------------------------------------------- context
    def _user(self, user_id: int, weights: tuple[float, float, float]):
        serving = self.serving
        state = serving.user_state(user_id)
        personal = serving.policy_state(user_id) or {}
        emb = serving.embeddings(Weights(*weights))  # (N, D)
        return state, personal, emb

    def _q_state(self, state):
        """The state the DQN's Q is read for: the user's onboarding state (``Pick.q``); the
        ratings move the ranking through the Bayesian layer (mmrec.rl.online), not through Q.
        The full ``state`` still feeds the reasons ("similar to X, which you rated ...")."""
        return self.serving.prior_state(state.user_id)

    def _context(self, q_network, state, personal, emb, pos: int, weights) -> ItemContext:
        serving = self.serving
        unit, _vec, _bias = serving.policy.item_reps(emb)
        present = np.asarray(serving.present[pos], dtype=bool) & (
            serving.model.enabled.cpu().numpy() > 0
        )
        return ItemContext(
            pos=pos,
            movie_id=int(serving.catalog.movie_ids[pos]),
            user_vec=state_vector(
                serving.policy, q_network, self._q_state(state), unit, personal
            ).to(self.device),
            side=torch.from_numpy(self._side[pos]).to(self.device),
            present=torch.from_numpy(present).to(self.device),
            weights=torch.tensor(weights, dtype=torch.float32, device=self.device),
            branches={
                m: torch.from_numpy(np.asarray(serving.branches[m][pos], np.float32)).to(
                    self.device
                )
                for m in MODALITIES
            },
        )

    def _steps(self, steps: int | None) -> dict[str, int]:
        c = self.cfg
        if steps is not None:
            s = max(1, int(steps))
            return {"text": s, "image": s, "audio": s}
        return {"text": c.text_steps, "image": c.image_steps, "audio": c.audio_steps}

    # ----------------------------------------------------------------- shares (grid)
    def shares(
        self, user_id: int, movie_ids, weights=None
    ) -> dict[int, tuple[float, float, float]]:
        """Modality shares (text, image, audio) of each movie's Q for this user; sums to 1 per
        movie (all 0 if no modality moves Q). No encoder runs: 8 fusion passes per movie."""
        weights = _weights_tuple(weights)
        movie_ids = [int(m) for m in movie_ids]
        if not movie_ids:
            return {}
        phi = self._shapley_many(user_id, movie_ids, weights)[0]
        return {m: tuple(float(x) for x in row) for m, row in zip(movie_ids, normalise(phi))}

    def summary(self, user_id: int, movie_id: int, weights=None, filters=None) -> dict:
        """What the page shows at once, before any heatmap: Q, the exact Shapley shares and the
        reasons. Cached branch outputs only, no encoder runs (milliseconds)."""
        weights = _weights_tuple(weights)
        serving = self.serving
        pos = serving.row(movie_id)
        state, personal, emb = self._user(user_id, weights)
        phi, values = self._shapley_many(user_id, [int(movie_id)], weights)
        shares, signed = _share_dicts(phi)
        present = np.asarray(serving.present[pos], dtype=bool)
        absent = [m for k, m in enumerate(MODALITIES) if not present[k]]
        muted = [m for k, m in enumerate(MODALITIES) if weights[k] == 0 and present[k]]
        reasons, neighbours = self._reasons(pos, state, emb, weights, absent, filters)
        q = float(serving.policy.q_values(self._q_state(state), emb, personal)[pos])
        return {
            "q": q,
            "q_no_modalities": float(values[0, 0]),
            "shares": shares,
            "shapley": signed,
            "absent": absent,
            "muted": muted,
            "reasons": _with_shares(reasons, shares, signed),
            "neighbours": neighbours,
        }

    def _shapley_many(self, user_id, movie_ids, weights, q_network=None):
        serving = self.serving
        q_network = q_network or serving.q_network
        state, personal, emb = self._user(user_id, weights)
        unit, _vec, _bias = serving.policy.item_reps(emb)
        rows = np.array([serving.row(m) for m in movie_ids])
        user_vec = state_vector(serving.policy, q_network, self._q_state(state), unit, personal).to(
            self.device
        )
        present = torch.from_numpy(
            np.asarray(serving.present[rows], dtype=bool)
            & (serving.model.enabled.cpu().numpy() > 0)
        ).to(self.device)  # (n, 3)
        branches = {
            m: torch.from_numpy(np.asarray(serving.branches[m][rows], np.float32)).to(self.device)
            for m in MODALITIES
        }
        w = torch.tensor(weights, dtype=torch.float32, device=self.device)
        values = coalition_values(
            serving.model,
            q_network,
            user_vec,
            branches,
            present,
            torch.from_numpy(self._side[rows]).to(self.device),
            w,
        )  # (n, 8)
        gate = present.to(torch.float64) * w.to(torch.float64)  # (n, 3)
        phi = shapley(values, gate).cpu().numpy()  # (n, 3)
        return phi, values.double().cpu().numpy()

    # ----------------------------------------------------------------- full explanation
    def explain(
        self, user_id: int, movie_id: int, weights=None, steps: int | None = None, filters=None
    ) -> Explanation:
        """Everything about why ``movie_id`` scores what it does for ``user_id`` under
        ``weights``; ``steps`` overrides the Integrated Gradients step counts of ExplainConfig;
        ``filters`` (``mmrec.values.Filters``) are quoted in the reasons."""
        t0 = time.perf_counter()
        weights = _weights_tuple(weights)
        serving = self.serving
        pos = serving.row(movie_id)
        state, personal, emb = self._user(user_id, weights)
        step_counts = self._steps(steps)
        c = self.cfg
        key = (
            state_hash(state, personal),
            int(movie_id),
            weights,
            tuple(step_counts.values()),
            c.method,
            c.poster_method,
        )
        hit = self._cache.get(key)
        if hit is not None:
            reasons, neighbours = self._reasons(pos, state, emb, weights, hit.absent, filters)
            reasons = _with_shares(reasons, hit.shares, hit.shapley)
            return replace(
                hit,
                reasons=reasons,
                neighbours=neighbours,
                cached=True,
                timings={**hit.timings, "served": time.perf_counter() - t0},
            )
        with self._attr_lock:
            exp = self._compute(user_id, pos, state, personal, emb, weights, step_counts, filters)
        exp.timings["total"] = time.perf_counter() - t0
        self._cache.put(key, exp)
        return exp

    def _reasons(self, pos, state, emb, weights, absent, filters):
        serving, c = self.serving, self.cfg
        neighbours = R.similar_liked(
            pos,
            emb,
            serving.branches,
            np.asarray(serving.present, bool),
            weights,
            state.history,
            serving.positions,
            self._titles,
            c.neighbours,
            c.liked_rating,
            c.similar_percentile,
        )
        rules = filters.describe() if filters is not None else []
        genres = tuple(serving.catalog.movies.iloc[pos]["genres"])
        lines = R.reason_lines(
            neighbours, state.history, list(state.liked_genres), genres, weights, rules, absent
        )
        return lines, neighbours

    def _compute(self, user_id, pos, state, personal, emb, weights, step_counts, filters):
        serving = self.serving
        timings: dict[str, float] = {}
        t = time.perf_counter()
        q_network = serving.q_network
        ctx = self._context(q_network, state, personal, emb, pos, weights)
        qf = QForward(serving.model, q_network, ctx)
        q_policy = float(serving.policy.q_values(self._q_state(state), emb, personal)[pos])
        q_check = qf.q()
        phi, values = self._shapley_many(user_id, [int(ctx.movie_id)], weights)
        timings["shares"] = time.perf_counter() - t

        row = serving.catalog.movies.iloc[pos]
        present = {m: bool(ctx.present[k]) for k, m in enumerate(MODALITIES)}
        absent = [m for m in MODALITIES if not present[m]]
        muted = [m for m, w in zip(MODALITIES, weights) if w == 0 and present[m]]
        notes = [f"no {MEDIA[m]} for this movie: its {MEDIA[m]} share is 0" for m in absent]
        notes += [f"{m} weight is 0: the {MEDIA[m]} has no effect on the score" for m in muted]
        parts = self._attributions(qf, ctx, row, step_counts, timings, notes)
        for part in parts.values():
            notes.extend(getattr(part, "notes", None) or [])
        for m, part in parts.items():
            # the maps explain Q with the re-encoded input; say so when the feature cache (which
            # may hold bf16-encoded vectors) gives a visibly different Q
            if part is not None and abs(part.q_input - q_check) > 1e-3 * max(1.0, abs(q_check)):
                notes.append(
                    f"re-encoding the {MEDIA[m]} gives Q {part.q_input:.4f} where the cached "
                    f"features give {q_check:.4f}; the {MEDIA[m]} map explains the former"
                    + self._encoding_gap(m)
                )

        t = time.perf_counter()
        reasons, neighbours = self._reasons(pos, state, emb, weights, absent, filters)
        timings["reasons"] = time.perf_counter() - t
        shares, signed = _share_dicts(phi)
        reasons = _with_shares(reasons, shares, signed)
        return Explanation(
            user_id=int(user_id),
            movie_id=int(ctx.movie_id),
            title=str(row["title"]),
            weights=weights,
            q=q_policy,
            q_check=q_check,
            q_no_modalities=float(values[0, 0]),
            shapley=signed,
            shares=shares,
            present=present,
            absent=absent,
            muted=muted,
            text=parts["text"],
            poster=parts["image"],
            trailer=parts["audio"],
            poster_path=row["poster"] if present["image"] else None,
            audio_path=row["audio"] if present["audio"] else None,
            reasons=reasons,
            neighbours=neighbours,
            steps=step_counts,
            notes=notes,
            timings=timings,
        )

    def _encoding_gap(self, modality: str) -> str:
        """Why re-encoding may not reproduce the cached features exactly (appended to the note)."""
        precision = getattr(self._encoders.get(modality), "precision", None)
        if precision == "bf16":
            return " (the feature cache holds bf16-encoded features, the map is computed in fp32)"
        return ""

    def _attributions(self, qf, ctx, row, step_counts, timings, notes) -> dict:
        """Text / poster / trailer attributions for the active modalities (None otherwise)."""
        c = self.cfg
        ibs = c.internal_batch_size or None
        out: dict = {"text": None, "image": None, "audio": None}
        for m in MODALITIES:
            if not ctx.active(m):
                continue
            t = time.perf_counter()
            try:
                if m == "text":
                    out[m] = attribute_text(
                        qf,
                        self.encoder("text"),
                        str(row["overview"]),
                        step_counts["text"],
                        c.method,
                        ibs,
                    )
                elif m == "image":
                    out[m] = attribute_poster(
                        qf,
                        self.encoder("image"),
                        row["poster"],
                        step_counts["image"],
                        c.method,
                        c.poster_method,
                        c.poster_blur_radius,
                        ibs,
                    )
                else:
                    out[m] = self._trailer(qf, row["audio"], step_counts["audio"], notes)
            except Exception as exc:  # a file that decoded at build time may be gone now
                notes.append(f"{MEDIA[m]} attribution failed: {type(exc).__name__}: {exc}")
            timings[m] = time.perf_counter() - t
        return out

    def trailer_map(
        self, user_id: int, movie_id: int, clip, weights=None, steps: int | None = None
    ) -> tuple[TrailerAttribution | None, list[str]]:
        """The trailer map of ``movie_id``'s Q for ``user_id`` with the audio file ``clip`` in
        place of the film's own trailer (its other inputs unchanged), uncached; and the notes
        saying why there is none. For probes that move a clip's content in time
        (``mmrec.eval.span_probe``)."""
        weights = _weights_tuple(weights)
        serving = self.serving
        state, personal, emb = self._user(user_id, weights)
        ctx = self._context(serving.q_network, state, personal, emb, serving.row(movie_id), weights)
        qf = QForward(serving.model, serving.q_network, ctx)
        notes: list[str] = []
        with self._attr_lock:
            return self._trailer(qf, str(clip), self._steps(steps)["audio"], notes), notes

    def _trailer(self, qf, clip, steps, notes) -> TrailerAttribution | None:
        """The trailer map for the configured audio front end, or None with a note saying why."""
        c = self.cfg
        kind = self.serving.cfg.features.audio_kind
        if kind not in AUDIO_KINDS:
            notes.append(
                f"trailer attribution unavailable: features.audio_kind={kind!r} is not one of "
                f"{', '.join(AUDIO_KINDS)}"
            )
            return None
        enc = self.encoder("audio")
        model_dim = int(self.serving.model.cfg.audio_dim)
        if int(enc.dim) != model_dim:  # a runtime config other than the one the build used
            notes.append(
                f"trailer attribution unavailable: features.audio_kind={kind!r} gives "
                f"{enc.dim}-d audio frames but the model was trained on {model_dim}-d ones; "
                "run with the config the checkpoint was built with"
            )
            return None
        attribute = attribute_trailer_aisfx if kind == "aisfx" else attribute_trailer
        ibs = c.internal_batch_size or None
        out = attribute(qf, enc, clip, steps, c.method, c.audio_span_seconds, ibs)
        out.audio_pooling = self.serving.model.cfg.audio_pooling  # what position_caveat reads
        return out

    # ----------------------------------------------------------------- sanity check
    def sanity_check(
        self, user_id: int, movie_id: int, weights=None, steps: int | None = None
    ) -> dict[str, float]:
        """Adebayo et al.'s model-randomisation test: Spearman correlation per modality between
        the attribution maps of the trained Q-network and of a copy with re-initialised layers
        (same user state, movie, weights). Maps that barely change (rho near 1) would describe
        the input, not the model. Modalities without a map are left out."""
        weights = _weights_tuple(weights)
        base = self.explain(user_id, movie_id, weights, steps)
        serving = self.serving
        pos = serving.row(movie_id)
        state, personal, emb = self._user(user_id, weights)
        rand_q = randomized_copy(serving.q_network, self.cfg.sanity_seed)
        ctx = self._context(rand_q, state, personal, emb, pos, weights)
        qf = QForward(serving.model, rand_q, ctx)
        with self._attr_lock:
            rand = self._attributions(qf, ctx, serving.catalog.movies.iloc[pos], base.steps, {}, [])
        out: dict[str, float] = {}
        if base.text is not None and rand["text"] is not None:
            out["text"] = spearman(
                [s for _, s in base.text.tokens], [s for _, s in rand["text"].tokens]
            )
        if base.poster is not None and rand["image"] is not None:
            out["image"] = spearman(base.poster.grid, rand["image"].grid)
        if base.trailer is not None and rand["audio"] is not None:
            out["audio"] = spearman(base.trailer.heatmap, rand["audio"].heatmap)
        return out
