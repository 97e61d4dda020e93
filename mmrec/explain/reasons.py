"""Reasons in words: which liked movies this pick is close to, through which modality, and which
rules shaped the list.

Closeness is measured where the policy sees it, in the fused embedding space under the current
modality weights. "Which modality makes them similar" compares the two movies' branch outputs
one modality at a time; raw cosine levels differ between branches (ReLU outputs are all
positive), so each similarity is ranked against the similarities of this pick to every other
movie in the same branch, and a modality is named when the liked movie is in the top
``1 - similar_percentile`` of that ranking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmrec.models.fusion import MODALITIES

PHRASES = {"text": "story", "image": "poster style", "audio": "trailer music and sound"}


@dataclass
class Neighbour:
    movie_id: int
    title: str
    rating: float  # this user's rating of it
    similarity: float  # cosine in fused space (current weights)
    modality_similarity: dict[str, float] = field(default_factory=dict)  # branch cosines
    modality_percentile: dict[str, float] = field(default_factory=dict)  # rank among catalog
    because: list[str] = field(default_factory=list)  # modalities that make them similar


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def similar_liked(
    pos: int,
    emb: np.ndarray,
    branches: dict[str, np.ndarray],
    present: np.ndarray,
    weights: tuple[float, float, float],
    history: list[tuple[int, float]],
    positions: dict[int, int],
    titles,
    k: int = 3,
    liked_rating: float = 4.0,
    similar_percentile: float = 0.8,
) -> list[Neighbour]:
    """The ``k`` movies rated at least ``liked_rating`` nearest to catalog row ``pos`` in fused
    space ``emb (N, D)``, each with the modalities that make it similar.

    ``branches[name] (N, H)``, ``present (N, 3)``, ``history`` the user's (movie_id, rating),
    ``positions`` movie id -> row, ``titles`` indexable by row."""
    liked: dict[int, float] = {}
    for movie_id, rating in history:  # the latest rating of a movie counts
        if int(movie_id) in positions:
            liked[int(movie_id)] = float(rating)
    liked = {m: r for m, r in liked.items() if r >= liked_rating and positions[m] != pos}
    if not liked:
        return []
    rows = np.array([positions[m] for m in liked])
    unit = _unit(emb)
    sims = unit[rows] @ unit[pos]  # (n,)
    order = np.argsort(-sims, kind="stable")[:k]
    out = []
    for j in order:
        row = int(rows[j])
        nb = Neighbour(
            movie_id=int(list(liked)[j]),
            title=str(titles[row]),
            rating=float(list(liked.values())[j]),
            similarity=float(sims[j]),
        )
        for m, name in enumerate(MODALITIES):
            if not (present[pos, m] and present[row, m] and weights[m] > 0):
                continue
            b = _unit(branches[name])
            others = present[:, m].copy()
            others[pos] = False
            all_sims = b[others] @ b[pos]  # (n_others,)
            s = float(b[row] @ b[pos])
            nb.modality_similarity[name] = s
            nb.modality_percentile[name] = float((all_sims < s).mean()) if len(all_sims) else 0.0
        ranked = sorted(nb.modality_percentile.items(), key=lambda kv: -kv[1])
        nb.because = [n for n, p in ranked if p >= similar_percentile] or [n for n, _ in ranked[:1]]
        out.append(nb)
    return out


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def sentence(nb: Neighbour) -> str:
    stars = f"{nb.rating:g}★"
    if not nb.because:
        return f"close to {nb.title}, which you rated {stars}"
    return (
        f"similar {_join([PHRASES[m] for m in nb.because])} to {nb.title}, which you rated {stars}"
    )


def share_line(shares: dict[str, float], shapley: dict[str, float]) -> str | None:
    """The reason that matches the share bar: which inputs carry this pick's score.

    ``shares`` (modality -> |Shapley| share, summing to 1) and ``shapley`` (signed values): the
    largest share is named first, with its sign (a part may *lower* the score)."""
    ranked = sorted((m for m in MODALITIES if shares.get(m, 0.0) > 0), key=lambda m: -shares[m])
    if not ranked:
        return None
    names = {"text": "synopsis", "image": "poster", "audio": "trailer"}

    def part(m: str) -> str:
        verb = "raises" if shapley.get(m, 0.0) >= 0 else "lowers"
        return f"the {names[m]} ({shares[m]:.0%}, {verb} it)"

    head = f"mostly {part(ranked[0])}" if shares[ranked[0]] >= 0.5 else part(ranked[0])
    rest = [part(m) for m in ranked[1:] if shares[m] >= 0.05]
    return "what carries this score: " + head + ("; then " + ", ".join(rest) if rest else "")


def reason_lines(
    neighbours: list[Neighbour],
    history: list[tuple[int, float]],
    liked_genres: list[str],
    movie_genres: tuple[str, ...],
    weights: tuple[float, float, float],
    rules: list[str],
    absent: list[str],
) -> list[str]:
    """Plain-language reasons, most specific first."""
    lines = [sentence(nb) for nb in neighbours]
    common = sorted(set(movie_genres) & set(liked_genres))
    if common:
        lines.append("matches the genres you picked: " + ", ".join(common))
    if not history:
        lines.append("you have not rated anything yet: this is the policy's cold-start choice")
    elif not neighbours:
        lines.append(
            "none of the movies you rated 4★ or more is close to it; the policy ranks it "
            "from your whole history"
        )
    muted = [PHRASES[m] for m, w in zip(MODALITIES, weights) if w == 0]
    if muted:
        lines.append("ignored by your weights: " + ", ".join(muted))
    if absent:
        lines.append(
            "this movie has no "
            + ", ".join(
                {"text": "synopsis", "image": "poster", "audio": "trailer"}[m] for m in absent
            )
        )
    lines.append(
        "rules: " + "; ".join(rules)
        if rules
        else "rules: no filters; movies you rated or dismissed are never shown"
    )
    return lines
