"""A corpus of hostile inputs: a data folder built in a temp dir, plus what each row should do.

``build_corpus(root)`` writes ``root/jail/data`` (movies.csv, ratings.csv, images/, audio/) and
sentinels outside it, ``root/jail/outside/*`` and ``root/etc/passwd`` (files that must never be
opened: media paths try to reach them with ``../``, absolute paths, symlinks). It returns a :class:`Corpus` listing every bad input with
its file, its 1-based line and what the loader must do with it, so tests are data-driven and
the count of inputs tried is a real number.

Everything is written cheaply: the 10,000 x 10,000 poster is a flat-colour PNG streamed row by
row through zlib (~300 KB on disk), the 1-hour trailer is a FLAC of silence (~250 KB).
Nothing here reads the real data in /work/shared/data.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

GOOD_MOVIES = 24  # valid movies so that a build on the corpus has something to learn from
GOOD_USERS = 12
GENRES = ("Action", "Comedy", "Drama", "Horror", "Sci-Fi", "Romance")
HUGE_ID = 2**70  # does not fit in int64 (nor in SQLite's INTEGER)


@dataclass
class Case:
    key: str  # short name of the hostile input
    file: str  # "movies.csv" / "ratings.csv"
    line: int  # 1-based line where the row starts (header = line 1)
    kept: bool  # row survives loading
    message: str | None = None  # substring of a Problem reported on this line (None: no check)
    movie_id: int | None = None
    has_text: bool | None = None  # expected modality flags (None: either is fine)
    has_image: bool | None = None
    has_audio: bool | None = None
    media: str | None = None  # the media file this case is about (relative to data/)


@dataclass
class Corpus:
    root: Path
    data: Path  # root/jail/data
    outside: list[Path]  # files outside the data folder that must never be opened
    cases: list[Case] = field(default_factory=list)
    good_ids: list[int] = field(default_factory=list)
    n_movie_rows: int = 0
    n_rating_rows: int = 0

    def movie_cases(self) -> list[Case]:
        return [c for c in self.cases if c.file == "movies.csv"]

    def rating_cases(self) -> list[Case]:
        return [c for c in self.cases if c.file == "ratings.csv"]

    def media_cases(self) -> list[Case]:
        return [c for c in self.cases if c.media]


# ----------------------------------------------------------------------------- media writers


def flat_png(path: Path, w: int, h: int, color=(10, 20, 30)) -> None:
    """A w x h RGB PNG of one colour, streamed: memory stays O(w) whatever the size."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    rows = (b"\x00" + bytes(color) * w) * 100  # 100 scanlines per compress call
    comp = zlib.compressobj(6)
    parts = [comp.compress(rows) for _ in range(h // 100)]
    parts.append(comp.compress((b"\x00" + bytes(color) * w) * (h % 100)))
    parts.append(comp.flush())
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        fh.write(chunk(b"IDAT", b"".join(parts)))
        fh.write(chunk(b"IEND", b""))


def jpeg_with_declared_size(path: Path, w: int, h: int) -> None:
    """A small real JPEG whose SOF header claims w x h (a decompression bomb by declaration)."""
    tmp = path.with_suffix(".tmp.jpg")
    Image.new("RGB", (16, 16), (1, 2, 3)).save(tmp, "JPEG")
    raw = bytearray(tmp.read_bytes())
    tmp.unlink()
    sof = raw.find(b"\xff\xc0")
    raw[sof + 5 : sof + 9] = struct.pack(">HH", h, w)
    path.write_bytes(bytes(raw))


def poster(path: Path, seed: int, size=(64, 96)) -> None:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, "JPEG")


def tone(path: Path, seconds: float, sr: int, freq: float = 440.0, channels: int = 1, fmt=None):
    t = np.arange(int(seconds * sr)) / sr
    mono = (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    data = mono if channels == 1 else np.stack([mono] * channels, axis=1)
    sf.write(path, data, sr, format=fmt)


def silent_flac(path: Path, seconds: float, sr: int) -> None:
    """A long clip written in one-minute blocks: FLAC stores silence in a few hundred KB."""
    block = np.zeros(sr * 60, dtype=np.int16)
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, format="FLAC") as fh:
        for _ in range(int(seconds // 60)):
            fh.write(block)


# ----------------------------------------------------------------------------- the corpus


class _Csv:
    """Accumulates encoded CSV rows and knows the line each one starts on."""

    def __init__(self, header: str, bom: bool = True):
        self.buf = bytearray(("\ufeff" if bom else "").encode() + header.encode() + b"\n")

    def add(self, row: bytes | str) -> int:
        line = self.buf.count(b"\n") + 1
        self.buf += (row.encode() if isinstance(row, str) else row) + b"\n"
        return line


def _q(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def build_corpus(root: str | os.PathLike) -> Corpus:
    root = Path(root)
    # root/jail/data is the catalog; "../../etc/passwd" from it lands on root/etc/passwd, a
    # sentinel (the real /etc/passwd is read by libc's user lookup in torch, so it cannot be one)
    data = root / "jail" / "data"
    images, audio, outside_dir = data / "images", data / "audio", root / "jail" / "outside"
    for d in (images, audio, outside_dir, root / "etc"):
        d.mkdir(parents=True, exist_ok=True)
    fake_passwd = root / "etc" / "passwd"
    fake_passwd.write_text("root:x:0:0:sentinel:/root:/bin/sh\n")

    # valid files outside the folder: if anything opened them, they would decode fine
    secret_jpg, secret_ogg = outside_dir / "secret.jpg", outside_dir / "secret.ogg"
    poster(secret_jpg, 999)
    tone(secret_ogg, 1.0, 8000, fmt="OGG")
    (images / "link.jpg").symlink_to(secret_jpg)
    (images / "linkdir").symlink_to(outside_dir, target_is_directory=True)
    (audio / "link.ogg").symlink_to(secret_ogg)

    corpus = Corpus(root=root, data=data, outside=[secret_jpg, secret_ogg, fake_passwd])
    movies = _Csv("movieId,title,year,genres,overview,poster,audio")
    add = corpus.cases.append

    # --- good movies: something to train on, and baselines for the flags
    for i in range(1, GOOD_MOVIES + 1):
        poster(images / f"{i}.jpg", i)
        tone(audio / f"{i}.wav", 1.0, 8000, freq=200 + 40 * i)
        g = "|".join(GENRES[j % len(GENRES)] for j in (i, i + 2))
        movies.add(
            f"{i},Good movie {i},{1980 + i},{g},A plain synopsis number {i}.,images/{i}.jpg,audio/{i}.wav"
        )
        corpus.good_ids.append(i)

    def movie(
        key,
        mid,
        title="Hostile",
        poster_rel="",
        audio_rel="",
        overview="Some text.",
        year="2000",
        genres="Drama",
        raw: bytes | None = None,
        **expect,
    ):
        row = (
            raw
            if raw is not None
            else ",".join(
                [str(mid), _q(title), year, genres, _q(overview), _q(poster_rel), _q(audio_rel)]
            )
        )
        line = movies.add(row)
        add(
            Case(
                key,
                "movies.csv",
                line,
                movie_id=mid if expect.get("kept", True) else None,
                media=expect.pop("media", None) or (poster_rel or audio_rel or None),
                **{"kept": True, **expect},
            )
        )

    # --- posters
    (images / "truncated.jpg").write_bytes((images / "1.jpg").read_bytes()[:300])
    movie(
        "truncated_jpeg",
        101,
        poster_rel="images/truncated.jpg",
        has_image=False,
        message="poster 'images/truncated.jpg'",
    )
    (images / "empty.jpg").write_bytes(b"")
    movie(
        "zero_byte_jpeg",
        102,
        poster_rel="images/empty.jpg",
        has_image=False,
        message="poster 'images/empty.jpg'",
    )
    Image.new("RGBA", (80, 120), (0, 200, 0, 128)).save(images / "png_named.jpg", "PNG")
    movie("png_named_jpg", 103, poster_rel="images/png_named.jpg", has_image=True)
    flat_png(images / "huge.png", 10_000, 10_000)
    movie(
        "10000x10000_png", 104, poster_rel="images/huge.png", has_image=False, message="too large"
    )
    Image.new("CMYK", (64, 96), (0, 255, 255, 0)).save(images / "cmyk.jpg", "JPEG")
    movie("cmyk_jpeg", 105, poster_rel="images/cmyk.jpg", has_image=True)
    Image.new("L", (64, 96), 128).save(images / "grey.jpg", "JPEG")
    movie("greyscale_jpeg", 106, poster_rel="images/grey.jpg", has_image=True)
    Image.new("I;16", (64, 96), 40000).save(images / "grey16.png", "PNG")
    movie("16bit_png", 107, poster_rel="images/grey16.png", has_image=True)
    pal = Image.new("P", (64, 96), 3)
    pal.info["transparency"] = 3
    pal.save(images / "palette.png", "PNG", transparency=3)
    movie("palette_transparent_png", 108, poster_rel="images/palette.png", has_image=True)
    jpeg_with_declared_size(images / "bomb.jpg", 60_000, 60_000)
    movie(
        "jpeg_declaring_60000x60000",
        109,
        poster_rel="images/bomb.jpg",
        has_image=False,
        message="poster 'images/bomb.jpg'",
    )
    movie("poster_is_a_directory", 110, poster_rel="images", has_image=False)
    movie("poster_missing_file", 111, poster_rel="images/nope.jpg", has_image=False)
    (images / "text.jpg").write_text("<html>not an image</html>")
    movie(
        "poster_is_text",
        112,
        poster_rel="images/text.jpg",
        has_image=False,
        message="poster 'images/text.jpg'",
    )

    # --- trailers
    (audio / "empty.ogg").write_bytes(b"")
    movie(
        "zero_byte_clip",
        201,
        audio_rel="audio/empty.ogg",
        has_audio=False,
        message="audio 'audio/empty.ogg'",
    )
    sf.write(audio / "noframes.wav", np.zeros(0, dtype=np.float32), 22050)
    movie(
        "zero_frame_wav",
        202,
        audio_rel="audio/noframes.wav",
        has_audio=False,
        message="audio 'audio/noframes.wav'",
    )
    (audio / "notaudio.ogg").write_bytes(b"ID3 but really a text file\n" * 20)
    movie(
        "non_audio_clip",
        203,
        audio_rel="audio/notaudio.ogg",
        has_audio=False,
        message="audio 'audio/notaudio.ogg'",
    )
    silent_flac(audio / "hour.flac", 3600, 22050)
    movie("one_hour_clip", 204, audio_rel="audio/hour.flac", has_audio=True)
    tone(audio / "8k.wav", 3.0, 8000)
    movie("8khz_clip", 205, audio_rel="audio/8k.wav", has_audio=True)
    tone(audio / "stereo48k.ogg", 3.0, 48000, channels=2, fmt="OGG")
    movie("stereo_48khz_clip", 206, audio_rel="audio/stereo48k.ogg", has_audio=True)
    bad = np.full(8000, np.nan, dtype=np.float32)
    bad[::3] = np.inf
    sf.write(audio / "nan.wav", bad, 8000, subtype="FLOAT")
    movie("nan_inf_samples_clip", 207, audio_rel="audio/nan.wav", has_audio=None)
    raw = (audio / "1.wav").read_bytes()
    (audio / "truncated.wav").write_bytes(raw[: len(raw) // 3])
    movie("truncated_wav", 208, audio_rel="audio/truncated.wav", has_audio=None)
    movie("clip_is_a_directory", 209, audio_rel="audio", has_audio=False)

    # --- text and CSV structure
    movie(
        "quotes_commas_newlines",
        301,
        title='He said "hi", then\nleft',
        overview='Line one,\n"quoted" line two\r\nline three',
        has_text=True,
    )
    movie(
        "html_title",
        302,
        title="<img src=x onerror=alert(1)>",
        overview="<script>alert(1)</script>",
        has_text=True,
    )
    movie(
        "non_utf8_bytes",
        303,
        raw=b'303,Caf\xe9 \xff\xfe,2001,Drama,"Bad \x80 bytes",,',
        message="not valid UTF-8",
        has_text=True,
    )
    movie("empty_title", 304, title="   ", kept=False, message="empty title")
    movie("100kb_synopsis", 305, overview="word " * 20_000, message="truncated", has_text=True)
    movie("empty_synopsis", 306, overview="", has_text=False)
    movie("nul_bytes", 307, raw=b'307,Nul\x00title,2001,Drama,"nul\x00inside",,', has_text=True)
    movie("duplicate_movie_id", 1, kept=False, message="duplicate movieId 1")
    movie("non_numeric_id", "abc", kept=False, message="bad movieId")
    movie("negative_id", -5, kept=False, message="bad movieId")
    movie("id_beyond_int64", HUGE_ID, kept=False, message="bad movieId")
    movie("too_few_fields", 0, raw=b"308,Short row", kept=False, message="expected 7 fields")
    movie(
        "too_many_fields",
        0,
        raw=b"309,Long,2000,Drama,x,,,extra,extra",
        kept=False,
        message="expected 7 fields",
    )
    movie("year_garbage", 310, year="19x9", message="bad year")
    movie("year_infinite", 311, year="inf", message="bad year")
    movie("year_nan", 312, year="nan", message="bad year")

    # --- paths that try to leave the data folder
    for key, mid, rel, col in [
        ("dotdot_etc_passwd", 401, "../../etc/passwd", "poster"),
        ("absolute_etc_passwd", 402, "/etc/passwd", "audio"),
        ("dotdot_sentinel", 403, "../outside/secret.jpg", "poster"),
        ("absolute_sentinel", 404, str(secret_jpg), "poster"),
        ("inner_dotdot_sentinel", 405, "images/../../outside/secret.jpg", "poster"),
        ("symlink_file_out", 406, "images/link.jpg", "poster"),
        ("symlink_dir_out", 407, "images/linkdir/secret.jpg", "poster"),
        ("symlink_audio_out", 408, "audio/link.ogg", "audio"),
        ("home_tilde", 409, "~/secret.jpg", "poster"),
        ("windows_drive", 410, "C:\\Windows\\win.ini", "audio"),
        ("unc_path", 411, "\\\\server\\share\\x.ogg", "audio"),
    ]:
        kw = {"poster_rel": rel} if col == "poster" else {"audio_rel": rel}
        flag = "has_image" if col == "poster" else "has_audio"
        movie(key, mid, message=f"{col}:", **kw, **{flag: False})

    (data / "movies.csv").write_bytes(bytes(movies.buf))
    corpus.n_movie_rows = movies.buf.count(b"\n") - 1

    # --- ratings
    ratings = _Csv("userId,movieId,rating,timestamp")
    rng = np.random.default_rng(0)
    for u in range(1, GOOD_USERS + 1):
        for m in rng.choice(corpus.good_ids, size=10, replace=False):
            ratings.add(f"{u},{m},{rng.integers(1, 11) / 2},{1_000_000 + u * 100 + m}")

    def rating(key, row: str | bytes, kept: bool, message: str | None = None):
        add(Case(key, "ratings.csv", ratings.add(row), kept=kept, message=message))

    rating("negative_rating", "1,1,-3,5", False, "bad rating '-3'")
    rating("nan_rating", "1,2,nan,5", False, "bad rating 'nan'")
    rating("inf_rating", "1,3,inf,5", False, "bad rating 'inf'")
    rating("empty_rating", "1,4,,5", False, "bad rating")
    rating("text_rating", "1,5,great,5", False, "bad rating 'great'")
    rating("too_high_rating", "1,6,5.5,5", False, "bad rating '5.5'")
    rating("unknown_movie", "1,999999,4,5", False, "rating(s) for unknown movies")
    rating("rating_for_refused_row", "1,304,4,5", False, None)
    rating("bad_user_id", "bob,1,4,5", False, "bad userId")
    rating("user_id_beyond_int64", f"{HUGE_ID},1,4,5", False, "bad userId")
    rating("movie_id_beyond_int64", f"1,{HUGE_ID},4,5", False, None)
    rating("short_row", "1,7", False, "expected 4 fields")
    rating("timestamp_infinite", "2,8,4,inf", True, None)
    rating("timestamp_garbage", "2,9,4,yesterday", True, None)
    rating("non_utf8_row", b"2,10,4,1\xff", True, "not valid UTF-8")
    rating("duplicate_pair_first", "3,11,1,5", True, None)
    rating("duplicate_pair_second", "3,11,5,6", True, "rated movie 11 twice")
    (data / "ratings.csv").write_bytes(bytes(ratings.buf))
    corpus.n_rating_rows = ratings.buf.count(b"\n") - 1
    return corpus


# ----------------------------------------------------------------------------- tiny budgets

# Training budgets small enough for a test, big enough that every stage runs for real.
TINY_OVERRIDES = {
    "fusion": {"max_epochs": 2, "patience": 1, "batch_size": 32},
    "dqn": {
        "total_steps": 400,
        "n_envs": 4,
        "learning_starts": 100,
        "buffer_size": 2_000,
        "batch_size": 32,
        "target_sync": 50,
    },
    "features": {"text_batch_size": 16, "image_batch_size": 8, "decode_workers": 1},
}


def tiny_config_toml(path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write TINY_OVERRIDES (+ ``extra``) as a TOML file for ``--config`` / ``MMREC_CONFIG``."""
    tables = {k: dict(v) for k, v in TINY_OVERRIDES.items()}
    for section, values in (extra or {}).items():
        tables.setdefault(section, {}).update(values)
    lines = []
    for section, values in tables.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(
                f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"'
            )
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_config(data_dir, checkpoints_dir, db_path=None, extra: dict | None = None):
    """An mmrec Config with TINY_OVERRIDES applied (in-process use)."""
    from mmrec.config import _apply, load_config

    cfg = load_config(data_dir=data_dir, checkpoints_dir=checkpoints_dir, db_path=db_path)
    tables = {k: dict(v) for k, v in TINY_OVERRIDES.items()}
    for section, values in (extra or {}).items():
        tables.setdefault(section, {}).update(values)
    _apply(cfg, tables, "tiny")
    return cfg
