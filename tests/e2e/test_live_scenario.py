"""The live loop as a new user, in real headless Chromium (issue #12's scenario, tiny catalog).

Onboard choosing Sci-Fi and Romance (as ``python -m mmrec.ui.scenario`` does); rate three Sci-Fi picks 5 stars and two Romance picks 1 star by
clicking the stars on the For you grid. The issue's full criterion (the grid ends with more
Sci-Fi and fewer Romance films than at the start) cannot hold on the 40-movie test catalog: it
has six Sci-Fi films, and after three are rated the rest are already on a 12-card grid. This
weaker, tiny-catalog version asserts what must hold on any catalog:

- what the browser did is what is stored: the onboarding genre, the five ratings as clicked;
- the ratings moved the ranking the right way: among the films still unrated, the Sci-Fi ones
  rank no lower and the Romance ones no higher than they did for this user right after
  onboarding, and at least one of the two moved (the whole catalog ranked through the
  service, read back from the same database; Sci-Fi may already sit at the top).

The full criterion is checked by hand on the 2,000-movie demo (see the issue's closing note).
Skips when Chromium is missing, unless ``MMREC_REQUIRE_BROWSER=1`` (CI), where it fails.
"""

from __future__ import annotations

import statistics

import pytest
from e2e_helpers import onboarded_page, require_browser, shot  # noqa: E402  (tests/e2e is on sys.path)

pytestmark = pytest.mark.e2e

from mmrec.ui.scenario import DISLIKED, LIKED, ONBOARDING, PLAN, pick_to_rate  # noqa: E402


@pytest.fixture(scope="module")
def built(tiny_built):
    require_browser()
    return tiny_built


def service(cfg, db):
    """A Recommender reading the browser session's database (what a restart would see)."""
    from mmrec.config import load_config
    from mmrec.service import Recommender

    check = load_config(data_dir=cfg.paths.data_dir, checkpoints_dir=cfg.paths.checkpoints_dir)
    check.paths.db_path = str(db)
    return Recommender.from_config(check)


def ranking(cfg, db, user_id: int) -> list[int]:
    """Every candidate film for the user, best first, as the service ranks them (no ε)."""
    svc = service(cfg, db)
    return [p.movie_id for p in svc.recommend(user_id, k=len(svc.catalog.movie_ids))]


def mean_position(order: list[int], among: set[int], wanted: set[int]) -> float:
    """Mean position (0 = best) of ``wanted`` films in ``order`` restricted to ``among``."""
    kept = [m for m in order if m in among]
    return statistics.fmean(i for i, m in enumerate(kept) if m in wanted)


def test_scifi_newcomer_rates_and_the_ranking_follows(built, tmp_path):
    from mmrec.ui import browser as B

    cfg = built
    svc = service(cfg, tmp_path / "unused.sqlite3")
    genres = {
        int(mid): set(g) for mid, g in zip(svc.catalog.movie_ids, svc.catalog.movies["genres"])
    }
    db = tmp_path / "ratings.sqlite3"
    clicked: dict[int, float] = {}
    with onboarded_page(cfg, db, "nova", genres=ONBOARDING) as page:
        user_id = int(page.url.split("user=")[1].split("&")[0])
        before = ranking(cfg, db, user_id)
        shot(page, "live-01-start")
        for n, (genre, other, stars) in enumerate(PLAN):
            grid = B.card_ids(page)
            mid = pick_to_rate(grid, genres, genre, other)
            assert mid is not None, f"no {genre} pick on the grid to rate (step {n + 1}): {grid}"
            B.rate_card(page, mid, stars)
            clicked[mid] = float(stars)
            shot(page, f"live-{n + 2:02d}-rated-{genre}-{stars}")

    end = service(cfg, db)
    user = next(u for u in end.store.users() if u["user_id"] == user_id)
    assert user["name"] == "nova" and user["profile"]["liked_genres"] == ONBOARDING
    assert dict(end.store.ratings(user_id)) == clicked
    after = ranking(cfg, db, user_id)
    still = set(after)  # unrated at the end: ranked both times
    liked = {m for m in still if LIKED in genres[m] and DISLIKED not in genres[m]}
    disliked = {m for m in still if DISLIKED in genres[m] and LIKED not in genres[m]}
    assert liked and disliked, (liked, disliked)
    moves = {
        LIKED: (mean_position(before, still, liked), mean_position(after, still, liked)),
        DISLIKED: (mean_position(before, still, disliked), mean_position(after, still, disliked)),
    }
    # neither genre moves the wrong way, and at least one moves the right way (a genre already
    # at the top, as Sci-Fi is after a strong onboarding, cannot rank higher)
    liked_ok = moves[LIKED][1] <= moves[LIKED][0]
    disliked_ok = moves[DISLIKED][1] >= moves[DISLIKED][0]
    assert liked_ok and disliked_ok, moves
    assert moves[LIKED][1] < moves[LIKED][0] or moves[DISLIKED][1] > moves[DISLIKED][0], moves
