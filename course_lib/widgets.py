"""Interactive viewers: move one control and see *and* hear what diffusion does to the music.

Every viewer is an ``ipywidgets.VBox`` (ipywidgets 8 in JupyterLab 4 and VS Code; the 7.x that
Colab ships works too) built the same way: a title, its controls, then one or two *views*. A
view is one roll drawn by ``viz.plot_roll`` (a PNG whose alt text is the figure's title) above
an audio player from ``audio.to_audio`` whose caption names what plays. A control position is
rendered once and cached; the figure appears first, its audio (slow for rolls decoded from
noise: thousands of notes) follows.

    noise_explorer(x0, schedule, encoding)        lesson 2: slide t, watch x_t = q_sample(x0, t) dissolve
    trace = DenoisingTrace()                      lessons 3-4: a sampler callback (``callback=trace``)
    denoising_viewer(trace, encoding)             ... then every step: x_t and the predicted x̂_0
    guidance_explorer(checkpoint)                 lesson 5: classifier-free guidance scale w
    region_picker(checkpoint, roll)               lessons 6-7: infill, continuation, regeneration
    track_mixer(roll, spec)                       lessons 7-8: mute / solo / regenerate voices
    soundtrack_player(engine)                     lesson 8: game states drive the music (soundtrack_widgets)

Where widgets cannot be drawn (an executed notebook converted to HTML without its widget state,
GitHub's viewer, a frontend without a widget manager), the ``text/html`` each viewer adds to its
display data is shown instead: the current figures and players and the line "interactive widget:
open in JupyterLab to use the <controls>". On Colab, whose widget manager is always there, the
fallback is left out.

Lesson 8's ``soundtrack_player(engine)`` is a ``CourseWidget`` too; it lives next to the engine it
drives, in ``course_lib.soundtrack_widgets``, and ``widgets.soundtrack_player`` forwards to it.
"""
from __future__ import annotations

import base64
import collections
import functools
import html
import io
import sys
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import ipywidgets
import numpy as np
import torch
from matplotlib.figure import Figure

from . import audio, diffusion, metrics, music, pipeline, tasks, viz
from .schedules import NoiseSchedule

FALLBACK_NOTE = "interactive widget: open in JupyterLab to use the {controls}"
WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
CACHE_SIZE = 32  # control positions kept per viewer (a view is ~30-100 KB of PNG and ~0.5 MB of audio)
DPI = 80
WIDE, HALF = (9.0, 3.8), (6.4, 3.4)  # figure sizes (inches): one view, or one of two side by side
TITLE_CHARACTERS_PER_INCH = 9  # a longer plain title is wrapped: a centred line wider than the figure is cut off
MUTED_COLOR = "#c8c8c8"


# --------------------------------------------------------------------------- scenes and views

@dataclass(frozen=True)
class Scene:
    """What one view shows, before it is rendered: a roll (tracks, 2, pitches, steps) and its words."""

    roll: np.ndarray
    title: str  # plain text: the figure's title and the image's alt text
    caption: str  # names what the player plays
    figure_title: str | None = None  # the title with mathtext, e.g. "$\\bar\\alpha_t$"
    sound: np.ndarray | None = None  # the roll to play, if not ``roll`` (e.g. with tracks muted)
    size: tuple = WIDE
    plot: dict = field(default_factory=dict)  # more viz.plot_roll arguments: highlight_mask, colors


@dataclass(frozen=True)
class View:
    """A rendered scene: title, PNG bytes and a captioned player (None while the audio renders)."""

    title: str
    png: bytes
    player: audio.CaptionedAudio | None = None

    def html(self) -> str:
        png = base64.b64encode(self.png).decode("ascii")
        title = html.escape(self.title, quote=True)
        sound = (self.player._repr_html_() if self.player is not None
                 else '<p style="font-size: 0.9em"><em>rendering the audio ...</em></p>')
        return (f'<div class="course-view" style="margin: 0 0.5em 0.5em 0">'
                f'<img src="data:image/png;base64,{png}" alt="{title}" title="{title}" '
                f'style="max-width: 100%; height: auto; display: block"/>{sound}</div>')


def draw(scene: Scene, spec: music.RollSpec) -> View:
    """The scene's figure as a PNG (a matplotlib ``Figure``, not pyplot: nothing is shown twice)."""
    figure = Figure(figsize=scene.size, layout="constrained")
    title = scene.figure_title or textwrap.fill(scene.title, int(TITLE_CHARACTERS_PER_INCH * scene.size[0]))
    viz.plot_roll(scene.roll, spec, figure.subplots(), title=title, **scene.plot)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return View(scene.title, buffer.getvalue())


class CourseWidget(ipywidgets.VBox):
    """Title, controls, views side by side, a message line; displays with a static HTML fallback.

    A subclass says what to show at a control position (``scenes(key)``) and calls ``present(key)``.
    ``views`` holds what is on screen (``View`` objects); ``last_error`` the last exception a control
    raised (its message is shown in the widget: a callback has no cell to raise into).
    """

    def __init__(self, title: str, controls: Sequence[ipywidgets.Widget], n_views: int, controls_name: str,
                 spec: music.RollSpec, tempo: float | None):
        self.title, self.controls_name, self.spec, self.tempo = title, controls_name, spec, tempo
        self.views: tuple[View, ...] = ()
        self.last_error: Exception | None = None
        self.rendered: collections.OrderedDict = collections.OrderedDict()  # key -> views, least recent first
        self._panels = [ipywidgets.HTML(layout=ipywidgets.Layout(flex="1 1 0", min_width="300px"))
                        for _ in range(n_views)]
        self._message = ipywidgets.HTML()
        heading = ipywidgets.HTML(f'<h4 style="margin: 0.2em 0">{html.escape(title)}</h4>')
        super().__init__([heading, *controls,
                          ipywidgets.HBox(self._panels, layout=ipywidgets.Layout(flex_flow="row wrap")),
                          self._message])

    def scenes(self, key) -> Sequence[Scene]:
        """What to show at control position ``key``: one ``Scene`` per view. Each viewer defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define scenes(key)")

    def render(self, key, *, preview: bool = True) -> tuple[View, ...]:
        """The views at ``key``, from the cache or rendered now; ``preview``: show each figure before
        its audio is ready."""
        if key in self.rendered:
            self.rendered.move_to_end(key)
            return self.rendered[key]
        scenes = self.scenes(key)
        views = [draw(scene, self.spec) for scene in scenes]
        if preview:
            self.show(*views)  # the figures now; FluidSynth takes ~1.5 s for a roll of noise
        views = tuple(replace(view, player=audio.to_audio(scene.roll if scene.sound is None else scene.sound,
                                                          self.spec, tempo=self.tempo, caption=scene.caption))
                      for view, scene in zip(views, scenes))
        self.rendered[key] = views
        if len(self.rendered) > CACHE_SIZE:
            self.rendered.popitem(last=False)
        return views

    def present(self, key) -> None:
        self.show(*self.render(key))

    def show(self, *views: View) -> None:
        if len(views) != len(self._panels):
            raise ValueError(f"this viewer shows {len(self._panels)} view(s), got {len(views)}")
        for panel, view in zip(self._panels, views):
            panel.value = view.html()
        self.views = tuple(views)

    def say(self, text: str, error: bool = False) -> None:
        style = ' style="color: #b00020"' if error else ""
        self._message.value = f"<span{style}>{html.escape(text)}</span>" if text else ""

    def guarded(self, function: Callable) -> Callable:
        """``function`` as a control callback: an exception becomes a message in the widget."""
        @functools.wraps(function)
        def callback(*args, **kwargs):
            try:
                result = function(*args, **kwargs)
            except Exception as err:  # noqa: BLE001: shown to the student, kept in last_error
                self.last_error = err
                self.say(f"{type(err).__name__}: {err}", error=True)
                return None
            self.last_error = None
            return result
        return callback

    def fallback_html(self) -> str:
        """What a frontend without widgets shows: title, current views, and how to get the controls."""
        views = "".join(view.html() for view in self.views)
        note = html.escape(FALLBACK_NOTE.format(controls=self.controls_name))
        return (f'<div class="course-widget-fallback"><h4>{html.escape(self.title)}</h4>'
                f'<div style="display: flex; flex-wrap: wrap">{views}</div><p><em>{note}</em></p></div>')

    def _repr_mimebundle_(self, **kwargs):
        parent = getattr(super(), "_repr_mimebundle_", None)
        bundle = parent(**kwargs) if parent is not None else None
        if "google.colab" in sys.modules:  # Colab always renders widgets (and adds its own metadata)
            return bundle
        if bundle is None:  # ipywidgets 7 has no _repr_mimebundle_ of its own
            bundle = {"text/plain": repr(self), WIDGET_MIMETYPE: {
                "version_major": 2, "version_minor": 0, "model_id": self.model_id}}
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, None)
        data = {**data, "text/html": self.fallback_html()}
        return (data, metadata) if metadata is not None else data

    if hasattr(ipywidgets.Widget, "_ipython_display_"):  # ipywidgets 7: IPython asks this first
        def _ipython_display_(self, **kwargs):
            if "google.colab" in sys.modules:
                return super()._ipython_display_(**kwargs)
            import IPython.display
            IPython.display.display(self._repr_mimebundle_(), raw=True)
            self._handle_displayed(**kwargs)


def _slider(description: str, low: int, high: int, value: int) -> ipywidgets.IntSlider:
    """An integer slider that updates when released (each position renders a figure and audio)."""
    return ipywidgets.IntSlider(value=value, min=low, max=high, step=1, description=description,
                                continuous_update=False, layout=ipywidgets.Layout(width="90%"),
                                style={"description_width": "initial"})


def _load(checkpoint):
    """A ``train.Checkpoint``, from itself, a path, or None (the bundled model)."""
    if checkpoint is None or isinstance(checkpoint, (str, Path)):
        return pipeline.load(checkpoint)
    if not all(hasattr(checkpoint, name) for name in ("model", "schedule", "encoding")):
        raise TypeError(f"expected a checkpoint (pipeline.load()), got {type(checkpoint).__name__}")
    return checkpoint


def _spec_of(encoding) -> music.RollSpec:
    spec = getattr(encoding, "spec", None)
    if not isinstance(spec, music.RollSpec):
        raise TypeError(f"expected an encoding (course_lib.encoding.VoiceEncoding or PianoRollEncoding), "
                        f"got {type(encoding).__name__}")
    return spec


def _as_roll(roll, spec: music.RollSpec) -> np.ndarray:
    """A bool NumPy roll (tracks, 2, pitches, steps) matching ``spec``, from an array or a tensor."""
    roll = np.asarray(roll.detach().cpu() if torch.is_tensor(roll) else roll)
    if roll.ndim != 4 or roll.shape[:3] != (spec.n_tracks, 2, spec.n_pitches):
        raise ValueError(f"roll has shape {roll.shape}; expected (tracks={spec.n_tracks}, 2, pitches={spec.n_pitches}, "
                         f"steps) for tracks {spec.tracks}. Decode model tensors first (encoding.decode(x)).")
    return roll.astype(bool)


def _bars(steps: int, spec: music.RollSpec) -> int:
    if steps % spec.steps_per_bar:
        raise ValueError(f"the music has {steps} steps, not a whole number of bars of {spec.steps_per_bar}")
    return steps // spec.steps_per_bar


# --------------------------------------------------------------------------- lesson 2: the forward process

class NoiseExplorer(CourseWidget):
    """``noise_explorer(x0, schedule, encoding)``: slide the timestep t; see and hear x_t = q_sample(x0, t),
    x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε (DDPM eq. 4), decoded to a roll.

    x0:       one clean sample in model space, ``encoding.encode(roll)``: (C, L) or (C, H, W), or a
              batch of one; a roll (tracks, 2, pitches, steps) is encoded for you.
    schedule: the ``NoiseSchedule`` (t runs over 0..T-1); encoding: the one x0 was made with.
    seed:     the noise ε, drawn once: the same ε at every t, so the music dissolves continuously.
    t:        where the slider starts; tempo: BPM of the audio (default 90).
    """

    def __init__(self, x0, schedule: NoiseSchedule, encoding, *, title: str | None = None, seed: int = 0,
                 t: int = 0, tempo: float | None = None):
        spec = _spec_of(encoding)
        shape = tuple(x0.shape) if hasattr(x0, "shape") else np.shape(x0)
        is_roll = len(shape) == 4 and shape[:3] == (spec.n_tracks, 2, spec.n_pitches)
        x0 = (encoding.encode(x0) if is_roll else torch.as_tensor(x0)).detach().float().cpu()
        expected = tuple(encoding.shape(1))[:-1]
        if x0.ndim == len(expected) + 2 and x0.shape[0] == 1:
            x0 = x0[0]  # a batch of one
        if tuple(x0.shape[:-1]) != expected:
            raise ValueError(f"x0 has shape {tuple(x0.shape)}; this encoding's samples have shape "
                             f"({', '.join(map(str, expected))}, steps). Pass one sample: encoding.encode(roll).")
        if x0.abs().max() > 1.5:
            raise ValueError("x0 has values far outside [-1, 1]; pass clean data in model space, "
                             "encoding.encode(roll), not a noisy or unscaled tensor")
        self.x0, self.schedule, self.encoding, self.timesteps = x0, schedule, encoding, schedule.timesteps
        self.noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))  # ε, fixed
        self.slider = _slider("timestep t", 0, self.timesteps - 1, int(np.clip(t, 0, self.timesteps - 1)))
        super().__init__(title or "The forward process: x_t = q_sample(x_0, t)", [self.slider], 1, "slider",
                         spec, tempo)
        self.slider.observe(self.guarded(lambda change: self.present(change["new"])), names="value")
        self.present(self.slider.value)

    def x_t(self, t: int) -> torch.Tensor:
        """x_t for this explorer's x_0 and ε: shape of x0."""
        return diffusion.q_sample(self.schedule, self.x0[None], int(t), noise=self.noise[None])[0]

    def scenes(self, t: int) -> list[Scene]:
        alpha_bar = float(self.schedule.alpha_bar[t])
        what = f"x_t at t={t} of {self.timesteps}"
        return [Scene(self.encoding.decode(self.x_t(t)), f"{what} (alpha_bar_t = {alpha_bar:.3f})", what,
                      figure_title=f"{what} ($\\bar\\alpha_t$ = {alpha_bar:.3f})")]


noise_explorer = NoiseExplorer  # the name the lessons use


# --------------------------------------------------------------------------- lessons 3-4: sampling

class TraceStep(NamedTuple):
    step: int               # sampler step, 0 .. n-1
    t: int                  # timestep of x_t
    x_t: torch.Tensor       # the sample entering this step, one sample's shape, on the CPU
    x0_pred: torch.Tensor   # the model's prediction of x_0 from x_t at this step


class DenoisingTrace:
    """A sampler callback that records (step, t, x_t, x̂_0) of one sample of the batch.

        trace = DenoisingTrace()
        diffusion.ddim_sample(model, schedule, shape, labels, callback=trace)   # or pipeline.generate
        denoising_viewer(trace, encoding)

    sample: which sample of the batch to record; every: keep every k-th step (and the last one),
    to bound memory with DDPM's 1000 steps. A new sampling run (step 0 again) starts a new trace.
    """

    def __init__(self, sample: int = 0, every: int = 1):
        if every < 1 or sample < 0:
            raise ValueError(f"need sample >= 0 and every >= 1, got sample={sample}, every={every}")
        self.sample, self.every = sample, every
        self.steps: list[TraceStep] = []

    def __call__(self, step: int, t, x_t: torch.Tensor, x0_pred: torch.Tensor) -> None:
        if step == 0:
            self.steps = []  # a new list: viewers keep the old one
        if x_t.shape[0] <= self.sample:
            raise ValueError(f"DenoisingTrace(sample={self.sample}) but the batch has {x_t.shape[0]} sample(s)")
        if step % self.every == 0 or int(t) == 0:
            self.steps.append(TraceStep(int(step), int(t), x_t[self.sample].detach().float().cpu().clone(),
                                        x0_pred[self.sample].detach().float().cpu().clone()))

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index) -> TraceStep:
        return self.steps[index]

    def __repr__(self) -> str:
        span = f", t {self.steps[0].t} -> {self.steps[-1].t}" if self.steps else ""
        return f"<DenoisingTrace: {len(self)} steps recorded{span}>"


class DenoisingViewer(CourseWidget):
    """``denoising_viewer(trace, encoding)``: a slider over the steps a ``DenoisingTrace`` recorded;
    decoded x_t (left) and decoded predicted x̂_0 (right) side by side, both playable.

    trace: filled by a sampler (``callback=trace``); encoding: the model's. The viewer keeps a
    snapshot of the trace, so sampling again with the same trace does not change it.
    """

    def __init__(self, trace: DenoisingTrace, encoding, *, title: str | None = None, tempo: float | None = None):
        if not isinstance(trace, DenoisingTrace):
            raise TypeError(f"expected a DenoisingTrace, got {type(trace).__name__}")
        if len(trace) == 0:
            raise ValueError("the trace is empty: create trace = DenoisingTrace(), pass callback=trace to "
                             "diffusion.ddim_sample / ddpm_sample or pipeline.generate, then view it")
        self.encoding, self.records = encoding, list(trace.steps)
        self.n_steps = self.records[-1].step + 1
        self.slider = _slider("denoising step", 1, len(self.records), 1)
        super().__init__(title or "The reverse process, step by step: x_t and the predicted x̂₀", [self.slider],
                         2, "slider", _spec_of(encoding), tempo)
        self.slider.observe(self.guarded(lambda change: self.present(change["new"])), names="value")
        self.present(1)

    def scenes(self, position: int) -> list[Scene]:
        record = self.records[position - 1]
        when = f"step {record.step + 1} of {self.n_steps} (t={record.t})"
        return [Scene(self.encoding.decode(record.x_t), f"x_t at {when}", f"x_t at {when}", size=HALF),
                Scene(self.encoding.decode(record.x0_pred), f"predicted x0 at {when}", f"predicted x̂₀ at {when}",
                      figure_title=f"predicted $\\hat{{x}}_0$ at {when}", size=HALF)]


denoising_viewer = DenoisingViewer


# --------------------------------------------------------------------------- lesson 5: guidance

class GuidanceExplorer(CourseWidget):
    """``guidance_explorer(checkpoint)``: one seed sampled at each classifier-free guidance scale w in
    ``scales`` (Ho & Salimans 2022, eq. 6: ε̃ = (1 + w) ε(x_t, c) - w ε(x_t, ∅)); a slider switches.

    checkpoint: a ``train.Checkpoint`` of a conditional model (or a path; None = the bundled one);
    style, mode, density: the labels c asked for (None = null); steps: DDIM steps per sample. Every
    sample is generated and rendered up front (len(scales) sampler runs), so switching is instant.
    """

    def __init__(self, checkpoint, *, scales=(0, 1, 2, 4), style="bach", mode="minor", seed: int = 0,
                 density=None, steps: int = 50, title: str | None = None, tempo: float | None = None):
        checkpoint = _load(checkpoint)
        config = getattr(checkpoint.model, "config", None)
        if config is not None and not config.uses_labels:
            raise ValueError("this checkpoint was trained without labels, so there is nothing to guide "
                             "towards; use a conditional model (e.g. the bundled one, pipeline.load())")
        self.scales = [float(w) for w in scales]
        if not self.scales or min(self.scales) < 0:
            raise ValueError(f"scales must be a non-empty list of guidance scales w >= 0, got {list(scales)}")
        self.asked = ", ".join(f"{k} {v}" for k, v in (("style", style), ("mode", mode), ("density", density))
                               if v is not None) or "no labels"
        self.seed = seed
        self.samples = {w: pipeline.generate(checkpoint, 1, style=style, mode=mode, density=density,
                                             guidance_scale=w, seed=seed, steps=steps)[0] for w in self.scales}
        self.slider = ipywidgets.SelectionSlider(options=[(f"{w:g}", w) for w in self.scales], value=self.scales[0],
                                                 description="guidance scale w", style={"description_width": "initial"},
                                                 layout=ipywidgets.Layout(width="60%"))
        super().__init__(title or f"Classifier-free guidance: {self.asked}", [self.slider], 1, "slider",
                         checkpoint.spec, tempo)
        for w in self.scales:  # all rendered now, so switching is instant
            self.render(w, preview=False)
        self.slider.observe(self.guarded(lambda change: self.present(change["new"])), names="value")
        self.present(self.scales[0])

    def scenes(self, w: float) -> list[Scene]:
        roll = self.samples[w]
        tonic, mode = metrics.key_of_roll(roll, self.spec)
        key = "silence" if tonic is None else f"{tonic} {pipeline.MODES[mode]}"
        what = f"sample at guidance scale w={w:g} ({self.asked}, seed {self.seed})"
        return [Scene(roll, f"{what}: heard as {key}", what)]


guidance_explorer = GuidanceExplorer


# --------------------------------------------------------------------------- lessons 6-7: known regions

TASKS = {"infill": "regenerate the chosen bars of the chosen tracks",
         "continuation": "keep the music before the first chosen bar, continue it to the end",
         "regenerate": "write new music for the chosen tracks over the whole piece, keeping the others"}


class RegionPicker(CourseWidget):
    """``region_picker(checkpoint, roll)``: pick a task, bars and tracks; the model regenerates that region
    around the given music with ``pipeline.generate(known=, known_mask=)`` (RePaint).

    checkpoint: a ``train.Checkpoint`` (or a path; None = the bundled one); roll: the given music,
    (tracks, 2, pitches, steps) in the checkpoint's RollSpec, a whole number of bars the model takes.
    tasks: any of ``TASKS``. Before/after are drawn with generated notes solid and given ones faded,
    and both play. ``.result`` is the last regenerated roll; ``.generate()`` runs the controls again.
    """

    def __init__(self, checkpoint, roll, *, tasks=tuple(TASKS), style=None, mode=None, seed: int = 0,
                 steps: int = 50, resample_steps: int = 1, title: str | None = None, tempo: float | None = None):
        self.checkpoint = checkpoint = _load(checkpoint)
        unknown = [task for task in tasks if task not in TASKS]
        if unknown or not tasks:
            raise ValueError(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
        self.roll = _as_roll(roll, checkpoint.spec)
        self.bars = _bars(self.roll.shape[-1], checkpoint.spec)
        self.options = dict(style=style, mode=mode, steps=steps, resample_steps=resample_steps, bars=self.bars)
        self.result: np.ndarray | None = None  # the last regenerated roll
        self.highlight: np.ndarray | None = None  # (tracks, steps), True where .result was generated
        self.task = ipywidgets.ToggleButtons(options=list(tasks), value=tasks[0], description="task",
                                             tooltips=[TASKS[t] for t in tasks])
        middle = (max(1, self.bars // 2), max(1, self.bars // 2 + self.bars // 4))
        self.bar_range = ipywidgets.IntRangeSlider(value=middle, min=1, max=self.bars, step=1, description="bars",
                                                   continuous_update=False)
        self.track_boxes = [ipywidgets.Checkbox(value=True, description=name, indent=False,
                                                layout=ipywidgets.Layout(width="auto"))
                            for name in checkpoint.spec.tracks]
        self.seed = ipywidgets.IntText(value=seed, description="seed", layout=ipywidgets.Layout(width="10em"))
        self.button = ipywidgets.Button(description="Generate", button_style="primary", icon="music")
        controls = [self.task, self.bar_range, ipywidgets.HBox([ipywidgets.Label("tracks"), *self.track_boxes]),
                    ipywidgets.HBox([self.seed, self.button])]
        super().__init__(title or "Regenerate part of the music", controls, 2, "controls", checkpoint.spec, tempo)
        self.button.on_click(self.guarded(lambda _: self.generate()))
        self.task.observe(self.guarded(lambda _: self._task_changed()), names="value")
        self._task_changed()
        self.generate()

    def _task_changed(self) -> None:
        task = self.task.value
        if task == "regenerate":  # every bar: the disabled slider shows so, and gets its range back after
            if not self.bar_range.disabled:
                self._bars_chosen = self.bar_range.value
            self.bar_range.value = (1, self.bars)
        elif self.bar_range.disabled:
            self.bar_range.value = getattr(self, "_bars_chosen", self.bar_range.value)
        self.bar_range.disabled = task == "regenerate"
        if task == "continuation":
            self.bar_range.value = (self.bar_range.value[0], self.bars)
        self.say(TASKS[task])

    def region(self) -> tuple[int, int, list[int]]:
        """(start step, end step, track indices) that the current controls will regenerate."""
        first, last = self.bar_range.value
        if self.task.value == "continuation":
            last = self.bars
        if self.task.value == "regenerate":
            first, last = 1, self.bars
        tracks = [k for k, box in enumerate(self.track_boxes) if box.value]
        return (first - 1) * self.spec.steps_per_bar, last * self.spec.steps_per_bar, tracks

    def generate(self) -> np.ndarray:
        """Regenerate the chosen region, show before/after, and return the new roll (tracks, 2, pitches, steps)."""
        start, end, tracks = self.region()
        if not tracks:
            raise ValueError("choose at least one track to generate")
        encoding, seed, spb = self.checkpoint.encoding, int(self.seed.value), self.spec.steps_per_bar
        mask = 1.0 - tasks.bar_mask(encoding, self.bars, start // spb + 1, end // spb, tracks)  # 1 = known
        self.say("generating ...")
        self.result = pipeline.generate(self.checkpoint, 1, seed=seed, known=encoding.encode(self.roll),
                                        known_mask=mask, **self.options)[0]
        self.highlight = np.zeros((self.spec.n_tracks, self.roll.shape[-1]), dtype=bool)  # (tracks, steps)
        self.highlight[np.ix_(tracks, np.arange(start, end))] = True  # True = generated
        self.present((self.task.value, start, end, tuple(tracks), seed))  # a key fixes the (seeded) result
        self.say(f"{self.task.value}: {self._where(start, end, tracks)} regenerated, the rest kept (faded)")
        return self.result

    def _where(self, start: int, end: int, tracks: list[int]) -> str:
        first, last = start // self.spec.steps_per_bar + 1, end // self.spec.steps_per_bar
        bars = f"bar {first}" if first == last else f"bars {first}-{last}"
        return f"{bars} of {', '.join(self.spec.tracks[k] for k in tracks)}"

    def scenes(self, key) -> list[Scene]:
        task, start, end, tracks, seed = key
        where, marked = self._where(start, end, list(tracks)), {"highlight_mask": self.highlight}
        return [Scene(self.roll, f"before: the given music ({where} drawn solid: to regenerate)",
                      "before: the given music", size=HALF, plot=marked),
                Scene(self.result, f"after: {task}, {where} generated (seed {seed})",
                      f"after: {where} regenerated ({task}, seed {seed})", size=HALF, plot=marked)]


region_picker = RegionPicker


# --------------------------------------------------------------------------- lessons 7-8: voices

class TrackMixer(CourseWidget):
    """``track_mixer(roll, spec)``: mute and solo the tracks of ``roll`` (tracks, 2, pitches, steps) and hear
    the mix; muted tracks are drawn grey.

    regenerate: optional ``f(roll, track) -> roll``; each track then gets a "new <name>" button that
    replaces it by f's version (e.g. ``harmony.voice_regenerator(checkpoint)``, which inpaints one voice);
    ``.roll`` is the music now.
    """

    def __init__(self, roll, spec: music.RollSpec = music.CHORALE, *, regenerate: Callable | None = None,
                 title: str | None = None, tempo: float | None = None):
        self.roll, self.regenerate = _as_roll(roll, spec), regenerate
        self.changed = np.zeros(spec.n_tracks, dtype=bool)  # tracks regenerated so far
        self.mutes = [ipywidgets.ToggleButton(description="mute", tooltip=f"mute the {n}") for n in spec.tracks]
        self.solos = [ipywidgets.ToggleButton(description="solo", tooltip=f"hear only the {n}") for n in spec.tracks]
        self.regenerate_buttons = [ipywidgets.Button(description=f"new {n}", icon="refresh",
                                                     tooltip=f"regenerate the {n}") for n in spec.tracks]
        rows = [ipywidgets.HBox([ipywidgets.Label(name, layout=ipywidgets.Layout(width="6em")), self.mutes[k],
                                 self.solos[k]] + ([self.regenerate_buttons[k]] if regenerate else []))
                for k, name in enumerate(spec.tracks)]
        super().__init__(title or "Track mixer", rows, 1, "buttons", spec, tempo)
        for k, button in enumerate(self.regenerate_buttons):
            button.on_click(self.guarded(functools.partial(lambda k, _: self.regenerate_track(k), k)))
        for toggle in self.mutes + self.solos:
            toggle.observe(self.guarded(lambda _: self.present(self.audible())), names="value")
        self.present(self.audible())

    def audible(self) -> tuple[int, ...]:
        """Indices of the tracks heard now: the soloed ones if any, else the unmuted ones."""
        soloed = tuple(k for k, b in enumerate(self.solos) if b.value)
        return soloed or tuple(k for k, b in enumerate(self.mutes) if not b.value)

    def mix(self, audible: Sequence[int]) -> np.ndarray:
        """The roll with every track but ``audible`` silenced: what the player plays."""
        mix = np.zeros_like(self.roll)
        mix[list(audible)] = self.roll[list(audible)]
        return mix

    def scenes(self, audible: tuple[int, ...]) -> list[Scene]:
        names = self.spec.tracks
        silent = [names[k] for k in range(len(names)) if k not in audible]
        what = f"mix: {', '.join(names[k] for k in audible) or 'nothing'}"
        what += f" ({', '.join(silent)} muted)" if silent else ""
        colors = [viz.PALETTE[k % len(viz.PALETTE)] if k in audible else MUTED_COLOR for k in range(len(names))]
        plot = {"colors": colors}
        if self.changed.any():  # regenerated tracks solid, the others faded
            plot["highlight_mask"] = np.repeat(self.changed[:, None], self.roll.shape[-1], axis=1)
        title = what + ("; regenerated: " + ", ".join(np.array(names)[self.changed]) if self.changed.any() else "")
        return [Scene(self.roll, title, what, sound=self.mix(audible), plot=plot)]

    def regenerate_track(self, track: int) -> np.ndarray:
        """Replace one track with ``regenerate(roll, track)``'s version of it; returns the new roll."""
        self.say(f"regenerating the {self.spec.tracks[track]} ...")
        new = np.asarray(self.regenerate(self.roll.copy(), track))
        if new.shape != self.roll.shape:
            raise ValueError(f"regenerate returned shape {new.shape}, expected {self.roll.shape}")
        self.roll = self.roll.copy()
        self.roll[track] = new[track].astype(bool)
        self.changed[track] = True
        self.rendered.clear()
        self.present(self.audible())
        self.say(f"new {self.spec.tracks[track]} (drawn solid; the other tracks faded)")
        return self.roll


track_mixer = TrackMixer


def __getattr__(name: str):
    """``widgets.soundtrack_player`` (and its class): defined in ``soundtrack_widgets``, which imports
    this module, so it is looked up on first use."""
    if name in ("soundtrack_player", "SoundtrackPlayer"):
        from . import soundtrack_widgets
        return getattr(soundtrack_widgets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
