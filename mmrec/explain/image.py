"""Poster attributions: Integrated Gradients inside EfficientNet (or on the pixels).

``layer_ig`` (default): the poster runs once through the backbone's first stages to a
``(C, 14, 14)`` feature map (stride 16: EfficientNet-Lite0 stage 4, ResNet layer3); Integrated
Gradients then walks from the feature map of a blurred copy of the poster (the baseline: same
colours, no shapes or lettering) to the poster's own, through the remaining stages, the global
average pool, the image branch, the fusion and Q. The channel sum of the attributions is a
signed 14 x 14 map (twice LayerGradCam's 7 x 7 on the last block), upsampled bilinearly to the
poster frame, and it sums to ``Q(poster) - Q(blurred poster)`` up to the convergence delta.
The map is taken before the last stride-2 stage on purpose: at the last conv block the
gradient of a global average pool is the same at every position, so the map would only
re-weight the input's own channel maps and hardly depend on the model (the randomisation
check showed rho ~0.9 there). Cheap: the early high-resolution stages run once.

``pixel_ig``: Integrated Gradients on the normalised pixels from the same blurred baseline;
finer detail, ``steps`` full backbone passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from mmrec.explain.forward import QForward, integrated_gradients

POSTER_METHODS = ("layer_ig", "pixel_ig")


def split_backbone(image_encoder):
    """(head, tail) callables: head ``(B, 3, S, S) -> (B, C, S/16, S/16)``, tail from there to
    the last conv feature map ``(B, dim, S/32, S/32)``; ``tail(head(x)) == feature_map(x)``."""
    b = image_encoder.backbone
    if image_encoder.kind == "efficientnet_lite0":

        def head(x):
            x = b.bn1(b.conv_stem(x))
            for block in b.blocks[:5]:
                x = block(x)
            return x  # (B, 112, 14, 14)

        def tail(h):
            for block in b.blocks[5:]:
                h = block(h)
            return b.bn2(b.conv_head(h))  # (B, 1280, 7, 7)

    else:

        def head(x):
            x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
            return b.layer3(b.layer2(b.layer1(x)))  # (B, 256 | 1024, 14, 14)

        def tail(h):
            return b.layer4(h)  # (B, 512 | 2048, 7, 7)

    return head, tail


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
    poster_method: str = "layer_ig",
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

    if poster_method == "layer_ig":
        head, tail = split_backbone(image_encoder)
        with torch.no_grad():
            mids = head(torch.cat([x, x_base]))  # (2, C, S/16, S/16)
        inputs, baseline = mids[:1], mids[1:]

        def forward(mid: torch.Tensor) -> torch.Tensor:
            return qf.from_feature_map(tail(mid))  # (B,)

    else:
        inputs, baseline = x, x_base

        def forward(px: torch.Tensor) -> torch.Tensor:
            return qf.from_pixels(image_encoder, px)  # (B,)

    attr, delta, (q_in, q_base) = integrated_gradients(
        forward, inputs, baseline, steps, method, internal_batch_size
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
    return PosterAttribution(
        heatmap=heatmap.cpu(),
        grid=grid.cpu(),
        total=float(attr.sum()),
        q_input=q_in,
        q_baseline=q_base,
        delta=delta,
        steps=int(steps),
        method=poster_method,
    )
