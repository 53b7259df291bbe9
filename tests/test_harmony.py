"""harmony: voice-leading metrics on hand-made voices and real chorales, masks, melody placement,
inpainting voices with a tiny untrained model (only what is kept and what changes is checked)."""
import numpy as np
import pretty_midi
import pytest
import torch

from course_lib import data, encoding, harmony, metrics, models, music, schedules
from course_lib.train import Checkpoint

torch.set_num_threads(1)
SPEC = music.CHORALE
S = harmony.SILENT


def roll_of(voices, spec=SPEC):
    """A roll from per-voice pitch lists (one MIDI pitch or S per step; a new note on each change)."""
    steps = len(voices[0])
    rows = []
    for track, pitches in enumerate(voices):
        for step, pitch in enumerate(pitches):
            if pitch == S:
                continue
            if rows and rows[-1][0] == track and rows[-1][1] == pitch and rows[-1][3] == step:
                rows[-1][3] = step + 1  # the same pitch continues: a longer note
            else:
                rows.append([track, pitch, step, step + 1])
    return music.notes_to_roll(np.array(rows, dtype=int).reshape(-1, 4), spec, steps)


# --------------------------------------------------------------------------- reading voices

def test_voice_pitches_top_note_and_rests():
    roll = roll_of([[72, 72, S, 74], [67, 65, 65, S], [S] * 4, [48, 48, 48, 48]])
    roll[2, music.SUSTAIN, 60 - SPEC.low, 1] = roll[2, music.SUSTAIN, 64 - SPEC.low, 1] = True  # a chord
    pitches = harmony.voice_pitches(roll)
    assert pitches.tolist() == [[72, 72, S, 74], [67, 65, 65, S], [S, 64, S, S], [48, 48, 48, 48]]
    assert harmony.voice_pitches(np.stack([roll, roll])).shape == (2, 4, 4)


def test_voice_crossing_counts_adjacent_pairs_where_both_sound():
    # 4 steps x 3 adjacent pairs; the alto is above the soprano on step 1 and in unison on step 2
    roll = roll_of([[72, 70, 69, S], [67, 71, 69, 67], [60, 60, 60, 60], [48, 48, 48, 48]])
    # comparisons: S-A on steps 0-2 (3), A-T 4, T-B 4 = 11; crossed: S-A step 1 only
    assert harmony.voice_crossing(roll) == pytest.approx(1 / 11)
    swapped = roll[[1, 0, 2, 3]]  # soprano and alto exchanged: 10 comparisons, crossed on step 0
    assert harmony.voice_crossing(swapped) == pytest.approx(1 / 10)
    assert np.isnan(harmony.voice_crossing(roll_of([[72] * 4, [S] * 4, [S] * 4, [S] * 4])))


def test_spacing_violations_upper_pairs_only():
    # S-A 13 apart (a violation) on step 0, 12 (an octave: allowed) on step 1; T-B 24 apart (allowed)
    roll = roll_of([[80, 79, 72, 72], [67, 67, 67, 67], [60, 60, 60, 60], [36, 36, 36, 36]])
    assert harmony.spacing_violations(roll) == pytest.approx(1 / 8)
    assert harmony.spacing_violations(roll, limit=11) == pytest.approx(2 / 8)
    melody_only = music.RollSpec(("melody",))
    assert np.isnan(harmony.spacing_violations(np.zeros((1, 2, 48, 16), bool), melody_only))


def test_parallel_count_rules():
    fifths = harmony.parallel_count([67, 69, 71], [60, 62, 64])  # parallel fifths twice
    assert fifths == 2
    assert harmony.parallel_count([79, 81], [60, 62]) == 1  # a compound fifth (19 semitones) counts
    assert harmony.parallel_count([72, 74], [60, 62]) == 1  # octaves
    assert harmony.parallel_count([67, 79], [60, 60]) == 0  # oblique: the upper voice leaps an octave
    assert harmony.parallel_count([67, 62], [60, 67]) == 0  # contrary motion into a fifth
    assert harmony.parallel_count([67, 67], [60, 60]) == 0  # no motion
    assert harmony.parallel_count([67, 68], [60, 61]) == 1  # chromatic, but still parallel fifths
    assert harmony.parallel_count([67, S, 71], [60, 62, 64]) == 0  # a rest breaks the line
    assert harmony.parallel_count([64, 66], [60, 62]) == 0  # parallel thirds are fine
    batch = harmony.parallel_count(np.array([[67, 69], [64, 65]]), np.array([[60, 62], [60, 62]]))
    assert np.asarray(batch).tolist() == [1, 0]
    with pytest.raises(ValueError, match="same shape"):
        harmony.parallel_count([60, 62], [60])


def test_parallel_count_agrees_with_metrics():
    rng = np.random.default_rng(0)
    pitches = rng.choice([S, 48, 55, 60, 62, 64, 67, 72], size=(6, 4, 32))
    pitches[:, :, 1::2] = pitches[:, :, ::2]  # held notes too
    rolls = np.stack([roll_of(p.tolist()) for p in pitches])
    for roll, p in zip(rolls, pitches):
        both = (p[:, :-1] != S) & (p[:, 1:] != S)
        moves = np.diff(p, axis=1) != 0
        transitions = sum(int((both[i] & both[j] & (moves[i] | moves[j])).sum())
                          for i in range(4) for j in range(i + 1, 4))
        per_100 = metrics.parallels_per_100(roll)
        counted = harmony.parallels_by_pair(roll).sum()
        if transitions:
            assert counted == pytest.approx(per_100 * transitions / 100)
        assert np.all(np.tril(harmony.parallels_by_pair(roll)) == 0)


def test_coordination_real_chorales_beat_noise():
    bach = data.load_corpus("bach")
    real = np.stack([music.crop(bach.roll(i), 0, 4) for i in range(12)])
    rng = np.random.default_rng(1)
    noise = np.stack([roll_of(rng.integers(40, 80, size=(4, 64)).tolist()) for _ in range(4)])
    ours, floor = harmony.coordination(real), harmony.coordination(noise)
    assert list(ours) == list(harmony.COORDINATION)
    assert ours["voice_crossing"] < 0.05 < floor["voice_crossing"]
    assert ours["spacing_violations"] < 0.1 < floor["spacing_violations"]
    assert ours["consonance"] > floor["consonance"]
    assert ours["parallels_per_100"] < floor["parallels_per_100"]


# --------------------------------------------------------------------------- masks

@pytest.mark.parametrize("enc", [encoding.VoiceEncoding(SPEC), encoding.PianoRollEncoding(SPEC)])
def test_masks(enc):
    keep = harmony.known_tracks_mask(enc, [0], bars=2)
    assert tuple(keep.shape) == enc.shape(2)
    channels = enc.track_channels(0)
    assert keep[channels].eq(1).all() and keep.sum() == len(channels) * np.prod(enc.shape(2)[1:])
    regen = harmony.all_but_track_mask(enc, 2, bars=2)
    assert regen[enc.track_channels(2)].eq(0).all()
    assert regen.sum() == (SPEC.n_tracks - 1) * len(channels) * np.prod(enc.shape(2)[1:])
    with pytest.raises(ValueError, match="tracks"):
        harmony.known_tracks_mask(enc, [4])


# --------------------------------------------------------------------------- melodies

def test_fit_octave():
    assert harmony.fit_octave([48, 50, 52], 58, 81) == 12
    assert harmony.fit_octave([60, 72], 58, 81) == 0
    assert harmony.fit_octave([84, 86, 88], 58, 81) == -12
    with pytest.raises(ValueError):
        harmony.fit_octave([], 58, 81)


def test_melody_to_soprano_from_folk_roll_and_midi():
    folk = data.load_corpus("folk")
    melody = folk.roll(0)  # (1, 2, 48, steps), tonic C already
    roll, shift = harmony.melody_to_soprano(melody, bars=4)  # the key is C: octaves only
    assert roll.shape == (4, 2, 48, 64) and not roll[1:].any() and shift % 12 == 0
    later, _ = harmony.melody_to_soprano(melody, start_bar=1, bars=4)
    assert np.array_equal(later[..., :48], music.crop(roll, 1, 3))
    low, high = metrics.SATB_RANGES["soprano"]
    notes = music.roll_to_notes(roll)
    assert np.mean((notes[:, 1] >= low) & (notes[:, 1] <= high)) > 0.9
    # the same tune in D from a MIDI file comes back in C, at the same octave
    midi = music.roll_to_midi(music.transpose(melody, 2, music.MELODY), music.MELODY)
    from_midi, shift_d = harmony.melody_to_soprano(midi, bars=4)
    assert shift_d == shift - 2 and np.array_equal(from_midi, roll)
    with pytest.raises(ValueError, match="one-track roll"):
        harmony.melody_to_soprano(np.zeros((2, 2, 48, 64), bool))
    with pytest.raises(ValueError, match="no notes"):
        harmony.melody_to_soprano(np.zeros((1, 2, 48, 64), bool))


def test_melody_to_soprano_rejects_two_instruments():
    midi = pretty_midi.PrettyMIDI()
    for program in (0, 40):
        inst = pretty_midi.Instrument(program)
        inst.notes.append(pretty_midi.Note(80, 60, 0.0, 1.0))
        midi.instruments.append(inst)
    with pytest.raises(music.MidiError):
        harmony.melody_to_soprano(midi)


# --------------------------------------------------------------------------- inpainting (tiny model)

@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    enc = encoding.VoiceEncoding(SPEC)
    config = models.ModelConfig("unet1d", in_channels=enc.shape()[0], channels=64, channel_mults=(1, 2),
                                n_res_blocks=1, attention=False, time_dim=32, prediction="v", n_styles=2,
                                use_mode=True, use_density=True)
    return Checkpoint(models.build_model(config).eval(), schedules.make_schedule("cosine", 100), enc)


def test_regenerate_tracks_keeps_the_others(tiny):
    bach = data.load_corpus("bach")
    roll = music.crop(bach.roll(0), 0, 4)
    out = harmony.regenerate_tracks(tiny, roll, [2], n=2, steps=5, seed=0)
    assert out.shape == (2, *roll.shape)
    assert np.array_equal(out[:, [0, 1, 3]], np.repeat(roll[None, [0, 1, 3]], 2, axis=0))
    assert not np.array_equal(out[0, 2], roll[2])
    regenerate = harmony.voice_regenerator(tiny, steps=5)
    first, second = regenerate(roll, 1), regenerate(roll, 1)
    assert np.array_equal(first[[0, 2, 3]], roll[[0, 2, 3]]) and not np.array_equal(first[1], second[1])
    batch = np.stack([roll, music.crop(bach.roll(1), 0, 4)])  # two chorales, one new tenor each
    both = harmony.regenerate_tracks(tiny, batch, [2], steps=5, seed=0)
    assert both.shape == batch.shape and np.array_equal(both[:, [0, 1, 3]], batch[:, [0, 1, 3]])
    with pytest.raises(ValueError, match="once per roll"):
        harmony.regenerate_tracks(tiny, batch, [2], n=3, steps=5)
    with pytest.raises(ValueError, match="nothing is known"):
        harmony.regenerate_tracks(tiny, roll, [0, 1, 2, 3], steps=5)


def test_harmonize_windows(tiny):
    folk = data.load_corpus("folk")
    soprano, _ = harmony.melody_to_soprano(folk.roll(10), bars=7)
    long = harmony.harmonize(tiny, soprano, n=2, steps=4, seed=0)
    assert long.shape == (2, 4, 2, 48, 7 * 16)
    assert np.array_equal(long[:, 0], np.repeat(soprano[None, 0], 2, axis=0))  # the melody is kept
    assert long[:, 1:].any()
    short = harmony.harmonize(tiny, soprano[..., :64], n=2, steps=4, seed=0)
    assert np.array_equal(long[..., :64], short)  # later windows never rewrite harmonized bars
    other, _ = harmony.melody_to_soprano(folk.roll(13), bars=7)
    pair = harmony.harmonize(tiny, np.stack([soprano, other]), steps=4, seed=0)
    assert np.array_equal(pair[:, 0], np.stack([soprano[0], other[0]]))
    with pytest.raises(ValueError, match="at least 4 bars"):
        harmony.harmonize(tiny, soprano[..., :48], steps=4)
