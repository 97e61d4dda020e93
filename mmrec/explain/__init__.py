"""Explanations of the policy's picks (issue 6): modality shares, synopsis token highlights,
poster and trailer-spectrogram heatmaps, reasons in words, and the randomisation sanity check.

``Explainer(svc).explain(user_id, movie_id, weights, steps)`` is what ``mmrec.service`` calls;
``Explainer.shares`` serves the share bars of the home grid. The differentiable wrapper from
encoder inputs to ``Q_u(s, a)`` is in :mod:`mmrec.explain.forward`; one module per modality
runs Captum on it; :mod:`mmrec.explain.render` turns the results into images.
"""

from mmrec.explain.explainer import Explainer, Explanation

__all__ = ["Explainer", "Explanation"]
