"""Synopsis attributions: LayerIntegratedGradients on MiniLM's embedding layer.

Captum's BERT recipe: the attribution layer is ``BertEmbeddings`` (word + position + type
embeddings, LayerNorm), the baseline keeps [CLS] and [SEP] and puts [PAD] in every position
between them, so position embeddings are identical in input and baseline and only the words
differ. Scores are the embedding-layer attributions summed over the 384 features of each
token; word pieces are summed into words and mapped back onto the synopsis with the fast
tokenizer's character offsets, so the page highlights the original text.

Completeness: the token scores sum to ``Q(synopsis) - Q(PAD baseline)`` up to the reported
convergence delta (Gauss-Legendre quadrature converges in few steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from captum.attr import LayerIntegratedGradients

from mmrec.explain.forward import QForward


@dataclass
class TextAttribution:
    words: list[tuple[str, float, int, int]]  # (word as written, score, char start, char end)
    tokens: list[tuple[str, float]]  # word pieces between [CLS] and [SEP] with their scores
    total: float  # sum of all token scores
    q_input: float  # Q with the synopsis
    q_baseline: float  # Q with the [PAD] baseline synopsis
    delta: float  # Captum convergence delta: total - (q_input - q_baseline)
    steps: int
    truncated: bool  # the synopsis had more tokens than the encoder reads (the rest is unseen)
    n_chars_seen: int  # characters of the synopsis the encoder read
    notes: list[str] = field(default_factory=list)


def baseline_ids(input_ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """``(1, L)`` ids -> the same length with [PAD] between [CLS] and [SEP]."""
    base = torch.full_like(input_ids, tokenizer.pad_token_id)  # (1, L)
    special = (input_ids == tokenizer.cls_token_id) | (input_ids == tokenizer.sep_token_id)
    return torch.where(special, input_ids, base)


def attribute_text(
    qf: QForward,
    text_encoder,
    synopsis: str,
    steps: int,
    method: str = "gausslegendre",
    internal_batch_size: int | None = None,
) -> TextAttribution:
    """Token attributions of ``Q_u(s, a)`` for this synopsis (see the module docstring)."""
    tok = text_encoder.tokenizer(
        synopsis,
        truncation=True,
        max_length=text_encoder.max_tokens,
        return_offsets_mapping=True,
        return_tensors="pt",
    )
    device = text_encoder.device
    input_ids = tok["input_ids"].to(device)  # (1, L): no padding, mean pooling ignores it anyway
    mask = tok["attention_mask"].to(device)  # (1, L)
    offsets = tok["offset_mapping"][0].tolist()  # L x (start, end)
    word_ids = tok.word_ids(0)
    base = baseline_ids(input_ids, text_encoder.tokenizer)  # (1, L)

    def forward(ids: torch.Tensor) -> torch.Tensor:
        return qf.from_token_ids(text_encoder, ids, mask)  # (B,)

    lig = LayerIntegratedGradients(forward, text_encoder.embedding_layer)
    attr, delta = lig.attribute(
        input_ids,
        baselines=base,
        n_steps=int(steps),
        method=method,
        internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    scores = attr.sum(dim=-1)[0].detach().double()  # (L,)
    with torch.no_grad():
        q_in, q_base = (float(v) for v in forward(torch.cat([input_ids, base])))

    pieces = text_encoder.tokenizer.convert_ids_to_tokens(input_ids[0].tolist())
    tokens, words = [], []
    current: list = []  # [word id, score, start, end]
    for k, (piece, wid) in enumerate(zip(pieces, word_ids)):
        if wid is None:  # [CLS], [SEP]: identical in input and baseline, score exactly 0
            continue
        s = float(scores[k])
        tokens.append((piece, s))
        start, end = offsets[k]
        if current and current[0] == wid:
            current[1] += s
            current[3] = end
        else:
            if current:
                words.append(current)
            current = [wid, s, start, end]
    if current:
        words.append(current)
    word_list = [(synopsis[a:b], s, a, b) for _, s, a, b in words]
    seen = word_list[-1][3] if word_list else 0
    truncated = len(synopsis[seen:].strip()) > 0
    notes = []
    if truncated:
        notes.append(
            f"the encoder reads the first {text_encoder.max_tokens} tokens; the synopsis after "
            f"character {seen} does not affect the score"
        )
    return TextAttribution(
        words=word_list,
        tokens=tokens,
        total=float(scores.sum()),
        q_input=q_in,
        q_baseline=q_base,
        delta=float(delta.abs().max()),
        steps=int(steps),
        truncated=truncated,
        n_chars_seen=int(seen),
        notes=notes,
    )
