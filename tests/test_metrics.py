"""Tests for course_lib.metrics: hand-made rolls with hand-computed values, a real Bach chorale
near the ceiling, and noise near the floor."""
import math

import numpy as np
import pytest

from course_lib import metrics, music
from course_lib.music import CHORALE, MELODY

S, A, T, B = range(4)  # track indices of the chorale spec


def make_roll(notes, spec=CHORALE, bars=1):
    """Note table rows (track, MIDI pitch, start, end) -> boolean roll of ``bars`` bars."""
    return music.notes_to_roll(np.array(notes).reshape(-1, 4), spec, bars * spec.steps_per_bar)


def chorale_roll(name="bach/bwv66.6", spec=CHORALE):
    """A music21 corpus chorale -> roll: each part's notes (ties merged) at offset x 4 steps."""
    from music21 import corpus

    rows = []
    for track, part in enumerate(corpus.parse(name).parts[:spec.n_tracks]):
        for n in part.stripTies().flatten().notes:
            start, end = round(float(n.offset) * 4), round(float(n.offset + n.quarterLength) * 4)
            rows += [(track, p.midi, start, end) for p in n.pitches if end > start]
    steps = -(-max(r[3] for r in rows) // spec.steps_per_bar) * spec.steps_per_bar
    return music.notes_to_roll(np.array(rows), spec, steps)


@pytest.fixture(scope="module")
def bach():
    return chorale_roll()


@pytest.fixture(scope="module")
def noise():
    """What decoding pure Gaussian noise gives: every cell on with probability 1/2."""
    return np.random.default_rng(0).random((8, *CHORALE.shape(4))) < 0.5


# --------------------------------------------------------------------------- hand-made rolls

C_MAJOR_TRIAD = [(S, 67, 0, 4), (A, 64, 0, 4), (T, 60, 0, 4)]  # G4 E4 C4 held 4 steps, bass rests


def test_held_triad_every_metric():
    roll = make_roll(C_MAJOR_TRIAD)  # one bar, notes only in beat 1
    assert metrics.consonance(roll) == 1.0
    assert metrics.polyphony(roll) == 3.0
    assert metrics.monophony(roll) == 1.0
    assert metrics.voice_silence(roll) == pytest.approx((64 - 12) / 64)  # 4 voices x 16 steps, 12 sound
    assert metrics.empty_beat_rate(roll) == pytest.approx(3 / 4)
    assert metrics.onsets_per_bar(roll) == 3.0
    assert metrics.note_length(roll) == 4.0
    assert metrics.range_adherence(roll) == 1.0
    assert metrics.scale_consistency(roll) == 1.0
    assert metrics.pitch_class_entropy(roll) == pytest.approx(math.log2(3))
    assert math.isnan(metrics.parallels_per_100(roll))  # nothing moves


def test_two_bars_halve_onsets_per_bar_and_count_each_empty_beat():
    roll = make_roll([(S, 72, 0, 2), (S, 72, 2, 4), (S, 74, 20, 24)], bars=2)  # C5 C5 rest D5 rest
    assert metrics.onsets_per_bar(roll) == 1.5  # 3 notes (the repeated C5 counts twice) / 2 bars
    assert metrics.empty_beat_rate(roll) == pytest.approx(6 / 8)  # beats 1 and 6 sound
    assert metrics.note_length(roll) == pytest.approx(8 / 3)


def test_two_notes_in_one_voice_lower_monophony():
    # soprano sings C5 and E5 together for 4 steps, alto a single G4 for 4 steps:
    # 8 (voice, step) pairs sound, 4 of them with exactly one pitch
    roll = make_roll([(S, 72, 0, 4), (S, 76, 0, 4), (A, 67, 0, 4)])
    assert metrics.monophony(roll) == pytest.approx(0.5)
    roll = make_roll([(S, 72, 0, 4), (S, 76, 2, 4), (A, 67, 0, 4)])  # E5 joins for 2 steps only
    assert metrics.monophony(roll) == pytest.approx(6 / 8)


def test_a_known_parallel_fifth_counts_exactly_once():
    notes = [(S, 67, 0, 4), (S, 69, 4, 8),  # soprano G4 -> A4
             (A, 64, 0, 8),  # alto holds E4: oblique motion against both others
             (B, 48, 0, 4), (B, 50, 4, 8)]  # bass C3 -> D3: a compound fifth to a compound fifth, both up
    roll = make_roll(notes)
    # transitions at step 3->4: (S, A), (S, B), (A, B); only (S, B) is parallel
    assert metrics.parallels_per_100(roll) == pytest.approx(100 / 3)


def test_octaves_by_contrary_motion_or_repeated_notes_are_not_parallels():
    contrary = make_roll([(S, 72, 0, 4), (S, 74, 4, 8), (B, 48, 0, 4), (B, 38, 4, 8)])  # C5->D5, C3->D2
    assert metrics.parallels_per_100(contrary) == 0.0
    repeated = make_roll([(S, 67, 0, 4), (S, 67, 4, 8), (B, 48, 0, 4), (B, 48, 4, 8)])  # re-struck fifth
    assert math.isnan(metrics.parallels_per_100(repeated))  # no pitch changes: no transition
    octaves = make_roll([(S, 72, 0, 4), (S, 74, 4, 8), (B, 48, 0, 4), (B, 50, 4, 8)])  # C->D in octaves
    assert metrics.parallels_per_100(octaves) == 100.0


@pytest.mark.parametrize("pitches, consonant", [
    ([60, 64, 67], True),  # C major triad, root position
    ([52, 60, 67, 72], True),  # C major, first inversion (E in the bass)
    ([57, 60, 64], True),  # A minor triad
    ([48, 60, 72], True),  # octaves
    ([48, 67], True),  # a compound fifth
    ([43, 60, 64], False),  # 6/4: C is a fourth above the bass G
    ([48, 65], False),  # a bare fourth above the bass
    ([43, 59, 65, 74], False),  # G7
    ([60, 64, 68], False),  # augmented triad
    ([60, 62], False),  # a second
])
def test_is_consonant(pitches, consonant):
    assert metrics.is_consonant(pitches) == consonant


def test_consonance_counts_steps_with_three_voices():
    notes = [(S, 67, 0, 4), (A, 64, 0, 4), (T, 60, 0, 4),  # steps 0-3: C major triad
             (S, 65, 4, 8), (A, 62, 4, 8), (T, 59, 4, 8), (B, 43, 4, 8),  # steps 4-7: G7
             (S, 72, 8, 12), (A, 66, 8, 12)]  # steps 8-11: only two voices, not judged
    assert metrics.consonance(make_roll(notes)) == pytest.approx(0.5)
    two_tracks = music.RollSpec(tracks=("upper", "lower"))  # two-track music judges every dyad
    roll = make_roll([(0, 72, 0, 4), (1, 60, 0, 4), (0, 65, 4, 8), (1, 60, 4, 8)], two_tracks)
    assert metrics.consonance(roll, two_tracks) == pytest.approx(0.5)  # octave yes, fourth no
    assert math.isnan(metrics.consonance(make_roll([(0, 60, 0, 4)], MELODY), MELODY))


def test_range_uses_satb_ranges_by_track_name():
    roll = make_roll([(S, 72, 0, 4), (S, 48, 4, 8), (B, 48, 0, 8)])  # C3 is no soprano note
    assert metrics.range_adherence(roll) == pytest.approx(2 / 3)
    melody = make_roll([(0, 40, 0, 4), (0, 80, 4, 8)], MELODY)  # other names: the spec's range
    assert metrics.range_adherence(melody, MELODY) == 1.0


def test_scale_consistency_and_entropy_of_scales():
    c_major = make_roll([(S, p, 2 * k, 2 * k + 2) for k, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])])
    assert metrics.scale_consistency(c_major) == 1.0
    # 8 notes: six pitch classes once, C twice
    assert metrics.pitch_class_entropy(c_major) == pytest.approx(-(6 / 8 * math.log2(1 / 8)
                                                                   + 2 / 8 * math.log2(2 / 8)))
    chromatic = make_roll([(S, 60 + k, k, k + 1) for k in range(12)])
    assert metrics.scale_consistency(chromatic) == pytest.approx(7 / 12)
    assert metrics.pitch_class_entropy(chromatic) == pytest.approx(math.log2(12))


def test_pitch_class_histogram_overlap_and_kl():
    a = make_roll([(S, 72, 0, 12), (A, 67, 0, 4)])  # C for 12 steps, G for 4
    assert np.allclose(metrics.pitch_class_histogram(a), np.eye(12)[0] * 0.75 + np.eye(12)[7] * 0.25)
    p = metrics.pitch_class_histogram(a)
    q = metrics.pitch_class_histogram(make_roll([(S, 74, 0, 4)]))  # D only
    assert metrics.histogram_overlap(p, p) == 1.0 and metrics.kl_divergence(p, p) == 0.0
    assert metrics.histogram_overlap(p, q) == 0.0 and metrics.kl_divergence(p, q) > 5
    both = metrics.pitch_class_histogram(np.stack([a, a]))  # a set: durations summed over its rolls
    assert np.allclose(both, p)


def test_note_counts_agree_with_roll_to_notes():
    rng = np.random.default_rng(1)
    rolls = rng.random((5, *CHORALE.shape(2))) < 0.1  # onsets without sustain, sustains without onsets
    for roll in rolls:
        notes = music.roll_to_notes(roll, CHORALE)
        assert metrics.onsets_per_bar(roll) * 2 == len(notes)
        assert metrics.note_length(roll) == pytest.approx(np.mean(notes[:, 3] - notes[:, 2]))


def test_batches_floats_and_tensors_match_single_bool_rolls():
    import torch

    rng = np.random.default_rng(2)
    rolls = rng.random((3, *CHORALE.shape(1))) < 0.2
    batch = metrics.consonance(rolls)
    assert batch.shape == (3,)
    assert np.allclose(batch, [metrics.consonance(r) for r in rolls])
    as_float = np.where(rolls, 0.9, 0.1).astype(np.float32)
    assert np.allclose(metrics.monophony(as_float), metrics.monophony(rolls))
    assert np.allclose(metrics.monophony(torch.from_numpy(as_float)), metrics.monophony(rolls))


# --------------------------------------------------------------------------- key and mode

def arpeggio_piece(chords):
    """Two bars: soprano arpeggiates each chord in 8ths, bass holds its root for a bar each."""
    notes = []
    for bar, chord in enumerate(chords):
        for k in range(8):
            notes.append((S, chord[1:][k % 3], 16 * bar + 2 * k, 16 * bar + 2 * k + 2))
        notes.append((B, chord[0], 16 * bar, 16 * bar + 16))
    return make_roll(notes, bars=len(chords))


def test_key_of_arpeggio_pieces():
    c_major = arpeggio_piece([(48, 60, 64, 67), (43, 67, 71, 74), (48, 64, 67, 72)])  # C G C
    assert metrics.key_of_roll(c_major) == ("C", 0)
    a_minor = arpeggio_piece([(45, 69, 72, 76), (40, 68, 71, 76), (45, 69, 72, 76)])  # Am E Am
    assert metrics.key_of_roll(a_minor) == ("A", 1)
    assert metrics.key_of_roll(make_roll([])) == (None, -1)


def test_key_of_roll_agrees_with_music21_on_every_note(bach):
    from music21 import note, stream

    for roll in (bach, music.crop(bach, 2, 4)):
        full = stream.Stream()
        for _, pitch, start, end in music.roll_to_notes(roll, CHORALE):
            full.insert(start / 4, note.Note(int(pitch), quarterLength=(end - start) / 4))
        expected = full.analyze("key")
        assert metrics.key_of_roll(roll) == (expected.tonic.name, 0 if expected.mode == "major" else 1)
    assert metrics.key_of_roll(bach) == ("F#", 1)  # bwv66.6 is in F# minor


# --------------------------------------------------------------------------- ceiling and floor

def test_bach_scores_near_the_ceiling_and_noise_near_the_floor(bach, noise):
    real = metrics.evaluate(bach[None], reference=bach, requested_modes=[1])
    floor = metrics.evaluate(noise, reference=bach, requested_modes=np.zeros(len(noise), int))
    assert real["monophony"] > 0.95 and floor["monophony"] < 0.1
    assert real["consonance"] > 0.4 and floor["consonance"] < 0.1
    assert real["range"] > 0.95 and floor["range"] < 0.7
    assert real["scale_consistency"] > 0.9 and floor["scale_consistency"] < 0.7
    assert real["pitch_class_overlap"] == pytest.approx(1.0) and floor["pitch_class_overlap"] < 0.9
    assert real["pitch_class_kl"] == pytest.approx(0.0, abs=1e-12) and floor["pitch_class_kl"] > 0.05
    assert real["parallels_per_100"] < 2 < floor["parallels_per_100"]
    assert 10 < real["onsets_per_bar"] < 25 and floor["onsets_per_bar"] > 500
    assert real["mode_accuracy"] == 1.0
    assert real["voice_silence"] < 0.05 and real["empty_beat_rate"] < 0.05
    assert 3 <= real["polyphony"] <= 4


def test_compare_to_reference_and_table(bach, noise):
    real = metrics.evaluate(bach[None], reference=bach)
    floor = metrics.evaluate(noise, reference=bach)
    assert all(metrics.compare_to_reference(real, real).values())
    assert not any(metrics.compare_to_reference(floor, real).values())
    close = {**real, "consonance": real["consonance"] * 1.14, "onsets_per_bar": real["onsets_per_bar"] * 0.8}
    flags = metrics.compare_to_reference(close, real)
    assert flags["consonance"] and not flags["onsets_per_bar"]
    assert "mode_accuracy" not in flags  # not measured, not judged
    table = metrics.format_table({"real (ceiling)": real, "noise (floor)": floor})
    lines = table.splitlines()
    assert "real (ceiling)" in lines[0] and "noise (floor)" in lines[0]
    assert any(line.startswith("consonant sonorities") for line in lines)
    assert len(lines) == 2 + len(real)  # header, rule, one row per metric


def test_melody_spec_evaluates():
    roll = make_roll([(0, 72, 0, 4), (0, 74, 4, 8), (0, 76, 8, 16)], MELODY)
    result = metrics.evaluate([roll, roll], MELODY)  # a list of rolls is a set too
    assert math.isnan(result["consonance"]) and math.isnan(result["parallels_per_100"])
    assert result["monophony"] == 1.0 and result["onsets_per_bar"] == 3.0
    assert "-" in metrics.format_table({"melody": result})


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="expected"):
        metrics.monophony(np.zeros((4, 2, 40, 16)))  # wrong pitch count for CHORALE
    with pytest.raises(ValueError, match="crop"):
        metrics.evaluate([make_roll([]), make_roll([], bars=2)])
    with pytest.raises(ValueError, match="no music"):
        metrics.evaluate([])
    with pytest.raises(ValueError, match="requested_modes"):
        metrics.evaluate(np.zeros((2, *CHORALE.shape(1)), bool), requested_modes=[0])
    with pytest.raises(ValueError, match="one roll"):
        metrics.key_of_roll(np.zeros((2, *CHORALE.shape(1)), bool))
