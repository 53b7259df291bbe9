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

from . import ASSETS, devices, diffusion, encoding as encodings, guidance, inputs, models, schedules

FORMAT, VERSION = "diffusion-soundtracks-checkpoint", 1
DEFAULT_STYLES = ("bach", "folk")  # the styles of checkpoints that do not name theirs


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

    def __post_init__(self):
        """Every field in its range (``inputs.InputError`` naming it), before a step runs."""
        check_training_numbers(self, "TrainConfig", fractions=("ema_decay", "label_dropout", "label_dropout_each"))
        check = inputs.check_number
        check(self.warmup, "TrainConfig.warmup", low=0, integer=True)
        check(self.grad_clip, "TrainConfig.grad_clip", low=0.0, low_inclusive=False)
        if self.style_weights is not None:
            for weight in self.style_weights:
                check(weight, "TrainConfig.style_weights", low=0.0)
            if not sum(self.style_weights) > 0:
                raise inputs.InputError(f"TrainConfig.style_weights {self.style_weights}: give at least one weight > 0")


def check_training_numbers(config, name: str, fractions=()) -> None:
    """The fields every training config shares (steps, batch_size, valid_every, threads >= 1; seed;
    0 < lr <= 1; weight_decay >= 0), and ``fractions`` in 0..1. Shared with ClassifierTrainConfig."""
    check = inputs.check_number
    for field_name in ("steps", "batch_size", "valid_every", "threads"):
        check(getattr(config, field_name), f"{name}.{field_name}", low=1, high=inputs.MAX_INT, integer=True)
    check(config.seed, f"{name}.seed", low=0, high=2 ** 32 - 1, integer=True)
    check(config.lr, f"{name}.lr", low=0.0, high=1.0, low_inclusive=False)
    check(config.weight_decay, f"{name}.weight_decay", low=0.0)
    for field_name in fractions:
        check(getattr(config, field_name), f"{name}.{field_name}", low=0.0, high=1.0)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a torch.Generator seeded the same way."""
    seed = inputs.check_number(seed, "seed", low=0, high=2 ** 32 - 1, integer=True)
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
    inputs.check_number(decay, "decay", low=0.0, high=1.0)
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
          progress: bool = True, log=print, on_validation=None, *, device="cpu", precision: str = "fp32",
          resume: dict | None = None, on_state=None) -> dict:
    """Train ``model`` in place on (x, labels) tensors; returns {"ema": model, "history": [...]}.

    ``train_data`` / ``valid_data``: a WindowDataset or a pair (x (N, ...), labels dict of (N,)).
    ``on_validation(row, ema)`` is called after each validation (e.g. to save a snapshot).

    device: "cpu" (the default), "cuda", "mps", "auto" (``devices.pick_device``) or a torch.device;
    the model, its EMA and the data move there. precision: "fp32", or "bf16" / "fp16" on CUDA
    (``devices.autocast``; fp16 with a loss scaler).

    Several processes (started by torchrun; call ``devices.start_processes`` first): the model is
    wrapped in DistributedDataParallel. Every process draws the *same* global batch of
    ``config.batch_size`` windows, label dropout, t and ε from the same seeded generator, exactly as
    one process would, and computes the loss on its own contiguous share of batch_size / world_size
    rows; DDP averages the gradients, so the step, the gradient clipping and the EMA (updated on
    every process from identical weights) are those of one process with the whole batch, up to the
    order of float additions. Only process 0 validates, logs and calls the callbacks.

    resume: the state ``load_training_state`` reads from a checkpoint: training continues after its
    step with its weights, EMA, optimizer and random-number states (same config: same result as a
    run never stopped). on_state(state): called on process 0 after each validation with that
    resumable state (``save_checkpoint(..., training_state=state)`` stores it).
    """
    torch.set_num_threads(config.threads)
    device = devices.pick_device(device)
    devices.check_precision(precision, device)
    rank, world_size = devices.world()
    if config.batch_size % world_size:
        raise ValueError(f"batch size {config.batch_size} does not split over {world_size} processes; "
                         f"use a multiple of {world_size}")
    share = slice(rank * config.batch_size // world_size, (rank + 1) * config.batch_size // world_size)
    generator = seed_everything(config.seed)
    x, labels = train_data if isinstance(train_data, tuple) else stack_dataset(train_data)
    augment = getattr(train_data, "transpose_range", 0) > 0  # re-encode each batch, transposed
    if augment and world_size > 1:  # each process transposes its own share: give each its own draws
        train_data.rng = np.random.default_rng([config.seed, rank])
    valid = valid_data if valid_data is None or isinstance(valid_data, tuple) else stack_dataset(valid_data)
    if valid is not None:
        valid = (valid[0].to(device), valid[1])
    x, schedule_here = x.to(device), schedule.to(device)
    model.to(device)
    ema = copy.deepcopy(model).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scaler = devices.grad_scaler(device, precision)
    weights = torch.ones(len(x))
    if config.balance_styles and "style" in labels:
        style = labels["style"].clamp(min=0)
        counts = torch.bincount(style)
        share_of = torch.tensor(config.style_weights or [1.0] * len(counts), dtype=torch.float32)
        if len(share_of) < len(counts):
            raise ValueError(f"style_weights {config.style_weights} needs one weight per style ({len(counts)})")
        weights = share_of[style] / counts[style].float()
    history, running, first_step = [], [], 0
    if resume is not None:
        first_step, history = _restore(resume, config, model, ema, optimizer, scaler, generator, train_data, augment)
    net = torch.nn.parallel.DistributedDataParallel(model) if world_size > 1 else model
    start = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    bar = tqdm(range(first_step, config.steps), initial=first_step, total=config.steps,
               disable=not progress or rank != 0, desc="training", unit="step")
    for step in bar:
        model.train()
        # The global batch, drawn as one process draws it (the order of draws is training_loss's own).
        index = torch.multinomial(weights, config.batch_size, replacement=True, generator=generator)  # (B,)
        batch_labels = guidance.drop_labels({k: v[index] for k, v in labels.items()}, config.label_dropout,
                                            p_each=config.label_dropout_each, generator=generator)
        t = torch.randint(0, schedule.timesteps, (config.batch_size,), generator=generator)  # (B,)
        noise = diffusion.randn((config.batch_size, *x.shape[1:]), generator)  # (B, ...)
        mine = index[share]  # this process's rows
        x_batch = torch.stack([train_data[i][0] for i in mine.tolist()]).to(device) if augment else x[mine.to(device)]
        with devices.autocast(device, precision):
            loss = diffusion.training_loss(net, schedule_here, x_batch,
                                           {k: v[share].to(device) for k, v in batch_labels.items()},
                                           prediction=model.config.prediction, t=t[share].to(device),
                                           noise=noise[share].to(device))
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()  # (DDP: the gradients are averaged over processes here)
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        update_ema(ema, model, config.ema_decay if step >= config.warmup else 0.0)
        running.append(loss.item())
        last = step + 1 == config.steps
        if (step + 1) % config.valid_every == 0 or last:
            train_loss = _mean_over_processes(running, device)
            running = []
            if rank != 0:
                continue
            row = {"step": step + 1, "train_loss": train_loss, "seconds": round(time.perf_counter() - start, 1)}
            if valid is not None:
                row["valid_loss"] = validation_loss(ema, schedule_here, *valid)
            history.append(row)
            if on_validation is not None:
                on_validation(row, ema)
            if on_state is not None:
                on_state(training_state(step + 1, model, ema, optimizer, scaler, generator, train_data, history))
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", valid=f"{row.get('valid_loss', float('nan')):.4f}")
            if log and not progress:
                log(json.dumps(row))
    result = {"ema": ema, "history": history}
    if world_size > 1:
        result["difference_between_processes"] = _difference_between_processes(model, ema)
    return result


def _mean_over_processes(losses: list[float], device) -> float:
    """The mean training loss since the last validation, over every process's share."""
    if devices.world()[1] == 1:
        return float(np.mean(losses))
    total = torch.tensor([float(np.mean(losses))], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(total)
    return float(total) / devices.world()[1]


def _difference_between_processes(model, ema) -> float:
    """Largest |weight of this process - weight of process 0| over the model and its EMA (0.0: the
    copies are identical, as data parallelism promises)."""
    mine = torch.cat([p.detach().flatten() for p in [*model.parameters(), *ema.parameters()]])
    first = mine.clone()
    torch.distributed.broadcast(first, src=0)
    largest = (mine - first).abs().max()
    torch.distributed.all_reduce(largest, op=torch.distributed.ReduceOp.MAX)
    return float(largest)


# ---------------------------------------------------------------------- resuming

def _on_cpu(value):
    """Tensors anywhere inside dicts/lists moved to the CPU: checkpoints never remember a device."""
    if torch.is_tensor(value):  # a copy: a CPU tensor's .cpu() would share the live weights' memory
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(v) for v in value)
    return value


def training_state(step: int, model, ema, optimizer, scaler, generator, train_data, history) -> dict:
    """Everything a stopped run needs to go on exactly where it was, as CPU tensors and plain values."""
    state = {"step": step, "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
             "scaler": scaler.state_dict(), "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
             "history": [dict(row) for row in history]}
    if hasattr(train_data, "rng"):  # on-the-fly transposition draws from the dataset's own generator
        state["data_rng"] = json.dumps(train_data.rng.bit_generator.state)
    return _on_cpu(state)


def _restore(state: dict, config, model, ema, optimizer, scaler, generator, train_data, augment) -> tuple[int, list]:
    step = int(state["step"])
    if step >= config.steps:
        raise ValueError(f"the run to resume is at step {step} of {config.steps} already; ask for more steps "
                         f"(e.g. --steps {2 * config.steps}) to train on")
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if augment and "data_rng" in state and devices.world()[1] == 1:
        train_data.rng.bit_generator.state = json.loads(state["data_rng"])
    return step, [dict(row) for row in state["history"]]


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

    @property
    def styles(self) -> tuple[str, ...]:
        """Style names in label-index order; checkpoints older than this entry knew bach and folk."""
        return tuple(self.meta.get("styles") or DEFAULT_STYLES)


def save_checkpoint(path, model, schedule, encoding, *, train_config: TrainConfig | None = None,
                    data: dict | None = None, card: dict | None = None, styles=None,
                    training_state: dict | None = None) -> Path:
    """Write weights plus everything needed to rebuild and understand the model.

    Every tensor is written as a CPU tensor, so a model trained on a GPU loads on any machine.
    styles: the style names, in label-index order (default ``DEFAULT_STYLES``: "bach", "folk").
    training_state: ``training_state(...)`` of the run, to be able to resume it (``--resume``); its
    EMA weights are then the ones written (``model`` gives the config), and the file is ~4x larger
    (raw weights and the optimizer's two moments besides the EMA weights).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"model": model.config.to_dict(), "schedule": schedule.to_dict(), "encoding": encoding.to_dict(),
            "train": asdict(train_config) if train_config else None, "data": data or {}, "card": card or {},
            "styles": list(styles or DEFAULT_STYLES), "torch": torch.__version__}
    weights = training_state["ema"] if training_state is not None else model.state_dict()  # the run's EMA then
    state = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    blob = {"format": FORMAT, "version": VERSION, "meta": json.dumps(meta), "state_dict": state}
    if training_state is not None:  # (its EMA weights are the state_dict)
        blob["training"] = _on_cpu({k: v for k, v in training_state.items() if k != "ema"})
    with inputs.atomic_paths([path]) as (temp,):  # a run killed while saving leaves the old file intact
        torch.save(blob, temp)
    return path


def load_training_state(path) -> dict:
    """The resumable state stored with a checkpoint (``save_checkpoint(training_state=...)``), for
    ``train(..., resume=state)``; raises ``CheckpointError`` if the file holds none."""
    load_checkpoint(path)  # the usual checks, with their messages
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if "training" not in blob:
        raise CheckpointError(f"{path} holds the model only, not the state of its training run, so it cannot be "
                              "resumed; resume from the OUT.resume.pt file that `python -m course_lib train` "
                              "writes beside OUT at every validation.")
    return {**blob["training"], "ema": blob["state_dict"]}


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
