"""Poster attributions: Integrated Gradients on EfficientNet's last conv block (or the pixels).

``feature_ig`` (default): the poster runs through the frozen backbone once; Integrated
Gradients then walks from the feature map of a blurred copy of the poster (the baseline: same
colours, no shapes or lettering) to the poster's own ``(1280, 7, 7)`` feature map through the
global average pool, the image branch, the fusion and Q. The channel sum of the attributions is
a signed 7 x 7 map, upsampled bilinearly to the 224-px poster frame (the same resolution as
LayerGradCam on this layer, but with completeness: the map sums to
``Q(poster) - Q(blurred poster)``). Cheap: the backbone is not re-run per step.

``pixel_ig``: Integrated Gradients on the normalised pixels from the same blurred baseline;
finer detail, ``steps`` backbone passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients
from PIL import Image, ImageFilter

from mmrec.explain.forward import QForward

POSTER_METHODS = ("feature_ig", "pixel_ig")


@dataclass
class PosterAttribution:
    heatmap: torch.Tensor  # (S, S) float32 signed, in the squashed S x S poster frame
    grid: torch.Tensor  # the attribution map before upsampling ((7, 7) or (S, S))
    total: float  # sum of all attributions
    q_input: float  # Q with the poster
    q_baseline: float  # Q with the blurred poster
    delta: float  # convergence delta: total - (q_input - q_baseline)
    steps: int
    method: str
    notes: list[str] = field(default_factory=list)


def blurred(image: Image.Image, size: int, radius: float) -> Image.Image:
    """The baseline poster: resized to the model frame, then Gaussian-blurred."""
    small = image.convert("RGB").resize((size, size), Image.BICUBIC)
    return small.filter(ImageFilter.GaussianBlur(radius))


def attribute_poster(
    qf: QForward,
    image_encoder,
    poster: str,
    steps: int,
    method: str = "gausslegendre",
    poster_method: str = "feature_ig",
    blur_radius: float = 12.0,
    internal_batch_size: int | None = None,
) -> PosterAttribution:
    """Heatmap of ``Q_u(s, a)`` over the poster (see the module docstring)."""
    if poster_method not in POSTER_METHODS:
        raise ValueError(f"poster_method={poster_method!r}: expected one of {POSTER_METHODS}")
    decoded = image_encoder.decode(poster)
    if decoded.image is None:
        raise ValueError(decoded.problem)
    size = int(image_encoder.cfg.image_size)
    device = image_encoder.device
    x = image_encoder.preprocess(decoded.image).unsqueeze(0).to(device)  # (1, 3, S, S)
    x_base = image_encoder.preprocess(blurred(decoded.image, size, blur_radius))
    x_base = x_base.unsqueeze(0).to(device)  # (1, 3, S, S)

    if poster_method == "feature_ig":
        with torch.no_grad():
            fmaps = image_encoder.feature_map(torch.cat([x, x_base]))  # (2, C, h, w)
        inputs, baseline = fmaps[:1], fmaps[1:]

        def forward(fm: torch.Tensor) -> torch.Tensor:
            return qf.from_feature_map(fm)  # (B,)

    else:
        inputs, baseline = x, x_base

        def forward(px: torch.Tensor) -> torch.Tensor:
            return qf.from_pixels(image_encoder, px)  # (B,)

    ig = IntegratedGradients(forward)
    attr, delta = ig.attribute(
        inputs,
        baselines=baseline,
        n_steps=int(steps),
        method=method,
        internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    grid = attr.sum(dim=1)[0].detach().float()  # (h, w): channels summed, sign kept
    heatmap = grid
    if grid.shape != (size, size):
        heatmap = F.interpolate(
            grid[None, None], size=(size, size), mode="bilinear", align_corners=False
        )[0, 0]  # (S, S)
        # per pixel: each cell's attribution is spread over the pixels it covers, so the map
        # still sums (up to interpolation at the borders) to the attribution total
        heatmap = heatmap * (grid.numel() / heatmap.numel())
    with torch.no_grad():
        q_in, q_base = (float(v) for v in forward(torch.cat([inputs, baseline])))
    return PosterAttribution(
        heatmap=heatmap.cpu(),
        grid=grid.cpu(),
        total=float(attr.sum()),
        q_input=q_in,
        q_baseline=q_base,
        delta=float(delta.abs().max()),
        steps=int(steps),
        method=poster_method,
    )
