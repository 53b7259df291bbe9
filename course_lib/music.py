"""Music as data: MIDI files and ``pretty_midi.PrettyMIDI`` objects <-> multi-track piano rolls.

A *piano roll* here is a NumPy array of shape ``(tracks, 2, pitches, steps)``:

- ``tracks``  one slot per named voice (``RollSpec.tracks``, e.g. soprano, alto, tenor, bass);
- ``2``       channel ``ONSET`` (1 on the step where a note starts) and channel ``SUSTAIN``
              (1 on every step where the note sounds, onset included). Keeping them apart is
              what lets a repeated note survive the round trip: C4 C4 is two onsets, not one
              long C4;
- ``pitches`` MIDI pitches ``RollSpec.low`` .. ``RollSpec.high - 1`` (index 0 is the lowest);
- ``steps``   16th notes (``steps_per_beat = 4`` quarter-note beats), a whole number of bars.

Positions come from the file's own tempo map (``PrettyMIDI.time_to_tick``), so a piece at
60 BPM and the same piece at 140 BPM give the same roll. Everything that can go wrong with a
user's file raises ``MidiError`` with a sentence that says what to do; adjustments we make
(clipping notes into the pitch range, say) are reported with a ``MidiWarning``.
"""
from __future__ import annotations

import io
import math
import os
import struct
import warnings
from dataclasses import dataclass

import numpy as np
import pretty_midi

from . import inputs

ONSET, SUSTAIN = 0, 1

# General MIDI programs (0-based) for our track names: a string quartet for the chorale voices,
# so the four parts stay distinguishable by ear, and a flute for folk melodies.
GM_PROGRAMS = {"soprano": 40, "alto": 40, "tenor": 41, "bass": 42, "melody": 73}
DEFAULT_PROGRAM = 0  # Acoustic Grand Piano for any other track name

MIN_TEMPO, MAX_TEMPO = 20.0, 400.0  # beats per minute we accept from a file
MAX_SECONDS = 3600.0  # no note may end later: an hour of music is longer than any piece we model
MAX_FILE_BYTES = 16 * 2 ** 20  # 16 MiB; the largest Bach chorale file is ~10 KB
ACCEPTED_METERS = {(4, 4), (2, 2)}  # both are 16 sixteenth notes a bar


class MidiError(ValueError):
    """A MIDI file or object this course cannot use; the message says what to do."""


class MidiWarning(UserWarning):
    """An adjustment made to a user's music (e.g. notes clipped into the pitch range)."""


@dataclass(frozen=True)
class RollSpec:
    """What a roll means: track names, pitch range and time grid. Stored with every dataset."""

    tracks: tuple[str, ...] = ("soprano", "alto", "tenor", "bass")
    low: int = 36  # lowest MIDI pitch (C2), inclusive
    high: int = 84  # highest MIDI pitch, exclusive: 83 = B5
    steps_per_beat: int = 4  # 16th notes
    beats_per_bar: int = 4  # 4/4

    def __post_init__(self):
        if not self.tracks:
            raise ValueError("RollSpec needs at least one track name")
        if not 0 <= self.low < self.high <= 128:
            raise ValueError(f"pitch range must satisfy 0 <= low < high <= 128, got {self.low}..{self.high}")
        inputs.check_number(self.steps_per_beat, "RollSpec.steps_per_beat", low=1, high=96, integer=True)
        inputs.check_number(self.beats_per_bar, "RollSpec.beats_per_bar", low=1, high=32, integer=True)

    @property
    def n_tracks(self) -> int:
        return len(self.tracks)

    @property
    def n_pitches(self) -> int:
        return self.high - self.low

    @property
    def steps_per_bar(self) -> int:
        return self.steps_per_beat * self.beats_per_bar

    def shape(self, bars: int) -> tuple[int, int, int, int]:
        """Shape of a roll of ``bars`` bars: (tracks, 2, pitches, steps)."""
        return (self.n_tracks, 2, self.n_pitches, bars * self.steps_per_bar)

    def to_dict(self) -> dict:
        return {"tracks": list(self.tracks), "low": self.low, "high": self.high,
                "steps_per_beat": self.steps_per_beat, "beats_per_bar": self.beats_per_bar}

    @classmethod
    def from_dict(cls, d: dict) -> "RollSpec":
        return cls(tracks=tuple(d["tracks"]), low=int(d["low"]), high=int(d["high"]),
                   steps_per_beat=int(d["steps_per_beat"]), beats_per_bar=int(d["beats_per_bar"]))


CHORALE = RollSpec()
MELODY = RollSpec(tracks=("melody",))

_NOTE_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


def pitch_name(pitch: int) -> str:
    """MIDI pitch -> scientific pitch name, e.g. 60 -> 'C4'."""
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


# --------------------------------------------------------------------------- notes <-> roll
# A *note table* is an int array of shape (N, 4): track index, MIDI pitch, start step, end step
# (end exclusive). It is the simplest exact description of a roll, and what the metrics use.

def notes_to_roll(notes: np.ndarray, spec: RollSpec, steps: int) -> np.ndarray:
    """Note table (N, 4) -> boolean roll (tracks, 2, pitches, steps). Notes must fit."""
    roll = np.zeros((spec.n_tracks, 2, spec.n_pitches, steps), dtype=bool)
    for track, pitch, start, end in np.asarray(notes, dtype=np.int64).reshape(-1, 4):
        p = pitch - spec.low
        if not (0 <= track < spec.n_tracks and 0 <= p < spec.n_pitches and 0 <= start < end <= steps):
            raise ValueError(f"note (track={track}, pitch={pitch}, steps {start}..{end}) does not fit "
                             f"{spec.n_tracks} tracks, pitches {spec.low}..{spec.high - 1}, {steps} steps")
        roll[track, ONSET, p, start] = True
        roll[track, SUSTAIN, p, start:end] = True
    return roll


def roll_to_notes(roll: np.ndarray, spec: RollSpec | None = None, threshold: float = 0.5) -> np.ndarray:
    """Roll (tracks, 2, pitches, steps) -> note table (N, 4) sorted by start, track, pitch.

    A note starts at an onset, or where sustain switches on without one (so a roll decoded
    from a noisy model output still yields notes), and lasts while sustain stays on and no
    new onset arrives.
    """
    low = (spec or CHORALE).low
    active = np.asarray(roll) > threshold  # (T, 2, P, S)
    onset = active[:, ONSET] & active[:, SUSTAIN]  # an onset without sustain is ignored
    sustain = active[:, SUSTAIN]
    before = np.zeros_like(sustain)
    before[..., 1:] = sustain[..., :-1]
    starts = onset | (sustain & ~before)  # (T, P, S)
    rows = []
    for track, p in zip(*np.nonzero(starts.any(axis=-1))):
        start_steps = np.flatnonzero(starts[track, p])
        # A note ends at the first step after its start that is silent or starts a new note.
        stops = ~sustain[track, p] | starts[track, p]
        for s in start_steps:
            after = np.flatnonzero(stops[s + 1:])
            end = s + 1 + (after[0] if after.size else sustain.shape[-1] - s - 1)
            rows.append((track, low + p, s, end))
    table = np.array(rows, dtype=np.int64).reshape(-1, 4)
    order = np.lexsort((table[:, 1], table[:, 0], table[:, 2]))
    return table[order]


# --------------------------------------------------------------------------- loading MIDI

def load_midi(source) -> pretty_midi.PrettyMIDI:
    """Read a MIDI file (path, bytes or file object) and check it is usable; see ``check_midi``."""
    if isinstance(source, pretty_midi.PrettyMIDI):
        midi = source
    else:
        name = "the MIDI data"
        if isinstance(source, (str, os.PathLike)):
            name = os.fspath(source)
            inputs.check_regular_file(name, "MIDI file", error=MidiError)  # a folder or FIFO named x.mid
            with open(name, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        elif isinstance(source, (bytes, bytearray)):
            data = bytes(source)
        elif callable(getattr(source, "read", None)):
            data = source.read(MAX_FILE_BYTES + 1)
        else:
            raise MidiError(f"load_midi reads a path, bytes, a binary file object or a PrettyMIDI, "
                            f"not {type(source).__name__}")
        if not isinstance(data, (bytes, bytearray)):
            raise MidiError(f"{name}: reading gave {type(data).__name__}, not bytes; open the file in binary "
                            "mode (open(path, 'rb'))")
        if len(data) == 0:
            raise MidiError(f"{name} is empty (0 bytes): the file was not written completely. "
                            "Export or download it again.")
        if len(data) > MAX_FILE_BYTES:
            raise MidiError(f"{name} is over {MAX_FILE_BYTES // 2**20} MiB: far longer than any piece this "
                            "course works with. Cut out the part you need.")
        if not data.startswith(b"MThd"):
            raise MidiError(f"{name} is not a Standard MIDI File (it does not start with 'MThd'). "
                            "If it is MusicXML, ABC or audio, convert it to .mid first "
                            "(music21: converter.parse(path).write('midi')).")
        data = _standard_chunks(bytes(data), name)
        try:
            midi = pretty_midi.PrettyMIDI(io.BytesIO(data))
        except Exception as err:  # mido/pretty_midi raise many types for broken files
            raise MidiError(f"{name} is a damaged MIDI file ({type(err).__name__}: {err}). "
                            "Re-export it from your editor; the original file was not changed.") from None
    check_midi(midi)
    return midi


def _standard_chunks(data: bytes, name: str) -> bytes:
    """Check the 'MThd' header (format 0, 1 or 2; ticks per beat) and drop chunks other than
    'MTrk' (the standard says readers skip unknown chunks; mido would refuse the file)."""
    if len(data) < 14:
        raise MidiError(f"{name} is a damaged MIDI file (the header is cut short). Re-export it.")
    header_length, file_format, _, division = struct.unpack(">IHHh", data[4:14])
    if header_length < 6:
        raise MidiError(f"{name} is a damaged MIDI file (header length {header_length} < 6). Re-export it.")
    if file_format not in (0, 1, 2):
        raise MidiError(f"{name} says it is MIDI file format {file_format}; only formats 0, 1 and 2 exist. "
                        "The file is damaged or not MIDI: re-export it.")
    if division <= 0:
        raise MidiError(f"{name} counts time in {'SMPTE frames' if division < 0 else 'zero ticks a beat'}; "
                        "this course reads files timed in ticks per beat. Re-export it from a score editor.")
    chunks, position, dropped = [data[:8 + header_length]], 8 + header_length, False
    while position + 8 <= len(data):
        length = struct.unpack(">I", data[position + 4:position + 8])[0]
        chunk = data[position:position + 8 + length]
        if chunk[:4] == b"MTrk" or position + 8 + length > len(data):  # a cut-short chunk: mido reports it
            chunks.append(chunk)
        else:
            dropped = True
        position += 8 + length
    return b"".join(chunks) + data[position:] if dropped else data


def check_midi(midi: pretty_midi.PrettyMIDI, meters=ACCEPTED_METERS) -> None:
    """Raise ``MidiError`` unless ``midi`` has pitched notes, a sane tempo and an accepted meter
    (and, for objects built in code, notes with pitches 0..127 and finite times within MAX_SECONDS)."""
    if not isinstance(midi, pretty_midi.PrettyMIDI):
        raise MidiError(f"expected a pretty_midi.PrettyMIDI, got {type(midi).__name__}")
    if not isinstance(midi.resolution, int) or midi.resolution <= 0:
        raise MidiError(f"the MIDI data has resolution {midi.resolution!r} ticks a beat; it must be a whole number > 0")
    for inst in midi.instruments:
        for note in inst.notes:
            _check_note(note, inst)
    pitched = [inst for inst in midi.instruments if not inst.is_drum and inst.notes]
    if not any(inst.notes for inst in midi.instruments):
        raise MidiError("the MIDI data contains no notes. Check you exported the right track "
                        "(some editors export only tempo and markers).")
    if not pitched:
        raise MidiError("the MIDI data contains only drum notes (channel 10). This course models "
                        "pitched instruments: give it a melody or chords.")
    _, tempi = midi.get_tempo_changes()
    bad = [t for t in tempi if not MIN_TEMPO <= t <= MAX_TEMPO]
    if bad:
        raise MidiError(f"tempo {bad[0]:.1f} BPM is outside {MIN_TEMPO:.0f}..{MAX_TEMPO:.0f} BPM; "
                        "the file's tempo map is probably broken. Set a normal tempo in your editor.")
    for ts in midi.time_signature_changes:
        if (ts.numerator, ts.denominator) not in meters:
            allowed = ", ".join(f"{n}/{d}" for n, d in sorted(meters))
            raise MidiError(f"meter {ts.numerator}/{ts.denominator} at {ts.time:.2f} s is not supported: "
                            f"the models work in bars of {allowed}. Use a piece in 4/4.")


def _check_note(note, inst) -> None:
    where = f"in instrument {inst.name or inst.program!r}"
    if not isinstance(note.pitch, (int, np.integer)) or not 0 <= note.pitch <= 127:
        raise MidiError(f"a note {where} has pitch {note.pitch!r}; MIDI pitches are whole numbers 0..127")
    start, end = note.start, note.end
    if not all(isinstance(v, (int, float, np.number)) and math.isfinite(v) for v in (start, end)):
        raise MidiError(f"a note {where} has times {start!r}..{end!r} s; times must be finite numbers")
    if not 0 <= start <= end <= MAX_SECONDS:
        raise MidiError(f"a note {where} lasts {start:g}..{end:g} s; times must satisfy 0 <= start <= end "
                        f"<= {MAX_SECONDS:g} s (an hour: longer is a broken file, not a piece)")


# --------------------------------------------------------------------------- MIDI <-> roll

def _pick_instruments(midi: pretty_midi.PrettyMIDI, spec: RollSpec) -> list:
    """Match the file's pitched instruments to the spec's tracks, by name first, then in order."""
    pitched = _merge_same_name([inst for inst in midi.instruments if not inst.is_drum and inst.notes])
    by_name = {inst.name.strip().lower(): inst for inst in pitched}
    if len(by_name) == len(pitched) and set(by_name) <= set(spec.tracks):
        # Every instrument is named after a track (as roll_to_midi writes them): a silent voice is
        # simply absent from the file, and stays empty in the roll.
        return [by_name.get(name, pretty_midi.Instrument(0, name=name)) for name in spec.tracks]
    if len(pitched) != spec.n_tracks:
        names = ", ".join(repr(i.name or f"program {i.program}") for i in pitched)
        raise MidiError(f"the file has {len(pitched)} pitched instrument(s) ({names}) but the roll "
                        f"expects {spec.n_tracks} track(s) {spec.tracks}. Name the instruments after "
                        "the tracks, or use a RollSpec with matching tracks "
                        "(e.g. course_lib.music.MELODY for a single melody).")
    return pitched


def _merge_same_name(instruments: list) -> list:
    """One instrument per named part: pretty_midi splits a track at a program change (e.g. a
    soprano part switching from violin to flute) into two instruments with the track's name."""
    groups: dict = {}
    for i, inst in enumerate(instruments):
        groups.setdefault(inst.name.strip().lower() or i, []).append(inst)  # unnamed ones stay apart
    merged = []
    for parts in groups.values():
        if len(parts) == 1:
            merged.append(parts[0])
            continue
        whole = pretty_midi.Instrument(parts[0].program, name=parts[0].name)  # a new object: the user's stay as given
        whole.notes = sorted((n for part in parts for n in part.notes), key=lambda n: (n.start, n.pitch))
        merged.append(whole)
    return merged


def midi_to_roll(midi, spec: RollSpec = CHORALE, *, out_of_range: str = "clip") -> np.ndarray:
    """MIDI file or ``PrettyMIDI`` -> boolean roll (tracks, 2, pitches, steps), whole bars.

    ``out_of_range``: what to do with notes outside ``spec.low..spec.high-1``:
    ``"clip"`` moves them by octaves into range (reported with a ``MidiWarning``),
    ``"drop"`` leaves them out (reported), ``"error"`` raises ``MidiError``.
    """
    if out_of_range not in ("clip", "drop", "error"):
        raise ValueError(f"out_of_range must be 'clip', 'drop' or 'error', not {out_of_range!r}")
    midi = load_midi(midi)
    instruments = _pick_instruments(midi, spec)
    ticks_per_step = midi.resolution / spec.steps_per_beat  # beats are quarter notes
    rows, moved, dropped = [], 0, 0
    for track, inst in enumerate(instruments):
        for note in inst.notes:
            start = int(round(midi.time_to_tick(note.start) / ticks_per_step))
            end = max(start + 1, int(round(midi.time_to_tick(note.end) / ticks_per_step)))
            pitch = note.pitch
            if not spec.low <= pitch < spec.high:
                if out_of_range == "error":
                    raise MidiError(f"{pretty_midi.note_number_to_name(pitch)} (MIDI {pitch}) in track "
                                    f"{spec.tracks[track]!r} is outside the range "
                                    f"{pitch_name(spec.low)}..{pitch_name(spec.high - 1)}. Transpose the "
                                    "piece or pass out_of_range='clip'.")
                if out_of_range == "drop":
                    dropped += 1
                    continue
                while pitch < spec.low:
                    pitch += 12
                while pitch >= spec.high:
                    pitch -= 12
                if not spec.low <= pitch < spec.high:  # range narrower than an octave
                    dropped += 1
                    continue
                moved += 1
            rows.append((track, pitch, start, end))
    if moved or dropped:
        warnings.warn(f"{moved} note(s) moved by octaves into {pitch_name(spec.low)}.."
                      f"{pitch_name(spec.high - 1)}, {dropped} dropped", MidiWarning, stacklevel=2)
    table = np.array(rows, dtype=np.int64).reshape(-1, 4)
    if len(table) == 0:
        raise MidiError("no notes are left inside the pitch range; transpose the piece.")
    steps = int(np.ceil(table[:, 3].max() / spec.steps_per_bar)) * spec.steps_per_bar
    return _notes_to_roll_merging(table, spec, steps)


def _notes_to_roll_merging(table: np.ndarray, spec: RollSpec, steps: int) -> np.ndarray:
    """Like ``notes_to_roll``, but a note quantized onto the same step as an earlier one is kept."""
    roll = np.zeros((spec.n_tracks, 2, spec.n_pitches, steps), dtype=bool)
    for track, pitch, start, end in table:
        roll[track, ONSET, pitch - spec.low, start] = True
        roll[track, SUSTAIN, pitch - spec.low, start:end] = True
    return roll


def roll_to_midi(roll: np.ndarray, spec: RollSpec = CHORALE, tempo: float = 90.0,
                 programs: dict | None = None, velocity: int = 80) -> pretty_midi.PrettyMIDI:
    """Roll -> ``PrettyMIDI`` with one instrument per track (named after it), 4/4 at ``tempo``."""
    roll = np.asarray(roll)
    if roll.ndim != 4 or roll.shape[:3] != (spec.n_tracks, 2, spec.n_pitches):
        raise ValueError(f"roll has shape {roll.shape}; expected (tracks={spec.n_tracks}, 2, "
                         f"pitches={spec.n_pitches}, steps) for this RollSpec")
    if not MIN_TEMPO <= tempo <= MAX_TEMPO:
        raise ValueError(f"tempo {tempo} BPM is outside {MIN_TEMPO:.0f}..{MAX_TEMPO:.0f}")
    if roll.dtype != bool and not np.all(np.isfinite(roll)):
        raise ValueError("the roll holds NaN or infinite values (a diverged sampler?); check the model output first")
    inputs.check_number(velocity, "velocity", low=1, high=127, integer=True)
    programs = {**GM_PROGRAMS, **(programs or {})}
    midi = pretty_midi.PrettyMIDI(initial_tempo=float(tempo))
    midi.time_signature_changes.append(pretty_midi.TimeSignature(spec.beats_per_bar, 4, 0.0))
    seconds_per_step = 60.0 / tempo / spec.steps_per_beat
    instruments = [pretty_midi.Instrument(program=programs.get(name, DEFAULT_PROGRAM), name=name)
                   for name in spec.tracks]
    for track, pitch, start, end in roll_to_notes(roll, spec):
        instruments[track].notes.append(pretty_midi.Note(
            velocity=velocity, pitch=int(pitch), start=start * seconds_per_step, end=end * seconds_per_step))
    midi.instruments.extend(instruments)
    return midi


# --------------------------------------------------------------------------- roll operations

def transpose(roll: np.ndarray, semitones: int, spec: RollSpec = CHORALE) -> np.ndarray:
    """Shift every note by ``semitones``; raises ``MidiError`` if a note would leave the range."""
    roll = np.asarray(roll)
    if semitones == 0:
        return roll.copy()
    used = np.flatnonzero(roll.any(axis=(0, 1, 3)))  # pitch indices in use
    if used.size and not (0 <= used[0] + semitones and used[-1] + semitones < spec.n_pitches):
        raise MidiError(f"transposing by {semitones:+d} moves notes {pitch_name(spec.low + used[0])}.."
                        f"{pitch_name(spec.low + used[-1])} outside {pitch_name(spec.low)}.."
                        f"{pitch_name(spec.high - 1)}; choose a smaller interval.")
    out = np.zeros_like(roll)
    if semitones > 0:
        out[:, :, semitones:] = roll[:, :, :-semitones]
    else:
        out[:, :, :semitones] = roll[:, :, -semitones:]
    return out


def crop(roll: np.ndarray, start_bar: int, bars: int, spec: RollSpec = CHORALE) -> np.ndarray:
    """Bars ``start_bar .. start_bar+bars-1`` of a roll; notes cut at the edges keep an onset."""
    a, b = start_bar * spec.steps_per_bar, (start_bar + bars) * spec.steps_per_bar
    if a < 0 or b > roll.shape[-1]:
        raise ValueError(f"bars {start_bar}..{start_bar + bars - 1} are outside a roll of "
                         f"{roll.shape[-1] // spec.steps_per_bar} bars")
    out = roll[..., a:b].copy()
    out[:, ONSET, :, 0] = np.maximum(out[:, ONSET, :, 0], out[:, SUSTAIN, :, 0])  # held notes re-start
    return out


# --------------------------------------------------------------------------- key estimation
# Aarden-Essen key profiles: the weights music21's ``Stream.analyze('key')`` uses by default, so a
# label computed here agrees with music21's analysis of the same notes (tests check this).
_MAJOR_PROFILE = np.array([17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587,
                           0.291248, 22.062, 0.145624, 8.15494, 0.232998, 4.95122])
_MINOR_PROFILE = np.array([18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362,
                           0.702494, 18.6161, 4.56621, 1.93186, 7.37619, 1.75623])
MAJOR, MINOR = 0, 1


def pitch_class_histogram(notes: np.ndarray) -> np.ndarray:
    """Duration-weighted pitch-class histogram (12,) of a note table (N, 4); sums to 1 (or all 0)."""
    notes = np.asarray(notes).reshape(-1, 4)
    hist = np.bincount(notes[:, 1] % 12, weights=notes[:, 3] - notes[:, 2], minlength=12).astype(float)
    total = hist.sum()
    return hist / total if total > 0 else hist


def key_correlations(histograms: np.ndarray) -> np.ndarray:
    """Pearson correlation of pitch-class histograms (..., 12) with the 24 key profiles.

    Returns (..., 2, 12): [MAJOR or MINOR, tonic pitch class]. The best key is the arg-max.
    """
    h = np.asarray(histograms, dtype=float)
    profiles = np.stack([np.stack([np.roll(p, tonic) for tonic in range(12)]) for p in
                         (_MAJOR_PROFILE, _MINOR_PROFILE)])  # (2, 12 tonics, 12 pitch classes)
    profiles = profiles - profiles.mean(-1, keepdims=True)
    profiles /= np.linalg.norm(profiles, axis=-1, keepdims=True)
    h = h - h.mean(-1, keepdims=True)
    norm = np.linalg.norm(h, axis=-1, keepdims=True)
    h = np.divide(h, norm, out=np.zeros_like(h), where=norm > 0)
    return np.einsum("...p,mkp->...mk", h, profiles)


def estimate_key(notes: np.ndarray) -> tuple[int, int, float]:
    """Key of a note table by profile correlation (Krumhansl-Schmuckler with Aarden-Essen weights).

    Returns (tonic pitch class 0..11, MAJOR or MINOR, correlation). Raises ValueError without notes.
    """
    hist = pitch_class_histogram(notes)
    if hist.sum() == 0:
        raise ValueError("cannot estimate the key of music without notes")
    corr = key_correlations(hist)  # (2, 12)
    mode, tonic = np.unravel_index(np.argmax(corr), corr.shape)
    return int(tonic), int(mode), float(corr[mode, tonic])
