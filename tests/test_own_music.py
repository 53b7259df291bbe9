"""Train on your own music: prepare-data --midi-dir on a folder of MIDI files made here (good and
bad ones), then train --corpora NAME and generate --style NAME."""
import numpy as np
import pretty_midi
import pytest

from course_lib import cli, data, pipeline

D_MAJOR_CHORDS = [(2, 6, 9), (7, 11, 2), (9, 1, 4), (2, 6, 9), (11, 2, 6), (7, 11, 2), (9, 1, 4), (2, 6, 9)]
RANGES = {"soprano": (62, 79), "alto": (55, 72), "tenor": (48, 67), "bass": (38, 60)}  # MIDI pitches


def _piece(seed: int, parts=("soprano", "alto", "tenor", "bass"), meter=(4, 4), tempo=100.0) -> pretty_midi.PrettyMIDI:
    """Eight bars in D major, I IV V I vi IV V I, each part moving in chord tones (one note at a time)."""
    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(*meter, 0.0))
    beat = 60.0 / tempo
    for name in parts:
        low, high = RANGES[name]
        part = pretty_midi.Instrument(program=0, name=name)
        for bar, chord in enumerate(D_MAJOR_CHORDS):
            for b in range(meter[0]):
                pitch = rng.choice([p for p in range(low, high) if p % 12 in chord])
                length = 2 if rng.random() < 0.3 and b % 2 == 0 else 1
                start = (bar * meter[0] + b) * beat
                part.notes.append(pretty_midi.Note(80, int(pitch), start, start + beat * (1 if b % 2 else length) * 0.98))
        midi.instruments.append(part)
    return midi


@pytest.fixture(scope="module")
def midi_dir(tmp_path_factory):
    """12 four-part pieces and 6 melodies in subfolders, plus files that must be skipped, each for its reason."""
    root = tmp_path_factory.mktemp("my_music")
    (root / "chorales" / "more").mkdir(parents=True)
    (root / "tunes").mkdir()
    for i in range(12):
        _piece(i).write(str(root / "chorales" / ("more" if i % 3 else "") / f"chorale_{i}.mid"))
    for i in range(6):
        _piece(100 + i, parts=("soprano",)).write(str(root / "tunes" / f"tune_{i}.MIDI"))
    (root / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\xff\xff")
    (root / "empty.mid").write_bytes(b"")
    drums = pretty_midi.PrettyMIDI()
    kit = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    kit.notes += [pretty_midi.Note(100, 36 + k % 3, k * 0.5, k * 0.5 + 0.1) for k in range(16)]
    drums.instruments.append(kit)
    drums.write(str(root / "drums.mid"))
    _piece(200, meter=(3, 4)).write(str(root / "waltz.mid"))
    trio = _piece(201, parts=("soprano", "alto", "bass"))
    for part, name in zip(trio.instruments, ("violin", "viola", "cello")):  # named after voices, 3 would be
        part.name = name  # a four-part piece with a silent tenor (music.midi_to_roll); unnamed, they are a trio
    trio.write(str(root / "trio.mid"))
    piano = _piece(202, parts=("soprano", "alto"))
    piano.instruments[0].notes += piano.instruments.pop(1).notes  # two parts in one: chords in a voice
    piano.write(str(root / "piano.mid"))
    (root / "notes.txt").write_text("not music; ignored: only .mid/.midi files are read")
    return root


EXPECTED_SKIPS = {"corrupt.mid": "damaged MIDI file", "empty.mid": "empty file", "drums.mid": "drums only",
                  "waltz.mid": "meter 3/4 (need 4/4 or 2/2)", "trio.mid": "3 parts (need 4, or 1 melody)",
                  "piano.mid": "chords inside a voice"}


def test_midi_corpus_keeps_what_fits_moves_it_to_c_and_names_every_skipped_file(midi_dir, tmp_path):
    corpus = data.midi_corpus(midi_dir, "mine")
    assert len(corpus) == 18 and corpus.style == "mine" and corpus.spec.n_tracks == 4
    assert dict(map(tuple, corpus.rejected_files)) == EXPECTED_SKIPS
    assert sum(corpus.rejected.values()) == len(EXPECTED_SKIPS)
    assert all(p["tonic"] == 2 and p["transpose"] in (-2, 10) and p["mode"] == 0 for p in corpus.pieces), \
        [(p["id"], p["tonic"], p["mode"]) for p in corpus.pieces]
    tunes = [n for p, n in zip(corpus.pieces, corpus.notes) if p["id"].startswith("tunes/")]
    assert len(tunes) == 6 and all(set(n[:, 0]) == {0} for n in tunes), "a melody is the soprano"
    assert all(p["bars"] == 8 for p in corpus.pieces)
    pieces, windows = corpus.split_counts()
    assert sum(windows.values()) == 18 * 5 and pieces["train"] > 0  # 8 bars: 5 windows of 4 at 1-bar hops
    for i, notes in enumerate(corpus.notes):  # one note at a time in every voice
        for track in range(4):
            voice = notes[notes[:, 0] == track]
            assert (voice[1:, 2] >= voice[:-1, 3]).all(), corpus.pieces[i]["id"]
    with pytest.raises(ValueError, match="bundled corpus"):
        data.midi_corpus(midi_dir, "folk")
    (tmp_path / "notes.txt").write_text("no MIDI here")
    with pytest.raises(ValueError, match="no .mid or .midi files"):
        data.midi_corpus(tmp_path, "x")
    with pytest.raises(ValueError, match="no such folder"):
        data.midi_corpus(tmp_path / "missing", "x")


def test_prepare_train_and_generate_on_your_own_music(midi_dir, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert cli.main(["prepare-data", "--midi-dir", str(midi_dir), "--name", "mine", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "| corpus | pieces kept | 4-bar windows (train/valid/test) | rejected (reason) |" in out
    assert "| mine (4 voices) | 18 of 24 | 90 (" in out and "1 × chords inside a voice" in out
    for file, reason in EXPECTED_SKIPS.items():
        assert f"skipped {file}: {reason}" in out
    assert (cache / "mine.npz").exists() and data.load_corpus("mine", cache_dir=cache).from_cache
    written = (cache / "mine.npz").read_bytes()
    for refused, why in [(["--name", "mine"], "already exist"), (["--name", "bach"], "bundled corpus")]:
        assert cli.main(["prepare-data", "--midi-dir", str(midi_dir), "--cache-dir", str(cache), *refused]) == 2
        assert why in capsys.readouterr().err
    assert (cache / "mine.npz").read_bytes() == written, "nothing is overwritten without --force"
    assert cli.main(["prepare-data", "--midi-dir", str(midi_dir), "--name", "mine", "--cache-dir", str(cache),
                     "--force"]) == 0

    tiny = ["--steps", "2", "--valid-every", "2", "--batch-size", "4", "--quiet", "--threads", "1",
            "--cache-dir", str(cache)]
    alone, both = tmp_path / "mine.pt", tmp_path / "both.pt"
    assert cli.main(["train", "--corpora", "mine", "--out", str(alone), *tiny]) == 0
    assert cli.main(["train", "--corpora", "bach", "mine", "--out", str(both), *tiny]) == 0
    assert pipeline.load(alone).styles == ("mine",)
    assert pipeline.load(both).styles == ("bach", "mine")  # bach from assets/data, mine from --cache-dir
    capsys.readouterr()
    samples = tmp_path / "samples"
    assert cli.main(["generate", "--checkpoint", str(both), "--style", "mine", "--n", "1", "--steps", "2",
                     "--out", str(samples), "--quiet", "--threads", "1"]) == 0
    assert len(list(samples.glob("sample_*.mid"))) == 1
    assert cli.main(["generate", "--checkpoint", str(alone), "--style", "folk", "--n", "1", "--steps", "2",
                     "--out", str(tmp_path / "no"), "--quiet", "--threads", "1"]) == 2
    assert "unknown style 'folk'" in capsys.readouterr().err
