"""Seeing and playing an adaptive soundtrack: the state timeline figure and the live player (lesson 8).

    plot_timeline(soundtrack)            the piano roll with a coloured band per game state behind
                                         it and the regenerated transition bars hatched
    soundtrack_player(engine, start=...) a button per game state: each press generates the next
                                         bars under that state (bridging a change of state) and
                                         queues them; shows the timeline so far, the queued bars'
                                         audio, the whole soundtrack's audio and the latency

The player is a ``widgets.CourseWidget`` (same look, same static fallback where widgets cannot
be drawn). A notebook cannot stream audio gaplessly, so the *queue* is shown as players: what a
game's audio thread would play next (the bars just generated, transition included), and the
soundtrack so far from its start.
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass

import ipywidgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from . import audio, viz
from .soundtrack import Soundtrack, SoundtrackEngine
from .widgets import DPI, CourseWidget

STATE_TINTS = ("#cfe8d5", "#f6cfc4", "#fbecb8", "#d5dcf2", "#ead5ee", "#d9d9d9")  # light, behind the notes
BRIDGE_EDGE = "0.45"


def tempo_label(tempos) -> str:
    """A segment's tempo for its label, in whole BPM: "84 BPM", or "84 → 132 BPM" where it ramps
    (transition bars: 94.6667 BPM would read as false precision)."""
    first, last = (int(round(float(t))) for t in (tempos[0], tempos[-1]))
    return f"{first} BPM" if first == last else f"{first} \u2192 {last} BPM"


def plot_timeline(soundtrack: Soundtrack, ax=None, *, title: str | None = None, tints: dict | None = None):
    """The soundtrack's piano roll with each game state as a band behind it (labelled with its tempo)
    and the transition bars hatched; returns the Axes. ``tints``: {state: colour} to override."""
    spec, spb = soundtrack.spec, soundtrack.spec.steps_per_bar
    ax = viz.plot_roll(soundtrack.roll, spec, ax, title=title or "Adaptive soundtrack: game states over the "
                       "piano roll (hatched: transition bars, regenerated)")
    tracks_legend = ax.get_legend()  # viz.plot_roll's: track names and note counts
    names = list(dict.fromkeys(soundtrack.states))
    tint = {name: STATE_TINTS[i % len(STATE_TINTS)] for i, name in enumerate(names)} | (tints or {})
    for state, first, end in soundtrack.segments():
        ax.axvspan(first * spb, end * spb, color=tint[state], zorder=0.1, lw=0)
        ax.text((first + end) / 2 * spb, spec.high - 1.2, f"{state}\n{tempo_label(soundtrack.tempos[first:end])}",
                ha="center", va="top", fontsize="small", zorder=4)
    for bar in np.flatnonzero(soundtrack.transition):
        ax.axvspan(bar * spb, (bar + 1) * spb, facecolor="none", edgecolor=BRIDGE_EDGE, hatch="//", lw=0, zorder=0.2)
    handles = list(tracks_legend.legend_handles) if tracks_legend is not None else []  # one legend for all
    handles += [Patch(facecolor=tint[n], label=f"state: {n}") for n in names]
    handles.append(Patch(facecolor="none", edgecolor=BRIDGE_EDGE, hatch="//", label="transition bar"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize="small", frameon=False,
              borderaxespad=0.0)
    return ax


def timeline_png(soundtrack: Soundtrack, *, title: str | None = None, dpi: int = DPI) -> bytes:
    """``plot_timeline`` as PNG bytes, from a stand-alone Figure (nothing left for pyplot to show)."""
    figure = Figure(figsize=(min(18.0, 5.0 + soundtrack.roll.shape[-1] / 14), 4.8), layout="constrained")
    plot_timeline(soundtrack, figure.subplots(), title=title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


@dataclass(frozen=True)
class TimelineView:
    """What the player shows: the timeline figure and captioned players (the queue, then all)."""

    title: str
    png: bytes
    players: tuple = ()

    def html(self) -> str:
        png = base64.b64encode(self.png).decode("ascii")
        title = html.escape(self.title, quote=True)
        sound = "".join(p._repr_html_() for p in self.players)
        return (f'<div class="course-view"><img src="data:image/png;base64,{png}" alt="{title}" '
                f'title="{title}" style="max-width: 100%; height: auto; display: block"/>{sound}</div>')


class SoundtrackPlayer(CourseWidget):
    """``soundtrack_player(engine, start="exploration")``: a button per game state of ``engine.states``.

    Each press runs ``engine.advance(state)``: the next bars under that state, with the transition
    regenerated when the state changes. The view shows the timeline so far, a player for the bars
    just queued and one for the whole soundtrack, and how long the window took against its budget.
    ``press(state)`` does what a click does (for scripts and tests); "start over" resets the engine.
    start: the state of the first window, generated now (None: wait for the first press).
    """

    def __init__(self, engine: SoundtrackEngine, *, start: str | None = None, title: str | None = None):
        if not isinstance(engine, SoundtrackEngine):
            raise TypeError(f"expected a soundtrack.SoundtrackEngine, got {type(engine).__name__}")
        self.engine = engine
        self.buttons = {state: ipywidgets.Button(description=state, tooltip=f"the game enters {state!r}",
                                                 layout=ipywidgets.Layout(width="auto"))
                        for state in engine.states}
        restart = ipywidgets.Button(description="start over", icon="undo", button_style="warning")
        controls = [ipywidgets.HBox([ipywidgets.Label("game state:"), *self.buttons.values(), restart])]
        super().__init__(title or "Adaptive soundtrack: press a game state", controls, 1, "state buttons",
                         engine.spec, None)
        for state, button in self.buttons.items():
            button.on_click(self.guarded(lambda _, state=state: self.press(state)))
        restart.on_click(self.guarded(lambda _: self.start_over()))
        if start is not None:
            self.press(start)
        else:
            self.say("press a game state to start the music")

    def press(self, state: str) -> Soundtrack:
        """The game enters ``state``: generate and queue the next bars; returns the soundtrack so far."""
        self.say(f"generating the next bars for {state!r} ...")
        window = self.engine.advance(state)
        self.present(len(self.engine.windows))
        report = self.engine.latency()
        load = report.load[-1]
        verdict = "within" if load <= report.budget else "OVER"
        what = "transition into " if window.transition else ""
        self.say(f"window {window.index}: {what}{state}, bars {window.first_bar + 1}-"
                 f"{window.first_bar + window.new_bars} generated in {window.seconds:.2f} s "
                 f"({load:.1%} of their playing time, {verdict} the {report.budget:.0%} budget); "
                 f"real-time factor so far {report.realtime_factor:.3f}")
        return self.engine.soundtrack()

    def start_over(self) -> None:
        self.engine.reset()
        self.rendered.clear()
        self.show(TimelineView("no music yet", b"", ()))
        self.say("the engine is reset: press a game state to start the music")

    def render(self, key, *, eager: bool = False):
        """The views after ``key`` windows (cached): the timeline and the queued and whole audio."""
        if key in self.rendered:
            return self.rendered[key]
        track = self.engine.soundtrack()
        window = self.engine.windows[-1]
        queued = track.excerpt(window.first_bar, track.bars)
        bars = f"bars {window.first_bar + 1}-{track.bars}"
        players = (audio.to_audio(queued.to_midi(), caption=f"queued next: {bars} ({window.state}"
                                  f"{', with the transition' if window.transition else ''})"),
                   audio.to_audio(track.to_midi(), caption=f"the soundtrack so far, {track.bars} bars"))
        view = TimelineView(f"{track.bars} bars so far; the last window made {bars}",
                            timeline_png(track), players)
        self.rendered[key] = (view,)
        return self.rendered[key]

    def show(self, *views) -> None:
        if views and not views[0].png:  # nothing generated: an empty panel
            self._panels[0].value = "<p><em>no music yet</em></p>"
            self.views = ()
            return
        super().show(*views)


soundtrack_player = SoundtrackPlayer
