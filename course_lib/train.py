"""Training a denoiser, and checkpoints that carry everything needed to use it.

``train`` is the whole loop in one readable function: sample a batch of windows, drop labels at
random (``guidance.drop_labels``: so the same network learns the unconditional ε(x_t, ∅) that
classifier-free guidance needs), compute the diffusion loss, step AdamW with gradient clipping and a warm-up/cosine
learning rate, and keep an exponential moving average (EMA) of the weights, which is what we
sample from: EMA weights give visibly cleaner samples than the raw, noisy last iterate.

A checkpoint is a plain dict that ``torch.load(path, weights_only=True)`` can read safely:
``{"format", "version", "meta" (JSON text: model config, schedule, encoding, training config,
data description, model card figures), "state_dict" (the EMA weights)}``. ``load_checkpoint``
rebuilds the model, schedule and encoding from it, and says clearly what is wrong with a file
that is missing, damaged, foreign or made for another model.
"""
from __future__ import annotations

import copy
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import ASSETS, diffusion, encoding as encodings, guidance, inputs, models, schedules

FORMAT, VERSION = "diffusion-soundtracks-checkpoint", 1


@dataclass
class TrainConfig:
    steps: int = 6000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 200  # linear warm-up steps, then cosine decay to lr / 10
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    label_dropout: float = 0.15  # share of the batch trained with all labels null: ε(x_t, ∅) for CFG
    label_dropout_each: float = 0.1  # then each label alone: any subset of labels can be asked for
    balance_styles: bool = True  # draw each style equally often, however many windows it has
    style_weights: tuple[float, ...] | None = None  # with balance_styles: relative share per style index
    valid_every: int = 500
    seed: int = 0
    threads: int = 2


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a torch.Generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def stack_dataset(dataset) -> tuple[torch.Tensor, dict]:
    """Every window of a WindowDataset, encoded, as one tensor (N, ...) and label tensors (N,).

    (Without on-the-fly transposition; for augmentation, index the dataset instead.)"""
    rolls = np.stack([dataset.roll(i) for i in range(len(dataset))])
    return dataset.encoding.encode(rolls), dataset.label_tensors()


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def _lr_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def validation_loss(model, schedule, x: torch.Tensor, labels: dict, seed: int = 1234) -> float:
    """Mean loss over a fixed set of (t, noise) draws, so values are comparable over training."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    losses = [diffusion.training_loss(model, schedule, x[i:i + 256], {k: v[i:i + 256] for k, v in labels.items()},
                                      prediction=model.config.prediction, generator=generator).item()
              for i in range(0, len(x), 256)]
    return float(np.mean(losses))


def train(model, schedule, train_data, valid_data=None, config: TrainConfig = TrainConfig(),
          progress: bool = True, log=print, on_validation=None) -> dict:
    """Train ``model`` in place on (x, labels) tensors; returns {"ema": model, "history": [...]}.

    ``train_data`` / ``valid_data``: a WindowDataset or a pair (x (N, ...), labels dict of (N,)).
    ``on_validation(row, ema)`` is called after each validation (e.g. to save a snapshot).
    """
    torch.set_num_threads(config.threads)
    generator = seed_everything(config.seed)
    x, labels = train_data if isinstance(train_data, tuple) else stack_dataset(train_data)
    augment = getattr(train_data, "transpose_range", 0) > 0  # re-encode each batch, transposed
    valid = valid_data if valid_data is None or isinstance(valid_data, tuple) else stack_dataset(valid_data)
    ema = copy.deepcopy(model).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    weights = torch.ones(len(x))
    if config.balance_styles and "style" in labels:
        style = labels["style"].clamp(min=0)
        counts = torch.bincount(style)
        share = torch.tensor(config.style_weights or [1.0] * len(counts), dtype=torch.float32)
        if len(share) < len(counts):
            raise ValueError(f"style_weights {config.style_weights} needs one weight per style ({len(counts)})")
        weights = share[style] / counts[style].float()
    history, running, start = [], [], time.perf_counter()
    bar = tqdm(range(config.steps), disable=not progress, desc="training", unit="step")
    for step in bar:
        model.train()
        index = torch.multinomial(weights, config.batch_size, replacement=True, generator=generator)
        batch_labels = guidance.drop_labels({k: v[index] for k, v in labels.items()}, config.label_dropout,
                                            p_each=config.label_dropout_each, generator=generator)
        x_batch = torch.stack([train_data[i][0] for i in index.tolist()]) if augment else x[index]
        loss = diffusion.training_loss(model, schedule, x_batch, batch_labels,
                                       prediction=model.config.prediction, generator=generator)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        update_ema(ema, model, config.ema_decay if step >= config.warmup else 0.0)
        running.append(loss.item())
        last = step + 1 == config.steps
        if (step + 1) % config.valid_every == 0 or last:
            row = {"step": step + 1, "train_loss": float(np.mean(running)),
                   "seconds": round(time.perf_counter() - start, 1)}
            if valid is not None:
                row["valid_loss"] = validation_loss(ema, schedule, *valid)
            history.append(row)
            running = []
            if on_validation is not None:
                on_validation(row, ema)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", valid=f"{row.get('valid_loss', float('nan')):.4f}")
            if log and not progress:
                log(json.dumps(row))
    return {"ema": ema, "history": history}


# ---------------------------------------------------------------------- checkpoints

class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message says why and what to do."""


@dataclass
class Checkpoint:
    model: torch.nn.Module
    schedule: schedules.NoiseSchedule
    encoding: object
    meta: dict = field(default_factory=dict)

    @property
    def spec(self):
        return self.encoding.spec


def save_checkpoint(path, model, schedule, encoding, *, train_config: TrainConfig | None = None,
                    data: dict | None = None, card: dict | None = None) -> Path:
    """Write weights plus everything needed to rebuild and understand the model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"model": model.config.to_dict(), "schedule": schedule.to_dict(), "encoding": encoding.to_dict(),
            "train": asdict(train_config) if train_config else None, "data": data or {}, "card": card or {},
            "torch": torch.__version__}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with inputs.atomic_paths([path]) as (temp,):  # a run killed while saving leaves the old file intact
        torch.save({"format": FORMAT, "version": VERSION, "meta": json.dumps(meta), "state_dict": state}, temp)
    return path


# Bounds on what a checkpoint's metadata may ask for, checked before anything is allocated: a
# damaged or hostile file saying channels=65536 would otherwise make the loader try to allocate
# tens of GB. Every model this course trains is far inside them.
SIZE_LIMITS = {"in_channels": 4096, "channels": 1024, "time_dim": 4096, "n_res_blocks": 8,
               "n_styles": 1000, "groups": 1024, "heads": 64, "timesteps": 100_000}
MAX_CHANNEL_MULT, MAX_LEVELS = 16, 8


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist."""


def read_checkpoint_file(path, file_format: str, version: int, *, retrain: str,
                         what: str = "Diffusion Soundtracks checkpoint") -> tuple[dict, dict]:
    """The checked parts of a checkpoint file -> (blob, meta): a regular file that ``torch.load``
    reads with ``weights_only=True``, of ``file_format`` and ``version`` (an int), with JSON
    metadata (a dict) and a state dict of finite tensors. Raises ``CheckpointError`` saying what to do;
    ``retrain``: the command that makes a new one. Shared by denoiser and classifier checkpoints."""
    path = Path(path)
    if path.exists():
        inputs.check_regular_file(path, "checkpoint", error=CheckpointError)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is damaged or not a PyTorch checkpoint ({type(err).__name__}: "
                              f"{str(err)[:120]}). Restore it from git (`git checkout -- {path}`) or "
                              f"retrain it with `{retrain}`.") from None
    if not isinstance(blob, dict) or blob.get("format") != file_format:
        found = f"format {blob.get('format')!r}" if isinstance(blob, dict) and "format" in blob else "no 'format' entry"
        raise CheckpointError(f"{path} is a PyTorch file but not a {what} ({found}); "
                              f"make one with `{retrain}`.")
    found = blob.get("version")
    if type(found) is not int or found != version:
        shown = f"{found!r} ({type(found).__name__}, not a whole number)" if type(found) is not int else found
        raise CheckpointError(f"{path} has checkpoint version {shown}, this course_lib reads version "
                              f"{version}; update course_lib or retrain with `{retrain}`.")
    try:
        meta = json.loads(blob.get("meta"))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its metadata is not JSON text ({type(err).__name__}); the file was "
                              f"edited or damaged. Retrain it with `{retrain}`.") from None
    state = blob.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(state, dict) or \
            not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise CheckpointError(f"{path}: the metadata must be a JSON object and the weights a dict of "
                              f"tensors; the file was edited or damaged. Retrain it with `{retrain}`.")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{path}: the weights {bad[:3]} hold NaN or inf values (training diverged or "
                              f"the file is damaged); a model like that generates silence. Retrain it with "
                              f"`{retrain}`.")
    return blob, meta


def check_sizes(config: dict, path, *, retrain: str, limits: dict = SIZE_LIMITS) -> None:
    """Raise ``CheckpointError`` if a config dict from a file asks for sizes beyond ``limits``."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the model config must be a JSON object, got {type(config).__name__}")
    for key, limit in limits.items():
        value = config.get(key)
        if value is not None and (type(value) is not int or not 0 <= value <= limit):
            raise CheckpointError(f"{path}: {key}={value!r} in its metadata is not a whole number in 0..{limit}; "
                                  f"the file was edited or damaged. Retrain it with `{retrain}`.")
    mults = config.get("channel_mults")
    if mults is not None and (not isinstance(mults, list) or not 1 <= len(mults) <= MAX_LEVELS
                              or not all(type(m) is int and 1 <= m <= MAX_CHANNEL_MULT for m in mults)):
        raise CheckpointError(f"{path}: channel_mults={mults!r} must be 1..{MAX_LEVELS} whole numbers in "
                              f"1..{MAX_CHANNEL_MULT}; the file was edited or damaged. Retrain it with `{retrain}`.")


def rebuild_part(path, what: str, build, *, retrain: str):
    """``build()`` (e.g. ``ModelConfig.from_dict(meta["model"])``), with any error about the metadata
    turned into a ``CheckpointError`` naming ``what`` was wrong."""
    try:
        return build()
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{path}: the {what} in its metadata is missing or wrong ({type(err).__name__}: "
                              f"{str(err)[:160]}); the file was edited or written by another version. "
                              f"Retrain it with `{retrain}`.") from None


def load_checkpoint(path, *, expect_encoding: str | None = None, expect_spec=None) -> Checkpoint:
    """Rebuild (model in eval mode, schedule, encoding, meta) from a checkpoint file."""
    path = Path(path)
    retrain = "python -m course_lib train"
    if not path.exists():
        bundled = sorted(p.name for p in (ASSETS / "checkpoints").glob("*.pt"))
        raise CheckpointNotFoundError(f"{path}: no such checkpoint. Bundled ones: {bundled or 'none'} in "
                                      f"{ASSETS / 'checkpoints'}; train one with `{retrain}`.")
    blob, meta = read_checkpoint_file(path, FORMAT, VERSION, retrain=retrain)
    encoding = rebuild_part(path, "encoding", lambda: encodings.encoding_from_dict(meta["encoding"]), retrain=retrain)
    if expect_encoding and encoding.name != expect_encoding:
        raise CheckpointError(f"{path} was trained on the {encoding.name!r} encoding, but "
                              f"{expect_encoding!r} was asked for; pick the matching checkpoint.")
    if expect_spec is not None and encoding.spec != expect_spec:
        raise CheckpointError(f"{path} was trained on tracks {encoding.spec.tracks}, pitches "
                              f"{encoding.spec.low}..{encoding.spec.high - 1}; your data use "
                              f"{expect_spec.tracks}, {expect_spec.low}..{expect_spec.high - 1}.")
    check_sizes(meta.get("model"), path, retrain=retrain)
    check_sizes(meta.get("schedule"), path, retrain=retrain)
    schedule = rebuild_part(path, "schedule", lambda: schedules.NoiseSchedule.from_dict(meta["schedule"]),
                            retrain=retrain)
    model = rebuild_part(path, "model config",
                         lambda: models.build_model(models.ModelConfig.from_dict(meta["model"])), retrain=retrain)
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as err:
        first = str(err).splitlines()[1:2] or [str(err)[:200]]
        raise CheckpointError(f"{path}: the weights do not fit the model its config describes "
                              f"({first[0].strip()}). The file was edited or written by another version; "
                              f"retrain it with `{retrain}`.") from None
    return Checkpoint(model=model.eval(), schedule=schedule, encoding=encoding, meta=meta)
