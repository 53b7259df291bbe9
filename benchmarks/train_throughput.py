"""Training throughput: steps and samples per second of ``train.train`` for 1 and 2 processes on the
CPU, and on an accelerator when one is present (issue 15).

Each row runs in fresh processes started the way torchrun starts them (RANK, LOCAL_RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT in the environment; ``devices.start_processes`` joins them: gloo between
CPU processes, NCCL between GPUs), so every row pays the same start-up and none inherits another's
warm caches. The model is the bundled checkpoint's architecture, freshly initialised; the data are
the Bach training windows; the batch is global (2 processes: half of it each, gradients averaged,
as ``train --batch-size`` means it). The clock runs on process 0 from the end of the warm-up steps
to the last step; data preparation and start-up are not timed. CPU/wall: process 0's CPU seconds per
second of that span (1.0 per thread when it has its cores to itself; far less on a machine others share,
where the steps/s say more about the load than about the method).

    python benchmarks/train_throughput.py                 # 40 timed steps after 10 warm-up, batch 64
    python benchmarks/train_throughput.py --steps 100 --batch-size 128
    python benchmarks/train_throughput.py --quick         # 2 timed steps, batch 8: only checks that it runs
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

import torch

from course_lib import data, devices, models, pipeline, train

RESULT = "RESULT "  # the line process 0 prints its figures on


def measure(device: str, precision: str, steps: int, warmup: int, batch_size: int, split: str) -> dict | None:
    """One process's part of a row (inside the process group when WORLD_SIZE > 1); figures on rank 0."""
    where = devices.start_processes(devices.pick_device(device))
    ckpt = train.load_checkpoint(pipeline.DEFAULT_CHECKPOINT)  # its architecture, encoding and schedule
    torch.manual_seed(0)
    model = models.build_model(ckpt.model.config)
    windows = data.WindowDataset(data.load_corpus("bach"), split, ckpt.encoding)
    marks = []
    config = train.TrainConfig(steps=warmup + steps, batch_size=batch_size, valid_every=warmup,
                               threads=torch.get_num_threads(), seed=0)

    def mark(row, ema):  # process 0, after step `warmup`, 2 * warmup, ...: the last step finished
        if where.type == "cuda":
            torch.cuda.synchronize(where)
        marks.append((row["step"], time.perf_counter(), time.process_time()))

    try:
        train.train(model, ckpt.schedule, windows, None, config, progress=False, log=None, on_validation=mark,
                    device=where, precision=precision)
    finally:
        devices.stop_processes()
    if not marks:
        return None
    (first_step, first, first_cpu), (last_step, last, last_cpu) = marks[0], marks[-1]
    steps_per_second = (last_step - first_step) / (last - first)
    return {"steps_per_second": steps_per_second, "samples_per_second": steps_per_second * batch_size,
            "cpu_share": (last_cpu - first_cpu) / (last - first),  # process 0's CPU seconds per wall second
            "parameters": sum(p.numel() for p in model.parameters()), "windows": len(windows),
            "device": torch.cuda.get_device_name(where) if where.type == "cuda" else str(where)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_row(processes: int, threads: int, device: str, precision: str, args) -> dict:
    """Start ``processes`` workers as torchrun would and return process 0's figures."""
    port = _free_port()
    workers = []
    for rank in range(processes):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(processes),
               "LOCAL_WORLD_SIZE": str(processes), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "OMP_NUM_THREADS": str(threads)}
        command = [sys.executable, os.path.abspath(__file__), "--worker", "--device", device, "--precision",
                   precision, "--threads", str(threads), "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--batch-size", str(args.batch_size), "--split", args.split]
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=1800) for worker in workers]
    for worker, (_, err) in zip(workers, outputs):
        if worker.returncode:
            raise RuntimeError(f"a worker failed (exit {worker.returncode}):\n{err[-2000:]}")
    line = next(l for l in outputs[0][0].splitlines() if l.startswith(RESULT))
    return json.loads(line[len(RESULT):])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps (default 40)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first, and the timing interval")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per step over all processes (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--split", default="train", help="which Bach windows to train on (default train)")
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)  # worker only
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)  # worker only
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="2 timed steps of batch 8 on the valid windows")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.batch_size, args.split = 2, 1, 8, "valid"
    if args.steps % args.warmup:
        parser.error("--steps must be a multiple of --warmup (the clock is read every --warmup steps)")
    if args.worker:
        torch.set_num_threads(args.threads)
        result = measure(args.device, args.precision, args.steps, args.warmup, args.batch_size, args.split)
        if result is not None:
            print(RESULT + json.dumps(result), flush=True)
        return 0

    t = args.threads
    rows = [("cpu", 1, t, "fp32"), ("cpu", 2, t, "fp32")]
    if not args.quick:
        rows.insert(1, ("cpu", 1, 2 * t, "fp32"))  # the same cores as 2 processes, used by threads instead
    accelerator = devices.pick_device("auto")
    if accelerator.type != "cpu":
        rows.append((accelerator.type, 1, t, "fp32"))
        if accelerator.type == "cuda":
            if torch.cuda.is_bf16_supported():
                rows.append(("cuda", 1, t, "bf16"))
            if torch.cuda.device_count() >= 2:
                rows.append(("cuda", 2, t, "bf16" if torch.cuda.is_bf16_supported() else "fp32"))
    print(f"train.train throughput: the bundled model's architecture (fresh weights), Bach {args.split} windows, "
          f"global batch {args.batch_size}, {args.steps} timed steps after {args.warmup} warm-up; torch "
          f"{torch.__version__}, {os.cpu_count()} CPU core(s) visible, one fresh process group per row")
    print(f"{'device':24s} {'processes x threads':>20s} {'precision':>9s} {'steps/s':>8s} {'samples/s':>10s} "
          f"{'vs 1 process':>13s} {'CPU/wall':>9s}")
    base = None
    for device, processes, threads, precision in rows:
        start = time.perf_counter()
        result = run_row(processes, threads, device, precision, args)
        base = base or result["samples_per_second"]
        print(f"{result['device'][:24]:24s} {f'{processes} x {threads}':>20s} {precision:>9s} "
              f"{result['steps_per_second']:8.2f} {result['samples_per_second']:10.1f} "
              f"{result['samples_per_second'] / base:12.2f}x {result['cpu_share']:9.2f}   "
              f"({time.perf_counter() - start:.0f} s with start-up)",
              flush=True)
    print(f"model: {result['parameters'] / 1e6:.2f}M parameters; {result['windows']} windows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
