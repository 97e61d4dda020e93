"""Value types shared by the service, explanations, evaluation and the UI.

Plain frozen/simple dataclasses with no behaviour beyond formatting, importable without torch,
the catalog or the models: ``mmrec.service`` (the facade) returns them, ``mmrec.explain`` takes
them, and the pages build them from the sidebar. ``mmrec.service`` re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ServiceError(Exception):
    """A request the service cannot honour (unknown user or movie, models not built...)."""


@dataclass(frozen=True)
class Weights:
    text: float = 1.0
    image: float = 1.0
    audio: float = 1.0

    def clipped(self) -> Weights:
        return Weights(*(float(min(1.0, max(0.0, w))) for w in self.as_tuple()))

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.text, self.image, self.audio)

    def key(self) -> tuple[float, float, float]:
        return tuple(round(w, 2) for w in self.clipped().as_tuple())


@dataclass(frozen=True)
class Filters:
    include_genres: tuple[str, ...] = ()  # any of these ("only sci-fi")
    exclude_genres: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    min_avg_rating: float | None = None  # "only highly rated"

    def describe(self) -> list[str]:
        out = []
        if self.include_genres:
            out.append("only " + " / ".join(self.include_genres))
        if self.exclude_genres:
            out.append("no " + " / ".join(self.exclude_genres))
        if self.year_min or self.year_max:
            out.append(f"years {self.year_min or '...'}-{self.year_max or '...'}")
        if self.min_avg_rating:
            out.append(f"average rating >= {self.min_avg_rating:.1f}")
        return out


@dataclass
class Pick:
    movie_id: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    overview: str
    poster: str | None
    audio: str | None
    q: float  # the DQN's Q for the user's onboarding state (the prior part of ``score``)
    rank: int  # 1-based rank by ``score`` among the returned picks
    exploration: bool = False
    reason: str = ""
    score: float = 0.0  # what ranks the list: z(Q) + weight * posterior-mean rating


@dataclass
class RateResult:
    picks: list[Pick]
    entered: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    q_moves: dict[int, float] = field(default_factory=dict)  # movie id -> score change
    telemetry: dict = field(default_factory=dict)
    note: str = ""  # why the list changed (or why it did not), in words
    replaced: int = 0  # kept picks replaced by better ones (the rated card's slot not counted)
