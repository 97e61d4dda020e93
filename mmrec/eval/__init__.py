"""Evaluation: metrics (classification and ranking), the per-modality table, policy benchmarks."""
