"""Seeing music as data: piano-roll plots, grids of rolls (e.g. over denoising steps), schedule curves.

Matplotlib only; the maths modules never import this one. Every function draws into an Axes
(``ax=`` or a new figure), returns it, and never calls ``plt.show()``: in a notebook the figure
appears at the end of the cell; in a script call ``plt.show()`` yourself.

Conventions of a roll plot (``plot_roll``):

- x axis: time in bars and beats (bar numbers from 1; a solid line at each bar, dotted beats);
- y axis: pitch, one row per semitone, every C labelled (C2, C3, C4, ...), black-key rows shaded;
- one colour per track, from the Okabe-Ito palette (distinguishable with the common forms of
  colour blindness), keyed by track index so soprano has the same colour in every figure;
- each note is a bar from its start to its end (``music.roll_to_notes``), with a dark tick on
  its onset so a repeated note (C4 C4) shows as two notes;
- ``highlight_mask`` marks *generated* notes: the others (given, e.g. the context an infilling
  sampler kept fixed) are drawn faded and hatched.
"""
from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator

from . import music

# Okabe & Ito (2008), "Color Universal Design": blue, orange, bluish green, reddish purple,
# vermillion, sky blue, yellow, black.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")
GIVEN_ALPHA = 0.3  # opacity of given (not generated) notes when a highlight_mask is passed
_BLACK_KEYS = {1, 3, 6, 8, 10}  # pitch classes of C#, Eb, F#, Ab, Bb


def _as_array(x) -> np.ndarray:
    """NumPy copy of an array or a (CPU or GPU, maybe grad-tracking) tensor."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_roll(roll: np.ndarray, spec: music.RollSpec) -> None:
    if roll.ndim != 4 or roll.shape[:3] != (spec.n_tracks, 2, spec.n_pitches):
        raise ValueError(f"roll has shape {roll.shape}; this RollSpec expects (tracks={spec.n_tracks}, 2, "
                         f"pitches={spec.n_pitches}, steps). Pass the spec the roll was made with "
                         "(e.g. spec=music.MELODY), decode model tensors first (enc.decode(x)), "
                         "and plot a batch one roll at a time (or with plot_rolls).")


def _track_colors(spec: music.RollSpec, colors) -> list:
    """One colour per track: the palette by index, overridden by a list or a {track name: colour} dict."""
    chosen = [PALETTE[i % len(PALETTE)] for i in range(spec.n_tracks)]
    if isinstance(colors, dict):
        unknown = set(colors) - set(spec.tracks)
        if unknown:
            raise ValueError(f"colors names unknown track(s) {sorted(unknown)}; tracks are {spec.tracks}")
        chosen = [colors.get(name, c) for name, c in zip(spec.tracks, chosen)]
    elif colors is not None:
        if len(colors) < spec.n_tracks:
            raise ValueError(f"colors has {len(colors)} entries for {spec.n_tracks} tracks")
        chosen = list(colors)[: spec.n_tracks]
    return chosen


def _generated(notes: np.ndarray, mask, spec: music.RollSpec, steps: int) -> np.ndarray:
    """Bool per note: is the mask True at the note's (track, pitch, onset step)?

    ``mask`` may have shape (steps,), (tracks, steps), (tracks, pitches, steps) or the roll's
    (tracks, 2, pitches, steps) (then its sustain channel is used); True means generated.
    """
    mask = _as_array(mask).astype(bool)
    full = (spec.n_tracks, spec.n_pitches, steps)
    if mask.ndim == 4 and mask.shape[:3] == (spec.n_tracks, 2, spec.n_pitches):
        mask = mask[:, music.SUSTAIN]
    elif mask.ndim == 2:
        mask = mask[:, None, :]
    try:
        mask = np.broadcast_to(mask, full)
    except ValueError:
        raise ValueError(f"highlight_mask has shape {mask.shape}; use (steps,), (tracks, steps), "
                         f"(tracks, pitches, steps) or the roll's shape, with steps={steps}, "
                         f"tracks={spec.n_tracks}, pitches={spec.n_pitches}") from None
    return mask[notes[:, 0], notes[:, 1] - spec.low, notes[:, 2]]


def _given_patch() -> Patch:
    return Patch(facecolor=to_rgba("0.5", GIVEN_ALPHA), edgecolor="0.5", hatch="///", label="given (not generated)")


def _note_boxes(notes: np.ndarray) -> np.ndarray:
    """Note table (N, 4) -> rectangle corners (N, 4, 2) in (step, pitch) coordinates."""
    _, pitch, start, end = notes.T.astype(float)
    low, high = pitch - 0.4, pitch + 0.4
    return np.stack([np.stack([start, low], -1), np.stack([end, low], -1),
                     np.stack([end, high], -1), np.stack([start, high], -1)], axis=1)


def _draw_grid(ax, spec: music.RollSpec, steps: int) -> None:
    """Bars/beats on x, pitch names on y, black-key rows shaded."""
    for pitch in range(spec.low, spec.high):
        if pitch % 12 in _BLACK_KEYS:
            ax.axhspan(pitch - 0.5, pitch + 0.5, color="0.94", lw=0, zorder=0)
    bars = steps // spec.steps_per_bar + (steps % spec.steps_per_bar > 0)
    every = max(1, int(np.ceil(bars / 16)))  # at most ~16 bar labels
    ax.xaxis.set_major_locator(FixedLocator(np.arange(0, steps, spec.steps_per_bar * every)))
    ax.xaxis.set_major_formatter(lambda x, _: f"{int(x) // spec.steps_per_bar + 1}")
    ax.xaxis.set_minor_locator(FixedLocator(np.arange(0, steps, spec.steps_per_beat)))
    for step in range(0, steps + 1, spec.steps_per_beat):
        bar_line = step % spec.steps_per_bar == 0
        ax.axvline(step, color="0.55" if bar_line else "0.85", lw=0.9 if bar_line else 0.5,
                   ls="-" if bar_line else ":", zorder=0.5)
    c_pitches = [p for p in range(spec.low, spec.high) if p % 12 == 0]
    ax.set_yticks(c_pitches, [music.pitch_name(p) for p in c_pitches])
    ax.set_xlim(0, steps)
    ax.set_ylim(spec.low - 0.5, spec.high - 0.5)
    ax.set_xlabel(f"bar (dotted lines: beats, {spec.beats_per_bar} per bar)")
    ax.set_ylabel("pitch")


def plot_roll(roll, spec: music.RollSpec = music.CHORALE, ax=None, *, title: str | None = None,
              colors=None, show_onsets: bool = True, highlight_mask=None, legend: bool = True):
    """Draw a roll (tracks, 2, pitches, steps) as a piano roll; returns the Axes.

    roll:           bool, or float (thresholded at 0.5, e.g. decoded from a noisy sample); NumPy or torch.
    colors:         None (palette by track index), a list, or {track name: colour}.
    show_onsets:    draw a dark tick where each note starts.
    highlight_mask: True where notes were generated, shape (steps,), (tracks, steps),
                    (tracks, pitches, steps) or the roll's; a note is looked up at its onset.
                    The other, given notes are drawn faded and hatched. None: all plain.
    legend:         a legend of track names and note counts, right of the plot.
    The note rectangles of track k are the PolyCollection(s) with gid ``"notes:<track name>"``.
    """
    roll = _as_array(roll)
    _check_roll(roll, spec)
    steps = roll.shape[-1]
    if ax is None:
        _, ax = plt.subplots(figsize=(min(16.0, 4.0 + steps / 10), 4.5), layout="constrained")
    notes = music.roll_to_notes(roll, spec)  # (N, 4): track, pitch, start, end
    generated = (np.ones(len(notes), bool) if highlight_mask is None
                 else _generated(notes, highlight_mask, spec, steps))
    _draw_grid(ax, spec, steps)

    handles = []
    for track, (name, color) in enumerate(zip(spec.tracks, _track_colors(spec, colors))):
        mine = notes[:, 0] == track
        for is_generated in (False, True):
            subset = notes[mine & (generated == is_generated)]
            if len(subset) == 0:
                continue
            alpha = 1.0 if is_generated else GIVEN_ALPHA
            ax.add_collection(PolyCollection(
                _note_boxes(subset), facecolors=[to_rgba(color, alpha * 0.85)],
                edgecolors=[to_rgba(color, alpha)], linewidths=0.6, hatch=None if is_generated else "///",
                gid=f"notes:{name}", zorder=2 + track * 0.01))
            if show_onsets:
                _, pitch, start, _ = subset.T
                ax.add_collection(LineCollection(
                    np.stack([np.stack([start + 0.08, pitch - 0.4], -1), np.stack([start + 0.08, pitch + 0.4], -1)], 1),
                    colors=[to_rgba("black", 0.8 * alpha)], linewidths=1.2, gid=f"onsets:{name}", zorder=3))
        handles.append(Patch(facecolor=color, edgecolor=color, label=f"{name} ({int(mine.sum())} notes)"))
    if legend:
        if highlight_mask is not None:
            handles.append(_given_patch())
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize="small",
                  frameon=False, borderaxespad=0.0)
    if title is None:
        bars = steps / spec.steps_per_bar
        title = f"Piano roll: {bars:g} bar(s), {len(notes)} notes"
    ax.set_title(title)
    return ax


def plot_rolls(rolls, titles=None, spec: music.RollSpec = music.CHORALE, *, ncols: int = 3,
               highlight_mask=None, suptitle: str | None = None, **kwargs) -> Figure:
    """A grid of rolls with shared axes (e.g. one sample at several denoising steps); returns the Figure.

    rolls:  a sequence of rolls, or an array (n, tracks, 2, pitches, steps), all the same length.
    titles: one per roll (default "roll 1", "roll 2", ...). The legend is drawn once, on the right.
    Other keyword arguments (colors, show_onsets) go to ``plot_roll``.
    """
    rolls = [_as_array(r) for r in rolls]
    if not rolls:
        raise ValueError("plot_rolls needs at least one roll")
    if isinstance(ncols, bool) or not hasattr(ncols, "__index__") or ncols < 1:
        raise ValueError(f"ncols must be a whole number >= 1, got {ncols!r}")
    for r in rolls:
        _check_roll(r, spec)
    if len({r.shape for r in rolls}) > 1:
        raise ValueError(f"rolls to compare must have the same shape, got {sorted({r.shape for r in rolls})}")
    titles = list(titles) if titles is not None else [f"roll {i + 1}" for i in range(len(rolls))]
    if len(titles) != len(rolls):
        raise ValueError(f"got {len(titles)} titles for {len(rolls)} rolls")
    ncols = max(1, min(ncols, len(rolls)))
    nrows = -(-len(rolls) // ncols)
    steps = rolls[0].shape[-1]
    width = min(18.0, ncols * (2.5 + steps / 16)) + 1.5
    fig, axes = plt.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False,
                             figsize=(width, 3.0 * nrows + 0.6), layout="constrained")
    for i, ax in enumerate(axes.flat):
        if i >= len(rolls):
            ax.set_visible(False)
            continue
        plot_roll(rolls[i], spec, ax, title=titles[i], highlight_mask=highlight_mask, legend=False, **kwargs)
        ax.label_outer()  # axis labels only on the left column and bottom row
    # One legend for the grid, naming the tracks (note counts differ from roll to roll).
    handles = [Patch(facecolor=c, edgecolor=c, label=name)
               for name, c in zip(spec.tracks, _track_colors(spec, kwargs.get("colors")))]
    if highlight_mask is not None:
        handles.append(_given_patch())
    fig.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_schedules(curves: dict, *, ylabel: str = "value", title: str = "Noise schedules",
                   log: bool = False, xlabel: str = "timestep t", ax=None):
    """Curves over timesteps, e.g. {"linear": alpha_bar, "cosine": alpha_bar}; returns the Axes.

    Each curve is 1-D (length T, indexed by t = 0..T-1; NumPy or torch). ``log=True`` uses a
    log y axis (for SNR_t = alpha_bar_t / (1 - alpha_bar_t), which spans many decades).
    """
    if not curves:
        raise ValueError("plot_schedules needs at least one curve, e.g. {'cosine': alpha_bar}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.0), layout="constrained")
    for i, (name, curve) in enumerate(curves.items()):
        y = _as_array(curve).astype(float)
        if y.ndim != 1:
            raise ValueError(f"curve {name!r} has shape {y.shape}; give a 1-D array over timesteps")
        finite = y[np.isfinite(y)]
        if log and np.any(finite <= 0):
            raise ValueError(f"curve {name!r} has values <= 0, which a log axis cannot show; "
                             "use log=False or plot a positive quantity (e.g. SNR)")
        ax.plot(np.arange(len(y)), y, color=PALETTE[i % len(PALETTE)], lw=1.8, label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", color="0.9")
    ax.legend(frameon=False)
    return ax


def save_roll_png(path, roll, spec: music.RollSpec = music.CHORALE, title: str | None = None,
                  dpi: int = 120, **kwargs):
    """Plot a roll into a PNG file (no window, nothing left open); returns the path.

    Uses a stand-alone ``Figure`` (not pyplot), so nothing is left for a notebook to show twice.
    """
    roll = _as_array(roll)
    _check_roll(roll, spec)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; give a file name for the PNG, e.g. {os.path.join(path, 'roll.png')}")
    fig = Figure(figsize=(min(16.0, 4.0 + roll.shape[-1] / 10), 4.5), layout="constrained")
    plot_roll(roll, spec, fig.subplots(), title=title, **kwargs)
    fig.savefig(path, dpi=dpi)
    return path


def plot_self_similarity(matrix, ax=None, *, form=None, title: str | None = "Bar-to-bar self-similarity"):
    """Draw a (bars, bars) self-similarity matrix (``metrics.self_similarity``): bars numbered from 1 on
    both axes, cosine 0 (white) .. 1 (dark). form: a form such as "A A' B A" (sections of equal bars):
    its section borders are drawn and each section is labelled with its name."""
    matrix = _as_array(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a self-similarity matrix is square (bars, bars); got shape {matrix.shape}")
    ax = ax if ax is not None else plt.figure(figsize=(5.0, 4.4), layout="constrained").add_subplot()
    bars = len(matrix)
    image = ax.imshow(matrix, cmap="Greys", vmin=0.0, vmax=1.0, origin="upper",
                      extent=(0.5, bars + 0.5, bars + 0.5, 0.5), interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label="similarity (cosine)", shrink=0.8)
    ticks = [b for b in range(1, bars + 1) if bars <= 16 or b % 4 == 1]
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("bar")
    ax.set_ylabel("bar")
    if form is not None:
        import re

        names = re.findall(r"[A-Za-z]['′’]*", " ".join(form) if isinstance(form, (list, tuple)) else str(form))
        if not names or bars % len(names):
            raise ValueError(f"the form {form!r} does not split {bars} bars into equal sections")
        size = bars // len(names)
        for i, name in enumerate(names):
            if i:
                ax.axhline(i * size + 0.5, color=PALETTE[4], lw=1.2)
                ax.axvline(i * size + 0.5, color=PALETTE[4], lw=1.2)
            ax.text(i * size + size / 2 + 0.5, 0.3, name, ha="center", va="bottom", color=PALETTE[4],
                    fontweight="bold")
    if title:
        ax.set_title(title, pad=18 if form is not None else 6)
    return ax
