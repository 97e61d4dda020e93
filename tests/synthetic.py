"""A labelled in-memory catalog + features for model tests (no files, no encoders):
``labelled_catalog(ids, genres, labels, text, image, audio, ...)`` -> (Catalog, ItemFeatures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmrec.data.catalog import Catalog
from mmrec.features.store import ItemFeatures


def labelled_catalog(ids, genres, labels, text, image, audio, *, has_image=None, has_audio=True,
                     data_dir="synthetic"):  # fmt: skip
    """Movies ``ids`` with the genres where ``labels`` (N, G) is 1 and these feature arrays;
    text always present, image where ``has_image`` (default all), audio where ``has_audio``."""
    n = len(ids)
    movies = pd.DataFrame(
        {
            "title": [f"m{i}" for i in ids],
            "genres": [tuple(g for g, v in zip(genres, r) if v) for r in labels],
        },
        index=pd.Index(ids, name="movieId"),
    )
    catalog = Catalog(
        data_dir=Path(data_dir),
        movies=movies,
        ratings=pd.DataFrame(columns=["userId", "movieId", "rating", "timestamp"]),
        genres=list(genres),
    )
    features = ItemFeatures(
        movie_ids=np.asarray(ids, np.int64),
        text=text,
        image=image,
        audio=audio,
        has_text=np.ones(n, bool),
        has_image=np.ones(n, bool) if has_image is None else has_image,
        has_audio=np.full(n, bool(has_audio)) if np.isscalar(has_audio) else has_audio,
        audio_kind="logmel",
    )
    return catalog, features
