"""Explanations of the policy's picks (issue 6): modality shares, synopsis token highlights,
poster and trailer-spectrogram heatmaps, reasons in words, and the randomisation sanity check.

``Explainer(svc.serving_state()).explain(user_id, movie_id, weights, steps)`` is what
``mmrec.service`` calls (:class:`mmrec.explain.serving.ServingState`: what it reads);
``Explainer.shares`` serves the share bars of the home grid. The differentiable wrapper from
encoder inputs to ``Q_u(s, a)`` is in :mod:`mmrec.explain.forward`; one module per modality
runs Captum on it; :mod:`mmrec.explain.render` turns the results into images.
"""

from mmrec.explain.explainer import Explainer, Explanation
from mmrec.explain.serving import ServingState

__all__ = ["Explainer", "Explanation", "ServingState"]
