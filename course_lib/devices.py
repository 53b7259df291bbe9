"""Where the work runs: a device (CPU, a CUDA GPU, Apple's MPS), its number precision, and several
processes that train as one.

- ``pick_device("auto")`` is what lessons and commands call: a CUDA GPU if PyTorch sees one, else
  Apple's MPS, else the CPU. Asking for a device that is not there is an error that says what to do.
- ``autocast`` / ``grad_scaler``: mixed precision on CUDA. bf16 keeps fp32's exponent range, so it
  needs nothing else; fp16 gradients can underflow to zero, so the loss is scaled up before the
  backward pass and the gradients scaled back before the optimizer step (``torch.amp.GradScaler``).
  The CPU trains in fp32 only: asking for bf16 or fp16 there is refused rather than silently slow.
- ``start_processes`` / ``world``: data parallelism with ``torch.distributed``. ``torchrun`` starts
  one process per device and tells each its ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in the
  environment; every process holds a full copy of the model, computes the gradient on its share of
  each batch, and the copies average their gradients (an all-reduce) before every step, so they stay
  identical. Backends: gloo between CPU processes, NCCL between GPUs.

Checkpoints never remember a device: ``train.save_checkpoint`` writes CPU tensors, and
``train.load_checkpoint`` reads onto the CPU; ``.to(device)`` afterwards.
"""
from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA if available, then MPS, then CPU; "cpu", "cuda", "cuda:N" or "mps" -> that
    device, or a ``ValueError`` that says why it is not there and what to use instead."""
    if isinstance(name, torch.device):
        name = str(name)
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of {DEVICES} (or cuda:N for GPU number N)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA (a CPU-only build)"
            raise ValueError(f"device {name!r} asked for, but PyTorch sees no CUDA GPU (torch {torch.__version__}, "
                             f"built with {build}). Use --device auto or cpu, or install a CUDA build of torch "
                             "on a machine with an NVIDIA GPU (on Colab: Runtime > Change runtime type > GPU).")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) are visible "
                             f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    if kind == "mps" and not _mps_available():
        raise ValueError(f"device {name!r} asked for, but MPS (Apple-silicon GPUs, macOS 12.3+) is not available "
                         "here. Use --device auto or cpu.")
    return torch.device(name)


def check_precision(precision: str, device: torch.device) -> None:
    """Raise unless ``precision`` can be used for training on ``device`` (see the module docstring)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if precision == "fp32":
        return
    if device.type != "cuda":
        raise ValueError(f"--precision {precision} needs a CUDA GPU; on {device.type} train in fp32 (the default). "
                         "Mixed precision on a CPU is slower than fp32 on most processors, so it is not offered.")
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU has no bfloat16 support (it arrived with NVIDIA Ampere, e.g. A100); "
                         "use --precision fp16 (with loss scaling) or fp32")


def autocast(device: torch.device, precision: str = "fp32"):
    """A context in which the forward pass and the loss run in ``precision`` (fp32: does nothing)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def grad_scaler(device: torch.device, precision: str = "fp32") -> torch.amp.GradScaler:
    """The loss scaler fp16 needs; for fp32 and bf16 a disabled one, whose scale/step/update pass through."""
    return torch.amp.GradScaler(device.type if device.type == "cuda" else "cpu", enabled=precision == "fp16")


# ---------------------------------------------------------------------- several processes (torchrun)

def launched_by_torchrun() -> bool:
    """True in a process that torchrun started as one of several (WORLD_SIZE > 1 in the environment)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start_processes(device: torch.device) -> torch.device:
    """Join the process group torchrun set up (gloo for CPUs, NCCL for GPUs); returns this process's
    device (``cuda:LOCAL_RANK`` on GPUs: one GPU per process). Outside torchrun: ``device`` unchanged."""
    if not launched_by_torchrun() or dist.is_initialized():
        return device
    if device.type == "mps":
        raise ValueError("several processes on MPS are not supported by torch.distributed; use --device cpu")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def stop_processes() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """(rank of this process, number of processes): (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """Only process 0 logs, validates and writes files."""
    return world()[0] == 0


# --- threads for the lessons --------------------------------------------------------------------
# The lessons' models are small (a 2-D MLP, a 1.3M-parameter U-Net on batches of 1-64 windows), and
# students' laptops and Colab's 2 vCPUs are shared with a browser, the notebook server and often
# another program. torch's default (one thread per core) then oversubscribes the cores: measured on
# this project's 2-core machine with one other busy process, a training step of lesson 3's toy MLP
# took 50-316 ms with 2 threads and 4-5 ms with 1 (benchmarks/lesson_threads.py measures it again).
# One thread costs little on an idle machine and never collapses under load, so it is the default.
LESSON_THREADS_ENV = "COURSE_THREADS"


def lesson_threads() -> int:
    """The torch CPU threads a lesson uses: ``$COURSE_THREADS`` when set (a whole number >= 1, for a
    machine of your own with cores to spare), else 1."""
    value = os.environ.get(LESSON_THREADS_ENV, "").strip()
    if not value:
        return 1
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"{LESSON_THREADS_ENV}={value!r} is not a thread count: set it to a whole number >= 1 "
                         f"(e.g. {LESSON_THREADS_ENV}=2), or unset it for the lessons' default of 1")
    return threads


def use_lesson_threads() -> int:
    """Set torch's CPU threads to ``lesson_threads()`` (done once when a lesson imports its checks);
    returns the count. Only the CPU is affected: a GPU runs as fast either way."""
    threads = lesson_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
