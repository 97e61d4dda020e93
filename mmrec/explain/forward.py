"""The wrapper forward that explanations differentiate: encoder inputs -> Q_u(s, a).

What is explained is exactly the score that ranked the movie for this user
(``mmrec.rl.online.PersonalPolicy.q_values``)::

    Q_u(s, a) = <state_tower(s) + delta_u, item_vec(x_a)> + item_bias(x_a)
    x_a       = [ normalize(fuse(t_a, i_a, a_a, present_a, weights)), side features of a ]

with the user's state vector ``state_tower(s) + delta_u`` held fixed (it depends on the
history, not on movie a). :class:`QForward` is that function of the three branch outputs
``(t, i, a)``; its ``from_*`` methods re-enter one frozen encoder each (MiniLM token embeddings,
the poster's last conv feature map or pixels, the log-mel spectrogram or the aisfx CNN's last
feature map) while the other two branches stay at their cached values. Captum attributes
through these callables; nothing here calls Captum, so the same forward also serves
completeness checks and the sanity check.

This module is the only place explanations re-enter the frozen encoders (house style:
attribution code lives apart from the model, as one small wrapper forward over the modalities).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from mmrec.models.fusion import MODALITIES, FusionModel


def unit_rows(emb: torch.Tensor) -> torch.Tensor:
    """``(B, D)`` rows scaled to unit length, as ``mmrec.rl.state.normalize_embeddings`` does
    (norm floored at 1e-8 so an all-zero row stays zero); differentiable."""
    return emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-8)  # (B, D)


@dataclass
class ItemContext:
    """Everything about one (user, movie, weights) that the wrapper forward holds fixed."""

    pos: int  # catalog row of the movie
    movie_id: int
    user_vec: torch.Tensor  # (E,) state_tower(s) + delta_u, held fixed
    side: torch.Tensor  # (F,) id-free side features of the movie (DQNAgent.item_side)
    present: torch.Tensor  # (3,) bool: text, image, audio available for this movie
    weights: torch.Tensor  # (3,) float modality weights in [0, 1]
    branches: dict[str, torch.Tensor]  # name -> (H,) cached branch outputs of the movie

    @property
    def gate(self) -> torch.Tensor:
        """(3,) effective branch gate ``weight * present`` (0 = the branch has no effect)."""
        return self.weights * self.present.to(self.weights.dtype)

    def active(self, modality: str) -> bool:
        return bool(self.gate[MODALITIES.index(modality)] > 0)


class QForward:
    """``Q_u(s, a)`` as a differentiable function of one modality's input at a time.

    Every method returns ``(B,)`` Q-values for a batch of B variants of the same movie (Captum
    batches the interpolation points of Integrated Gradients this way).
    """

    def __init__(self, model: FusionModel, q_network: nn.Module, ctx: ItemContext):
        self.model = model
        self.q_network = q_network
        self.ctx = ctx

    # ----------------------------------------------------------------- fusion + Q (cheap part)
    def from_branches(self, t: torch.Tensor, i: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Branch outputs, each ``(B, H)`` or ``(1, H)`` (broadcast) -> Q ``(B,)``."""
        batch = max(t.shape[0], i.shape[0], a.shape[0])
        t, i, a = (x.expand(batch, -1) for x in (t, i, a))  # (B, H) x3
        present = self.ctx.present.unsqueeze(0).expand(batch, 3)  # (B, 3)
        emb = self.model.fuse(t, i, a, present, self.ctx.weights)  # (B, D)
        side = self.ctx.side.unsqueeze(0).expand(batch, -1)  # (B, F)
        x_a = torch.cat([unit_rows(emb), side], dim=1)  # (B, D + F)
        vec, bias = self.q_network.items(x_a)  # (B, E), (B,)
        return vec @ self.ctx.user_vec + bias  # (B,)

    def cached(self, name: str) -> torch.Tensor:
        return self.ctx.branches[name].unsqueeze(0)  # (1, H)

    def q(self) -> float:
        """Q from the cached branch outputs: the score the movie was ranked with."""
        with torch.no_grad():
            return float(self.from_branches(*(self.cached(m) for m in MODALITIES))[0])

    def from_coalitions(self, mask: torch.Tensor) -> torch.Tensor:
        """``mask (K, 3)`` 0/1: which branches keep their cached output (others zero) -> ``(K,)``.

        A zero branch output is exactly what a weight of 0 or a missing modality feeds the fusion
        (``fusion.gate``), so this is the "modality removed" baseline."""
        m = mask.to(self.ctx.weights.dtype)
        t, i, a = (self.cached(name) * m[:, k : k + 1] for k, name in enumerate(MODALITIES))
        return self.from_branches(t, i, a)  # (K,)

    # ----------------------------------------------------------------- one modality re-entered
    def from_text_features(self, text: torch.Tensor) -> torch.Tensor:
        """MiniLM sentence vectors ``(B, 384)`` -> Q ``(B,)`` (image, audio at cached values)."""
        t = self.model.text_branch(text)  # (B, H)
        return self.from_branches(t, self.cached("image"), self.cached("audio"))

    def from_image_features(self, image: torch.Tensor) -> torch.Tensor:
        """Pooled poster features ``(B, 1280)`` -> Q ``(B,)``."""
        i = self.model.image_branch(image)  # (B, H)
        return self.from_branches(self.cached("text"), i, self.cached("audio"))

    def from_audio_features(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio sequence ``(B, T, F)`` -> Q ``(B,)``."""
        a = self.model.audio_branch(audio)  # (B, H)
        return self.from_branches(self.cached("text"), self.cached("image"), a)

    def from_token_ids(
        self, text_encoder, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Token ids ``(B, L)`` through MiniLM -> Q ``(B,)``. LayerIntegratedGradients hooks
        ``text_encoder.embedding_layer`` inside this call."""
        batch = input_ids.shape[0]
        mask = attention_mask.expand(batch, -1)  # (B, L)
        types = torch.zeros_like(input_ids)  # (B, L) single-segment input
        text = text_encoder.forward_ids(input_ids, mask, types)  # (B, 384)
        return self.from_text_features(text)

    def from_feature_map(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Poster's last conv feature map ``(B, 1280, 7, 7)`` -> Q ``(B,)`` (the encoder's own
        global average pool, then the image branch)."""
        return self.from_image_features(feature_map.mean(dim=(2, 3)))  # (B, 1280) -> (B,)

    def from_pixels(self, image_encoder, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised poster pixels ``(B, 3, S, S)`` -> Q ``(B,)``."""
        return self.from_image_features(image_encoder.forward(pixels))

    def from_aisfx_map(self, aisfx_encoder, feature_map: torch.Tensor) -> torch.Tensor:
        """aisfx CNN's last feature map ``(B, 512, T', 12)`` -> the encoder's windowed pooling
        ``(B, T, 512)`` (differentiable) -> Q ``(B,)``."""
        return self.from_audio_features(aisfx_encoder.sequence_from_map(feature_map))

    def from_logmel(self, audio_frontend, logmel: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrogram in dB ``(B, n_mels, frames)`` -> the frontend's pooled
        ``(B, T, n_mels)`` sequence (differentiable) -> Q ``(B,)``."""
        return self.from_audio_features(audio_frontend.sequence_from_logmel(logmel))


# ----------------------------------------------------------------------------- building contexts


def state_vector(policy, q_network: nn.Module, state, unit_emb: np.ndarray, personal: dict):
    """``state_tower(s) + delta_u`` ``(E,)`` for ``q_network`` (the live one or a randomised
    copy), with the user's personal adapter ``delta_u`` from their stored policy state."""
    agent = policy.agent
    enc = agent.encoder.encode(state, unit_emb, agent.index)  # (S,)
    with torch.no_grad():
        s_vec = q_network.states(torch.from_numpy(enc).unsqueeze(0).to(agent.device))[0]  # (E,)
    delta = policy._delta(personal, int(s_vec.shape[0]))  # (E,)
    return (s_vec + torch.from_numpy(delta).to(s_vec.device)).float()


def randomized_copy(q_network: nn.Module, seed: int) -> nn.Module:
    """A deep copy of the Q-network with every layer re-initialised (Adebayo et al.'s model
    parameter randomisation test); the live network is left untouched."""
    clone = copy.deepcopy(q_network)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for module in clone.modules():
            if module is not clone and hasattr(module, "reset_parameters"):
                module.reset_parameters()
    finally:
        torch.random.set_rng_state(gen_state)
    return clone.eval().requires_grad_(False)


def integrated_gradients(forward, inputs, baseline, steps, method, internal_batch_size):
    """Captum IG of ``forward`` from ``baseline`` to ``inputs`` (both ``(1, ...)``) ->
    (attributions ``(1, ...)``, |convergence delta|, (Q(inputs), Q(baseline)))."""
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(forward)
    attr, delta = ig.attribute(
        inputs,
        baselines=baseline,
        n_steps=int(steps),
        method=method,
        internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    with torch.no_grad():
        q_in, q_base = (float(v) for v in forward(torch.cat([inputs, baseline])))
    return attr.detach(), float(delta.abs().max()), (q_in, q_base)
