"""The parts of the demo generator, one per responsibility; ``mmrec.data.demo`` documents the
generative model and writes the catalog.

- ``vocabulary``: genres, themes, moods, style features (tables)
- ``text``: phrase pools, titles and synopses
- ``latents``: hidden movie attributes, user tastes, ratings
- ``motifs``: drawing primitives and the per-genre motif table (``MOTIFS``)
- ``posters``: palettes and ``render_poster``
- ``trailers``: ``render_trailer`` and reproducible Ogg bytes
"""
