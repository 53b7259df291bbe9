"""The adaptive soundtrack: game states in, continuous music out, bar by bar, in real time.

A game tells the engine which *state* it is in (exploration, battle, victory, ...). A mapping
(``DEFAULT_STATES``, or your own) gives each state its *conditions*: the model's labels (style,
mode, density; ``pipeline.make_labels``) and a tempo. The engine never cuts the music:

- **continuation.** The model makes 4-bar windows (``window_bars``) with DDIM (Song et al. 2021,
  eq. 12; few steps, a batch of one). Each new window keeps the last ``keep_bars`` bars of the
  music so far as *known* (inpainting: ``guidance.replace_known``, RePaint's Algorithm 1, after
  every step) and generates the rest, so every segment continues the one before it;
- **transitions.** When the state changes, the last ``transition_bars`` bars (generated ahead,
  not yet played) are thrown away and regenerated with the *new* state's labels, continuing the
  bars before them: a bridge into the new music, whose tempo ramps from the old to the new one;
- **latency.** Every window is timed. Each of its bars must be generated in at most ``budget``
  (10%) of the time the bar plays, and a window must be ready before the previous window's bars
  have finished playing (else the music would stall: an *underrun*). ``LatencyReport`` says both.
- **forms (optional).** A state may name a form, e.g. ``{"style": "folk", ..., "form": "A A' B A"}``
  (``longform.parse_form``; sections of ``section_bars`` bars, 4 by default). While the state lasts, its
  bars follow the form over and over, counted from the state's first bar: a repeated letter copies its
  section (no sampling), a primed one re-noises it part-way and denoises it with the bars before it kept
  (SDEdit, as in ``longform``), a new letter continues as above, and every section's last bar is steered
  toward a dominant-tonic close (``guidance.cadence_penalty``). These windows run ``tasks.sample``, not
  the engine's ``sampler``; a bridge into the state is made as usual and counts as its first bars.

    engine = SoundtrackEngine(pipeline.load())
    track = engine.render([("exploration", 8), ("battle", 8), ("victory", 4)])
    print(engine.latency())                        # real-time factor, budget misses
    track.write("out/")                            # soundtrack.mid, .wav, .png (timeline)

Shapes: a roll is (tracks, 2, pitches, steps) (``course_lib.music``); a window in model space is
(C, window_bars * steps_per_bar) (``encoding.shape``); bar b spans steps b*16 .. b*16 + 15.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import data, diffusion, guidance, inputs, music, pipeline
from .metrics import format_rows  # noqa: F401 (the tables below are printed with it)

LABEL_KEYS = ("style", "mode", "density")  # what the model is conditioned on
CONDITION_KEYS = LABEL_KEYS + ("tempo",)  # tempo is playback only: the model works in steps
FORM_KEY = "form"  # optional: the state's music follows this form (see the module docstring)
SECTION_BARS = 4  # bars of a form's section in the engine: a 4-bar phrase
DEFAULT_STATES = {
    # The data decide what is reachable: Bach windows have densities 0.21-0.34 (5-95%), folk
    # tunes 0.17-0.47 and are mostly major. So exploration is a sparse folk tune, battle the
    # busiest minor chorale texture, victory full four-part major chords.
    "exploration": {"style": "folk", "mode": "major", "density": 0.18, "tempo": 84.0},
    "battle": {"style": "bach", "mode": "minor", "density": 0.40, "tempo": 132.0},
    "victory": {"style": "bach", "mode": "major", "density": 0.25, "tempo": 100.0},
}
BUDGET = 0.10  # generating a bar may take at most this share of the time the bar plays
# Classifier-free guidance w. Measured with the bundled model (DDIM-20, 12 four-bar chunks per state):
# w = 0 gives battle density 0.36 for 0.40 asked, 92% minor; w = 1 gives 0.42 and 100% minor, at
# twice the compute (the batch doubles); w = 2 overshoots the densities (0.46 for 0.40, 0.15 for 0.18).
GUIDANCE = 1.0


# --------------------------------------------------------------------------- states and conditions

def _known(states: dict) -> str:
    return ", ".join(map(repr, states))


def check_states(states: dict) -> dict:
    """``states`` checked: {name: {"style", "mode", "density", "tempo"}}, every key optional."""
    if not isinstance(states, dict) or not states:
        raise ValueError("states must be a non-empty dict {state name: {'style': ..., 'mode': ..., "
                         "'density': ..., 'tempo': ...}}, e.g. soundtrack.DEFAULT_STATES")
    for name, conditions in states.items():
        if not isinstance(name, str) or not name or ":" in name or "," in name:
            raise ValueError(f"state name {name!r}: use a non-empty string without ':' or ','")
        if not isinstance(conditions, dict):
            raise ValueError(f"state {name!r} maps to {conditions!r}; give a dict of conditions, e.g. "
                             "{'style': 'bach', 'mode': 'minor', 'density': 0.4, 'tempo': 132}")
        unknown = set(conditions) - set(CONDITION_KEYS) - {FORM_KEY}
        if unknown:
            raise ValueError(f"state {name!r} has unknown condition(s) {sorted(unknown)}; "
                             f"the conditions are {CONDITION_KEYS} and optionally {FORM_KEY!r}")
        if FORM_KEY in conditions:
            form_of(name, states)  # a form it cannot plan fails here, naming the state
        try:
            pipeline.make_labels(1, **{k: conditions.get(k) for k in LABEL_KEYS})
        except ValueError as err:
            raise ValueError(f"state {name!r}: {err}") from None
        tempo = conditions.get("tempo", pipeline.DEFAULT_TEMPO)
        if not isinstance(tempo, (int, float)) or not music.MIN_TEMPO <= tempo <= music.MAX_TEMPO:
            raise ValueError(f"state {name!r}: tempo {tempo} BPM is outside "
                             f"{music.MIN_TEMPO:.0f}..{music.MAX_TEMPO:.0f}")
    return states


def conditions_for(state: str, states: dict) -> dict:
    """The label keyword arguments of ``pipeline.make_labels`` for a game state.

    -> {"style": ..., "mode": ..., "density": ...}; a condition the state leaves out is None (a null
    label: the model chooses). The tempo is not a label. Unknown state: ValueError naming the known ones.
    """
    if state not in states:
        raise ValueError(f"unknown game state {state!r}; known states: {_known(states)}")
    return {key: states[state].get(key) for key in LABEL_KEYS}


def form_of(state: str, states: dict, section_bars: int = SECTION_BARS):
    """The state's ``longform.Form`` (sections of ``section_bars`` bars), or None if it names none."""
    from . import inputs, longform, metrics

    text = states[state].get(FORM_KEY)
    if text is None:
        return None
    try:
        return longform.parse_form(text, len(metrics.form_letters(text)) * section_bars)
    except (ValueError, inputs.InputError) as err:
        raise ValueError(f"state {state!r}: {err}") from None


def tempo_for(state: str, states: dict) -> float:
    """The state's tempo in BPM (``pipeline.DEFAULT_TEMPO`` if it gives none)."""
    conditions_for(state, states)  # an unknown state fails here
    return float(states[state].get("tempo", pipeline.DEFAULT_TEMPO))


MAX_TIMELINE_BARS = 1024  # about 45 minutes at 90 BPM: a longer run is a typo, not a game session


def parse_timeline(text: str, states: dict = DEFAULT_STATES) -> list[tuple[str, int]]:
    """"exploration:8,battle:8,victory:4" -> [("exploration", 8), ("battle", 8), ("victory", 4)]."""
    timeline = []
    for entry in str(text).split(","):
        name, colon, bars = (part.strip() for part in entry.partition(":"))
        if not colon or not name or not bars.isdigit() or not 1 <= int(bars) <= MAX_TIMELINE_BARS:
            raise ValueError(f"bad timeline entry {entry.strip()!r}: write STATE:BARS entries separated by "
                             f"commas, with BARS a whole number 1..{MAX_TIMELINE_BARS}, e.g. "
                             "'exploration:8,battle:8,victory:4'")
        conditions_for(name, states)  # an unknown state fails here, listing the known ones
        timeline.append((name, int(bars)))
    if sum(bars for _, bars in timeline) > MAX_TIMELINE_BARS:
        raise ValueError(f"the timeline has {sum(b for _, b in timeline)} bars; at most {MAX_TIMELINE_BARS} "
                         "(about an hour at 90 BPM) are rendered in one run")
    return timeline


def expand_timeline(timeline, states: dict) -> list[str]:
    """[(state, bars), ...] (or its text form) -> the state of every bar."""
    if isinstance(timeline, str):
        timeline = parse_timeline(timeline, states)
    per_bar = []
    for state, bars in timeline:
        conditions_for(state, states)
        if int(bars) != bars or bars < 1:
            raise ValueError(f"state {state!r} is given {bars} bars; give a whole number >= 1")
        per_bar += [state] * int(bars)
    if not per_bar:
        raise ValueError("the timeline is empty; give at least one (state, bars) entry")
    return per_bar


# --------------------------------------------------------------------------- time and the latency budget

def bar_start_seconds(tempos, beats_per_bar: int = 4) -> np.ndarray:
    """(bars,) tempos in BPM -> (bars + 1,) the second at which each bar starts, then the end."""
    tempos = np.asarray(tempos, dtype=float)
    if tempos.ndim != 1 or not np.all((tempos >= music.MIN_TEMPO) & (tempos <= music.MAX_TEMPO)):
        raise inputs.InputError(f"tempos must be one BPM per bar, each in {music.MIN_TEMPO:.0f}..{music.MAX_TEMPO:.0f}, "
                                f"got {tempos.tolist()[:8]}")
    inputs.check_number(beats_per_bar, "beats_per_bar", low=1, high=32, integer=True)
    seconds = beats_per_bar * 60.0 / tempos  # each bar's length
    return np.concatenate([[0.0], np.cumsum(seconds)])


def latest_start_seconds(bar: int, tempos, generation_seconds: float, beats_per_bar: int = 4) -> float:
    """When generating bar ``bar`` (0-based) must start, in seconds after the music started, to be
    ready when it is due to play: start of the bar minus the time its generation takes."""
    return float(bar_start_seconds(tempos, beats_per_bar)[bar] - generation_seconds)


@dataclass(frozen=True)
class Window:
    """One run of the sampler: the bars it made, for which state, and how long it took."""

    index: int
    state: str
    first_bar: int  # the soundtrack bar its first new bar became
    new_bars: int  # bars generated (the known bars before them not counted)
    transition: bool  # a bridge into a new state (its first bars regenerated)
    seconds: float  # wall-clock time of the sampler call
    cpu_seconds: float  # CPU time of this process during it (less distorted on a busy machine)
    how: str = "continuation"  # with a form: "new", "variation" or "repeat" (a copy, no sampler call)
    cadence_bar: int | None = None  # the soundtrack bar steered toward a cadence, if any


@dataclass
class LatencyReport:
    """Generation time against playing time, per window and overall."""

    windows: list[Window]
    bar_seconds: np.ndarray  # (windows,) how long one bar of each window's state plays
    music_seconds: float  # how long the finished soundtrack plays
    budget: float = BUDGET

    @property
    def load(self) -> np.ndarray:
        """(windows,) generation time per bar / playing time per bar (wall clock)."""
        return np.array([w.seconds / w.new_bars for w in self.windows]) / self.bar_seconds

    @property
    def over_budget(self) -> list[int]:
        """Indices of the windows whose bars took more than ``budget`` of their playing time."""
        return [i for i, load in enumerate(self.load) if load > self.budget]

    @property
    def underruns(self) -> list[int]:
        """Windows that took longer than the previous window's new bars play: the music would stall
        if each window were generated while the one before it plays."""
        playing = [w.new_bars * s for w, s in zip(self.windows, self.bar_seconds)]
        return [i for i in range(1, len(self.windows)) if self.windows[i].seconds > playing[i - 1]]

    @property
    def realtime_factor(self) -> float:
        """All generation time (regenerated bars included) / playing time of the soundtrack."""
        return sum(w.seconds for w in self.windows) / self.music_seconds

    @property
    def cpu_realtime_factor(self) -> float:
        return sum(w.cpu_seconds for w in self.windows) / self.music_seconds

    def __str__(self) -> str:
        n, bars = len(self.windows), sum(w.new_bars for w in self.windows)
        worst = int(np.argmax(self.load))
        lines = [f"{n} windows made {bars} bars for {self.music_seconds:.1f} s of music; real-time factor "
                 f"{self.realtime_factor:.3f} wall ({self.cpu_realtime_factor:.3f} CPU) = generation / playing time",
                 f"per bar: generation takes {np.median(self.load):.1%} of its playing time (median), "
                 f"{self.load[worst]:.1%} at worst (window {worst}, {self.windows[worst].state}); "
                 f"budget {self.budget:.0%}",
                 f"start-up: {self.windows[0].seconds:.2f} s before the first bar can play"]
        if self.over_budget:
            lines.append(f"OVER BUDGET: {len(self.over_budget)} of {n} windows (indices {self.over_budget[:10]})")
        else:
            lines.append("every window within budget")
        if self.underruns:
            lines.append(f"UNDERRUN: {len(self.underruns)} windows not ready before the previous bars ended "
                         f"(indices {self.underruns[:10]}); the music would stall")
        return "\n".join(lines)


# --------------------------------------------------------------------------- continuation and seams

def continuation_window(previous: torch.Tensor, keep_bars: int, window_bars: int,
                        steps_per_bar: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What a continuation window knows: the last ``keep_bars`` bars of ``previous`` at its start.

    previous: (C, L) model-space music so far, L >= keep_bars * steps_per_bar.
    Returns known (C, window_bars * steps_per_bar) (zeros after the kept bars) and known_mask of the
    same shape (1 on the kept steps, 0 on the steps to generate), for the samplers' known/known_mask.
    """
    keep = keep_bars * steps_per_bar
    if not 0 < keep_bars < window_bars or previous.shape[-1] < keep:
        raise ValueError(f"need 0 < keep_bars < window_bars and at least {keep} steps of music; got keep_bars="
                         f"{keep_bars}, window_bars={window_bars}, {previous.shape[-1]} steps")
    known = torch.zeros(*previous.shape[:-1], window_bars * steps_per_bar)
    known[..., :keep] = previous[..., -keep:]
    return known, guidance.time_mask(known.shape, 0, keep)


def voice_pitches(roll, spec: music.RollSpec = music.CHORALE) -> np.ndarray:
    """(tracks, steps) MIDI pitch each voice sounds on each step (its top note), -1 where it rests."""
    sustain = np.asarray(roll)[:, music.SUSTAIN] > 0.5  # (tracks, pitches, steps)
    top = sustain.shape[1] - 1 - np.argmax(sustain[:, ::-1], axis=1)  # (tracks, steps)
    return np.where(sustain.any(axis=1), spec.low + top, -1)


def seam_jumps(roll, step: int, spec: music.RollSpec = music.CHORALE) -> np.ndarray:
    """(tracks,) |pitch jump| in semitones of each voice from step - 1 to ``step``; NaN where the
    voice rests on either side. A held note gives 0."""
    pitch = voice_pitches(roll, spec)
    before, after = pitch[:, step - 1], pitch[:, step]
    return np.where((before >= 0) & (after >= 0), np.abs(after - before), np.nan).astype(float)


def bar_line_jumps(rolls, spec: music.RollSpec = music.CHORALE) -> np.ndarray:
    """Every voice's |pitch jump| across every bar line inside ``rolls`` (a list of rolls of any
    lengths): what a seam is compared with. NaNs (rests) dropped; (N,) floats."""
    jumps = [seam_jumps(roll, step, spec) for roll in rolls
             for step in range(spec.steps_per_bar, np.shape(roll)[-1], spec.steps_per_bar)]
    jumps = np.concatenate(jumps) if jumps else np.zeros(0)
    return jumps[~np.isnan(jumps)]


def jump_summary(jumps) -> dict:
    """{"mean": mean |jump|, "large": share of jumps over a fifth (> 7 semitones), "n": count}."""
    jumps = np.asarray(jumps, dtype=float)
    jumps = jumps[~np.isnan(jumps)]
    if not jumps.size:
        return {"mean": float("nan"), "large": float("nan"), "n": 0}
    return {"mean": float(jumps.mean()), "large": float(np.mean(jumps > 7)), "n": int(jumps.size)}


# --------------------------------------------------------------------------- the soundtrack

@dataclass
class Soundtrack:
    """Music made by the engine, with the state, tempo and history of every bar."""

    roll: np.ndarray  # (tracks, 2, pitches, bars * steps_per_bar), bool
    states: list[str]  # (bars,) the game state each bar belongs to
    transition: np.ndarray  # (bars,) bool: regenerated as the bridge into the next state
    tempos: np.ndarray  # (bars,) BPM; ramps across transition bars
    spec: music.RollSpec
    windows: list[Window] = field(default_factory=list)

    @property
    def bars(self) -> int:
        return len(self.states)

    def bar_seconds(self) -> np.ndarray:
        return np.diff(bar_start_seconds(self.tempos, self.spec.beats_per_bar))

    def duration(self) -> float:
        return float(self.bar_seconds().sum())

    def state_changes(self) -> list[int]:
        """Bars where a new state begins (its first bar)."""
        return [b for b in range(1, self.bars) if self.states[b] != self.states[b - 1]]

    def segments(self) -> list[tuple[str, int, int]]:
        """(state, first bar, end bar) of each run of one state."""
        starts = [0, *self.state_changes(), self.bars]
        return [(self.states[a], a, b) for a, b in zip(starts[:-1], starts[1:])]

    def to_midi(self):
        """A ``PrettyMIDI`` with one instrument per track and a tempo change wherever the tempo does."""
        if not self.bars:
            raise ValueError("the soundtrack is empty: generate some bars first")
        spb, steps_per_beat = self.spec.steps_per_bar, self.spec.steps_per_beat
        midi = music.roll_to_midi(self.roll, self.spec, tempo=float(self.tempos[0]))
        step_length = np.repeat(60.0 / (self.tempos * steps_per_beat), spb)  # seconds, (steps,)
        step_time = np.concatenate([[0.0], np.cumsum(step_length)])  # when each step starts
        constant = 60.0 / (self.tempos[0] * steps_per_beat)  # roll_to_midi's seconds per step
        for note in (n for instrument in midi.instruments for n in instrument.notes):
            note.start = float(step_time[round(note.start / constant)])
            note.end = float(step_time[round(note.end / constant)])
        # pretty_midi writes its tempo map from ``_tick_scales`` (tick, seconds per tick); it has no
        # public setter, so we set it as its own ``adjust_times`` does.
        ticks_per_bar = midi.resolution * self.spec.beats_per_bar
        midi._tick_scales = [(b * ticks_per_bar, 60.0 / (float(t) * midi.resolution))
                             for b, t in enumerate(self.tempos) if b == 0 or t != self.tempos[b - 1]]
        midi._update_tick_to_time(self.bars * ticks_per_bar + 1)
        return midi

    def write(self, out_dir, stem: str = "soundtrack", title: str | None = None, *,
              overwrite: bool = True) -> list[Path]:
        """``{stem}.mid``, ``{stem}.wav`` and ``{stem}.png`` (the timeline) in ``out_dir``.

        Written under temporary names, renamed when all three are complete; ``overwrite=False``
        refuses (``inputs.InputError``) to replace existing files."""
        from . import audio, inputs, soundtrack_widgets  # drawing and sound sit on top: imported only here

        paths = self.output_paths(out_dir, stem)
        inputs.check_output_dir(out_dir)
        inputs.check_new_files(paths, force=overwrite)
        midi = self.to_midi()
        with inputs.atomic_paths(paths) as (mid, wav, png):
            midi.write(str(mid))
            audio.write_wav(wav, midi)
            png.write_bytes(soundtrack_widgets.timeline_png(self, title=title, dpi=110))
        return paths

    @staticmethod
    def output_paths(out_dir, stem: str = "soundtrack") -> list[Path]:
        """The three files ``write`` makes; ``stem`` must be a plain file name."""
        from . import inputs
        stem = inputs.check_plain_name(stem, "stem")
        return [Path(out_dir) / f"{stem}{ext}" for ext in (".mid", ".wav", ".png")]

    def excerpt(self, first: int, end: int) -> "Soundtrack":
        """Bars first .. end - 1 as a soundtrack of their own (tempos and flags kept; no windows)."""
        if not 0 <= first < end <= self.bars:
            raise ValueError(f"need 0 <= first < end <= {self.bars} bars, got first={first}, end={end}")
        spb = self.spec.steps_per_bar
        return Soundtrack(self.roll[..., first * spb:end * spb], self.states[first:end],
                          self.transition[first:end], self.tempos[first:end], self.spec)


# --------------------------------------------------------------------------- the engine

Sampler = Callable  # (shape, labels, known, known_mask, generator) -> x_0 (1, C, L) in model space


class SoundtrackEngine:
    """Game states -> continuous music, one window at a time (see the module docstring).

    checkpoint: a ``train.Checkpoint`` (model, schedule, encoding); states: the state -> conditions
    mapping; window_bars, keep_bars: the window the model makes and how many of its bars are known;
    transition_bars: bars regenerated at a state change (0: switch at the next window, no bridge);
    steps, guidance_scale: DDIM steps and classifier-free guidance w; seed: window i uses seed + i;
    budget: the share of a bar's playing time its generation may take; sampler, clock: replace the
    DDIM sampler and the wall clock (tests use a fake slow sampler).
    """

    def __init__(self, checkpoint, states: dict | None = None, *, window_bars: int = 4, keep_bars: int = 2,
                 transition_bars: int = 1, steps: int = 20, guidance_scale: float = GUIDANCE, seed: int = 0,
                 budget: float = BUDGET, sampler: Sampler | None = None, clock: Callable = time.perf_counter,
                 section_bars: int = SECTION_BARS, variation_strength: float | None = None,
                 cadence_scale: float | None = None):
        schedule = getattr(checkpoint, "schedule", None)
        inputs.check_number(window_bars, "window_bars", low=2, high=pipeline.MAX_BARS, integer=True)
        inputs.check_number(steps, "steps", low=1, high=getattr(schedule, "timesteps", None), integer=True)
        inputs.check_number(guidance_scale, "guidance_scale", low=0.0)
        inputs.check_number(seed, "seed", low=0, integer=True)
        inputs.check_number(budget, "budget", low=0.0, low_inclusive=False)
        if not 0 < keep_bars < window_bars:
            raise ValueError(f"keep_bars must be 1 .. window_bars - 1 = {window_bars - 1}, got {keep_bars}")
        if not 0 <= transition_bars < window_bars - keep_bars:
            raise ValueError(f"transition_bars must be 0 .. window_bars - keep_bars - 1 = "
                             f"{window_bars - keep_bars - 1} (a transition window also makes a bar of the "
                             f"new state), got {transition_bars}")
        self.checkpoint, self.encoding, self.spec = checkpoint, checkpoint.encoding, checkpoint.encoding.spec
        self.states = check_states(dict(DEFAULT_STATES if states is None else states))
        self.window_bars, self.keep_bars, self.transition_bars = window_bars, keep_bars, transition_bars
        self.steps, self.guidance_scale, self.seed, self.budget = steps, guidance_scale, seed, budget
        self.sampler, self.clock = sampler or self._ddim, clock
        from . import longform
        self.forms = {name: form_of(name, self.states, section_bars) for name in self.states}
        self.variation_strength = longform.VARIATION_STRENGTH if variation_strength is None else variation_strength
        self.cadence_scale = longform.CADENCE_SCALE if cadence_scale is None else cadence_scale
        self.reset()

    def reset(self) -> None:
        self._roll = np.zeros(self.spec.shape(0), dtype=bool)  # (tracks, 2, pitches, steps so far)
        self._states: list[str] = []
        self._transition: list[bool] = []
        self.windows: list[Window] = []

    @property
    def bars(self) -> int:
        return len(self._states)

    def _ddim(self, shape, labels, known, known_mask, generator) -> torch.Tensor:
        ckpt = self.checkpoint
        return diffusion.ddim_sample(ckpt.model, ckpt.schedule, shape, labels, steps=self.steps,
                                     guidance_scale=self.guidance_scale, known=known, known_mask=known_mask,
                                     generator=generator)

    def _truncate(self, bars: int) -> None:
        self._roll = self._roll[..., :bars * self.spec.steps_per_bar]
        del self._states[bars:], self._transition[bars:]

    def advance(self, state: str) -> Window:
        """Generate the next bars under ``state``; on a state change, regenerate the transition first.

        The window's first ``keep_bars`` bars are the music so far (known); the rest is new. Returns
        the ``Window`` record; the music is in ``soundtrack()``.
        """
        labels = pipeline.make_labels(1, **conditions_for(state, self.states))
        spb = self.spec.steps_per_bar
        transition = bool(self._states) and state != self._states[-1] and self.transition_bars > 0
        bridge_states = []
        if transition:  # the seam: bars made ahead for the old state are made again, for the new one
            drop = min(self.transition_bars, self.bars)
            bridge_states = self._states[self.bars - drop:]
            self._truncate(self.bars - drop)
        context = min(self.keep_bars, self.bars)
        if self.forms.get(state) is not None and not transition:
            return self._advance_in_form(state, context)
        known = known_mask = None
        if context:
            known, known_mask = continuation_window(self.encoding.encode(self._roll[..., -context * spb:]),
                                                    context, self.window_bars, spb)
        generator = torch.Generator().manual_seed(self.seed + len(self.windows))
        wall, cpu = self.clock(), time.process_time()
        x = self.sampler((1, *self.encoding.shape(self.window_bars)), labels, known, known_mask, generator)
        wall, cpu = self.clock() - wall, time.process_time() - cpu
        new = np.asarray(pipeline.decode(self.checkpoint, x[:1], known_mask=known_mask))[0][..., context * spb:]  # decoded with its context
        new_bars = new.shape[-1] // spb
        window = Window(len(self.windows), state, self.bars, new_bars, transition, wall, cpu)
        self._roll = np.concatenate([self._roll, new], axis=-1)
        self._states += (bridge_states + [state] * new_bars)[:new_bars]
        self._transition += [k < len(bridge_states) for k in range(new_bars)]
        self.windows.append(window)
        return window

    def _advance_in_form(self, state: str, context: int) -> Window:
        """The next bars of a state with a form: where the form stands decides how they are made."""
        from . import tasks

        form, spb = self.forms[state], self.spec.steps_per_bar
        run_start = self.bars
        while run_start > 0 and self._states[run_start - 1] == state:
            run_start -= 1
        position = (self.bars - run_start) % form.bars  # the bar of the form that the next bar is
        cycle = self.bars - position  # the soundtrack bar where this pass through the form began
        section = next(s for s in form.sections if s.first_bar <= position < s.end_bar)
        source = None if section.source is None else form.sections[section.source]
        offset = position - section.first_bar
        wall, cpu = self.clock(), time.process_time()
        cadence = None
        if section.kind == "repeat":  # a copy of the same bars of the section it repeats
            new = self._roll[..., (cycle + source.first_bar + offset) * spb:(cycle + source.end_bar) * spb].copy()
        else:
            new_bars = min(self.window_bars - context, section.end_bar - position)
            known = torch.zeros(self.encoding.shape(self.window_bars))  # (C, window steps)
            known_mask = torch.zeros_like(known)
            if context:
                known[..., :context * spb] = self.encoding.encode(self._roll[..., -context * spb:])
                known_mask[..., :context * spb] = 1.0
            strength = 1.0
            if section.kind == "variation":  # SDEdit from the varied section's same bars
                first = cycle + source.first_bar + offset
                known[..., context * spb:(context + new_bars) * spb] = self.encoding.encode(
                    self._roll[..., first * spb:(first + new_bars) * spb])
                strength = self.variation_strength
            rule = None
            if position + new_bars > section.last_bar and self.cadence_scale > 0:
                cadence = cycle + section.last_bar
                start = (context + section.last_bar - position) * spb
                mode = self.states[state].get("mode") or "major"
                rule = guidance.cadence_penalty(self.encoding, start, start + spb, mode=mode)
            x = tasks.sample(self.checkpoint, 1, known=known if context or strength < 1 else None,
                             known_mask=known_mask if context else None, strength=strength, rule=rule,
                             rule_scale=self.cadence_scale, steps=self.steps, guidance_scale=self.guidance_scale,
                             seed=self.seed + len(self.windows), **conditions_for(state, self.states))
            decoded = pipeline.decode(self.checkpoint, x[:1], known_mask=known_mask if context else None)
            new = np.asarray(decoded)[0][..., context * spb:(context + new_bars) * spb]
        wall, cpu = self.clock() - wall, time.process_time() - cpu
        window = Window(len(self.windows), state, self.bars, new.shape[-1] // spb, False, wall, cpu,
                        how=section.kind, cadence_bar=cadence)
        self._roll = np.concatenate([self._roll, new], axis=-1)
        self._states += [state] * window.new_bars
        self._transition += [False] * window.new_bars
        self.windows.append(window)
        return window

    def render(self, timeline, *, progress: bool = False) -> Soundtrack:
        """The whole soundtrack for a timeline [(state, bars), ...] or "state:bars,...", from scratch.

        Bars made past a state change are dropped (a game would never play them) and the change is
        bridged by ``advance``; their generation time still counts in ``latency()``.
        """
        from tqdm.auto import tqdm

        plan = expand_timeline(timeline, self.states)
        self.reset()
        with tqdm(total=len(plan), desc="soundtrack bars", disable=not progress, leave=False) as bar:
            while self.bars < len(plan):
                end = next((b for b in range(self.bars + 1, len(plan)) if plan[b] != plan[self.bars]), len(plan))
                self.advance(plan[self.bars])
                self._truncate(min(self.bars, end))
                bar.update(self.bars - bar.n)
        return self.soundtrack()

    def soundtrack(self) -> Soundtrack:
        """The music so far, with the state, tempo and transition flag of every bar."""
        tempos = np.array([tempo_for(s, self.states) for s in self._states])
        flags = np.array(self._transition, dtype=bool)
        bar = 0
        while bar < len(flags):  # each run of bridge bars ramps from the old tempo to the next state's
            end = bar
            while end < len(flags) and flags[end]:
                end += 1
            if end > bar and end < len(flags):
                steps = np.arange(1, end - bar + 1) / (end - bar + 1)
                tempos[bar:end] = tempos[bar] + (tempos[end] - tempos[bar]) * steps
            bar = max(end, bar + 1)
        return Soundtrack(self._roll.copy(), list(self._states), flags, tempos, self.spec, list(self.windows))

    def latency(self) -> LatencyReport:
        """Generation time of every window against the playing time of its bars."""
        if not self.windows:
            raise ValueError("nothing generated yet: call advance(state) or render(timeline) first")
        bar_seconds = np.array([self.spec.beats_per_bar * 60.0 / tempo_for(w.state, self.states)
                                for w in self.windows])
        return LatencyReport(list(self.windows), bar_seconds, self.soundtrack().duration(), self.budget)


# --------------------------------------------------------------------------- did the music do as asked?

def state_chunks(soundtrack: Soundtrack, chunk_bars: int = 4) -> dict[str, list[np.ndarray]]:
    """Per state, its bars (transition bars left out) in chunks of up to ``chunk_bars`` bars: rolls
    (tracks, 2, pitches, <= chunk_bars * steps_per_bar), the units its conditions are measured on."""
    spb, chunks = soundtrack.spec.steps_per_bar, {}
    for state in dict.fromkeys(soundtrack.states):
        bars = [b for b in range(soundtrack.bars) if soundtrack.states[b] == state and not soundtrack.transition[b]]
        chunks[state] = [np.concatenate([soundtrack.roll[..., b * spb:(b + 1) * spb] for b in bars[i:i + chunk_bars]],
                                        axis=-1) for i in range(0, len(bars), chunk_bars)]
    return chunks


def chunk_labels(chunks, spec: music.RollSpec = music.CHORALE) -> dict[str, np.ndarray]:
    """The labels the training windows would get (``data.window_labels``: density = onsets per step
    per sounding voice, mode by key analysis) for each roll with notes: {"density", "minor"} (N,)."""
    densities, minor = [], []
    for roll in chunks:
        notes = music.roll_to_notes(roll, spec)
        if len(notes):
            labels = data.window_labels(notes, roll.shape[-1], "bach")
            densities.append(labels["density"])
            minor.append(labels["mode"] == 1)
    return {"density": np.array(densities, dtype=float), "minor": np.array(minor, dtype=bool)}


def condition_report(soundtrack: Soundtrack, states: dict | None = None) -> dict[str, dict]:
    """Per state: the conditions asked for and what its bars measure (``chunk_labels`` over
    ``state_chunks``: chunks of up to 4 bars, transition bars left out)."""
    states = DEFAULT_STATES if states is None else states
    report = {}
    for state, chunks in state_chunks(soundtrack).items():
        measured, asked = chunk_labels(chunks, soundtrack.spec), states.get(state, {})
        n = len(measured["density"])
        report[state] = {"density asked": asked.get("density", math.nan),
                         "density": float(measured["density"].mean()) if n else math.nan,
                         "mode asked": asked.get("mode"),
                         "minor share": float(measured["minor"].mean()) if n else math.nan, "chunks": n}
    return report


def seam_jumps_by_kind(soundtrack: Soundtrack) -> dict[str, np.ndarray]:
    """Every voice's |pitch jump| (``seam_jumps``, NaN where it rests) at the state changes, at the
    starts of transition bridges and at the soundtrack's other bar lines: {kind: (N,) floats}."""
    spb, spec = soundtrack.spec.steps_per_bar, soundtrack.spec
    changes = set(soundtrack.state_changes())
    bridges = {b for b in np.flatnonzero(soundtrack.transition) if b == 0 or not soundtrack.transition[b - 1]}
    other = [b for b in range(1, soundtrack.bars) if b not in changes | bridges]

    def at(bars):
        return np.concatenate([seam_jumps(soundtrack.roll, b * spb, spec) for b in bars] or [np.zeros(0)])

    return {"state changes": at(sorted(changes)), "bridge starts": at(sorted(bridges)),
            "other bar lines": at(other)}


def seam_report(soundtrack: Soundtrack, reference_rolls=()) -> dict[str, dict]:
    """``jump_summary`` of the jumps at the state changes, at the starts of transition bridges and at
    the soundtrack's other bar lines, against the bar lines of real music (``reference_rolls``)."""
    rows = {kind: jump_summary(jumps) for kind, jumps in seam_jumps_by_kind(soundtrack).items()}
    if len(reference_rolls):
        rows["real music bar lines"] = jump_summary(bar_line_jumps(reference_rolls, soundtrack.spec))
    return rows


def reference_rolls(corpus: str = "bach", split: str = "test") -> list[np.ndarray]:
    """Whole pieces of a corpus split as rolls: the real music seams are compared with."""
    loaded = data.load_corpus(corpus)
    return [loaded.roll(i) for i in range(len(loaded)) if loaded.split_of(i) == split]
