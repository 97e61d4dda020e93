"""Data layer: catalog loader, demo generator, MovieLens import, hidden user model."""
