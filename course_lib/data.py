"""Datasets from music21's bundled corpus: Bach chorales (4 voices) and folk melodies (1 voice).

Pipeline, run once and cached:

1. parse each piece with music21 (offline: the corpus ships inside the music21 wheel);
2. keep pieces in a meter we can cut into 4/4 bars (4/4, 2/2, 2/4), with the expected parts;
3. read every part's notes (ties merged) as a *note table* (track, pitch, start, end in 16th steps),
   with the pickup bar padded so step 0 is a downbeat;
4. estimate the key (``music.estimate_key``: music21's own profile method) and transpose the piece
   so its tonic is C (C major or C minor), choosing the octave that keeps the most notes in range.

The result, a ``Corpus``, is a small ``.npz`` (notes of every piece plus a JSON description). The
committed caches in ``assets/data/`` mean a fresh clone loads in well under a second; ``prepare``
rebuilds them (``python -m course_lib prepare-data``). A folder of the user's own MIDI files goes
through the same steps 2-4 (``midi_corpus``: read with ``music.load_midi``'s checks, 4/4 only) and
is cached beside them under its own name (``prepare-data --midi-dir DIR --name NAME``).
Windows (4 bars, 1-bar hop) and their labels are cut on load, and the train/valid/test split is
**by piece** (a hash of the piece's name), so no chorale ever has windows on both sides of a split.
"""
from __future__ import annotations

import json
import multiprocessing
import re
import time
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from . import ASSETS, inputs, music

CACHE_VERSION = 1
CACHE_DIR = ASSETS / "data"
STYLES = ("bach", "folk")  # style label index = position here
SPLITS = ("train", "valid", "test")
ACCEPTED_METERS = {"4/4", "2/2", "2/4"}  # quarter-note beats that tile a 4/4 bar


@dataclass
class Corpus:
    """Pieces of one style as note tables, transposed to tonic C, with a report of what was rejected."""

    name: str
    style: str
    spec: music.RollSpec
    pieces: list[dict]  # id, title, tonic (original pitch class), mode, transpose, bars
    notes: list[np.ndarray]  # per piece: (N, 4) int16 note table in 16th steps
    rejected: dict[str, int] = field(default_factory=dict)
    rejected_files: list = field(default_factory=list)  # [piece id or file, reason] of each rejected one
    prepare_seconds: float = 0.0
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.pieces)

    def split_of(self, index: int) -> str:
        """'train' (80%), 'valid' (10%) or 'test' (10%), fixed by a hash of the piece id."""
        bucket = zlib.crc32(self.pieces[index]["id"].encode()) % 10
        return "test" if bucket == 0 else "valid" if bucket == 1 else "train"

    def roll(self, index: int) -> np.ndarray:
        """The whole piece as a roll (tracks, 2, pitches, steps)."""
        piece = self.pieces[index]
        return music.notes_to_roll(self.notes[index], self.spec, piece["bars"] * self.spec.steps_per_bar)

    def split_counts(self) -> tuple[Counter, Counter]:
        """(pieces per split, 4-bar windows per split)."""
        return (Counter(self.split_of(i) for i in range(len(self))),
                Counter(self.split_of(i) for i, _ in self.window_index()))

    def report(self) -> str:
        pieces, windows = self.split_counts()
        lines = [f"{self.name}: {len(self)} pieces, {sum(windows.values())} windows of 4 bars "
                 f"(train/valid/test pieces {pieces['train']}/{pieces['valid']}/{pieces['test']}, "
                 f"windows {windows['train']}/{windows['valid']}/{windows['test']}); "
                 f"modes: {sum(p['mode'] == music.MAJOR for p in self.pieces)} major, "
                 f"{sum(p['mode'] == music.MINOR for p in self.pieces)} minor"]
        for reason, count in sorted(self.rejected.items(), key=lambda kv: -kv[1]):
            lines.append(f"  rejected {count:5d}: {reason}")
        return "\n".join(lines)

    def window_index(self, bars: int = 4, hop: int = 1) -> list[tuple[int, int]]:
        """(piece, start bar) of every window that is at least half full of sound."""
        index = []
        spb = self.spec.steps_per_bar
        for i, piece in enumerate(self.pieces):
            notes = self.notes[i]
            sounding = np.zeros(piece["bars"] * spb, dtype=bool)
            for _, _, start, end in notes:
                sounding[start:end] = True
            for start_bar in range(0, piece["bars"] - bars + 1, hop):
                if sounding[start_bar * spb:(start_bar + bars) * spb].mean() >= 0.5:
                    index.append((i, start_bar))
        return index

    # ------------------------------------------------------------------ cache file
    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lengths = np.array([len(n) for n in self.notes], dtype=np.int64)
        meta = {"version": CACHE_VERSION, "name": self.name, "style": self.style,
                "spec": self.spec.to_dict(), "pieces": self.pieces, "rejected": self.rejected,
                "rejected_files": self.rejected_files, "prepare_seconds": self.prepare_seconds}
        np.savez_compressed(path, meta=np.array(json.dumps(meta)), lengths=lengths,
                            notes=np.concatenate(self.notes).astype(np.int16) if self.notes
                            else np.zeros((0, 4), np.int16))

    @classmethod
    def load(cls, path: Path) -> "Corpus":
        with np.load(path) as f:
            meta = json.loads(str(f["meta"]))
            if meta.get("version") != CACHE_VERSION:
                raise ValueError(f"{path} was written by cache version {meta.get('version')}, "
                                 f"this code reads version {CACHE_VERSION}; rebuild it with "
                                 "`python -m course_lib prepare-data`")
            notes = np.split(f["notes"].astype(np.int64), np.cumsum(f["lengths"])[:-1])
        return cls(name=meta["name"], style=meta["style"], spec=music.RollSpec.from_dict(meta["spec"]),
                   pieces=meta["pieces"], notes=notes, rejected=meta["rejected"],
                   rejected_files=meta.get("rejected_files", []), prepare_seconds=meta["prepare_seconds"], from_cache=True)


# ---------------------------------------------------------------------- parsing (music21)

def _part_notes(part, track: int, pad: float) -> tuple[list[tuple], int]:
    """Notes of one music21 part as (track, pitch, start, end) in 16th steps; chords count apart."""
    rows, chords = [], 0
    for n in part.flatten().stripTies().notes:
        if n.quarterLength <= 0:  # grace notes carry no time
            continue
        start = int(round((float(n.offset) + pad) * 4))
        end = max(start + 1, int(round((float(n.offset) + float(n.quarterLength) + pad) * 4)))
        chords += len(n.pitches) > 1
        rows.extend((track, p.midi, start, end) for p in n.pitches)
    return rows, chords


def _score_to_piece(score, piece_id: str, title: str, spec: music.RollSpec):
    """music21 score -> (meta, note table) in tonic C, or a rejection reason (str)."""
    meters = {ts.ratioString for ts in score.recurse().getElementsByClass("TimeSignature")}
    if not meters:
        return "no time signature"
    if len(meters) > 1:
        return "changes meter"
    if not meters <= ACCEPTED_METERS:
        return f"meter {meters.pop()} (need 4/4, 2/2 or 2/4)"
    parts = list(score.parts)
    if len(parts) != spec.n_tracks:
        return f"{len(parts)} parts (need {spec.n_tracks})"
    measures = parts[0].getElementsByClass("Measure")
    first_full = next((m for m in measures if m.number >= 1), None)
    pad = (-float(first_full.offset)) % 4 if first_full is not None else 0.0
    rows = []
    for track, part in enumerate(parts):
        part_rows, chords = _part_notes(part, track, pad)
        if chords:
            return "chords inside a voice"
        rows.extend(part_rows)
    return _piece_in_c(rows, piece_id, title, spec)


def _piece_in_c(rows, piece_id: str, title: str, spec: music.RollSpec):
    """Note rows (track, pitch, start, end) -> (meta, note table) moved to tonic C, or a rejection
    reason: what every corpus goes through, music21's and the user's MIDI files alike."""
    if not len(rows):
        return "no notes"
    notes = np.array(rows, dtype=np.int64)
    tonic, mode, _ = music.estimate_key(notes)
    shift = _best_transposition(notes[:, 1], tonic, spec)
    notes[:, 1] += shift
    inside = (notes[:, 1] >= spec.low) & (notes[:, 1] < spec.high)
    if not inside.all():
        return "notes outside the pitch range even after transposing to C"
    bars = int(np.ceil(notes[:, 3].max() / spec.steps_per_bar))
    meta = {"id": piece_id, "title": title, "tonic": int(tonic), "mode": int(mode),
            "transpose": int(shift), "bars": bars}
    return meta, notes


def _best_transposition(pitches: np.ndarray, tonic: int, spec: music.RollSpec) -> int:
    """Shift that moves the tonic to C, choosing the octave that keeps most pitches in range."""
    base = (-tonic) % 12  # 0..11 semitones up
    candidates = [base - 12, base] if base else [0]
    def outside(s):
        p = pitches + s
        return int(((p < spec.low) | (p >= spec.high)).sum())
    return min(candidates, key=lambda s: (outside(s), abs(s)))


def _parse_chorale(path: str):
    from music21 import corpus
    try:
        score = corpus.parse(path)
    except Exception as err:  # report, never crash the whole preparation
        return path, f"music21 could not parse it ({type(err).__name__})"
    title = score.metadata.title if score.metadata and score.metadata.title else path
    return path, _score_to_piece(score, path, str(title), music.CHORALE)


def _parse_folk_file(path: str):
    from music21 import corpus
    try:
        opus = corpus.parse(path)
    except Exception as err:
        return [(path, f"music21 could not parse it ({type(err).__name__})")]
    scores = list(opus.scores) if hasattr(opus, "scores") else [opus]
    results = []
    for k, score in enumerate(scores):
        title = score.metadata.title if score.metadata and score.metadata.title else f"tune {k}"
        piece_id = f"{path}#{k}"
        try:
            results.append((piece_id, _score_to_piece(score, piece_id, str(title), music.MELODY)))
        except Exception as err:
            results.append((piece_id, f"unreadable tune ({type(err).__name__})"))
    return results


def _collect(name, style, spec, results, seconds) -> Corpus:
    pieces, notes, rejected, rejected_files = [], [], Counter(), []
    for piece_id, result in results:
        if isinstance(result, str):
            rejected[result] += 1
            rejected_files.append([piece_id, result])
        else:
            pieces.append(result[0])
            notes.append(result[1])
    return Corpus(name=name, style=style, spec=spec, pieces=pieces, notes=notes,
                  rejected=dict(rejected), rejected_files=rejected_files, prepare_seconds=round(seconds, 1))


def _map(function, items, workers):
    if workers <= 1:
        return [function(item) for item in items]
    with warnings.catch_warnings(), multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(function, items, chunksize=4)


def prepare_bach(limit: int | None = None, workers: int = 2) -> Corpus:
    """Parse the Bach chorales (371 in music21's corpus) into a Corpus; ~30-60 s on 2 cores."""
    from music21 import corpus
    start = time.perf_counter()
    paths = list(corpus.chorales.Iterator(returnType="filename"))[:limit]
    results = _map(_parse_chorale, paths, workers)
    return _collect("bach", "bach", music.CHORALE, results, time.perf_counter() - start)


# German songs from the Essen Folksong Collection (music21 ships 8,514 Essen tunes in 31 ABC files;
# these 8 files hold ~1,900 of them, mostly in 4/4 and 2/4, and parse in ~1-2 min on 2 cores).
FOLK_FILES = ("kinder0", "boehme10", "boehme20", "erk5", "erk10", "erk20", "erk30", "dva0")


def prepare_folk(limit_files: int | None = None, workers: int = 2) -> Corpus:
    """Parse German folk songs of the Essen collection (``FOLK_FILES``) into a Corpus."""
    from music21 import corpus
    start = time.perf_counter()
    by_name = {p.stem: str(p) for p in corpus.getComposer("essenFolksong")}
    paths = [by_name[name] for name in FOLK_FILES][:limit_files]
    results = [r for file_results in _map(_parse_folk_file, paths, workers) for r in file_results]
    return _collect("folk", "folk", music.MELODY, results, time.perf_counter() - start)


PREPARERS = {"bach": prepare_bach, "folk": prepare_folk}


# ---------------------------------------------------------------------- the user's own MIDI files

MIDI_SUFFIXES = (".mid", ".midi")
# music.load_midi's errors, each turned into the short reason the preparation table counts
_MIDI_REASONS = (("is empty (0 bytes)", "empty file"), ("not a Standard MIDI File", "not a MIDI file"),
                 ("damaged MIDI file", "damaged MIDI file"), ("MIDI file format", "damaged MIDI file"),
                 ("counts time in", "timed in SMPTE frames, not beats"), ("contains no notes", "no notes"),
                 ("only drum notes", "drums only"), ("BPM is outside", "tempo outside 20..400 BPM"),
                 ("MiB", "file over 16 MiB"))


def _midi_reason(message: str) -> str:
    meter = re.search(r"meter (\d+/\d+)", message)
    if meter:
        return f"meter {meter.group(1)} (need 4/4 or 2/2)"
    parts = re.search(r"has (\d+) pitched instrument", message)
    if parts:
        return f"{parts.group(1)} parts (need 4, or 1 melody)"
    return next((reason for words, reason in _MIDI_REASONS if words in message), "unreadable MIDI")


def _parse_midi_file(path: Path, root: Path):
    """One MIDI file -> (piece id = path under root, (meta, note table in tonic C) or a reason).

    The file is read by ``music.load_midi`` (header, chunks, notes, tempo, meter checked) and
    ``music.midi_to_roll`` (parts matched by name, else in order; time from the tempo map) over the
    whole MIDI range, so that nothing is clipped before the piece is moved to C (``_piece_in_c``).
    Four parts fill the four voices; a single part is a melody (the soprano)."""
    piece_id = path.relative_to(root).as_posix()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", music.MidiWarning)
            midi = music.load_midi(path)
            pitched = [inst for inst in midi.instruments if not inst.is_drum and inst.notes]
            wide = replace(music.MELODY if len(pitched) == 1 else music.CHORALE, low=0, high=128)
            notes = music.roll_to_notes(music.midi_to_roll(midi, wide), wide)  # (N, 4) by start, track, pitch
    except music.MidiError as err:
        return piece_id, _midi_reason(str(err))
    except Exception as err:  # report, never crash the whole preparation
        return piece_id, f"unreadable MIDI ({type(err).__name__})"
    rows = []
    for track in range(wide.n_tracks):  # one note at a time per voice, as in the chorales
        voice = notes[notes[:, 0] == track]
        if len(np.unique(voice[:, 2])) < len(voice):
            return piece_id, "chords inside a voice"
        voice[:-1, 3] = np.minimum(voice[:-1, 3], voice[1:, 2])  # legato overlaps end at the next note
        rows.extend(map(tuple, voice))
    return piece_id, _piece_in_c(rows, piece_id, path.stem, music.CHORALE)


def midi_corpus(midi_dir, name: str) -> Corpus:
    """Every .mid/.midi file under ``midi_dir`` (recursively) as a Corpus of style ``name``.

    Kept: 4/4 (or 2/2) pieces with four parts (the voices) or one part (a melody, the soprano),
    one note at a time per part, inside the pitch range once moved to tonic C. Every other file is
    skipped and named in ``rejected_files`` with its reason. The corpus has the four-voice layout
    if any piece has four parts, else the melody layout (like folk)."""
    root = Path(midi_dir)
    inputs.check_plain_name(name, "--name")
    if not root.is_dir():
        raise ValueError(f"--midi-dir {root}: no such folder; give the folder that holds your .mid files")
    if name in PREPARERS:
        raise ValueError(f"--name {name!r} is a bundled corpus; give your own corpus another name")
    start = time.perf_counter()
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES)
    if not paths:
        raise ValueError(f"--midi-dir {root}: no .mid or .midi files in it or its subfolders")
    results = [_parse_midi_file(path, root) for path in paths]
    four_voices = any(not isinstance(r, str) and r[1][:, 0].max() > 0 for _, r in results)
    return _collect(name, name, music.CHORALE if four_voices else music.MELODY, results, time.perf_counter() - start)


def prepare_table(corpora) -> str:
    """The preparation table of the README: pieces kept, 4-bar windows per split, rejections by reason."""
    lines = ["| corpus | pieces kept | 4-bar windows (train/valid/test) | rejected (reason) |", "|---|---|---|---|"]
    for corpus in corpora:
        _, windows = corpus.split_counts()
        voices = "4 voices" if corpus.spec.n_tracks == 4 else "1 voice"
        by_count = sorted(corpus.rejected.items(), key=lambda kv: (-kv[1], kv[0]))
        reasons = ", ".join(f"{n} × {reason}" for reason, n in by_count)
        lines.append(f"| {corpus.name} ({voices}) | {len(corpus):,} of {len(corpus) + sum(corpus.rejected.values()):,} "
                     f"| {sum(windows.values()):,} ({windows['train']:,} / {windows['valid']:,} / {windows['test']:,}) "
                     f"| {reasons or 'none'} |")
    return "\n".join(lines)


def load_corpus(name: str = "bach", cache_dir: Path | str | None = None, rebuild: bool = False,
                **prepare_kwargs) -> Corpus:
    """The named corpus from its cache file, preparing (and caching) it on a miss. Besides the
    bundled ones, any corpus made by ``prepare-data --midi-dir DIR --name NAME`` (``midi_corpus``)
    loads by its name from the cache folder it was written to."""
    path = Path(cache_dir or CACHE_DIR) / f"{name}.npz"
    if name not in PREPARERS:
        if path.exists():
            return Corpus.load(path)
        raise ValueError(f"unknown corpus {name!r}; choose one of {sorted(PREPARERS)}, or make it from your own MIDI "
                         f"files first: python -m course_lib prepare-data --midi-dir DIR --name {name}"
                         + (f" (looked for {path})" if cache_dir else ""))
    if path.exists() and not rebuild:
        try:
            return Corpus.load(path)
        except (ValueError, KeyError, OSError) as err:
            warnings.warn(f"ignoring unreadable cache {path} ({err}); rebuilding it")
    corpus = PREPARERS[name](**prepare_kwargs)
    corpus.save(path)
    return corpus


def voice_ranges(corpora, spec: music.RollSpec = music.CHORALE) -> list[tuple[int, int]]:
    """Per track of ``spec``, the (lowest, highest) MIDI pitch any of ``corpora`` sounds in it
    (a folk melody counts as the soprano); a track no corpus uses keeps the whole range. This is
    what ``VoiceEncoding(spec, ranges)`` spans with each voice's height channel."""
    ranges = []
    for track in range(spec.n_tracks):
        pitches = np.concatenate([n[n[:, 0] == track, 1] for c in corpora for n in c.notes] + [np.zeros(0, int)])
        ranges.append((int(pitches.min()), int(pitches.max())) if len(pitches) and pitches.max() > pitches.min()
                      else (spec.low, spec.high - 1))
    return ranges


# ---------------------------------------------------------------------- windows and labels

def window_labels(notes: np.ndarray, steps: int, style: str, styles=STYLES) -> dict:
    """Labels of one window's note table: style index (in ``styles``), mode (the window's own key
    analysis, as music21's ``analyze('key')`` would find it) and density (onsets per 16th step per
    sounding track: ~0.15 calm .. ~0.5 busy)."""
    _, mode, _ = music.estimate_key(notes)
    tracks = max(1, len(np.unique(notes[:, 0])))
    return {"style": list(styles).index(style), "mode": int(mode), "density": len(notes) / (steps * tracks)}


def styles_of(corpora) -> tuple[str, ...]:
    """The style names a model trained on ``corpora`` knows, in label-index order: the bundled
    styles first, in ``STYLES`` order (so bach and folk keep indices 0 and 1), then the user's own
    corpora in the order given. Stored in the checkpoint (``checkpoint.styles``)."""
    names = [c.style for c in corpora]
    return tuple([s for s in STYLES if s in names] + list(dict.fromkeys(s for s in names if s not in STYLES)))


def _window_notes(notes: np.ndarray, start: int, steps: int) -> np.ndarray:
    """Notes sounding in steps start..start+steps-1, cut at the edges, shifted to start at 0."""
    keep = (notes[:, 2] < start + steps) & (notes[:, 3] > start)
    window = notes[keep].copy()
    window[:, 2:] = np.clip(window[:, 2:] - start, 0, steps)
    return window


class WindowDataset(torch.utils.data.Dataset):
    """4-bar windows of one or more corpora as model tensors plus label dicts.

    ``spec`` is the layout the model sees; a corpus with fewer tracks fills the first ones (a folk
    melody becomes the soprano; the other voices rest). ``encoding`` is a ``course_lib.encoding``
    encoding (``None`` returns the boolean rolls). ``transpose_range=k`` adds random transposition
    by -k..k semitones on the fly (kept only where every note stays in range).
    Items: ``(x, {"style": int, "mode": int, "density": float})``.
    """

    def __init__(self, corpora, split: str = "train", encoding=None, spec: music.RollSpec = music.CHORALE,
                 bars: int = 4, hop: int = 1, transpose_range: int = 0, seed: int = 0, styles=None):
        if split not in SPLITS + ("all",):
            raise ValueError(f"split must be one of {SPLITS + ('all',)}, not {split!r}")
        corpora = [corpora] if isinstance(corpora, Corpus) else list(corpora)
        # style label = index in ``styles`` (default: STYLES, then any user corpus's own style)
        styles = tuple(styles or STYLES + tuple(s for s in dict.fromkeys(c.style for c in corpora) if s not in STYLES))
        self.spec, self.encoding, self.bars, self.styles = spec, encoding, bars, styles
        self.steps = bars * spec.steps_per_bar
        self.transpose_range = transpose_range
        self.rng = np.random.default_rng(seed)
        self.items, self.labels, self.pieces = [], [], []
        for corpus in corpora:
            if corpus.spec.n_tracks > spec.n_tracks or corpus.spec.steps_per_bar != spec.steps_per_bar:
                raise ValueError(f"corpus {corpus.name} ({corpus.spec.tracks}) does not fit the layout "
                                 f"{spec.tracks}")
            for piece, start_bar in corpus.window_index(bars, hop):
                if split != "all" and corpus.split_of(piece) != split:
                    continue
                notes = _window_notes(corpus.notes[piece], start_bar * spec.steps_per_bar, self.steps)
                self.items.append(notes)
                self.labels.append(window_labels(notes, self.steps, corpus.style, styles))
                self.pieces.append((corpus.name, corpus.pieces[piece]["id"], start_bar))

    def __len__(self) -> int:
        return len(self.items)

    def roll(self, index: int, transpose: int = 0) -> np.ndarray:
        notes = self.items[index]
        if transpose:
            notes = notes.copy()
            notes[:, 1] += transpose
        return music.notes_to_roll(notes, self.spec, self.steps)

    def __getitem__(self, index: int):
        shift = 0
        if self.transpose_range:
            pitches = self.items[index][:, 1]
            low = max(-self.transpose_range, self.spec.low - int(pitches.min()))
            high = min(self.transpose_range, self.spec.high - 1 - int(pitches.max()))
            shift = int(self.rng.integers(low, high + 1)) if low <= high else 0
        roll = self.roll(index, shift)
        x = roll if self.encoding is None else self.encoding.encode(roll)
        return x, dict(self.labels[index])

    def label_tensors(self) -> dict[str, torch.Tensor]:
        """All labels as tensors (N,), e.g. to pick conditions or to build a reference set."""
        return {"style": torch.tensor([l["style"] for l in self.labels]),
                "mode": torch.tensor([l["mode"] for l in self.labels]),
                "density": torch.tensor([l["density"] for l in self.labels], dtype=torch.float32)}
