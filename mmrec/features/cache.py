"""The feature store's disk cache: content-keyed float32 arrays per modality and encoder version.

Layout, per modality and encoder version (``<cache>/<modality>-<hash of version>/``)::

    manifest.json          {"version", "shape", "generation", "count"}: the current files
    keys-<gen>.npy         (M,) content keys (hex digests)
    values-<gen>.npy       (M, *shape) float32 vectors / sequences

Writes are atomic: new ``keys``/``values`` files get a fresh generation name, and only then is
``manifest.json`` replaced (temp file + ``os.replace``), so a reader sees the old generation or
the new one, never half of each. Two processes filling the same cache at once lose nothing but
work: the last manifest wins and the other's new rows are recomputed next time. Split from
:mod:`mmrec.features.store` (running the encoders).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from pathlib import Path

import numpy as np

from mmrec.atomic import atomic_write, atomic_write_text

log = logging.getLogger("mmrec.features.store")  # the feature store's logger, as before the split

CACHE_FORMAT = 1  # bump when the on-disk layout changes


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda fh: np.save(fh, array, allow_pickle=False))


class VectorCache:
    """Content-keyed float32 arrays of one modality and encoder version (see module doc)."""

    def __init__(self, root: str | Path, modality: str, version: str, shape: tuple[int, ...]):
        self.version = version
        self.shape = tuple(int(s) for s in shape)
        digest = hashlib.sha256(f"{CACHE_FORMAT}:{version}:{self.shape}".encode()).hexdigest()
        self.folder = Path(root) / f"{modality}-{digest[:12]}"
        self.generation: str | None = None
        self.keys = np.zeros(0, dtype="<U40")
        self.values = np.zeros((0, *self.shape), dtype=np.float32)
        self.row: dict[str, int] = {}
        self._new_keys: list[str] = []
        self._new_values: list[np.ndarray] = []
        self._load()

    def _load(self) -> None:
        manifest = self.folder / "manifest.json"
        try:
            meta = json.loads(manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable cache manifest (%s); recomputing", manifest, exc)
            return
        if meta.get("version") != self.version or tuple(meta.get("shape", ())) != self.shape:
            log.warning("%s: cache for another encoder version; recomputing", manifest)
            return
        gen = str(meta.get("generation", ""))
        try:
            keys = np.load(self.folder / f"keys-{gen}.npy", allow_pickle=False)
            # mmap: loading 5,000 clips' sequences (~160 MB) costs nothing until rows are read
            values = np.load(self.folder / f"values-{gen}.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("%s: cache files unreadable (%s); recomputing", self.folder, exc)
            return
        if values.shape != (len(keys), *self.shape) or values.dtype != np.float32:
            log.warning("%s: cache files do not match their manifest; recomputing", self.folder)
            return
        self.generation, self.keys, self.values = gen, keys, values
        self.row = {k: i for i, k in enumerate(keys.tolist())}

    def __contains__(self, key: str) -> bool:
        return key in self.row

    def __len__(self) -> int:
        return len(self.row)

    def add(self, key: str, value: np.ndarray) -> None:
        if key in self.row:
            return
        value = np.asarray(value, dtype=np.float32)
        if value.shape != self.shape:
            raise ValueError(f"cache {self.folder.name}: value shape {value.shape} != {self.shape}")
        self.row[key] = len(self.keys) + len(self._new_keys)
        self._new_keys.append(key)
        self._new_values.append(value)

    def get(self, keys: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """Rows for ``keys`` (None or unknown -> zeros): ((N, *shape) float32, found (N,) bool)."""
        out = np.zeros((len(keys), *self.shape), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        old_dst, old_src, n_old = [], [], len(self.keys)
        for i, key in enumerate(keys):
            r = self.row.get(key) if key is not None else None
            if r is None:
                continue
            found[i] = True
            if r < n_old:
                old_dst.append(i)
                old_src.append(r)
            else:
                out[i] = self._new_values[r - n_old]
        if old_src:
            src = np.asarray(old_src)
            order = np.argsort(src)  # sorted reads are sequential on the memory map
            out[np.asarray(old_dst)[order]] = self.values[src[order]]
        return out, found

    @property
    def dirty(self) -> bool:
        return bool(self._new_keys)

    def save(self, live: set[str] | None = None) -> None:
        """Write old + new rows as a new generation. Rows whose key is not in ``live`` are
        dropped once they outnumber the live ones, so a cache whose posters keep changing stays
        within about twice the catalog's size."""
        if not self._new_keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        keep = np.arange(len(self.keys))
        if live is not None:
            is_live = np.fromiter((k in live for k in self.keys.tolist()), bool, len(self.keys))
            if (~is_live).sum() > len(live):
                keep = np.flatnonzero(is_live)
        keys = np.concatenate(
            [self.keys[keep], np.asarray(self._new_keys, dtype=self.keys.dtype)]
        )  # (M,)
        values = np.concatenate(
            [np.asarray(self.values[keep]), np.stack(self._new_values)]
        )  # (M, *shape)
        gen = f"{int(time.time() * 1000):x}{secrets.token_hex(3)}"
        _atomic_save_npy(self.folder / f"keys-{gen}.npy", keys)
        _atomic_save_npy(self.folder / f"values-{gen}.npy", values)
        manifest = {
            "format": CACHE_FORMAT,
            "version": self.version,
            "shape": list(self.shape),
            "generation": gen,
            "count": int(len(keys)),
        }
        atomic_write_text(self.folder / "manifest.json", json.dumps(manifest, indent=1))
        old = self.generation
        self.generation, self.keys = gen, keys
        self.values = np.load(self.folder / f"values-{gen}.npy", mmap_mode="r")
        self.row = {k: i for i, k in enumerate(keys.tolist())}
        self._new_keys, self._new_values = [], []
        if old:  # readers holding the old memory map keep it: unlinking does not unmap
            for name in (f"keys-{old}.npy", f"values-{old}.npy"):
                (self.folder / name).unlink(missing_ok=True)


def text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=20).hexdigest()
