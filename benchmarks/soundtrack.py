"""The adaptive soundtrack, measured over several runs (issue 7; `python -m course_lib soundtrack`
prints the same for one run and writes its files).

- speed: real-time factor (generation time / playing time) and, per bar, generation time as a share
  of the bar's playing time against the 10% budget; underruns (a window not ready in time);
- seams: |pitch jump| per voice at state changes and at the starts of transition bridges, against
  the soundtrack's other bar lines and the bar lines of real chorales;
- conditions: per state, the density and mode asked for against what the bars measure, and the
  style the clean classifier hears (``classifiers.load_bundled("clean")``) on 4-bar chunks;
- live player: the latency from a click (a state change asked for) to the first bar of the new
  state heard, with ``live_player.SimulatedBrowser`` playing the browser's part in real time
  against the player's generator thread (clicks at random moments in the bar; the Web Audio
  schedule itself is checked in a real browser by tests/test_browser.py).

    python benchmarks/soundtrack.py                      # 5 runs of exploration:8,battle:8,victory:4
    python benchmarks/soundtrack.py --runs 2 --steps 10  # faster, coarser
    python benchmarks/soundtrack.py --quick              # 1 short run, DDIM-2: only checks that it runs
    python benchmarks/soundtrack.py --runs 0 --live-seconds 90   # only the live player's latency
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from course_lib import classifiers, data, live_player, pipeline, soundtrack

TIMELINE = "exploration:8,battle:8,victory:4"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", default=TIMELINE, help="timeline STATE:BARS,... (default %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="soundtracks, seeds 0, 100, 200, ...")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps per window (the engine's default)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--live-seconds", type=float, default=60.0,
                        help="real seconds of the live player, clicked every 3-6 s (0: leave it out)")
    parser.add_argument("--quick", action="store_true", help="one run of exploration:2,battle:2, DDIM-2")
    args = parser.parse_args(argv)
    timeline, runs, steps = (("exploration:2,battle:2", 1, 2) if args.quick else (args.states, args.runs, args.steps))
    torch.set_num_threads(args.threads)
    ckpt = pipeline.load()
    states = soundtrack.DEFAULT_STATES
    live_seconds = 8.0 if args.quick else args.live_seconds
    if runs == 0:
        if live_seconds:
            live_latency(ckpt, states, steps, live_seconds)
        return 0
    print(f"timeline {timeline}, {runs} run(s), DDIM-{steps}, guidance w = {soundtrack.GUIDANCE:g}, "
          f"torch threads {torch.get_num_threads()}")

    loads, factors, cpu_factors, underruns, over, startup = [], [], [], 0, 0, []
    jumps: dict[str, list] = {}
    chunks: dict[str, list] = {}
    start = time.perf_counter()
    for run in range(runs):
        engine = soundtrack.SoundtrackEngine(ckpt, states, steps=steps, seed=100 * run)
        engine.advance(soundtrack.parse_timeline(timeline, states)[0][0])  # warm-up, not timed
        track = engine.render(timeline)
        report = engine.latency()
        loads.append(report.load)
        factors.append(report.realtime_factor)
        cpu_factors.append(report.cpu_realtime_factor)
        underruns += len(report.underruns)
        over += len(report.over_budget)
        startup.append(report.windows[0].seconds)
        for kind, values in soundtrack.seam_jumps_by_kind(track).items():
            jumps.setdefault(kind, []).append(values)
        for state, rolls in soundtrack.state_chunks(track).items():
            chunks.setdefault(state, []).extend(rolls)
        print(f"  run {run}: {track.bars} bars, {track.duration():.1f} s of music, real-time factor "
              f"{report.realtime_factor:.3f}", flush=True)
    loads = np.concatenate(loads)
    print(f"({time.perf_counter() - start:.0f} s in all)\n")

    print("Speed (wall clock; CPU-time figures are less distorted on a shared machine)")
    print(f"  real-time factor: {np.mean(factors):.3f} wall, {np.mean(cpu_factors):.3f} CPU "
          f"(generation / playing time, regenerated bridge bars included)")
    print(f"  per bar: generation takes {np.median(loads):.1%} of its playing time (median), "
          f"{np.percentile(loads, 95):.1%} (95th percentile), {loads.max():.1%} (worst); budget "
          f"{soundtrack.BUDGET:.0%}; {over} of {len(loads)} windows over budget, {underruns} underruns")
    print(f"  start-up (first window, before the first bar can play): {np.median(startup):.2f} s (median)\n")

    print("Seams: |pitch jump| per voice in semitones (large: share over a fifth)")
    rows = {kind: soundtrack.jump_summary(np.concatenate(values)) for kind, values in jumps.items()}
    rows["real chorales, every bar line"] = soundtrack.jump_summary(
        soundtrack.bar_line_jumps(soundtrack.reference_rolls("bach", "test"), ckpt.spec))
    print(soundtrack.format_rows(rows, "where") + "\n")

    print("Conditions per state: asked vs measured over chunks of up to 4 bars (transition bars left out)")
    clean = classifiers.load_bundled("clean")
    table = {}
    for state, rolls in chunks.items():
        asked = states[state]
        measured = soundtrack.chunk_labels(rolls, ckpt.spec)
        whole = [r for r in rolls if r.shape[-1] == 4 * ckpt.spec.steps_per_bar]
        heard = classifiers.classify_rolls(clean.classifier, clean.encoding, np.stack(whole))["style"] if whole else []
        table[state] = {"density asked": asked["density"], "density": float(measured["density"].mean()),
                        "mode asked": asked["mode"], "mode as asked": float(np.mean(
                            measured["minor"] == (asked["mode"] == "minor"))),
                        "style asked": asked["style"], "style as asked": float(np.mean(
                            np.asarray(heard) == data.STYLES.index(asked["style"]))) if whole else float("nan"),
                        "chunks": len(rolls)}
    print(soundtrack.format_rows(table, "state"))
    if live_seconds:
        print()
        live_latency(ckpt, states, steps, live_seconds)
    return 0


def live_latency(ckpt, states: dict, steps: int, seconds: float, seed: int = 0) -> list[float]:
    """Play the live player for ``seconds`` (real time), click a new state every 3-6 s, print the
    latency from each click to the first bar of its state; returns the latencies in seconds."""
    engine = soundtrack.SoundtrackEngine(ckpt, states, steps=steps, seed=seed)
    browser = live_player.SimulatedBrowser()
    live = browser.connect(engine)
    rng, names = np.random.default_rng(seed), list(states)
    clicks, at, state = {0.0: names[0]}, 0.0, names[0]
    while at + 7.0 < seconds:
        at += float(rng.uniform(3.0, 6.0))
        state = names[(names.index(state) + 1 + int(rng.integers(len(names) - 1))) % len(names)]
        clicks[at] = state
    try:
        browser.play(seconds, clicks)
    finally:
        live.stop()
    latencies = np.array(browser.latencies())
    bars, done = browser.bars, []
    for click in browser.clicks[1:]:
        upcoming = [b for b in bars if b["start"] >= click["at"]]
        done.append(bool(upcoming) and upcoming[0]["state"] == click["state"])
    bound = [4 * 60 / states[c["state"]].get("tempo", pipeline.DEFAULT_TEMPO) for c in browser.clicks[:-1]]
    gaps = [b["start"] - a["start"] - a["duration"] for a, b in zip(bars, bars[1:])]
    made = [c.generation_seconds for c in live.changes[1:]]
    print(f"Live player: {seconds:.0f} s in real time, {len(bars)} bars ({sum(b['duration'] for b in bars):.1f} s "
          f"of music), {len(latencies)} state changes, lead {browser.lead:g} s, DDIM-{steps}")
    if len(latencies):
        print(f"  click -> first bar of the new state heard: median {np.nanmedian(latencies):.2f} s, "
              f"max {np.nanmax(latencies):.2f} s (bound: the old state's bar + lead = {max(bound) + browser.lead:.2f} s "
              f"at most); from the very next bar line in {sum(done)} of {len(done)} (else the bar after it: the "
              f"next one was already scheduled)")
        print(f"  transition window generated in {np.median(made):.3f} s (median), {max(made):.3f} s (worst)")
    print(f"  underruns {browser.underruns}; largest gap between consecutive bars {max(map(abs, gaps), default=0) * 1e3:.3f} ms")
    return list(latencies)


if __name__ == "__main__":
    sys.exit(main())
