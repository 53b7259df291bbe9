"""Listening to music as data: piano rolls and ``PrettyMIDI`` objects -> waveforms, players, WAV files.

Everything here starts from the same path: a roll (with its ``RollSpec`` and a tempo) is turned
into a ``pretty_midi.PrettyMIDI`` by ``music.roll_to_midi`` (one General MIDI instrument per
track), and the MIDI is rendered to a mono float32 waveform by one of two *backends*:

- ``"fluidsynth"``: the FluidSynth synthesizer playing a General MIDI soundfont (real recorded
  instrument samples), used when ``pyfluidsynth`` imports and finds the FluidSynth library.
  The soundfont is, in this order: the ``soundfont=`` argument, the ``COURSE_SOUNDFONT``
  environment variable, Debian's ``/usr/share/sounds/sf2/FluidR3_GM.sf2`` or ``default-GM.sf2``,
  or the small ``TimGM6mb.sf2`` that ships inside pretty_midi.
- ``"builtin"``: a small additive synthesizer in NumPy (below), so every notebook can be heard
  without system packages: each note is a few harmonics (a timbre per GM instrument family)
  shaped by an ADSR envelope with a short release, so notes neither click nor beep.

``backend="auto"`` (the default) takes FluidSynth when it is there; ``backend_info()`` says
which backend is used and why. Every render is peak-normalised to ``PEAK`` so quiet and busy
rolls (a roll decoded from pure noise has thousands of notes) play at the same loudness.

Length: a roll of S steps at tempo BPM lasts ``S / steps_per_beat * 60 / tempo`` seconds,
including any silent steps at its end; a ``PrettyMIDI`` lasts until its last event. Every
render is that long plus ``TAIL_SECONDS`` so the last notes can ring out. Music without
notes renders to silence of that length (not an error): during denoising a roll may
decode to nothing, and the player should still show up.

Setup (Colab or Debian/Ubuntu) for the better-sounding backend::

    !apt-get install -y fluidsynth fluid-soundfont-gm   # library + FluidR3 General MIDI soundfont
    !pip install pyfluidsynth                            # Python bindings
"""
from __future__ import annotations

import functools
import html
import os
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import IPython.display
import numpy as np
import pretty_midi

from . import music

DEFAULT_TEMPO = 90.0  # BPM for rolls, whose steps carry no tempo of their own
TAIL_SECONDS = 0.5  # silence appended after the music, where the last notes ring out
PEAK = 0.9  # every render is scaled so its largest sample is +-PEAK (about -1 dBFS)
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 96_000
SOUNDFONT_ENV = "COURSE_SOUNDFONT"
SYSTEM_SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
INSTALL_HINT = ("for General MIDI instruments install FluidSynth: `apt-get install -y fluidsynth "
                "fluid-soundfont-gm` and `pip install pyfluidsynth`, then restart the kernel")


# --------------------------------------------------------------------------- choosing a backend

@dataclass(frozen=True)
class BackendInfo:
    """Which backend ``render`` will use, why, and with which soundfont (FluidSynth only)."""

    name: str  # "fluidsynth" or "builtin"
    reason: str
    soundfont: str | None = None

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def _import_fluidsynth():
    """The ``fluidsynth`` module of pyfluidsynth, or the reason it cannot be used."""
    try:
        import fluidsynth  # raises ImportError when the shared library libfluidsynth is missing
    except (ImportError, OSError) as err:
        return None, f"pyfluidsynth cannot be used ({type(err).__name__}: {err})"
    if not hasattr(fluidsynth, "Synth"):  # another package called "fluidsynth"
        return None, f"the module 'fluidsynth' at {fluidsynth.__file__} is not pyfluidsynth"
    return fluidsynth, ""


def _find_soundfont(soundfont=None) -> tuple[str, str]:
    """(path, where it came from) of the General MIDI soundfont to use; raises if none exists."""
    if soundfont is not None:
        path = os.fspath(soundfont)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"soundfont {path!r} does not exist. Give the path of a .sf2 file, "
                                    "or leave soundfont=None to use the default one.")
        return path, "given as soundfont="
    if os.environ.get(SOUNDFONT_ENV):
        path = os.environ[SOUNDFONT_ENV]
        if not os.path.isfile(path):
            raise FileNotFoundError(f"the environment variable {SOUNDFONT_ENV}={path!r} names no file. "
                                    f"Fix the path or unset {SOUNDFONT_ENV}.")
        return path, f"from ${SOUNDFONT_ENV}"
    for path in SYSTEM_SOUNDFONTS:
        if os.path.isfile(path):
            return os.path.realpath(path), f"the system's {os.path.basename(path)}"
    path = os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")
    if os.path.isfile(path):
        return path, "the small TimGM6mb.sf2 bundled with pretty_midi"
    raise FileNotFoundError("no General MIDI soundfont found; " + INSTALL_HINT)


def backend_info(backend: str = "auto", soundfont=None) -> BackendInfo:
    """Which backend ``render(..., backend=backend)`` uses, and why (a line for READMEs/notebooks).

    Raises ``RuntimeError`` if ``backend="fluidsynth"`` is asked for and cannot be used.
    """
    if backend not in ("auto", "fluidsynth", "builtin"):
        raise ValueError(f"backend must be 'auto', 'fluidsynth' or 'builtin', not {backend!r}")
    if backend == "builtin":
        return BackendInfo("builtin", "the built-in NumPy synthesizer was asked for (backend='builtin')")
    module, problem = _import_fluidsynth()
    if module is None:
        if backend == "fluidsynth":
            raise RuntimeError(f"backend='fluidsynth' was asked for but {problem}; {INSTALL_HINT}. "
                               "Or use backend='builtin'.")
        return BackendInfo("builtin", f"{problem}, so the built-in NumPy synthesizer plays; {INSTALL_HINT}")
    path, origin = _find_soundfont(soundfont)
    return BackendInfo("fluidsynth", f"FluidSynth with the soundfont {os.path.basename(path)} ({origin})", path)


# --------------------------------------------------------------------------- input checking

def _as_array(x) -> np.ndarray:
    """NumPy view of a roll given as an array or a (CPU or GPU, maybe grad-tracking) tensor."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_roll(roll: np.ndarray, spec: music.RollSpec) -> None:
    expected = f"(tracks={spec.n_tracks}, 2, pitches={spec.n_pitches}, steps)"
    if roll.ndim != 4:
        hint = (" For a batch, pick one roll (rolls[0]); for a model tensor, decode it first "
                "(enc.decode(x)).") if roll.ndim in (3, 5) else ""
        raise ValueError(f"a roll has 4 axes {expected}, this array has shape {roll.shape}.{hint}")
    if roll.shape[:3] != (spec.n_tracks, 2, spec.n_pitches):
        raise ValueError(f"roll shape {roll.shape} does not match the RollSpec, which expects {expected} "
                         f"for tracks {spec.tracks}. Pass the spec the roll was made with "
                         "(e.g. spec=music.MELODY for a one-track roll).")
    if roll.dtype != bool and not np.all(np.isfinite(roll)):
        raise ValueError("the roll contains NaN or infinite values; a sampler probably diverged. "
                         "Check the model output before rendering.")


def _check_tempo(tempo: float) -> float:
    if not music.MIN_TEMPO <= tempo <= music.MAX_TEMPO:
        raise ValueError(f"tempo {tempo} BPM is outside {music.MIN_TEMPO:.0f}..{music.MAX_TEMPO:.0f} BPM")
    return float(tempo)


def _check_sample_rate(sample_rate: int) -> int:
    if int(sample_rate) != sample_rate or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"sample_rate must be a whole number of Hz in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}, "
                         f"got {sample_rate} (22050 is plenty for these rolls)")
    return int(sample_rate)


def _to_midi(piece, spec, tempo) -> tuple[pretty_midi.PrettyMIDI, float]:
    """(PrettyMIDI, duration in seconds) for a roll or a PrettyMIDI."""
    if isinstance(piece, pretty_midi.PrettyMIDI):
        _, tempi = piece.get_tempo_changes()
        if tempo is not None and not np.allclose(tempi, tempo, rtol=1e-3):  # ours can't change it
            raise ValueError(f"this PrettyMIDI plays at its own tempo ({', '.join(f'{t:g}' for t in tempi)} "
                             f"BPM), not {tempo:g}; leave tempo=None, or convert it with "
                             "music.midi_to_roll and render the roll at the tempo you want")
        return piece, float(piece.get_end_time())
    roll = _as_array(piece)
    spec = spec or music.CHORALE
    _check_roll(roll, spec)
    tempo = _check_tempo(DEFAULT_TEMPO if tempo is None else tempo)
    duration = roll.shape[-1] / spec.steps_per_beat * 60.0 / tempo
    return music.roll_to_midi(roll, spec, tempo=tempo), duration


# --------------------------------------------------------------------------- the built-in synthesizer

@dataclass(frozen=True)
class Timbre:
    """A note's recipe: partial amplitudes (fundamental first) and an ADSR envelope (seconds)."""

    harmonics: tuple[float, ...]
    attack: float
    decay: float
    sustain: float  # level after the decay, 0..1, held until the note ends
    release: float  # fade to silence after the note ends (no click)
    vibrato: float = 0.0  # depth of a 5.5 Hz pitch wobble, as a fraction of the frequency


# Keyed by General MIDI family (program // 8). Bowed strings are bright (partials ~1/k, like a
# sawtooth) and swell in; a flute is almost a sine with a breathy 2nd partial; a piano strikes
# and decays. Families not listed play the piano timbre.
TIMBRES = {
    0: Timbre((1.0, 0.45, 0.25, 0.12, 0.08, 0.04), attack=0.005, decay=0.8, sustain=0.2, release=0.12),
    4: Timbre((1.0, 0.7, 0.35, 0.2, 0.1), attack=0.01, decay=0.3, sustain=0.6, release=0.1),  # bass
    5: Timbre((1.0, 0.5, 0.33, 0.25, 0.2, 0.16, 0.12), 0.05, 0.15, 0.8, 0.15, vibrato=0.003),  # strings
    6: Timbre((1.0, 0.5, 0.33, 0.25, 0.2, 0.16, 0.12), 0.08, 0.15, 0.8, 0.2, vibrato=0.002),  # ensemble
    9: Timbre((1.0, 0.3, 0.12, 0.05), 0.04, 0.1, 0.9, 0.1, vibrato=0.002),  # pipe: flute, recorder
}
TABLE_SIZE = 2048  # samples in one period of a wavetable
VIBRATO_HZ = 5.5


@functools.lru_cache(maxsize=64)
def _wavetable(harmonics: tuple[float, ...]) -> np.ndarray:
    """One period of sum_k a_k sin(2 pi k x), with a wrap-around sample for interpolation."""
    x = np.arange(TABLE_SIZE + 1) / TABLE_SIZE
    table = sum(a * np.sin(2 * np.pi * (k + 1) * x) for k, a in enumerate(harmonics))
    return table / np.abs(table).max()


def _envelope(n_on: int, n_release: int, timbre: Timbre, sample_rate: int) -> np.ndarray:
    """ADSR envelope over n_on sounding samples, then a release to 0 over n_release samples."""
    a = max(1, int(timbre.attack * sample_rate))
    d = max(1, int(timbre.decay * sample_rate))
    held = np.interp(np.arange(n_on), [0, a, a + d], [0.0, 1.0, timbre.sustain])  # stays at sustain
    level = held[-1] if n_on else 0.0  # a short note is released before reaching sustain
    release = level * (1.0 - np.arange(n_release) / n_release) ** 2
    return np.concatenate([held, release])


def _note_waveform(pitch: int, n_on: int, timbre: Timbre, sample_rate: int) -> np.ndarray:
    """One note at full velocity: n_on sounding samples plus the release, starting at phase 0."""
    freq = pretty_midi.note_number_to_hz(pitch)
    n_release = max(1, int(timbre.release * sample_rate))
    partials = min(len(timbre.harmonics), int(0.9 * sample_rate / 2 / freq))  # none above Nyquist
    if partials == 0:
        return np.zeros(n_on + n_release)
    table = _wavetable(timbre.harmonics[:partials])
    t = np.arange(n_on + n_release) / sample_rate  # seconds since the onset
    # Instantaneous frequency f (1 + v sin(2 pi r t)) integrates to these cycles (phase / 2 pi):
    cycles = freq * t + freq * timbre.vibrato / (2 * np.pi * VIBRATO_HZ) * (1 - np.cos(2 * np.pi * VIBRATO_HZ * t))
    phase = (cycles * TABLE_SIZE) % TABLE_SIZE  # position in the wavetable
    i = phase.astype(np.int64)
    tone = table[i] + (phase - i) * (table[i + 1] - table[i])  # linear interpolation
    return tone * _envelope(n_on, n_release, timbre, sample_rate)


def _render_builtin(midi: pretty_midi.PrettyMIDI, sample_rate: int) -> np.ndarray:
    """Additive synthesis of every pitched note of ``midi`` (drums and pitch bends are skipped)."""
    out = np.zeros(int(np.ceil((midi.get_end_time() + 1.0) * sample_rate)))
    for instrument in midi.instruments:
        if instrument.is_drum:
            continue
        timbre = TIMBRES.get(instrument.program // 8, TIMBRES[0])
        # Notes on a grid repeat (pitch, length) pairs: a roll decoded from noise has thousands
        # of notes but a few hundred distinct ones, so each is synthesized once and reused.
        waveforms = {}
        for note in instrument.notes:
            start = int(round(note.start * sample_rate))
            n_on = max(1, int(round(note.end * sample_rate)) - start)
            key = (note.pitch, n_on)
            if key not in waveforms:
                waveforms[key] = _note_waveform(note.pitch, n_on, timbre, sample_rate)
            tone = waveforms[key]
            gain = (note.velocity / 127) ** 1.5  # louder velocities sound disproportionately louder
            out[start:start + tone.size] += gain * tone
    return out


# --------------------------------------------------------------------------- FluidSynth

@functools.lru_cache(maxsize=4)
def _fluidsynth_synth(soundfont: str, sample_rate: int):
    """A FluidSynth instance with the soundfont loaded; cached, as a soundfont is 6-150 MB to parse."""
    fluidsynth, problem = _import_fluidsynth()
    if fluidsynth is None:
        raise RuntimeError(problem)
    synth = fluidsynth.Synth(samplerate=float(sample_rate))
    sfid = synth.sfload(soundfont)
    if sfid < 0:
        synth.delete()
        raise RuntimeError(f"FluidSynth could not load the soundfont {soundfont!r}: is it a .sf2 file? "
                           f"Give another with soundfont= or ${SOUNDFONT_ENV}.")
    return synth, sfid


def _render_fluidsynth(midi: pretty_midi.PrettyMIDI, sample_rate: int, soundfont: str) -> np.ndarray:
    synth, sfid = _fluidsynth_synth(soundfont, sample_rate)
    synth.system_reset()  # no notes or controller settings left over from the previous render
    # normalize=False: we normalise ourselves, and pretty_midi's version divides by 0 on silence.
    return midi.fluidsynth(fs=sample_rate, synthesizer=synth, sfid=sfid, normalize=False)


# --------------------------------------------------------------------------- public API

def _finish(samples: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    """Exactly ``length`` samples, faded out over the last 10 ms, peak-normalised to PEAK."""
    out = np.zeros(length, dtype=np.float64)
    n = min(length, samples.size)
    out[:n] = samples[:n]
    fade = min(length, int(0.01 * sample_rate))
    out[length - fade:] *= np.linspace(1.0, 0.0, fade)
    peak = np.abs(out).max(initial=0.0)
    if peak > 0:
        out *= PEAK / peak
    return out.astype(np.float32)


def render(piece, spec: music.RollSpec | None = None, *, tempo: float | None = None,
           sample_rate: int = 22050, backend: str = "auto", soundfont=None) -> np.ndarray:
    """Roll or ``PrettyMIDI`` -> mono float32 waveform in [-PEAK, PEAK].

    piece:  a roll (tracks, 2, pitches, steps), bool or float (thresholded at 0.5; NumPy or
            torch), read with ``spec`` (default ``music.CHORALE``) at ``tempo`` BPM (default 90);
            or a ``pretty_midi.PrettyMIDI``, which plays at its own tempo (tempo=None, or
            the file's tempo; spec is not used).
    Returns shape (round((duration + TAIL_SECONDS) * sample_rate),); silence if there are no notes.
    """
    sample_rate = _check_sample_rate(sample_rate)
    midi, duration = _to_midi(piece, spec, tempo)
    backend_info(backend, soundfont)  # a bad backend or soundfont is an error even for silence
    length = int(round((duration + TAIL_SECONDS) * sample_rate))
    if not any(inst.notes for inst in midi.instruments):
        return np.zeros(length, dtype=np.float32)
    return _finish(synthesize(midi, sample_rate, backend, soundfont), length, sample_rate)


def synthesize(midi: pretty_midi.PrettyMIDI, sample_rate: int = 22050, backend: str = "auto",
               soundfont=None) -> np.ndarray:
    """The raw waveform of ``midi``: no normalisation, no fixed length (its notes' releases included).
    What ``render`` finishes; pieces played one after another (the live soundtrack's bars) use it
    so that every piece keeps the same loudness scale."""
    if not isinstance(midi, pretty_midi.PrettyMIDI):
        raise ValueError(f"synthesize takes a pretty_midi.PrettyMIDI, got {type(midi).__name__}; for a file use "
                         "music.load_midi(path) first, for a roll audio.render(roll, spec)")
    info = backend_info(backend, soundfont)
    if info.name == "fluidsynth":
        return _render_fluidsynth(midi, _check_sample_rate(sample_rate), info.soundfont)
    return _render_builtin(midi, _check_sample_rate(sample_rate))


def _waveform_and_caption(piece, spec, tempo, sample_rate, backend, soundfont) -> tuple[np.ndarray, str]:
    """Render ``piece`` (or take it as-is if it is a 1-D waveform) and describe it in words."""
    sample_rate = _check_sample_rate(sample_rate)
    array = None if isinstance(piece, pretty_midi.PrettyMIDI) else _as_array(piece)
    if array is not None and array.ndim == 1:  # already a waveform
        if not np.all(np.isfinite(array)) or np.abs(array).max(initial=0.0) > 1.0:
            raise ValueError("a waveform must be finite with samples in [-1, 1]; render() output is")
        seconds = array.size / sample_rate
        return array.astype(np.float32), f"audio, {seconds:.1f} s"
    waveform = render(piece, spec, tempo=tempo, sample_rate=sample_rate, backend=backend, soundfont=soundfont)
    seconds = waveform.size / sample_rate - TAIL_SECONDS
    player = backend_info(backend, soundfont).name
    if array is None:
        names = [inst.name or pretty_midi.program_to_instrument_name(inst.program) for inst in piece.instruments]
        what = f"MIDI with {len(names)} instrument(s) ({', '.join(names)})"
    else:
        spec = spec or music.CHORALE
        bars = array.shape[-1] / spec.steps_per_bar
        what = (f"{bars:g} bar(s) of {', '.join(spec.tracks)} "
                f"at {DEFAULT_TEMPO if tempo is None else tempo:g} BPM")
    return waveform, f"{what}, {seconds:.1f} s, {player} backend"


class CaptionedAudio(IPython.display.Audio):
    """An ``IPython.display.Audio`` player shown under a visible caption saying what plays.

    Display it as the last line of a cell, with ``display(...)``, or inside an
    ``ipywidgets.Output``. ``.caption`` is the text; ``.waveform`` and ``.rate`` the samples.
    """

    def __init__(self, waveform: np.ndarray, rate: int, caption: str):
        super().__init__(data=waveform, rate=rate, normalize=False)
        self.waveform, self.rate, self.caption = waveform, rate, caption

    def _repr_html_(self) -> str:
        label = html.escape(self.caption, quote=True)
        player = super()._repr_html_().replace("<audio ", f'<audio aria-label="{label}" ', 1)
        return (f'<figure style="margin: 0.4em 0"><figcaption style="font-size: 0.9em">'
                f'<span aria-hidden="true">&#9835;</span> {label}</figcaption>{player}</figure>')

    def __repr__(self) -> str:
        return f"<CaptionedAudio: {self.caption}>"


def to_audio(piece, spec: music.RollSpec | None = None, *, tempo: float | None = None,
             caption: str | None = None, sample_rate: int = 22050, backend: str = "auto",
             soundfont=None) -> CaptionedAudio:
    """A notebook audio player for a roll, a ``PrettyMIDI`` or a 1-D waveform (see ``render``).

    Every player carries a visible caption: ``caption`` (e.g. "Generated chorale, seed 0")
    followed by a description of the music (tracks, bars, tempo, duration, backend).
    """
    waveform, description = _waveform_and_caption(piece, spec, tempo, sample_rate, backend, soundfont)
    text = f"{caption} ({description})" if caption else description[0].upper() + description[1:]
    return CaptionedAudio(waveform, _check_sample_rate(sample_rate), text)


def write_wav(path, piece, spec: music.RollSpec | None = None, *, tempo: float | None = None,
              sample_rate: int = 22050, backend: str = "auto", soundfont=None) -> Path:
    """Write a roll, ``PrettyMIDI`` or 1-D waveform as a mono 16-bit PCM WAV file; returns the path."""
    waveform, _ = _waveform_and_caption(piece, spec, tempo, sample_rate, backend, soundfont)
    pcm = np.round(np.clip(waveform, -1.0, 1.0) * 32767).astype("<i2")  # little-endian, as WAV wants
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name for the WAV, e.g. {path / 'music.wav'}")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(_check_sample_rate(sample_rate))
        f.writeframes(pcm.tobytes())
    return path


def benchmark(seconds: float = 30.0, tempo: float = DEFAULT_TEMPO, repeats: int = 3, seed: int = 0) -> dict:
    """Best render time (s) of ``seconds`` of four-voice music, per available backend, for
    a chorale-like roll (quarter and eighth notes) and a roll decoded from noise (~50% on)."""
    if not (isinstance(seconds, (int, float)) and 0 < seconds <= 600):
        raise ValueError(f"seconds must be a number in 0 < seconds <= 600 (ten minutes of music), got {seconds!r}")
    if not (isinstance(repeats, int) and 1 <= repeats <= 100):
        raise ValueError(f"repeats must be a whole number 1..100, got {repeats!r}")
    _check_tempo(tempo)
    rng = np.random.default_rng(seed)
    spec = music.CHORALE
    bars = int(np.ceil(seconds * tempo / 60 / spec.beats_per_bar))
    steps = bars * spec.steps_per_bar
    notes = []
    for track, center in enumerate((72, 65, 58, 48)):  # a random walk per voice, 2-4 steps a note
        start, pitch = 0, center
        while start < steps:
            length = int(rng.choice([2, 4, 4, 8]))
            pitch = int(np.clip(pitch + rng.integers(-2, 3), center - 7, center + 7))
            notes.append((track, pitch, start, min(steps, start + length)))
            start += length
    rolls = {"chorale-like": music.notes_to_roll(np.array(notes), spec, steps),
             "noise": rng.random(spec.shape(bars)) > 0.5}
    names = ["builtin"] + (["fluidsynth"] if _import_fluidsynth()[0] is not None else [])
    times = {}
    for backend in names:
        render(rolls["chorale-like"][..., :16], spec, tempo=tempo, backend=backend)  # load the soundfont
        for label, roll in rolls.items():
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                render(roll, spec, tempo=tempo, backend=backend)
                runs.append(time.perf_counter() - start)
            times[(backend, label)] = min(runs)
    return times
