"""Classifiers of style and mode on encoded windows: to *measure* control, and to *guide* with.

Lesson 5 asks a conditional model for "Bach, minor" and needs to check what it got. Listening
does not scale, so we train a small network to recognise the labels and let it score samples:

- the **clean classifier** reads clean windows x_0, as ``encoding.encode(roll)`` makes them, and
  predicts p(style | x_0) and p(mode | x_0). It is the judge of lesson 5's control measurements
  (like the Inception network behind FID and Inception Score, it only knows what it was trained on);
- the **noisy classifier** reads x_t *and* t, trained on ``diffusion.q_sample(x_0, t)`` at every
  noise level, so that ∇_{x_t} log p(y | x_t) means something at every step of a sampler:
  classifier guidance (Dhariwal & Nichol 2021, sec. 4) needs exactly that, and a clean classifier's
  gradient at t = 900 points nowhere useful.

One architecture serves both (``LabelClassifier``): a small 1-D convolutional net over the 64 time
steps of the voice encoding (60 channels), built from the denoiser's own residual blocks
(``models.ResBlock``: FiLM by an embedding vector), with three levels that halve the time axis,
an average over time, and one linear head per label. The noisy classifier's embedding is the
sinusoidal emb(t) through an MLP, as in the denoiser; the clean one reads no t, and its blocks get
one learned constant vector instead.

    classifier(x, t) -> {"style": logits (B, 2), "mode": logits (B, 2)}
    classifier.head("mode") -> a function (x_t, t) -> logits (B, 2), for guidance.classifier_gradient

Training (``train_classifier``) draws batches balanced over the four (style, mode) cells, so the
classifier has no prior favouring folk or major (the data are 80% folk, 70% major): its accuracy
on a requested label is not inflated by guessing the common answer. The bundled checkpoints
(``assets/checkpoints/classifier_clean.pt``, ``classifier_noisy.pt``, each with a model card
``.md``) were trained by ``python -m course_lib train-classifier``; see their cards.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import ASSETS, data, diffusion, encoding as encodings, inputs, models, schedules
from .train import (SIZE_LIMITS, CheckpointError, CheckpointNotFoundError, check_sizes, check_training_numbers,
                    read_checkpoint_file, rebuild_part)

FORMAT, VERSION = "diffusion-soundtracks-classifier", 1
CLASSES = {"style": data.STYLES, "mode": ("major", "minor")}  # head name -> class names (index = label)
BUNDLED = {"clean": ASSETS / "checkpoints" / "classifier_clean.pt",
           "noisy": ASSETS / "checkpoints" / "classifier_noisy.pt"}


@dataclass
class ClassifierConfig:
    """Everything needed to rebuild a classifier (stored in its checkpoint).

    in_channels: C of the encoded windows (C, L), 60 for the voice encoding; channels, channel_mults:
    width per level (each level halves L after its block); noisy: read (x_t, t) instead of x_0;
    time_dim: width of the embedding the blocks are modulated by; heads: the labels to predict
    (keys of ``CLASSES``).
    """

    in_channels: int = 60
    channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    noisy: bool = False
    time_dim: int = 64
    dropout: float = 0.1
    groups: int = 8
    heads: tuple[str, ...] = ("style", "mode")

    def __post_init__(self):
        self.channel_mults, self.heads = tuple(int(m) for m in self.channel_mults), tuple(self.heads)
        unknown = set(self.heads) - set(CLASSES)
        if unknown or not self.heads:
            raise ValueError(f"heads must be a non-empty subset of {tuple(CLASSES)}, got {self.heads}")
        if min(self.in_channels, self.channels, self.time_dim, *self.channel_mults) < 1:
            raise ValueError("in_channels, channels, time_dim and channel_mults must be >= 1")
        if any(self.channels * m % self.groups for m in self.channel_mults):
            raise ValueError(f"every width {[self.channels * m for m in self.channel_mults]} must be divisible "
                             f"by groups={self.groups}")
        if self.time_dim % 2:
            raise ValueError(f"time_dim must be even (sines and cosines), got {self.time_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mults"], d["heads"] = list(self.channel_mults), list(self.heads)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown ClassifierConfig fields {sorted(unknown)}")
        return cls(**d)


class LabelClassifier(nn.Module):
    """x (B, C, L) [and t (B,)] -> {head: logits (B, classes)}: conv_in, per level a ResBlock and a
    stride-2 conv, then GroupNorm, SiLU, the mean over time and one linear layer per head."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        dim = config.time_dim
        if config.noisy:  # emb(t) as in the denoiser (models.ConditionEmbedding without labels)
            self.time = nn.Sequential(models.SinusoidalTimeEmbedding(dim), nn.Linear(dim, dim), nn.SiLU(),
                                      nn.Linear(dim, dim))
        else:  # no t to read: one learned vector modulates the blocks
            self.constant = nn.Parameter(torch.zeros(dim))
        widths = [config.channels * m for m in config.channel_mults]
        self.conv_in = nn.Conv1d(config.in_channels, widths[0], 3, padding=1)
        self.blocks, self.downsample = nn.ModuleList(), nn.ModuleList()
        c = widths[0]
        for w in widths:
            self.blocks.append(models.ResBlock(1, c, w, dim, config.groups, config.dropout))
            self.downsample.append(nn.Conv1d(w, w, 3, stride=2, padding=1))
            c = w
        self.norm = nn.GroupNorm(config.groups, c)
        self.heads = nn.ModuleDict({name: nn.Linear(c, len(CLASSES[name])) for name in config.heads})

    def forward(self, x: torch.Tensor, t=None) -> dict[str, torch.Tensor]:
        """x: (B, C, L) encoded windows (x_t for a noisy classifier); t: (B,) or an int, needed by a
        noisy classifier and ignored by a clean one. Returns {head: logits (B, classes)}."""
        if x.ndim != 3 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"the classifier expects x of shape (B, {self.config.in_channels}, L), got "
                             f"{tuple(x.shape)}; encode rolls with encoding.encode and add a batch axis")
        batch = x.shape[0]
        if self.config.noisy:
            if t is None:
                raise ValueError("this classifier was trained on noisy x_t and needs its timestep: "
                                 "classifier(x_t, t); for clean windows pass t=0")
            t = torch.as_tensor(t, device=x.device)
            t = t.expand(batch) if t.ndim == 0 else t
            if t.shape != (batch,) or t.is_floating_point():
                raise ValueError(f"t must be an int or an integer tensor of shape ({batch},), got {tuple(t.shape)}")
            emb = self.time(t.long())  # (B, time_dim)
        else:
            emb = self.constant.expand(batch, -1)  # (B, time_dim)
        emb = F.silu(emb)
        h = self.conv_in(x)  # (B, channels, L)
        for block, downsample in zip(self.blocks, self.downsample):
            h = downsample(block(h, emb))  # (B, w, L / 2 per level)
        h = F.silu(self.norm(h)).mean(dim=-1)  # (B, c): average over time
        return {name: head(h) for name, head in self.heads.items()}

    def head(self, name: str):
        """A function (x_t, t) -> logits (B, classes) of one head: what ``guidance.classifier_gradient``
        takes. Put the classifier in eval mode first (``classifier.eval()``)."""
        if name not in self.heads:
            raise ValueError(f"this classifier has heads {list(self.heads)}, not {name!r}")
        return lambda x, t=None: self(x, t)[name]


def build_classifier(config: ClassifierConfig | dict) -> LabelClassifier:
    return LabelClassifier(ClassifierConfig.from_dict(config) if isinstance(config, dict) else config)


# --------------------------------------------------------------------------- training

@dataclass
class ClassifierTrainConfig:
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3  # AdamW; cosine decay to lr / 10 after a 100-step warm-up
    weight_decay: float = 0.01
    valid_every: int = 500
    seed: int = 0
    threads: int = 1

    def __post_init__(self):
        check_training_numbers(self, "ClassifierTrainConfig")


def _as_tensors(dataset) -> tuple[torch.Tensor, dict]:
    """A WindowDataset (encoded) or an (x (N, C, L), labels {key: (N,)}) pair -> the pair."""
    if isinstance(dataset, tuple):
        return dataset
    if dataset.encoding is None:
        raise ValueError("the WindowDataset has no encoding; build it with encoding=VoiceEncoding()")
    rolls = np.stack([dataset.roll(i) for i in range(len(dataset))])
    return dataset.encoding.encode(rolls), dataset.label_tensors()


def balanced_weights(labels: dict, heads) -> torch.Tensor:
    """Sampling weights (N,) that make every combination of the heads' classes equally likely."""
    cell = torch.zeros_like(labels[heads[0]])
    for name in heads:
        cell = cell * len(CLASSES[name]) + labels[name]
    counts = torch.bincount(cell)
    return 1.0 / counts[cell].float()


def _lr_at(step: int, config: ClassifierTrainConfig, warmup: int = 100) -> float:
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_classifier(classifier: LabelClassifier, train_data, valid_data=None,
                     config: ClassifierTrainConfig = ClassifierTrainConfig(), *,
                     schedule: schedules.NoiseSchedule | None = None, progress: bool = True, log=print,
                     device="cpu") -> list[dict]:
    """Train in place with cross-entropy summed over the heads; returns the validation history.

    train_data, valid_data: WindowDatasets with an encoding, or (x (N, C, L), labels) pairs. A
    noisy classifier needs the ``schedule`` of the diffusion model it will guide: each batch is
    noised to x_t = q_sample(x_0, t) with t ~ Uniform{0..T-1} (DDPM eq. 4). device: where to train
    (``devices.pick_device``; the classifier stays there); batches are drawn on the CPU, so a seed
    gives the same batches on any device.
    """
    from . import devices
    device = devices.pick_device(device)
    classifier.to(device)
    if classifier.config.noisy and schedule is None:
        raise ValueError("a noisy classifier trains on x_t = q_sample(x_0, t): pass the diffusion model's schedule")
    torch.set_num_threads(config.threads)
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # dropout
    heads = classifier.config.heads
    x, labels = _as_tensors(train_data)
    valid = None if valid_data is None else _as_tensors(valid_data)
    weights = balanced_weights(labels, heads)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history, running, start = [], [], time.perf_counter()
    for step in tqdm(range(config.steps), disable=not progress, desc="training the classifier", unit="step"):
        classifier.train()
        index = torch.multinomial(weights, config.batch_size, replacement=True, generator=generator)
        x_batch, t = x[index].to(device), None  # (B, C, L)
        if classifier.config.noisy:
            t = torch.randint(0, schedule.timesteps, (config.batch_size,), generator=generator).to(device)
            x_batch = diffusion.q_sample(schedule, x_batch, t, generator=generator)
        logits = classifier(x_batch, t)
        loss = sum(F.cross_entropy(logits[name], labels[name][index].to(device)) for name in heads)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running.append(loss.item())
        if (step + 1) % config.valid_every == 0 or step + 1 == config.steps:
            row = {"step": step + 1, "train_loss": round(float(np.mean(running)), 4),
                   "seconds": round(time.perf_counter() - start, 1)}
            if valid is not None:
                row.update({f"valid_{k}": round(v, 4) for k, v in
                            accuracy(classifier, *valid, schedule=schedule).items()})
            history.append(row)
            running = []
            if log and not progress:
                log(json.dumps(row))
    classifier.eval()
    return history


# --------------------------------------------------------------------------- using a classifier

@torch.no_grad()
def predict(classifier: LabelClassifier, x: torch.Tensor, t=None, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Class probabilities {head: (N, classes)} for x (N, C, L) (x_t and t (N,) or an int if noisy)."""
    classifier.eval()
    device = next(classifier.parameters()).device  # probabilities come back on the CPU
    out: dict[str, list] = {name: [] for name in classifier.config.heads}
    for i in range(0, len(x), batch_size):
        t_i = t[i:i + batch_size] if torch.is_tensor(t) and t.ndim else t
        t_i = t_i.to(device) if torch.is_tensor(t_i) else t_i
        for name, logits in classifier(x[i:i + batch_size].to(device), t_i).items():
            out[name].append(logits.softmax(dim=-1).cpu())
    return {name: torch.cat(p) for name, p in out.items()}


def accuracy(classifier: LabelClassifier, x: torch.Tensor, labels: dict, *, t=None,
             schedule: schedules.NoiseSchedule | None = None, seed: int = 1234) -> dict[str, float]:
    """Share of windows whose most probable class is the label, per head (labels -1 are skipped).

    A noisy classifier is scored on x_t = q_sample(x, t): at ``t`` (an int) if given, otherwise at
    one t ~ Uniform{0..T-1} per window (fixed by ``seed``), the average over all noise levels."""
    if classifier.config.noisy:
        if schedule is None:
            raise ValueError("scoring a noisy classifier needs the schedule that makes its x_t")
        generator = torch.Generator().manual_seed(seed)
        if t is None:
            t = torch.randint(0, schedule.timesteps, (len(x),), generator=generator)
        x = diffusion.q_sample(schedule, x, t, generator=generator)
    probabilities = predict(classifier, x, t)
    result = {}
    for name, p in probabilities.items():
        known = labels[name] >= 0
        result[name] = float((p.argmax(-1)[known] == labels[name][known]).float().mean()) if known.any() else float("nan")
    return result


def classify_rolls(classifier: LabelClassifier, encoding, rolls) -> dict[str, np.ndarray]:
    """The clean classifier's verdict on rolls (N, tracks, 2, pitches, steps): {head: class index (N,)}.

    Rolls are encoded afresh, so a sample is judged as the clean music it decodes to."""
    if classifier.config.noisy:
        raise ValueError("classify_rolls judges clean music: use the clean classifier (load_bundled('clean'))")
    probabilities = predict(classifier, encoding.encode(np.asarray(rolls)))
    return {name: p.argmax(-1).numpy() for name, p in probabilities.items()}


# --------------------------------------------------------------------------- checkpoints

@dataclass
class ClassifierCheckpoint:
    classifier: LabelClassifier
    encoding: object
    schedule: schedules.NoiseSchedule | None  # what made its x_t (noisy classifiers only)
    meta: dict = field(default_factory=dict)


def save_classifier(path, classifier: LabelClassifier, encoding, *, schedule=None, card: dict | None = None) -> Path:
    """Weights plus config, encoding, schedule and model-card figures; ``torch.load(weights_only=True)``-safe."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"config": classifier.config.to_dict(), "encoding": encoding.to_dict(),
            "schedule": schedule.to_dict() if schedule is not None else None, "card": card or {},
            "torch": torch.__version__}
    state = {k: v.detach().cpu().contiguous() for k, v in classifier.state_dict().items()}
    with inputs.atomic_paths([path]) as (temp,):  # a run killed while saving leaves the old file intact
        torch.save({"format": FORMAT, "version": VERSION, "meta": json.dumps(meta), "state_dict": state}, temp)
    return path


def load_classifier(path) -> ClassifierCheckpoint:
    """Rebuild a classifier (in eval mode), its encoding and schedule from ``save_classifier``'s file.

    Raises ``train.CheckpointError`` (a ValueError) saying what to do for a missing, damaged,
    foreign, newer or edited file (sizes in the metadata are bounded before anything is built)."""
    path = Path(path)
    retrain = "python -m course_lib train-classifier"
    if not path.exists():
        raise CheckpointNotFoundError(f"{path}: no such classifier checkpoint. The bundled ones are "
                                      f"{[str(p) for p in BUNDLED.values()]}; train one with `{retrain}`.")
    blob, meta = read_checkpoint_file(path, FORMAT, VERSION, retrain=retrain,
                                      what="classifier checkpoint (a denoiser? load those with pipeline.load)")
    check_sizes(meta.get("config"), path, retrain=retrain,
                limits={k: v for k, v in SIZE_LIMITS.items() if k != "heads"})  # a classifier's heads are names
    if meta.get("schedule"):
        check_sizes(meta["schedule"], path, retrain=retrain)
    classifier = rebuild_part(path, "classifier config", lambda: build_classifier(meta["config"]), retrain=retrain)
    try:
        classifier.load_state_dict(blob["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the classifier its config describes "
                              f"({(str(err).splitlines()[1:2] or [str(err)[:200]])[0].strip()}); retrain it "
                              f"with `{retrain}`.") from None
    schedule = rebuild_part(path, "schedule", lambda: schedules.NoiseSchedule.from_dict(meta["schedule"])
                            if meta.get("schedule") else None, retrain=retrain)
    encoding = rebuild_part(path, "encoding", lambda: encodings.encoding_from_dict(meta["encoding"]), retrain=retrain)
    return ClassifierCheckpoint(classifier.eval(), encoding, schedule, meta)


def load_bundled(kind: str = "clean") -> ClassifierCheckpoint:
    """The course's classifier: "clean" (to measure control) or "noisy" (for classifier guidance)."""
    if kind not in BUNDLED:
        raise ValueError(f"kind must be one of {list(BUNDLED)}, not {kind!r}")
    return load_classifier(BUNDLED[kind])


def steer(classifier_checkpoint: ClassifierCheckpoint, scale: float, **targets) -> Callable:
    """Classifier guidance toward target classes: a sampler ``gradient_fn(x_t, t)`` returning
    scale · Σ_head ∇_{x_t} log p(target_head | x_t) (Dhariwal & Nichol 2021, eq. 14 with ε̂ shifted by
    -sqrt(1 - ᾱ_t) times it; ``guidance.classifier_gradient`` per head).

    classifier_checkpoint: the *noisy* classifier (``load_bundled("noisy")``); check it matches the
    model's schedule with ``check_schedule``. targets: head=class, e.g. ``style="folk", mode="minor"``;
    a class is its name, its index, or a LongTensor (B,) of indices, one per sample.
    """
    from .guidance import classifier_gradient

    inputs.check_number(scale, "classifier guidance scale", low=0.0)  # NaN would give silence
    require_noisy(classifier_checkpoint)
    classifier = classifier_checkpoint.classifier.eval()
    if not targets:
        raise ValueError(f"name at least one target, e.g. style='folk'; this classifier has heads "
                         f"{list(classifier.config.heads)}")
    pulls = []
    for head, target in targets.items():
        if head not in classifier.config.heads:
            raise ValueError(f"this classifier has heads {list(classifier.config.heads)}, not {head!r}")
        if isinstance(target, str):
            if target not in CLASSES[head]:
                raise ValueError(f"{head} must be one of {list(CLASSES[head])}, not {target!r}")
            target = CLASSES[head].index(target)
        pulls.append(classifier_gradient(classifier.head(head), torch.as_tensor(target), scale))
    return lambda x_t, t: sum(pull(x_t, t) for pull in pulls)


def model_card(card: dict) -> str:
    """The model card (Markdown) of a classifier trained by ``python -m course_lib train-classifier``."""
    kind, d = card["kind"], card["data"]
    purpose = ("judges clean 4-bar windows x_0: lesson 5 measures how well samples obey their labels with it"
               if kind == "clean" else
               "reads noisy x_t and its timestep t: lesson 5 guides sampling with its gradient "
               "(classifier guidance)")
    accuracy = card["test_accuracy"]
    lines = [f"# Model card: {kind} style/mode classifier", "",
             f"A `course_lib.classifiers.LabelClassifier` ({card['parameters']:,} parameters) that {purpose}.", "",
             "## Data",
             f"Windows of 4 bars from {', '.join(d['corpora'])} (music21's corpus, transposed to tonic C), voice "
             f"encoding (60 x 64); split by piece: {d['train_windows']} train, {d['valid_windows']} valid, "
             f"{d['test_windows']} test windows. Labels: style (corpus), mode (music21's key analysis of the "
             "window). Batches are balanced over the four (style, mode) cells."
             + (f" Noise: x_t = q_sample(x_0, t), t ~ Uniform{{0..T-1}}, schedule {card['schedule']}."
                if kind == "noisy" else ""), "",
             "## Training",
             f"    {card['command']}", "",
             f"{card['steps']} steps of batch {card['batch_size']} on {card['machine']}: {card['cpu_seconds']:.0f} s of "
             f"CPU time, {card['train_seconds']:.0f} s wall time (the two are close on an otherwise idle machine; "
             "data loading not included). Seeded: the same command gives the same weights on the same torch build "
             "and thread count.", "",
             "## Accuracy on the test split (most probable class = label)",
             "| | style | mode |", "|---|---|---|"]
    rows = [("clean windows", accuracy)] if kind == "clean" else \
        [("x_t, t ~ Uniform{0..T-1}", accuracy)] + [(f"x_t at t = {t}", row) for t, row in card["test_accuracy_by_t"].items()]
    lines += [f"| {name} | {row['style']:.3f} | {row['mode']:.3f} |" for name, row in rows]
    lines += ["", "Style is easy (a folk window has one voice, a chorale four); mode is the real test: after "
              "transposing to C it is mostly E, A, B against E-flat, A-flat, B-flat. Like any learned judge it "
              "knows only the data it was trained on: read its verdict on strange samples with care."]
    return "\n".join(lines) + "\n"


def require_noisy(classifier_checkpoint: ClassifierCheckpoint) -> None:
    """Raise unless the classifier was trained on noisy windows (only such a one can guide)."""
    if classifier_checkpoint.schedule is None:
        raise ValueError("this classifier was trained on clean windows; classifier guidance needs the noisy one "
                         "(load_bundled('noisy')): a clean classifier's gradient at high t points nowhere useful")


def check_schedule(classifier_checkpoint: ClassifierCheckpoint, schedule: schedules.NoiseSchedule) -> None:
    """Raise unless a noisy classifier was trained on the same noise levels as the model it guides."""
    require_noisy(classifier_checkpoint)
    own = classifier_checkpoint.schedule
    if own.to_dict() != schedule.to_dict():
        raise ValueError(f"the classifier was trained with {own}, the diffusion model uses {schedule}: x_t at the "
                         "same t would mean different noise levels. Retrain it with matching --schedule/--timesteps.")
