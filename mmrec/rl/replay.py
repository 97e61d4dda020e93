"""One simulated episode with the user dynamics on, step by step (issue 14, the Learning page).

``replay_episode`` plays one held-out simulated user through ``MovieRecEnv`` with every dynamic
of ``mmrec.rl.dynamics`` switched on (or the given ``EnvConfig``'s) and records, after each
recommendation, what the simulator's *hidden* state did: the static taste for the film, the
interest the user actually felt (taste moved by satiation and novelty), the satiation per genre,
the session's satisfaction, the chance of leaving after this film, whether the user left and
whether they came back for another session. Policies see none of this; the Learning page shows
it so a reader can watch why planning could matter (a run of one genre wears it out; an unhappy
user leaves).
"""

from __future__ import annotations

import numpy as np

from mmrec.rl.dynamics import leave_probability, with_dynamics
from mmrec.rl.env import MovieRecEnv


def greedy_action(ranker, env: MovieRecEnv, mask: np.ndarray) -> int:
    """The catalog row ``ranker`` puts first among the films ``mask`` allows: rankers that read
    the env (``score_env``: the myopic oracle, off-the-shelf agents) or score the user state
    (``score(user_state, rows)``). Shared by ``eval.policy.run_sessions`` and the replay."""
    if hasattr(ranker, "score_env"):
        scores = np.asarray(ranker.score_env(env), dtype=np.float64)  # (N,)
    else:
        scores = np.asarray(
            ranker.score(env.user_state, np.arange(env.action_space.n)), dtype=np.float64
        )
    scores[~mask] = -np.inf
    return int(np.argmax(scores))


def replay_episode(
    index, item_emb: np.ndarray, user_model, env_cfg, ranker, user_id: int, seed: int = 0,
    all_dynamics: bool = True,
) -> dict:  # fmt: skip
    """Play one cold-start episode of ``user_id`` greedily with ``ranker``.

    ``ranker``: anything ``eval.policy.run_sessions`` plays (``score(user_state, idx)``, or
    ``score_env(env)`` such as the myopic oracle). Returns ``{"genres", "steps", "satiation"
    (steps x genres), "onboarding_genres", "reward", "sessions"}``; each step is a dict with
    the catalog row, session, static taste, interest, rating, watch minutes, satisfaction after
    the film, leave probability, left, returned.
    """
    cfg = with_dynamics(env_cfg) if all_dynamics else env_cfg
    env = MovieRecEnv(index, item_emb, user_model, cfg, users=np.array([user_id]), training=False)
    _, info = env.reset(seed=int(seed), options={"user_id": int(user_id)})
    onboarding = list(env.user_state.liked_genres)
    steps, satiation, total = [], [], 0.0
    for _ in range(env.max_episode_steps):
        mask = info["action_mask"]
        if not mask.any():
            break
        action = greedy_action(ranker, env, mask)
        session = int(env.dynamics.session)
        _, reward, terminated, truncated, info = env.step(action)
        total += reward
        dyn = env.dynamics
        steps.append(
            {
                "row": action,
                "movie_id": int(info["movie_id"]),
                "session": session + 1,
                "static": float(info["static_rating"]),
                "interest": float(info["true_rating"]),
                "rating": float(info["rating"]),
                "watch_minutes": float(info["watch_minutes"]),
                "reward": float(reward),
                "satisfaction": float(dyn.satisfaction),
                "leave_probability": float(leave_probability(dyn.satisfaction, cfg))
                if cfg.session_exit
                else 0.0,
                "left": bool(info.get("left", False)),
                "returned": bool(info.get("returned", False)),
            }
        )
        satiation.append(dyn.satiation.astype(float).tolist())
        if terminated or truncated:
            break
    return {
        "genres": list(index.genres),
        "onboarding_genres": onboarding,
        "steps": steps,
        "satiation": satiation,
        "reward": float(total),
        "sessions": int(steps[-1]["session"]) if steps else 0,
        "config": {
            "satiation": cfg.satiation,
            "novelty": cfg.novelty,
            "session_exit": cfg.session_exit,
            "runtime_watch": cfg.runtime_watch,
            "returning": cfg.returning,
            "episode_length": cfg.episode_length,
            "max_sessions": cfg.max_sessions,
        },
    }
