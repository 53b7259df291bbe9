"""Torch CPU threads for the lessons, measured under load (issue 18): how long a training or sampling
step of the lessons' models takes with 1 and with 2 threads while another process keeps a core busy,
and how long every solution notebook takes top to bottom with the thread count the lessons set
(``devices.use_lesson_threads``, called when a lesson imports its checks).

- steps: each case in a fresh process per thread count (torch's thread pool is set before the first
  operation), warm-up steps dropped, then the median and 90th percentile of ``--repeats`` steps;
- notebooks: each solution run by nbclient in a fresh kernel whose environment names no thread
  count (no OMP_NUM_THREADS), so the lesson's own choice applies, as on a student's laptop; the
  wall time of the whole run against the course's 180 s limit.

``--busy N`` starts N busy-looping processes for the time of the measurement (default 1: "another
process keeps one core busy"); ``--busy 0`` when the machine already runs one (the load is printed).

    python benchmarks/lesson_threads.py                          # steps at 1 and 2 threads, busy 1
    python benchmarks/lesson_threads.py --notebooks              # ... and every solution notebook
    python benchmarks/lesson_threads.py --notebooks 03 04 --busy 0 --repeats 100
    COURSE_THREADS=2 python benchmarks/lesson_threads.py --notebooks --no-steps   # the lessons at 2 threads
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_SECONDS = 180.0  # what every solution notebook must stay within on a CPU


def _cases():
    """name -> a function making one step (imports inside: the worker sets threads first)."""
    import torch

    from course_lib import diffusion, encoding, models, pipeline, schedules

    schedule = schedules.make_schedule("cosine", 1000)
    generator = torch.Generator().manual_seed(0)

    def training_step(config, shape):
        net = models.build_model(config)
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
        x0 = torch.randn(shape, generator=generator).clamp(-1, 1)

        def step():
            loss = diffusion.training_loss(net, schedule, x0, generator=generator)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return step

    voice = encoding.VoiceEncoding()
    ckpt = pipeline.load()
    x = torch.randn(1, *ckpt.encoding.shape(), generator=generator)
    t = torch.full((1,), 500)
    labels = pipeline.make_labels(1, style="bach", mode="major", styles=ckpt.styles)

    def sampling_step():  # one network evaluation of DDIM with classifier-free guidance (2 passes)
        with torch.no_grad():
            diffusion.denoise(ckpt.model, ckpt.schedule, x, t, labels, guidance_scale=2.0)
    return {
        "lesson 3: toy MLP training step (batch 256, 2-D points)":
            training_step(models.ModelConfig(kind="mlp", in_channels=2, channels=64, time_dim=64, prediction="eps"),
                          (256, 2)),
        "lesson 3: melody UNet1d training step (batch 64)":
            training_step(models.ModelConfig(kind="unet1d", in_channels=15, channels=32, channel_mults=(1, 2),
                                             n_res_blocks=1, attention=False, prediction="eps"), (64, 15, 64)),
        "lesson 4: quick UNet1d training step (batch 16)":
            training_step(models.ModelConfig("unet1d", in_channels=voice.shape()[0]), (16, *voice.shape())),
        "lessons 5-8: bundled model, one guided DDIM step (batch 1)": sampling_step,
    }


def worker(threads: int, repeats: int) -> None:
    """Run in a fresh process: time every case at ``threads`` threads, print JSON."""
    import torch
    torch.set_num_threads(threads)
    results = {}
    for name, step in _cases().items():
        for _ in range(5):  # warm-up: allocations, lazy initialisation
            step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        times.sort()
        results[name] = {"median_ms": 1000 * statistics.median(times), "p90_ms": 1000 * times[int(0.9 * (len(times) - 1))]}
    print(json.dumps(results))


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPU(s)"


def start_busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def measure_steps(repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    figures = {}
    for threads in (1, 2):
        done = subprocess.run([sys.executable, __file__, "--worker", str(threads), "--repeats", str(repeats)],
                              capture_output=True, text=True, env=env, cwd=ROOT, check=True)
        figures[threads] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def run_notebook(path: Path) -> tuple[float, str]:
    """Wall seconds of a solution run top to bottom in a fresh kernel (no thread count in its
    environment), and "ok" or the first error."""
    import nbclient
    import nbformat
    from jupyter_core.utils import run_sync

    from course_lib import grading

    class SlicedPollClient(nbclient.NotebookClient):  # see grading.autograde_preprocessors: why
        async def async_start_new_kernel_client(self):
            kernel_client = await super().async_start_new_kernel_client()
            kernel_client.shell_channel.get_msg = grading.poll_in_slices(kernel_client.shell_channel.get_msg)
            return kernel_client
        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    nb = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(grading.isolated_environment(Path("/tmp") / f"lesson-threads-home-{os.getpid()}"))
    client = SlicedPollClient(nb, timeout=600, kernel_name="python3", allow_errors=False,
                              resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    status = "ok"
    try:
        client.execute(env=env)
    except Exception as err:  # a failing cell: report it, go on with the next lesson
        status = f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:160]}"
    return time.perf_counter() - start, status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=1, help="busy-looping processes to start (default 1)")
    parser.add_argument("--repeats", type=int, default=200, help="timed steps per case and thread count")
    parser.add_argument("--notebooks", nargs="*", default=None, metavar="NN",
                        help="also run these solution notebooks (no NN: all of them)")
    parser.add_argument("--no-steps", action="store_true", help="only the notebooks")
    parser.add_argument("--quick", action="store_true", help="a smoke run for the tests: 3 steps per case, no busy process")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.busy = 3, 0
    if args.repeats < 1 or args.busy < 0:
        parser.error("--repeats must be >= 1 and --busy >= 0")
    if args.worker is not None:
        worker(args.worker, args.repeats)
        return 0
    busy = start_busy(args.busy)
    try:
        time.sleep(1.0 if busy else 0.0)
        print(f"{args.busy} busy process(es) started by this benchmark; {load_line()}")
        if not args.no_steps:
            figures = measure_steps(args.repeats)
            print(f"\nms per step, median / 90th percentile of {args.repeats} (fresh process per thread count):")
            print(f"{'case':62s} {'1 thread':>17s} {'2 threads':>17s}")
            for name in figures[1]:
                one, two = figures[1][name], figures[2][name]
                print(f"{name:62s} {one['median_ms']:7.1f} / {one['p90_ms']:7.1f} {two['median_ms']:7.1f} / {two['p90_ms']:7.1f}")
        if args.notebooks is not None:
            from course_lib import devices
            lessons = sorted((ROOT / "solutions").glob("*/*.ipynb"))
            if args.notebooks:
                lessons = [p for p in lessons if p.parent.name[:2] in args.notebooks]
            print(f"\nsolution notebooks top to bottom (the lessons set {devices.lesson_threads()} torch thread(s) "
                  f"on this machine); limit {LIMIT_SECONDS:.0f} s; {load_line()}")
            worst = 0.0
            for path in lessons:
                seconds, status = run_notebook(path)
                worst = max(worst, seconds)
                verdict = "within" if seconds <= LIMIT_SECONDS and status == "ok" else "OVER" if status == "ok" else "FAILED"
                print(f"  {path.parent.name:28s} {seconds:6.1f} s  {verdict}  {status if status != 'ok' else ''}", flush=True)
            print(f"slowest: {worst:.1f} s; {load_line()}")
    finally:
        for process in busy:
            process.kill()
            process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
