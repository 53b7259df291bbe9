"""The live adaptive soundtrack: music that keeps playing while the game state changes (lesson 8).

``soundtrack_widgets.soundtrack_player`` renders a clip per click. This player streams: the
browser plays bar after bar through the Web Audio API, and a button changes the game state at any
moment, as a game would.

    player = live_player(SoundtrackEngine(pipeline.load()), start="exploration")
    player                       # in JupyterLab, VS Code or Colab: press a state, the music starts

Who does what:

- **the browser** (the widget's JavaScript, ``LIVE_PLAYER_JS``) keeps an ``AudioContext``. It
  schedules every bar it receives to start exactly where the previous one ends (``start(t)`` on
  the audio clock, t += the bar's samples / rate: no gap, no overlap), and asks the kernel for
  the next bar when the music it has scheduled runs out in less than ``lead`` seconds. It keeps a
  log of every scheduled bar (start, duration, state) and every click, readable from the page
  (``window.liveSoundtracks``) and summed up under the buttons.
- **the kernel** (``LiveSoundtrack``, a background thread) keeps the ``SoundtrackEngine`` ahead of
  the browser: a bar is *final* (sent when asked for) once the engine could no longer regenerate
  it, i.e. when it is older than the last ``transition_bars``; one final bar is kept ready.
- **a state change** forgets the bars made ahead that were not sent, then ``engine.advance(new)``
  regenerates the transition bars with the new state's labels (the smooth bridge of
  ``soundtrack.py``). The first bar not yet scheduled is the bridge, so the new state is heard
  from the next bar line, or the one after when that bar was already scheduled (the click came
  less than ``lead`` before it): at most one bar plus ``lead`` after the click.

The kernel generates only what the browser asks for, plus one bar: without a front end
(nbconvert, nbgrader, GitHub) nothing runs and the static text below the widget is shown; when
the page goes away its pings stop and the thread ends after ``IDLE_SECONDS``. ``close()`` stops
it at once. ``SimulatedBrowser`` plays the browser's part in Python (tests and the benchmark).

Shapes: a bar's audio is (round(bar seconds * sample_rate),) int16 samples, mono.
"""
from __future__ import annotations

import html
import itertools
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import anywidget
import numpy as np
import traitlets

from . import audio, music
from .soundtrack import Soundtrack, SoundtrackEngine, bar_start_seconds

SAMPLE_RATE = 22050
LEAD_SECONDS = 0.6  # the browser asks for the next bar when less than this is left to play
IDLE_SECONDS = 10.0  # no message from the page for this long: the page is gone, the thread stops
GAIN = 0.8  # raw FluidSynth samples of four voices stay well inside [-1, 1]; the same for every bar
SYNTH_GAIN = 0.4  # FluidSynth's master gain for the stream (its default 0.2 is quiet for four voices)
VELOCITY = 80  # as music.roll_to_midi
FALLBACK = ("live soundtrack player: it plays in a running notebook (JupyterLab, VS Code, Colab). "
            "Here, use the static player above (soundtrack_player), which renders a clip per press.")


def note_events(roll, bar: int, spec: music.RollSpec = music.CHORALE) -> list[tuple[int, bool, int, int]]:
    """The MIDI events of bar ``bar`` of ``roll`` (tracks, 2, pitches, steps): (step in the bar, note on?,
    track, MIDI pitch), in time order, note-offs before note-ons at a step. A note held across the
    bar line (sounding before and after it, no onset) gives no event there: it goes on sounding."""
    roll = np.asarray(roll) > 0.5
    spb = spec.steps_per_bar
    events = []
    for step in range(bar * spb, (bar + 1) * spb):
        now, onset = roll[:, music.SUSTAIN, :, step], roll[:, music.ONSET, :, step]  # (tracks, pitches)
        before = roll[:, music.SUSTAIN, :, step - 1] if step > 0 else np.zeros_like(now)
        off = before & (~now | onset)  # ends, or is struck again
        on = now & (onset | ~before)
        events += [(step - bar * spb, False, int(k), spec.low + int(p)) for k, p in zip(*np.nonzero(off))]
        events += [(step - bar * spb, True, int(k), spec.low + int(p)) for k, p in zip(*np.nonzero(on))]
    return events


class BarStream:
    """Bars in, samples out, from one FluidSynth synthesizer that runs on from bar to bar: a note
    held across a bar line keeps sounding, releases and reverb ring on into the next bar, so bars
    played back to back sound as one piece. Without FluidSynth, ``bar_audio`` (the built-in synth).

    Bars must come in order (each one after the one before it), as the live player sends them.
    """

    def __init__(self, spec: music.RollSpec, sample_rate: int = SAMPLE_RATE, soundfont=None):
        self.spec, self.sample_rate, self.synth = spec, sample_rate, None
        info = audio.backend_info("auto", soundfont)
        if info.name == "fluidsynth":
            import fluidsynth  # pyfluidsynth: backend_info checked that it loads

            self.synth = fluidsynth.Synth(gain=SYNTH_GAIN, samplerate=float(sample_rate))
            sfid = self.synth.sfload(info.soundfont)
            for track, name in enumerate(spec.tracks):
                self.synth.program_select(self._channel(track), sfid, 0,
                                          music.GM_PROGRAMS.get(name, music.DEFAULT_PROGRAM))

    @staticmethod
    def _channel(track: int) -> int:
        return track if track < 9 else track + 1  # MIDI channel 10 (index 9) is percussion

    def _samples(self, count: int) -> np.ndarray:
        stereo = np.asarray(self.synth.get_samples(count), dtype=np.int32).reshape(-1, 2)  # (count, 2)
        return (stereo.sum(axis=1) // 2).astype(np.int16)

    def bar(self, track: Soundtrack, bar: int) -> np.ndarray:
        """(round(bar seconds * sample_rate),) int16: bar ``bar`` of ``track``, continuing the last one."""
        if self.synth is None:
            return bar_audio(track, bar, self.sample_rate)
        seconds = np.diff(bar_start_seconds(track.tempos[bar:bar + 1], self.spec.beats_per_bar))[0]
        length, spb = int(round(seconds * self.sample_rate)), self.spec.steps_per_bar
        chunks, done = [], 0
        for step, group in itertools.groupby(note_events(track.roll, bar, self.spec), key=lambda e: e[0]):
            at = int(round(step / spb * length))
            if at > done:
                chunks.append(self._samples(at - done))
                done = at
            for _, on, voice, pitch in group:
                if on:
                    self.synth.noteon(self._channel(voice), pitch, VELOCITY)
                else:
                    self.synth.noteoff(self._channel(voice), pitch)
        chunks.append(self._samples(length - done))
        return np.concatenate(chunks)

    def close(self) -> None:
        if self.synth is not None:
            self.synth.delete()
            self.synth = None


def bar_audio(track: Soundtrack, bar: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Bar ``bar`` of ``track`` as exactly round(its seconds * sample_rate) int16 samples, on its own.

    Rendered together with the bar before it, so that a note held across the bar line goes on
    sounding and the previous bar's releases ring into this one; the samples before this bar's
    start are dropped. Bars played one after another therefore join up; every bar has the same
    gain (``GAIN``), so loudness does not jump at bar lines.
    """
    first = max(0, bar - 1)
    context = track.excerpt(first, bar + 1)  # (the bar before, this bar)
    starts = bar_start_seconds(context.tempos, track.spec.beats_per_bar)
    length = int(round((starts[-1] - starts[-2]) * sample_rate))
    begin = int(round(starts[-2] * sample_rate))
    out = np.zeros(length, dtype=np.float64)
    midi = context.to_midi()
    if any(instrument.notes for instrument in midi.instruments):
        samples = audio.synthesize(midi, sample_rate)[begin:begin + length]
        out[:samples.size] = samples
    return (np.clip(out * GAIN, -1.0, 1.0) * 32767).astype(np.int16)


@dataclass
class StateChange:
    """One request for a new state, as the kernel saw it."""

    state: str
    at: float  # time.perf_counter() when it arrived
    sent_before: int  # bars already sent to the browser then (they play out unchanged)
    first_bar: int | None = None  # the first bar sent that was generated for the new state
    generation_seconds: float = 0.0  # wall time of the transition window


@dataclass
class LiveSoundtrack:
    """The kernel side: the engine kept ahead of the browser by a background thread.

    deliver(message: dict, buffers: list[bytes]): how a bar reaches the front end (the widget's
    ``send``, or ``SimulatedBrowser``). Messages from it go to ``receive``: {"type": "state",
    "state": s}, {"type": "need", "index": n}, {"type": "ping"}, {"type": "stop"}.
    """

    engine: SoundtrackEngine
    deliver: Callable
    sample_rate: int = SAMPLE_RATE
    idle_seconds: float = IDLE_SECONDS
    on_status: Callable = lambda text: None
    sent: int = 0  # bars delivered so far (bar indices 0 .. sent - 1)
    made_for: dict = field(default_factory=dict)  # bar -> the state whose labels generated it
    changes: list = field(default_factory=list)  # StateChange records, in order
    error: BaseException | None = None

    def __post_init__(self):
        self._wanted: str | None = None  # the state the game asks for
        self._current: str | None = None  # the state the engine last generated for
        self._need = -1  # the highest bar index the browser asked for
        self._heard = time.monotonic()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: BarStream | None = None

    # ---- messages from the front end (the kernel's main thread)
    def receive(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "stop":
            self.stop()
            return
        with self._wake:
            self._heard = time.monotonic()
            if kind == "state":
                state = message.get("state")
                if state not in self.engine.states:
                    self.on_status(f"unknown state {state!r}; known: {', '.join(self.engine.states)}")
                    return
                if state != self._wanted:
                    self._wanted = state
                    self.changes.append(StateChange(state, time.perf_counter(), self.sent))
            elif kind == "need":
                self._need = max(self._need, int(message.get("index", -1)))
            self._wake.notify()
        if kind in ("state", "need") and not self.running:
            self.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the generator thread (a fresh soundtrack if the last one was stopped)."""
        if self.running:
            return
        self._stop.clear()
        self._heard = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="live-soundtrack", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        """Stop the generator; the next "state" or "need" starts the soundtrack from the beginning."""
        self._stop.set()
        with self._wake:
            self._wake.notify()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self.engine.reset()
        self.sent, self._need, self._current, self._wanted = 0, -1, None, None
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self.made_for.clear()

    # ---- the generator thread
    def _advance(self, state: str) -> None:
        window = self.engine.advance(state)
        for bar in range(window.first_bar, self.engine.bars):
            self.made_for[bar] = state
        self._current = state

    def _send(self, bar: int) -> None:
        track = self.engine.soundtrack()
        if self._stream is None:
            self._stream = BarStream(self.engine.spec, self.sample_rate)
        samples = self._stream.bar(track, bar)
        state = self.made_for[bar]
        change = next((c for c in reversed(self.changes) if c.state == state), None)
        if change is not None and change.first_bar is None and bar >= change.sent_before:
            change.first_bar = bar
        self.deliver({"type": "bar", "index": bar, "state": state, "transition": bool(track.transition[bar]),
                      "tempo": float(track.tempos[bar]), "samples": int(samples.size),
                      "sample_rate": self.sample_rate}, [samples.tobytes()])
        self.sent = bar + 1

    def _step(self) -> bool:
        """Do the most urgent piece of work; False when there is none."""
        final = self.engine.bars - self.engine.transition_bars  # bars that can no longer change
        with self._wake:
            wanted, need = self._wanted, self._need
        if wanted is None:
            return False
        if wanted != self._current:  # a state change: keep what was sent and what advance regenerates
            change = self.changes[-1] if self.changes else None
            # (the engine's own truncation: bars made ahead and never sent are forgotten)
            self.engine._truncate(min(self.engine.bars, self.sent + self.engine.transition_bars))
            began = time.perf_counter()
            self._advance(wanted)
            seconds = time.perf_counter() - began
            if change is not None and change.state == wanted:
                change.generation_seconds = seconds
            what = "the transition into " if self.sent else ""
            self.on_status(f"{what}{wanted} generated in {seconds:.2f} s; it plays from bar {self.sent + 1}")
            return True
        if need >= self.sent:  # the browser waits for bar `sent`
            if self.sent < final:
                self._send(self.sent)
            else:
                self._advance(wanted)
            return True
        if final <= self.sent:  # keep one final bar ready
            self._advance(wanted)
            return True
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._step():
                    continue
                with self._wake:
                    if time.monotonic() - self._heard > self.idle_seconds:
                        self.on_status("the page stopped answering: the generator stopped")
                        return
                    self._wake.wait(timeout=0.05)
        except BaseException as err:  # noqa: BLE001: a thread has no cell to raise into; shown and kept
            self.error = err
            self.on_status(f"the generator failed: {type(err).__name__}: {err}")


class LivePlayer(anywidget.AnyWidget):
    """``live_player(engine, start="exploration")``: a button per game state, pause and stop.

    The first press starts the music; each later press changes the state from the next bar line.
    ``soundtrack`` is the kernel side (``LiveSoundtrack``: what was sent, the state changes);
    ``close()`` stops the generator.
    """

    title = traitlets.Unicode("").tag(sync=True)
    states = traitlets.List(traitlets.Unicode()).tag(sync=True)
    state = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    sample_rate = traitlets.Int(SAMPLE_RATE).tag(sync=True)
    lead = traitlets.Float(LEAD_SECONDS).tag(sync=True)

    def __init__(self, engine: SoundtrackEngine, *, start: str | None = None, title: str | None = None,
                 lead: float = LEAD_SECONDS, sample_rate: int = SAMPLE_RATE):
        if not isinstance(engine, SoundtrackEngine):
            raise TypeError(f"expected a soundtrack.SoundtrackEngine, got {type(engine).__name__}")
        start = start or next(iter(engine.states))
        if start not in engine.states:
            raise ValueError(f"unknown start state {start!r}; known states: {', '.join(engine.states)}")
        if not 0.05 <= lead <= 10:
            raise ValueError(f"lead is the seconds of music scheduled ahead, 0.05 .. 10; got {lead}")
        super().__init__(title=title or "Live adaptive soundtrack: press a game state",
                         states=list(engine.states), state=start, lead=float(lead), sample_rate=sample_rate,
                         status="press a game state to start the music")
        self.soundtrack = LiveSoundtrack(engine, self._deliver, sample_rate, on_status=self._say)
        self.on_msg(self._on_message)

    def _deliver(self, message: dict, buffers: list) -> None:
        self.send(message, buffers)

    def _say(self, text: str) -> None:
        self.status = text

    def _on_message(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict):
            if content.get("type") == "state":
                self.state = content.get("state", self.state)
            self.soundtrack.receive(content)

    def close(self) -> None:
        if getattr(self, "soundtrack", None) is not None:  # (not there if __init__ refused its arguments)
            self.soundtrack.stop()
        super().close()

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if "google.colab" in sys.modules or bundle is None:  # Colab always renders widgets
            return bundle
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, None)
        data = {**data, "text/html": f'<p class="live-soundtrack-fallback"><em>{html.escape(FALLBACK)}</em></p>'}
        return (data, metadata) if metadata is not None else data


live_player = LivePlayer


# --------------------------------------------------------------------------- the browser's part, in Python

class SimulatedBrowser:
    """What ``LIVE_PLAYER_JS`` does, on a clock of its own, for tests and the benchmark: asks for the
    next bar when less than ``lead`` seconds are scheduled, schedules each bar where the previous one
    ends, logs bars, clicks and underruns (a bar that arrived after its start time had passed).

    Runs in real time (``clock``: time.perf_counter) against a ``LiveSoundtrack`` thread.
    """

    def __init__(self, lead: float = LEAD_SECONDS, clock: Callable = time.perf_counter):
        self.lead, self.clock = lead, clock
        self.bars: list[dict] = []
        self.clicks: list[dict] = []
        self.underruns = 0
        self.next_start: float | None = None
        self.asked = -1
        self._lock = threading.Lock()
        self.live: LiveSoundtrack | None = None

    def connect(self, engine: SoundtrackEngine, **kwargs) -> LiveSoundtrack:
        self.live = LiveSoundtrack(engine, self.deliver, **kwargs)
        return self.live

    def deliver(self, message: dict, buffers: list) -> None:  # called from the generator thread
        with self._lock:
            now = self.clock()
            duration = message["samples"] / message["sample_rate"]
            underrun = self.next_start is not None and self.next_start < now
            if self.next_start is None or underrun:
                self.underruns += underrun
                self.next_start = now + 0.05
            self.bars.append({**message, "start": self.next_start, "duration": duration, "arrived": now,
                              "underrun": underrun})
            self.next_start += duration

    def click(self, state: str) -> None:
        self.clicks.append({"state": state, "at": self.clock()})
        self.live.receive({"type": "state", "state": state})

    def tick(self) -> None:
        """One pass of the browser's timer: ask for the next bar when the scheduled music runs low."""
        with self._lock:
            index = len(self.bars)
            low = self.next_start is None or self.next_start - self.clock() < self.lead
        if low and self.asked < index:
            self.asked = index
            self.live.receive({"type": "need", "index": index})
        self.live.receive({"type": "ping"})

    def play(self, seconds: float, clicks: dict | None = None, interval: float = 0.025) -> None:
        """Run for ``seconds`` of wall time; ``clicks`` {seconds after start: state} are pressed then."""
        began, pending = self.clock(), sorted((clicks or {}).items())
        while self.clock() - began < seconds:
            while pending and self.clock() - began >= pending[0][0]:
                self.click(pending.pop(0)[1])
            self.tick()
            if self.live.error is not None:
                raise RuntimeError("the generator thread failed") from self.live.error
            time.sleep(interval)

    def latencies(self) -> list[float]:
        """Seconds from each click (but the first, which starts the music) to the start of the first
        bar generated for its state."""
        out = []
        for click in self.clicks[1:]:
            heard = next((b["start"] for b in self.bars if b["state"] == click["state"] and
                          b["start"] >= click["at"]), None)
            out.append(float("nan") if heard is None else heard - click["at"])
        return out


LIVE_PLAYER_JS = r"""
// The browser's part of course_lib.live_player: Web Audio scheduling, bar after bar.
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "live-soundtrack";
  root.innerHTML = `<h4 style="margin: 0.2em 0"></h4><div class="ls-buttons"></div>
    <div class="ls-status" style="font-size: 0.9em; margin-top: 0.3em"></div>
    <div class="ls-counter" style="font-size: 0.85em; color: #555"></div>`;
  el.appendChild(root);
  root.querySelector("h4").textContent = model.get("title");
  const buttons = root.querySelector(".ls-buttons");
  const statusLine = root.querySelector(".ls-status");
  const counter = root.querySelector(".ls-counter");
  const log = { bars: [], clicks: [], underruns: 0, stopped: 0 };
  (window.liveSoundtracks = window.liveSoundtracks || []).push(log);
  root.liveSoundtrack = log;
  let ctx = null, gain = null, nextStart = null, nextIndex = 0, asked = -1, playing = false, paused = false;
  let sources = [];

  function button(text, onClick, cls) {
    const b = document.createElement("button");
    b.textContent = text;
    b.className = "jupyter-button " + cls;
    b.style.marginRight = "0.3em";
    b.addEventListener("click", onClick);
    buttons.appendChild(b);
    return b;
  }
  function ensureContext() {
    if (ctx === null) {
      ctx = new AudioContext({ sampleRate: model.get("sample_rate") });
      gain = ctx.createGain();
      gain.connect(ctx.destination);
    }
    if (ctx.state === "suspended" && !paused) ctx.resume();
  }
  function playingBar() {  // the index of the bar sounding now, or -1
    if (ctx === null) return -1;
    const now = ctx.currentTime;
    const bar = log.bars.find((b) => b.start <= now && now < b.start + b.duration);
    return bar ? bar.index : -1;
  }
  function press(state) {
    ensureContext();
    log.clicks.push({ state, at: ctx.currentTime, playingBar: playingBar(), scheduled: nextIndex });
    model.send({ type: "state", state });
    mark(state);
    if (!playing) { playing = true; paused = false; ask(); }
    show();
  }
  const stateButtons = model.get("states").map((state) => button(state, () => press(state), "ls-state"));
  function mark(state) {  // the state asked for last is underlined
    stateButtons.forEach((b) => { b.style.textDecoration = b.textContent === state ? "underline" : "none"; });
  }
  mark(model.get("state"));
  const pauseButton = button("pause", () => {
    if (!playing || ctx === null) return;
    paused = !paused;
    if (paused) ctx.suspend(); else ctx.resume();
    pauseButton.textContent = paused ? "resume" : "pause";
    show();
  }, "ls-pause");
  button("stop", () => {
    for (const s of sources) { try { s.stop(); } catch (e) {} }
    sources = []; nextStart = null; nextIndex = 0; asked = -1; playing = false; paused = false;
    pauseButton.textContent = "pause";
    log.stopped += 1;
    model.send({ type: "stop" });
    show();
  }, "ls-stop");

  function ask() {
    if (!playing || paused || ctx === null || asked >= nextIndex) return;
    if (nextStart === null || nextStart - ctx.currentTime < model.get("lead")) {
      asked = nextIndex;
      model.send({ type: "need", index: nextIndex });
    }
  }
  function schedule(msg, view) {
    if (!playing || msg.index !== nextIndex) return;  // a bar from before a stop
    const pcm = new Int16Array(view.buffer, view.byteOffset, Math.floor(view.byteLength / 2));
    const buffer = ctx.createBuffer(1, pcm.length, msg.sample_rate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) channel[i] = pcm[i] / 32768;
    const now = ctx.currentTime;
    const underrun = nextStart !== null && nextStart < now;
    if (nextStart === null || underrun) {
      if (underrun) log.underruns += 1;
      nextStart = now + 0.05;
    }
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(gain);
    source.start(nextStart);  // exactly where the previous bar ends
    source.onended = () => { sources = sources.filter((s) => s !== source); };
    sources.push(source);
    const duration = pcm.length / msg.sample_rate;
    log.bars.push({ index: msg.index, state: msg.state, transition: msg.transition, tempo: msg.tempo,
                    start: nextStart, duration, arrived: now, underrun });
    nextStart += duration;
    nextIndex += 1;
    show();
    ask();
  }
  function show() {
    const last = log.bars[log.bars.length - 1];
    const music = log.bars.reduce((sum, b) => sum + b.duration, 0);
    counter.textContent = `bars scheduled: ${log.bars.length} (${music.toFixed(1)} s of music); ` +
      `underruns: ${log.underruns}` + (last ? `; last: bar ${last.index + 1}, ${last.state}` +
      `${last.transition ? " (transition)" : ""}, ${Math.round(last.tempo)} BPM` : "") +
      (paused ? "; paused" : playing ? "" : "; stopped");
  }
  const onMessage = (msg, buffers) => { if (msg && msg.type === "bar") schedule(msg, buffers[0]); };
  model.on("msg:custom", onMessage);
  const onStatus = () => { statusLine.textContent = model.get("status"); };
  model.on("change:status", onStatus);
  onStatus();
  show();
  const timer = setInterval(ask, 25);
  const ping = setInterval(() => model.send({ type: "ping" }), 1000);
  return () => {  // the view goes away (cell cleared, notebook closed): stop the sound and the pings
    clearInterval(timer); clearInterval(ping);
    model.off("msg:custom", onMessage); model.off("change:status", onStatus);
    if (ctx !== null) ctx.close();
  };
}
export default { render };
"""
LivePlayer._esm = LIVE_PLAYER_JS  # anywidget sends it to the front end with the widget's state
