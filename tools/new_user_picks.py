"""Two new users who like three well-known films each: the first 12 picks of the served ranker.

Usage: python tools/new_user_picks.py CHECKPOINTS [TAG] [DB]  (real catalog at /tmp/mmrec-real)
"""

import sys

from mmrec.config import load_config
from mmrec.service import Recommender
from mmrec.threads import use_serving_threads

cfg = load_config(data_dir="/tmp/mmrec-real", checkpoints_dir=sys.argv[1])
cfg.paths.db_path = (
    sys.argv[3] if len(sys.argv) > 3 else "/tmp/new-user-picks.sqlite3"
)  # never the catalog's own store
use_serving_threads()  # this process serves like the dashboard (mmrec.threads)
svc = Recommender(cfg)
print("ranker:", "hybrid" if svc.hybrid is not None else "dqn")
m = svc.catalog.movies


def find(title, year):
    hit = m[(m["title"] == title) & (m["year"] == year)]
    assert len(hit) == 1, (
        title,
        year,
        m[m["title"].str.contains(title.split()[-1])][["title", "year"]].head(),
    )
    return int(hit.index[0])


fans = {
    "crime fan": [("The Godfather", 1972), ("Pulp Fiction", 1994), ("Goodfellas", 1990)],
    "animation fan": [("Toy Story", 1995), ("Finding Nemo", 2003), ("Monsters, Inc.", 2001)],
}
for name, films in fans.items():
    ids = [find(t, y) for t, y in films]
    uid = svc.create_user(f"{name} {sys.argv[2] if len(sys.argv) > 2 else ''}", liked_movies=ids)
    picks = svc.recommend(uid, k=12)
    print(f"\n{name} likes: " + "; ".join(f"{t} ({y})" for t, y in films))
    for p in picks:
        print(f"  {p.rank:2d}. {p.title} ({p.year}) [{', '.join(p.genres)}]")
