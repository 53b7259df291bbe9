"""Whole pieces with a form: 8 to 32 bars whose phrases return, vary and close on a cadence.

The model writes 4-bar windows (``tasks.WINDOW_BARS``). A piece is planned as a *form*, a row of
section letters such as ``"A A' B A"`` (spaces optional: ``"AA'BA"``): the bars are split into
equal sections, each one phrase, and each section is made in one of three ways:

- **new** (a letter's first section): outpainting by overlapping windows. Each window keeps the
  ``keep_bars`` bars before it as known music (continuation; RePaint's replacement,
  ``guidance.replace_known``) and writes the bars after them. If the bar after the section is
  written already (a repeat placed ahead), the section's last window keeps it too, so the new
  music leads into the repeat as an infill would (``tasks.infill``);
- **repeat** (the same letter with the same primes as an earlier section, e.g. the last A of
  A A B A): a copy of that section's music;
- **variation** (a primed letter, A' after A): the latest earlier section of that letter, noised to
  t_0 = strength · (T - 1) and denoised from there, SDEdit-style as in ``tasks.style_transfer``
  (Meng et al. 2022), window by window with the bars before it kept. It keeps the section's broad
  shape and changes its details.

Every section's last bar is a phrase end: its window is steered toward a dominant-tonic close in
the piece's key (``guidance.cadence_penalty``, rule guidance through ``tasks.sample(rule=...)``).

    piece = longform.generate_piece(pipeline.load(), bars=16, form="A A' B A", mode="major", seed=0)
    piece.rolls            # (n, tracks, 2, pitches, 16 * 16) bool
    print(piece.describe())

The measures of a piece (self-similarity, form match, bar-line leaps, key stability, cadences)
are in ``course_lib.metrics`` (section "long-form pieces"); ``viz.plot_self_similarity`` draws one.
Bars are counted from 0 in code and from 1 in every text shown to people.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from . import guidance, inputs, pipeline, tasks
from .train import Checkpoint

WINDOW_BARS = tasks.WINDOW_BARS
PIECE_BARS = (8, 16, 24, 32)  # the lengths the CLI offers; any multiple of the sections works here
MIN_SECTION_BARS = 2  # a phrase needs a bar to close and a bar to lead there
MAX_PIECE_BARS = 64
DEFAULT_STEPS = 20  # DDIM steps per window: a 32-bar piece in a few seconds on one CPU thread
DEFAULT_FORM = "A A' B A"  # a statement, its variation, a contrast, the return
VARIATION_STRENGTH = 0.5  # SDEdit's t_0 / (T - 1) for a primed section
CADENCE_SCALE = 1.0  # weight of the cadence penalty at every phrase end (0 = no cadence guidance)
PRIMES = "'′’"  # a prime may be typed as ' or as the typographic ′ and ’


# --------------------------------------------------------------------------- the form

@dataclass(frozen=True)
class Section:
    """One phrase of a form: letter A..Z, how many primes (A'' = 2), and the bars it spans."""

    letter: str
    primes: int
    first_bar: int  # from 0
    bars: int
    kind: str  # "new", "repeat" or "variation"
    source: int | None  # the index of the section it repeats or varies (None for "new")

    @property
    def name(self) -> str:
        return self.letter + "'" * self.primes

    @property
    def end_bar(self) -> int:
        """The bar after the section (exclusive end)."""
        return self.first_bar + self.bars

    @property
    def last_bar(self) -> int:
        """The phrase end: the bar that closes on a cadence."""
        return self.end_bar - 1


@dataclass(frozen=True)
class Form:
    """A parsed form: its sections in order, each with how it is made."""

    sections: tuple[Section, ...]

    @property
    def bars(self) -> int:
        return self.sections[-1].end_bar

    @property
    def section_bars(self) -> int:
        return self.sections[0].bars

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sections]

    @property
    def phrase_ends(self) -> list[int]:
        """The last bar (from 0) of every section: where the cadences go."""
        return [s.last_bar for s in self.sections]

    def __str__(self) -> str:
        return " ".join(self.names)


def parse_form(form, bars: int) -> Form:
    """``"A A' B A"`` (or ``"AA'BA"``, or a list ``["A", "A'", "B", "A"]``) over ``bars`` bars -> Form.

    Letters A..Z (lower case is read as upper case), each followed by any number of primes; the bars
    are split equally, at least ``MIN_SECTION_BARS`` per section. A primed section varies the latest
    section of its letter before it, so its letter must have appeared unprimed or with other primes."""
    if isinstance(form, Form):
        if form.bars != bars:
            raise inputs.InputError(f"the form spans {form.bars} bars, not {bars}")
        return form
    bars = inputs.check_number(bars, "bars", low=WINDOW_BARS, high=MAX_PIECE_BARS, integer=True)
    text = " ".join(form) if isinstance(form, (list, tuple)) else str(form)
    compact = re.sub(r"\s+", "", text)
    for prime in PRIMES[1:]:
        compact = compact.replace(prime, "'")
    tokens = re.findall(r"[A-Za-z]'*", compact)
    if not compact or "".join(tokens) != compact:
        bad = next((c for c in compact if not (c.isascii() and c.isalpha()) and c != "'"), None)
        where = f" ({bad!r} is neither a letter nor a prime)" if bad else (" (a prime must follow a letter)"
                                                                           if compact else "")
        raise inputs.InputError(f"bad form {text!r}{where}: write section letters A-Z, each with optional "
                                f"primes for a variation, e.g. \"A A' B A\" or \"AABA\"")
    sizes, rest = divmod(bars, len(tokens))
    if rest or sizes < MIN_SECTION_BARS:
        fits = [n for n in range(1, bars // MIN_SECTION_BARS + 1) if bars % n == 0]
        raise inputs.InputError(f"{bars} bars do not divide into the {len(tokens)} sections of {text!r} "
                                f"(every section gets the same whole number of bars, at least {MIN_SECTION_BARS}); "
                                f"{bars} bars take forms of {', '.join(map(str, fits))} sections, or change --bars")
    sections = []
    for i, token in enumerate(tokens):
        letter, primes = token[0].upper(), len(token) - 1
        earlier = [j for j, s in enumerate(sections) if s.letter == letter]
        same = [j for j in earlier if sections[j].primes == primes]
        if same:
            kind, source = "repeat", same[0]
        elif earlier:
            kind, source = "variation", earlier[-1]
        elif primes:
            raise inputs.InputError(f"section {i + 1} of {text!r}, {token}, varies an earlier {letter} but there is "
                                    f"none: state the section first, e.g. \"{letter} {token}\"")
        else:
            kind, source = "new", None
        sections.append(Section(letter, primes, i * sizes, sizes, kind, source))
    return Form(tuple(sections))


# --------------------------------------------------------------------------- a generated piece

@dataclass
class Piece:
    """Pieces made by ``generate_piece`` (a batch of n with the same plan)."""

    rolls: np.ndarray  # (n, tracks, 2, pitches, bars * steps_per_bar) bool
    x: torch.Tensor  # (n, C, bars * steps_per_bar): the music in model space
    form: Form
    tonic: int  # pitch class of the key's tonic (0 = C)
    mode: str  # "major" or "minor"
    windows: list[dict] = field(default_factory=list)  # one per sampler call: bars, known bars, cadence
    seconds: float = 0.0  # wall-clock time of the whole generation

    def describe(self) -> str:
        """The plan in words: each section, how it was made, and every sampler window (bars from 1)."""
        lines = [f"form {self.form} over {self.form.bars} bars ({self.form.section_bars} a section), "
                 f"key {'C C# D Eb E F F# G Ab A Bb B'.split()[self.tonic]} {self.mode}"]
        for s in self.form.sections:
            how = "new music" if s.kind == "new" else f"{s.kind} of section {s.source + 1}"
            lines.append(f"  {s.name:4s} bars {s.first_bar + 1}-{s.end_bar}: {how}, phrase end at bar {s.end_bar}")
        for w in self.windows:
            kept = ", ".join(str(b + 1) for b in w["known_bars"]) or "none"
            lines.append(f"  window bars {w['first_bar'] + 1}-{w['first_bar'] + WINDOW_BARS}: writes "
                         f"{w['new_bars'][0] + 1}-{w['new_bars'][1]} ({w['kind']}), keeps {kept}"
                         + (f", cadence at bar {w['cadence_bar'] + 1}" if w["cadence_bar"] is not None else ""))
        return "\n".join(lines)


def _window_start(pos: int, end: int, written: np.ndarray, keep_bars: int) -> int:
    """First bar of the window that writes from bar ``pos`` toward the section end ``end``.

    Normally ``keep_bars`` bars before ``pos`` (continuation); for a section's last bars, if the bar
    after the section is written (a repeat placed ahead), the window ends on that bar instead, so it
    keeps music on both sides (an infill); never past either end of the piece."""
    bars = len(written)
    first = max(0, pos - keep_bars)
    if end < bars and written[end] and 1 <= end + 1 - WINDOW_BARS <= pos - 1:
        first = end + 1 - WINDOW_BARS
    return max(0, min(first, bars - WINDOW_BARS))


def generate_piece(checkpoint: Checkpoint, n: int = 1, *, bars: int = 16, form=DEFAULT_FORM, style="bach",
                   mode: str = "major", density=None, steps: int = DEFAULT_STEPS, guidance_scale: float | None = None,
                   keep_bars: int = 2, variation_strength: float = VARIATION_STRENGTH,
                   cadence_scale: float = CADENCE_SCALE, decoder: str | None = None, seed: int | None = 0,
                   progress: bool = False) -> Piece:
    """``n`` pieces of ``bars`` bars in ``form`` (see the module docstring), in C ``mode``.

    style, mode, density, guidance_scale: labels and classifier-free guidance w, as in
    ``pipeline.generate`` (guidance_scale None: the checkpoint's recommended, with its voice-leading
    correction and decoder); steps: DDIM steps per window; keep_bars: bars each continuation window
    keeps (1..3); variation_strength: SDEdit's strength for primed sections (0 = a repeat, 1 = new
    music); cadence_scale: the weight of ``guidance.cadence_penalty`` at every phrase end (0: none);
    decoder: how the whole piece is read back, as in ``pipeline.decode`` (None: the checkpoint's
    recommended decoder); seed: window i uses seed + i. The music is the course's: tonic C (the models saw only C)."""
    from tqdm.auto import tqdm

    start_time = time.perf_counter()
    plan = parse_form(form, bars)
    inputs.check_number(n, "n (pieces)", low=1, high=pipeline.MAX_SAMPLES, integer=True)
    inputs.check_number(keep_bars, "keep_bars", low=1, high=WINDOW_BARS - 1, integer=True)
    inputs.check_number(variation_strength, "variation_strength", low=0.0, high=1.0)
    inputs.check_number(cadence_scale, "cadence_scale", low=0.0)
    if mode not in pipeline.MODES:
        raise inputs.InputError(f"mode must be 'major' or 'minor' (the key the cadences close in), not {mode!r}")
    encoding, spb = checkpoint.encoding, checkpoint.spec.steps_per_bar
    defaults = pipeline.sampling_defaults(checkpoint)
    options = dict(style=style, mode=mode, density=density, steps=steps,
                   guidance_scale=defaults["guidance_scale"] if guidance_scale is None else guidance_scale,
                   x0_fn=pipeline.voice_leading_correction(checkpoint, defaults["voice_leading"]))
    x = -torch.ones(n, *encoding.shape(bars))  # (n, C, bars * spb): silence until written
    written = np.zeros(bars, dtype=bool)
    windows: list[dict] = []

    def steps_of(first_bar: int, end_bar: int) -> slice:
        return slice(first_bar * spb, end_bar * spb)

    def place_repeats(done: int) -> None:  # every later repeat of a finished section is a copy, placed ahead
        for later in plan.sections:
            if later.kind == "repeat" and later.source == done:
                x[..., steps_of(later.first_bar, later.end_bar)] = x[..., steps_of(*_span(plan.sections[done]))]
                written[later.first_bar:later.end_bar] = True

    bar_progress = tqdm(total=bars, desc="long-form bars", disable=not progress, leave=False)
    for index, section in enumerate(plan.sections):
        if section.kind == "repeat":
            continue  # placed when its source was finished
        strength = 1.0
        if section.kind == "variation":  # SDEdit starts from the varied section's music
            x[..., steps_of(section.first_bar, section.end_bar)] = x[..., steps_of(*_span(plan.sections[section.source]))]
            strength = variation_strength
        pos = section.first_bar
        while pos < section.end_bar:
            first = _window_start(pos, section.end_bar, written, keep_bars)
            new_end = min(section.end_bar, first + WINDOW_BARS)
            window_written = written[first:first + WINDOW_BARS].copy()
            known = x[..., steps_of(first, first + WINDOW_BARS)]  # (n, C, window steps)
            known_mask = torch.zeros(encoding.shape(WINDOW_BARS))
            for b in np.flatnonzero(window_written):
                known_mask[..., steps_of(b, b + 1)] = 1.0
            cadence = section.last_bar if first <= section.last_bar < new_end and cadence_scale > 0 else None
            rule = None if cadence is None else guidance.cadence_penalty(
                encoding, (cadence - first) * spb, (cadence - first + 1) * spb, tonic=0, mode=mode)
            anything_known = bool(window_written.any())
            out = tasks.sample(checkpoint, n, known=known if anything_known or strength < 1 else None,
                               known_mask=known_mask if anything_known else None, strength=strength,
                               rule=rule, rule_scale=cadence_scale,
                               seed=None if seed is None else seed + len(windows), **options)
            x[..., steps_of(pos, new_end)] = out[..., steps_of(pos - first, new_end - first)]
            written[pos:new_end] = True
            windows.append({"first_bar": first, "new_bars": (pos, new_end), "kind": section.kind,
                            "known_bars": [first + int(b) for b in np.flatnonzero(window_written)],
                            "cadence_bar": cadence})
            bar_progress.update(new_end - pos)
            pos = new_end
        place_repeats(index)
        bar_progress.n = int(written.sum())
        bar_progress.refresh()
    bar_progress.close()
    rolls = pipeline.decode(checkpoint, x, decoder=decoder)
    return Piece(np.asarray(rolls), x, plan, 0, mode, windows, time.perf_counter() - start_time)


def _span(section: Section) -> tuple[int, int]:
    return section.first_bar, section.end_bar


def independent_windows(checkpoint: Checkpoint, n: int = 1, *, bars: int = 16, style="bach", mode: str = "major",
                        density=None, steps: int = DEFAULT_STEPS, guidance_scale: float | None = None,
                        decoder: str | None = None, seed: int | None = 0) -> np.ndarray:
    """The naive baseline: ``bars / 4`` independent 4-bar samples laid end to end, no form, no seams
    fitted. Returns rolls (n, tracks, 2, pitches, bars * steps_per_bar)."""
    bars = inputs.check_number(bars, "bars", low=WINDOW_BARS, high=MAX_PIECE_BARS, integer=True)
    if bars % WINDOW_BARS:
        raise inputs.InputError(f"independent windows need bars in whole windows of {WINDOW_BARS}, got {bars}")
    per_piece = bars // WINDOW_BARS
    rolls = pipeline.generate(checkpoint, n * per_piece, style=style, mode=mode, density=density, steps=steps,
                              guidance_scale=guidance_scale, decoder=decoder, seed=seed)  # (n·pieces, T, 2, P, 64)
    rolls = rolls.reshape(n, per_piece, *rolls.shape[1:])
    return np.concatenate(list(rolls.transpose(1, 0, 2, 3, 4, 5)), axis=-1)
