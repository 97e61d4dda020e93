"""mmrec: a multimodal movie recommender (synopsis, poster, trailer audio) with a DQN policy."""

__version__ = "0.1.0"
