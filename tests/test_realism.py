"""Tests for course_lib.realism: each voice-leading rate on hand-made four-voice windows with
hand-counted values, and the classifier two-sample test at its two ends (same source ~ 0.5,
different sources ~ 1.0) and with grouped folds."""
import numpy as np
import pytest

from course_lib import data, music, realism
from course_lib.music import CHORALE

S, A, T, B = range(4)


def window(rows, bars=1):
    """(track, pitch, start, end) rows -> a (4, 2, 48, 16·bars) roll."""
    return music.notes_to_roll(np.array(rows).reshape(-1, 4), CHORALE, bars * CHORALE.steps_per_bar)


def held_chord(s=72, a=67, t=64, b=48, steps=16):
    return [(S, s, 0, steps), (A, a, 0, steps), (T, t, 0, steps), (B, b, 0, steps)]


def test_a_clean_held_chord_breaks_no_rule():
    rates = realism.voice_leading(window(held_chord()))
    assert rates["crossing"][0] == 0 and rates["spacing"][0] == 0
    assert np.isnan(rates["parallels"][0])  # nothing moves: undefined, not 0
    assert np.isnan(rates["leaps"][0])  # one note per voice: no melodic interval
    assert rates["consonance"][0] == 1.0  # C major over C: every interval above the bass consonant


def test_crossing_counts_pairs_per_step():
    # alto above soprano for 8 of 16 steps: one crossed pair on 8 steps -> 8 / 16
    rows = [(S, 67, 0, 16), (A, 64, 0, 8), (A, 69, 8, 16), (T, 60, 0, 16), (B, 48, 0, 16)]
    assert realism.voice_leading(window(rows))["crossing"][0] == pytest.approx(0.5)
    # tenor above soprano AND alto for all steps: 2 pairs x 16 steps / 16 steps = 2
    rows = [(S, 67, 0, 16), (A, 64, 0, 16), (T, 70, 0, 16), (B, 48, 0, 16)]
    assert realism.voice_leading(window(rows))["crossing"][0] == pytest.approx(2.0)


def test_spacing_counts_upper_gaps_over_an_octave_only():
    wide_upper = held_chord(s=83, a=67, t=64, b=48)  # S-A 16 semitones
    assert realism.voice_leading(window(wide_upper))["spacing"][0] == pytest.approx(1.0)
    wide_bass = held_chord(s=72, a=67, t=64, b=40)  # T-B 24 semitones: allowed
    assert realism.voice_leading(window(wide_bass))["spacing"][0] == 0


def test_parallel_fifths_and_octaves_are_a_share_of_moving_pairs():
    # soprano and bass in octaves, both moving C -> D at step 8: a parallel octave. Alto and tenor hold.
    rows = [(S, 72, 0, 8), (S, 74, 8, 16), (A, 67, 0, 16), (T, 64, 0, 16), (B, 60, 0, 8), (B, 62, 8, 16)]
    rates = realism.voice_leading(window(rows))
    assert rates["parallels"][0] == pytest.approx(1.0)  # 1 pair moved with both changing, and it was parallel
    # contrary motion by step into an octave from a sixth: not parallel
    rows = [(S, 72, 0, 8), (S, 71, 8, 16), (A, 67, 0, 16), (T, 64, 0, 16), (B, 63, 0, 8), (B, 59, 8, 16)]
    assert realism.voice_leading(window(rows))["parallels"][0] == 0


def test_leaps_are_intervals_over_a_fifth_between_consecutive_notes():
    rows = held_chord(steps=16)[1:] + [(S, 72, 0, 4), (S, 80, 4, 8), (S, 79, 8, 12), (S, 79, 12, 16)]
    rates = realism.voice_leading(window(rows))
    # soprano intervals +8, -1, 0 (a repeated note): one leap in three intervals
    assert rates["leaps"][0] == pytest.approx(1 / 3)


def test_consonance_judges_every_upper_voice_against_the_bass():
    rows = held_chord(s=73)  # C# over C: a minor ninth above the bass
    assert realism.voice_leading(window(rows))["consonance"][0] == 0.0
    with pytest.raises(ValueError, match="four voices"):
        realism.voice_leading(np.zeros((1, 2, 48, 16), bool), music.MELODY)


def test_rates_on_real_chorales_match_what_bach_does():
    windows = data.WindowDataset(data.load_corpus("bach"), "test")
    rolls = np.stack([windows.roll(i) for i in range(0, len(windows), 3)])
    summary = realism.voice_leading_summary(rolls)
    assert summary["crossing"] < 0.05 and summary["spacing"] < 0.03 and summary["parallels"] < 0.006
    assert summary["leaps"] < 0.04 and 0.6 < summary["consonance"] < 0.8


def test_features_have_names_and_sum_to_one_per_histogram():
    rolls = np.stack([window(held_chord()), window(held_chord(s=83))])
    features = realism.window_features(rolls)
    assert features.shape == (2, len(realism.feature_names()))
    assert np.isfinite(features).all()
    names = realism.feature_names()
    onset = [k for k, n in enumerate(names) if n.startswith("onset at")]
    assert features[:, onset].sum(axis=1) == pytest.approx([1, 1])


def test_logistic_regression_separates_separable_data():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (100, 3)), rng.normal(2, 1, (100, 3))])
    y = np.r_[np.zeros(100), np.ones(100)]
    w = realism.fit_logistic(x, y)
    accuracy = (((np.c_[x, np.ones(200)] @ w) > 0) == y).mean()
    assert accuracy > 0.95 and w[:3].min() > 0


def test_two_sample_test_is_near_chance_for_one_source_and_near_one_for_two():
    rng = np.random.default_rng(1)
    same_a, same_b = rng.normal(0, 1, (300, 5)), rng.normal(0, 1, (300, 5))
    assert abs(realism.two_sample_test(same_a, same_b).accuracy - 0.5) < 0.08
    shifted = rng.normal(1.5, 1, (300, 5))
    result = realism.two_sample_test(shifted, same_b)
    assert result.accuracy > 0.9
    assert len(result.fold_accuracies) == 5 and result.n_per_class == 300


def test_grouped_folds_stop_a_classifier_from_recognising_pieces():
    # 20 "pieces", each 15 near-identical windows; both sets drawn from the same pool of piece styles.
    rng = np.random.default_rng(2)
    centres = rng.normal(0, 3, (40, 60))  # 40 points in 60-D: linearly separable
    a = np.concatenate([c + rng.normal(0, 0.05, (15, 60)) for c in centres[:20]])
    b = np.concatenate([c + rng.normal(0, 0.05, (15, 60)) for c in centres[20:]])
    groups_a, groups_b = np.repeat(np.arange(20), 15), np.repeat(np.arange(20), 15)
    ungrouped = realism.two_sample_test(a, b).accuracy
    grouped = realism.two_sample_test(a, b, groups=groups_b, sample_groups=groups_a).accuracy
    assert ungrouped > 0.85  # memorised the pieces
    assert grouped < ungrouped - 0.2
    with pytest.raises(ValueError, match="one label per window"):
        realism.two_sample_test(a, b, groups=groups_b[:10])
    with pytest.raises(ValueError, match="at least 10"):
        realism.two_sample_test(a[:4], b)


def test_the_lessons_comparison_table_puts_real_data_first_and_shows_multiples():
    real, pieces, _ = realism.real_windows("bach", "test")
    real, pieces = real[::2], pieces[::2]
    crossed = real[:40].copy()
    crossed[:, [S, B]] = crossed[:, [B, S]]  # soprano and bass swapped: every sounding step crosses
    table = realism.compare({"swapped": crossed, "copies": real[:40]}, real, real_groups=pieces)
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["set", "crossing"] and lines[0].rstrip().endswith("C2ST")
    assert [line.split()[0] for line in lines[2:5]] == ["real", "swapped", "copies"]
    rates = realism.voice_leading_summary(crossed)
    real_rate = realism.voice_leading_summary(real)["crossing"]
    assert f"{rates['crossing']:.4f} ({rates['crossing'] / real_rate:.1f}x)" in lines[3]
    swapped_c2st, copies_c2st = float(lines[3].split()[-1]), float(lines[4].split()[-1])
    assert swapped_c2st > 0.9 and copies_c2st < swapped_c2st
    assert "0.5 = cannot tell them apart" in table
    no_test = realism.compare({"copies": real[:40]}, real, c2st=False)
    assert "C2ST" not in no_test.splitlines()[0]
