"""Recommendation policy: user state, simulator environment, DQN, baselines, training.

Every ranker (DQN and baselines) implements ``score(user_state, item_idx) -> scores``.
"""
