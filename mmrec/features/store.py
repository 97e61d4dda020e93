"""Feature store: run the frozen encoders once, cache their outputs on disk, load them fast.

Keys are content hashes, not movie ids: the synopsis string for text, the file bytes for
posters and clips. So a renamed file or a re-ordered catalog costs nothing, a changed poster is
recomputed, and identical trailers shared by two movies are encoded once. The version string
(model weights, preprocessing settings, precision) selects the folder, so changing any
setting never mixes incompatible vectors.

The disk layout and its atomic writes are :mod:`mmrec.features.cache` (``VectorCache``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmrec.config import FeatureConfig, pick_device
from mmrec.features.cache import VectorCache, text_key

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
SAVE_EVERY = 1000  # items encoded between cache writes (each write rewrites the modality file)


class FeatureWarning(UserWarning):
    """A poster or clip that could not be used (the message names the file)."""


@dataclass
class Problem:
    """Same fields as ``mmrec.data.catalog.Problem`` (kept local: features must not depend on
    the loader's internals); ``file`` is relative to the catalog folder where possible."""

    severity: str
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.severity}: {self.message}"


@dataclass
class ItemFeatures:
    movie_ids: np.ndarray  # (N,) int64, catalog row order
    text: np.ndarray  # (N, 384) float32 MiniLM mean-pooled; zeros where missing
    image: np.ndarray  # (N, 1280) float32 EfficientNet-Lite0 pooled; zeros where missing
    audio: np.ndarray  # (N, T, F) float32 sequence for the audio LSTM; zeros where missing
    has_text: np.ndarray  # (N,) bool
    has_image: np.ndarray  # (N,) bool
    has_audio: np.ndarray  # (N,) bool
    audio_kind: str  # "logmel" (T=steps, F=n_mels) or "aisfx" (T=blocks, F=512)
    problems: list[Problem] = field(default_factory=list)  # media that failed to decode
    versions: dict[str, str] = field(default_factory=dict)  # encoder version per modality

    @property
    def present(self) -> np.ndarray:
        """(N, 3) bool in (text, image, audio) order, the fusion model's ``present``."""
        return np.stack([self.has_text, self.has_image, self.has_audio], axis=1)

    def __len__(self) -> int:
        return len(self.movie_ids)


# ----------------------------------------------------------------------------- helpers


def _prefetch(fn: Callable, items: list, pool: ThreadPoolExecutor, ahead: int) -> Iterator:
    """``map(fn, items)`` in order, with at most ``ahead`` items decoding in ``pool`` at once:
    decoding overlaps the model without holding every decoded poster in memory."""
    pending: deque = deque()
    for item in items:
        if len(pending) >= max(1, ahead):
            yield pending.popleft().result()
        pending.append(pool.submit(fn, item))
    while pending:
        yield pending.popleft().result()


def _chunks(seq: list, size: int) -> Iterable[list]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


class _Reporter:
    """progress(done, total, stage) for the dashboard, else a tqdm bar on a terminal."""

    def __init__(self, progress: Progress | None):
        self.progress = progress
        self.bar = None

    def start(self, total: int, stage: str) -> None:
        self.close()
        if self.progress is not None:
            self.progress(0, total, stage)
        elif total and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=f"features: {stage}", unit="item", leave=False)
        self.total, self.stage, self.done = total, stage, 0

    def advance(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total, self.stage)
        elif self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ----------------------------------------------------------------------------- extraction


class FeatureExtractor:
    """The frozen encoders, built on first use (an up-to-date cache never loads a model), plus
    the batched, item-parallel loops that feed them. ``computed`` counts items actually
    encoded per modality (cache misses)."""

    def __init__(self, cfg: FeatureConfig, device: str | None = None):
        self.cfg = cfg
        self.device = device or cfg.device or pick_device()
        self.computed = {"text": 0, "image": 0, "audio": 0}
        self._text = self._image = self._audio = self._aisfx = None

    @property
    def precision(self) -> str:
        from mmrec.features import resolve_precision

        return resolve_precision(self.cfg.precision, self.device)

    # encoders -----------------------------------------------------------------
    @property
    def text_encoder(self):
        if self._text is None:
            from mmrec.features.text import TextEncoder

            self._text = TextEncoder(self.cfg, self.device)
        return self._text

    @property
    def image_encoder(self):
        if self._image is None:
            from mmrec.features.image import ImageEncoder

            self._image = ImageEncoder(self.cfg, self.device)
        return self._image

    @property
    def audio_frontend(self):
        if self._audio is None:
            from mmrec.features.audio import AudioFrontend

            self._audio = AudioFrontend(self.cfg)
        return self._audio

    @property
    def aisfx_encoder(self):
        if self._aisfx is None:
            from mmrec.features.audio import AisfxEncoder

            self._aisfx = AisfxEncoder(self.cfg, self.device)
        return self._aisfx

    # versions and shapes (no model loading) ---------------------------------------------
    def text_spec(self) -> tuple[str, tuple[int, ...]]:
        from mmrec.features.text import TEXT_DIM, text_version

        return text_version(self.cfg, self.precision), (TEXT_DIM,)

    def image_spec(self) -> tuple[str, tuple[int, ...]]:
        from mmrec.features.image import image_dim, image_version

        return image_version(self.cfg, self.precision), (image_dim(self.cfg),)

    def audio_spec(self) -> tuple[str, tuple[int, ...]]:
        from mmrec.features import audio

        c = self.cfg
        if c.audio_kind == "logmel":
            return audio.logmel_version(c), (c.audio_steps, c.n_mels)
        if c.audio_kind == "aisfx":
            prec = audio.aisfx_precision(c, self.device, self.precision)
            return audio.aisfx_version(c, prec), (audio.aisfx_steps(c), audio.AISFX_DIM)
        raise ValueError(f"features.audio_kind='{c.audio_kind}': expected logmel or aisfx")

    # batched loops -----------------------------------------------------------------
    @property
    def workers(self) -> int:
        return max(1, int(self.cfg.decode_workers or os.cpu_count() or 1))

    @contextlib.contextmanager
    def _threads(self):
        """Item-parallel workers, each with single-threaded torch (unless ``torch_threads`` says
        otherwise): on 2 cores this scales as well as 2 intra-op threads when the machine is
        idle, and degrades far less when other processes compete, because no thread ever waits
        at a parallel-region barrier for a descheduled peer. Torch's thread count is
        process-wide, so it is restored afterwards."""
        import torch

        before = torch.get_num_threads()
        want = int(self.cfg.torch_threads) or (1 if self.workers > 1 else before)
        torch.set_num_threads(want)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _run(self, modality: str, items: list, batch_size: int, work, report: _Reporter) -> list:
        """``work(batch) -> (values, ok, problems)`` over batches of ``items`` in the worker
        pool, results in order; progress and ``computed`` advance per finished batch."""
        batches = list(_chunks(items, max(1, int(batch_size))))
        results = []
        with self._threads(), ThreadPoolExecutor(self.workers, "mmrec-features") as pool:
            for batch, result in zip(batches, _prefetch(work, batches, pool, 2 * self.workers)):
                results.append(result)
                self.computed[modality] += int(np.count_nonzero(result[1]))
                report.advance(len(batch))
        return results

    @staticmethod
    def _gather(results: list, shape: tuple[int, ...]):
        if not results:
            return np.zeros((0, *shape), np.float32), np.zeros(0, bool), []
        values = np.concatenate([r[0] for r in results])
        ok = np.concatenate([r[1] for r in results])
        return values, ok, [p for r in results for p in r[2]]

    def encode_texts(self, texts: list[str], report: _Reporter):
        """(N,) synopses -> ((N, 384), ok (N,), [])."""
        enc = self.text_encoder
        # sorted by length across the whole set, so each batch trims most of its padding
        order = np.argsort([len(t) for t in texts], kind="stable")

        def work(idx: list[int]):
            vec = enc.encode([texts[i] for i in idx])  # (B, 384)
            return vec, np.ones(len(idx), bool), []

        results = self._run("text", order.tolist(), self.cfg.text_batch_size, work, report)
        values, ok, _ = self._gather(results, (enc.dim,))
        out = np.zeros_like(values)
        out[order] = values
        return out, ok, []

    def encode_images(self, paths: list[str], report: _Reporter):
        """(N,) poster paths -> ((N, dim), ok (N,), [(path, problem)])."""
        enc = self.image_encoder
        _ = enc.fast  # fold the batch norms once, before the workers share the model
        results = self._run("image", paths, self.cfg.image_batch_size, enc.encode, report)
        return self._gather(results, (enc.dim,))

    def encode_audio(self, paths: list[str], report: _Reporter):
        """(N,) clip paths -> ((N, T, F), ok (N,), [(path, problem)])."""
        from mmrec.media import AudioDecodeError

        _, shape = self.audio_spec()
        aisfx = self.cfg.audio_kind == "aisfx"
        # a worker takes each clip from file to spectrogram (libsndfile and torch release the
        # GIL); for aisfx it then runs the CNN on its batch of clips
        prepare = self.aisfx_encoder.clip_spectrogram if aisfx else self.audio_frontend.sequence

        def work(batch: list[str]):
            values, ok, problems = [], np.zeros(len(batch), bool), []
            for j, path in enumerate(batch):
                try:
                    values.append(prepare(path))
                    ok[j] = True
                except AudioDecodeError as exc:
                    problems.append((path, str(exc)))
            out = np.zeros((len(batch), *shape), np.float32)
            if values:
                stacked = np.stack(values)  # (b, T, F) or aisfx (b, frames, 96)
                out[ok] = self.aisfx_encoder.encode_spectrograms(stacked) if aisfx else stacked
            return out, ok, problems

        if aisfx:
            _ = self.aisfx_encoder.fast  # calibrate int8 once, before the workers share it
        batch = max(1, self.cfg.aisfx_batch_size) if aisfx else 8
        return self._gather(self._run("audio", paths, batch, work, report), shape)


# ----------------------------------------------------------------------------- public API


def _rel(path: str, data_dir: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(data_dir.resolve()))
    except (ValueError, OSError):
        return str(path)


def _file_keys(
    paths: list[str | None],
    modality: str,
    workers: int,
    data_dir: Path,
    problems: list[Problem],
) -> list[str | None]:
    """Content hash per file (None where absent or unreadable), hashed in a thread pool:
    hashlib releases the GIL, so reading and hashing overlap across files."""
    from mmrec.media import file_digest

    def one(path: str | None):
        if not path:
            return None, None
        try:
            return file_digest(path), None
        except OSError as exc:
            return None, f"cannot read ({type(exc).__name__}: {exc})"

    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(one, paths))
    _warn_problems(
        [(p, why) for p, (_, why) in zip(paths, results) if why], modality, data_dir, problems
    )
    return [key for key, _ in results]


def _column(movies, name: str, default) -> list:
    if name not in movies.columns:
        return [default] * len(movies)
    return [default if (v is None or v != v) else v for v in movies[name].tolist()]


def _flag(movies, name: str) -> np.ndarray:
    if name not in movies.columns:
        return np.ones(len(movies), dtype=bool)
    return movies[name].fillna(False).to_numpy(dtype=bool)


def _warn_problems(
    problems: list[tuple[str, str]], modality: str, data_dir: Path, out: list[Problem]
) -> None:
    """Record each (path, message) as a Problem and a FeatureWarning naming the file."""
    for path, message in problems:
        rel = _rel(path, data_dir)
        # decoder messages start with the absolute path; the relative one replaces it
        prefix = f"{path}: "
        detail = message[len(prefix) :] if message.startswith(prefix) else message
        out.append(Problem("warning", rel, None, f"{modality} treated as missing: {detail}"))
        warnings.warn(f"{rel}: {modality} treated as missing: {detail}", FeatureWarning, 3)
        log.warning("%s: %s treated as missing: %s", rel, modality, detail)


def compute_features(
    catalog,
    cfg: FeatureConfig,
    progress: Progress | None = None,
    cache_dir: str | Path | None = None,
    extractor: FeatureExtractor | None = None,
) -> ItemFeatures:
    """Frozen features for every movie of ``catalog`` in its row order, computing only what
    the cache lacks.

    ``progress(done, total, stage)`` is called per item with stage "hash", "text", "image",
    "audio"; without it a tqdm bar shows on a terminal. ``cache_dir`` overrides
    ``cfg.cache_dir`` (default ``<catalog.data_dir>/.cache/features``). Media that fail to
    decode come back as missing (zeros, ``has_* False``), each with a ``FeatureWarning`` and a
    ``Problem`` naming the file.
    """
    movies = catalog.movies
    data_dir = Path(catalog.data_dir)
    root = Path(cache_dir or cfg.cache_dir or data_dir / ".cache" / "features")
    ex = extractor or FeatureExtractor(cfg)
    if ex.cfg != cfg:
        raise ValueError("the extractor passed in was built for another FeatureConfig")
    report = _Reporter(progress)
    problems: list[Problem] = []
    n = len(movies)

    overviews = [str(t) for t in _column(movies, "overview", "")]
    text_keys = [
        text_key(t) if has and t.strip() else None
        for t, has in zip(overviews, _flag(movies, "has_text"))
    ]
    poster_paths = [
        p if has else None
        for p, has in zip(_column(movies, "poster", None), _flag(movies, "has_image"))
    ]
    audio_paths = [
        p if has else None
        for p, has in zip(_column(movies, "audio", None), _flag(movies, "has_audio"))
    ]
    report.start(2 * n, "hash")
    workers = max(2, cfg.decode_workers)
    image_keys = _file_keys(poster_paths, "image", workers, data_dir, problems)
    report.advance(n)
    audio_keys = _file_keys(audio_paths, "audio", workers, data_dir, problems)
    report.advance(n)

    def run(modality, keys, spec, sources, encode):
        version, shape = spec
        cache = VectorCache(root, modality, version, shape)
        todo: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key is not None and key not in cache and key not in todo:
                todo[key] = i
        report.start(len(todo), modality)
        live = {k for k in keys if k is not None}
        writable = True
        pending = list(todo.items())
        # saved every SAVE_EVERY items: an interrupted build of 5,000 movies resumes where it
        # stopped instead of starting over (an extractor may ask for larger runs: Ray's)
        every = int(getattr(ex, "save_every", SAVE_EVERY))
        for start in range(0, len(pending), every):
            chunk = pending[start : start + every]
            values, ok, probs = encode([sources[i] for _, i in chunk], report)
            for j, (key, _) in enumerate(chunk):
                if ok[j]:
                    cache.add(key, values[j])
            _warn_problems(probs, modality, data_dir, problems)
            if writable:
                try:
                    cache.save(live)
                except OSError as exc:  # read-only data folder: features still come back
                    log.warning("%s: could not write feature cache (%s)", cache.folder, exc)
                    writable = False
        values, found = cache.get(keys)
        return values, found, version

    text, has_text, v_text = run("text", text_keys, ex.text_spec(), overviews, ex.encode_texts)
    image, has_image, v_image = run(
        "image", image_keys, ex.image_spec(), poster_paths, ex.encode_images
    )
    audio, has_audio, v_audio = run(
        "audio", audio_keys, ex.audio_spec(), audio_paths, ex.encode_audio
    )
    report.close()
    return ItemFeatures(
        movie_ids=np.asarray(movies.index.to_numpy(), dtype=np.int64),
        text=text,
        image=image,
        audio=audio,
        has_text=has_text,
        has_image=has_image,
        has_audio=has_audio,
        audio_kind=cfg.audio_kind,
        problems=problems,
        versions={"text": v_text, "image": v_image, "audio": v_audio},
    )
