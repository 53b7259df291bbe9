"""course_lib.longform (whole pieces with a form), the long-form measures in course_lib.metrics,
viz.plot_self_similarity and ``generate --bars/--form``. Uses the bundled checkpoint with a few DDIM
steps (seeded): these tests check the plan and its mechanics, not how good the music is."""
import numpy as np
import pytest
import torch

from course_lib import cli, data, guidance, inputs, longform, metrics, music, pipeline, soundtrack, viz

torch.set_num_threads(1)
STEPS = 4  # DDIM steps per window: every code path, cheaply
SPEC = music.CHORALE
SPB = SPEC.steps_per_bar


@pytest.fixture(scope="module")
def ckpt():
    return pipeline.load()


@pytest.fixture(scope="module")
def piece(ckpt):
    return longform.generate_piece(ckpt, 2, bars=16, form="A A' B A", steps=STEPS, seed=3)


def chord(notes_by_track, start, end):
    """[(track, pitch), ...] held from step start to end -> note-table rows."""
    return [(track, pitch, start, end) for track, pitch in notes_by_track]


# --------------------------------------------------------------------------- the form

def test_parse_form_names_each_section_and_how_it_is_made():
    form = longform.parse_form("A A' B A", 16)
    assert form.names == ["A", "A'", "B", "A"] and str(form) == "A A' B A"
    assert [(s.kind, s.source) for s in form.sections] == [("new", None), ("variation", 0), ("new", None),
                                                           ("repeat", 0)]
    assert [s.first_bar for s in form.sections] == [0, 4, 8, 12] and form.phrase_ends == [3, 7, 11, 15]
    for spelling in ("AA'BA", "a a′ b a", ["A", "A’", "B", "A"]):  # compact, lower case, typographic primes
        assert longform.parse_form(spelling, 16).names == form.names
    abab = longform.parse_form("A B A' B", 32)
    assert abab.section_bars == 8 and [(s.kind, s.source) for s in abab.sections][2:] == [("variation", 0),
                                                                                         ("repeat", 1)]
    # A'' varies the latest A before it (the A'), and a second A' repeats the first A'
    chain = longform.parse_form("A A' A'' A'", 8)
    assert [(s.kind, s.source) for s in chain.sections] == [("new", None), ("variation", 0), ("variation", 1),
                                                            ("repeat", 1)]


@pytest.mark.parametrize("form, bars, message", [
    ("A B C", 16, "do not divide"), ("ABCDEFGH", 8, "at least 2"), ("A 1 B", 8, "'1' is neither"),
    ("'A", 8, "a prime must follow"), ("A B'", 8, "varies an earlier B"), ("", 8, "bad form"),
    ("AABA", 3, "bars"), ("AABA", 80, "bars"),
])
def test_parse_form_refuses_what_it_cannot_plan(form, bars, message):
    with pytest.raises(inputs.InputError, match=message):
        longform.parse_form(form, bars)


# --------------------------------------------------------------------------- generation

def test_piece_has_its_shape_repeats_and_a_plan_in_words(ckpt, piece):
    assert piece.rolls.shape == (2, SPEC.n_tracks, 2, SPEC.n_pitches, 16 * SPB) and piece.rolls.dtype == bool
    assert piece.x.shape == (2, *ckpt.encoding.shape(16))
    a, last_a = piece.x[..., :4 * SPB], piece.x[..., 12 * SPB:]
    assert torch.equal(a, last_a)  # the last A is the first one again
    variation = piece.x[..., 4 * SPB:8 * SPB]
    b = piece.x[..., 8 * SPB:12 * SPB]
    assert not torch.equal(variation, a)
    # the variation keeps the broad shape: it is closer to its A than the contrasting B is
    assert (variation - a).square().mean() < (b - a).square().mean()
    text = piece.describe()
    assert "A'   bars 5-8: variation of section 1" in text and "A    bars 13-16: repeat of section 1" in text
    assert "cadence at bar 12" in text


def test_windows_overlap_and_keep_the_bars_before_them(piece):
    windows = piece.windows
    assert windows[0]["known_bars"] == [] and windows[0]["new_bars"] == (0, 4)
    written = set(range(4)) | set(range(12, 16))  # after the first window: A, and the repeat placed ahead
    for w in windows[1:]:
        first, (start, end) = w["first_bar"], w["new_bars"]
        assert start - 1 in w["known_bars"], "a continuation keeps the bar before the new ones"
        assert set(w["known_bars"]) <= written and first <= start < end <= first + longform.WINDOW_BARS
        written |= set(range(start, end))
    assert written == set(range(16))
    # B's last window ends on the repeated A's first bar: it keeps music on both sides (an infill)
    assert windows[-1]["known_bars"][-1] == 12 and windows[-1]["cadence_bar"] == 11
    assert [w["cadence_bar"] for w in windows if w["cadence_bar"] is not None] == [3, 7, 11]


def test_seeds_make_pieces_reproducible(ckpt):
    one = longform.generate_piece(ckpt, bars=8, form="AB", steps=2, seed=5)
    two = longform.generate_piece(ckpt, bars=8, form="AB", steps=2, seed=5)
    other = longform.generate_piece(ckpt, bars=8, form="AB", steps=2, seed=6)
    assert torch.equal(one.x, two.x) and not torch.equal(one.x, other.x)


def test_cadence_guidance_pulls_phrase_ends_toward_dominant_tonic(ckpt):
    """Same seeds, with and without the cadence penalty: the closing bars move toward V -> I."""
    def closing_penalty(piece):
        enc, total = ckpt.encoding, 0.0
        for bar in piece.form.phrase_ends:
            penalty = guidance.cadence_penalty(enc, bar * SPB, (bar + 1) * SPB, mode="major")
            total += float(penalty(piece.x).mean())
        return total

    options = dict(n=4, bars=8, form="A B", steps=6, seed=0)
    free = longform.generate_piece(ckpt, cadence_scale=0.0, **options)
    steered = longform.generate_piece(ckpt, cadence_scale=2.0, **options)
    assert all(w["cadence_bar"] is None for w in free.windows)
    assert closing_penalty(steered) < 0.7 * closing_penalty(free)


def test_variation_strength_zero_is_a_repeat(ckpt):
    piece = longform.generate_piece(ckpt, bars=8, form="A A'", steps=2, variation_strength=0.0, cadence_scale=0.0)
    assert torch.allclose(piece.x[..., :4 * SPB], piece.x[..., 4 * SPB:])


def test_independent_windows_lay_samples_end_to_end(ckpt):
    rolls = longform.independent_windows(ckpt, 2, bars=8, steps=2, seed=1)
    assert rolls.shape == (2, SPEC.n_tracks, 2, SPEC.n_pitches, 8 * SPB)
    windows = pipeline.generate(ckpt, 4, mode="major", steps=2, seed=1)  # the same four samples, in order
    assert np.array_equal(rolls[0], np.concatenate([windows[0], windows[1]], axis=-1))
    with pytest.raises(inputs.InputError, match="whole windows"):
        longform.independent_windows(ckpt, bars=10)


# --------------------------------------------------------------------------- measures

def test_self_similarity_and_form_contrast_see_repeats():
    chorale = data.load_corpus("bach").roll(0)[..., :8 * SPB]  # 8 real bars
    a, b = chorale[..., :4 * SPB], chorale[..., 4 * SPB:]
    aaba = np.concatenate([a, a, b, a], axis=-1)
    matrix = metrics.self_similarity(aaba, SPEC)
    assert matrix.shape == (16, 16) and np.allclose(np.diag(matrix)[~np.isnan(np.diag(matrix))], 1)
    assert np.allclose(matrix[:4, 4:8], matrix[:4, :4], equal_nan=True)  # bars 1-4 == bars 5-8
    sections = metrics.section_similarity(matrix, 4)
    assert np.isclose(sections[0, 1], 1) and sections[0, 2] < 0.9
    contrast = metrics.form_contrast(aaba, "A A' B A", SPEC)
    assert np.isclose(contrast["same"][0], 1) and contrast["contrast"][0] > metrics.FORM_MARGIN
    assert metrics.form_match(aaba, "AABA", SPEC) == 1.0
    assert metrics.form_match(aaba, "ABAB", SPEC) == 0.0  # the planned returns are not there
    silent = np.zeros_like(aaba)
    assert np.isnan(metrics.self_similarity(silent, SPEC)).all()
    assert metrics.form_letters("A A' b A''") == ["A", "A", "B", "A"]


def test_barline_leaps_measure_each_voice_across_internal_bar_lines():
    notes = [(0, 72, 0, 16), (0, 79, 16, 32), (0, 77, 32, 48),  # soprano C5 | G5 | F5: leaps 7, 2
             (3, 48, 0, 48)]  # the bass holds C3: no note starts after bar 1
    leaps = metrics.barline_leaps(music.notes_to_roll(notes, SPEC, 3 * SPB), SPEC)
    assert leaps.shape == (1, 2, 4)
    assert leaps[0, :, 0].tolist() == [7, 2] and np.isnan(leaps[0, :, 1:]).all()


def test_key_stability_counts_bars_on_the_scale():
    c_major = chord([(0, 72), (1, 67), (2, 64), (3, 48)], 0, 16)
    f_sharp = chord([(0, 78), (1, 66), (2, 61), (3, 54)], 16, 32)  # F# C#: off C major
    roll = music.notes_to_roll(c_major + f_sharp + chord([(0, 74), (1, 67), (2, 59), (3, 43)], 32, 48), SPEC, 48)
    assert metrics.key_stability(roll, SPEC, tonic=0, mode="major") == pytest.approx(2 / 3)
    assert metrics.key_stability(roll[..., :16], SPEC) == 1.0  # analysed: C major


def test_cadences_read_the_chord_a_phrase_ends_on():
    dominant = chord([(0, 71), (1, 67), (2, 62), (3, 43)], 0, 8)  # G chord ...
    tonic = chord([(0, 72), (1, 67), (2, 64), (3, 48)], 8, 16)  # ... then C with C in the bass: V -> I
    inverted = chord([(0, 72), (1, 67), (2, 60), (3, 52)], 24, 32)  # C over E: not a full close
    roll = music.notes_to_roll(dominant + tonic + chord([(0, 71), (3, 43)], 16, 24) + inverted, SPEC, 2 * SPB)
    assert metrics.ends_on_tonic(roll, [0, 1], SPEC, tonic=0, mode="major").tolist() == [[1.0, 0.0]]
    assert metrics.phrase_cadences(roll, [0], SPEC, tonic=0, mode="major") == 1.0
    assert metrics.phrase_cadences(roll, [1], SPEC, tonic=0, mode="major") == 0.0


def test_plot_self_similarity_marks_the_sections():
    import matplotlib.pyplot as plt

    ax = viz.plot_self_similarity(np.eye(8), form="A A' B A")
    assert [t.get_text() for t in ax.texts] == ["A", "A'", "B", "A"] and ax.get_xlabel() == "bar"
    with pytest.raises(ValueError, match="equal sections"):
        viz.plot_self_similarity(np.eye(8), form="ABC")
    plt.close("all")


# --------------------------------------------------------------------------- the command line

def test_generate_writes_a_long_form_piece(tmp_path, capsys):
    out = tmp_path / "piece"
    assert cli.main(["generate", "--bars", "8", "--form", "A A'", "--n", "1", "--steps", "2", "--threads", "1",
                     "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "form A A' over 8 bars" in printed and "variation of section 1" in printed
    midi = music.load_midi(out / "sample_00.mid")
    assert midi.get_end_time() > 0.9 * pipeline.duration_seconds(7 * SPB, SPEC)  # 8 bars, not one window
    assert cli.main(["generate", "--bars", "16", "--form", "ABC", "--out", str(tmp_path / "bad")]) == 2
    assert "do not divide" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert cli.main(["generate", "--bars", "12", "--out", str(tmp_path / "bad")]) == 2


# --------------------------------------------------------------------------- the adaptive soundtrack

def test_a_game_state_can_follow_a_form(ckpt):
    states = {"exploration": {"style": "folk", "mode": "major", "form": "A A' B A"},
              "battle": {"style": "bach", "mode": "minor"}}
    engine = soundtrack.SoundtrackEngine(ckpt, states, steps=2, guidance_scale=0.0)
    track = engine.render([("exploration", 16), ("battle", 2)])
    explore = [w for w in engine.windows if w.state == "exploration"]
    assert [(w.first_bar, w.new_bars, w.how) for w in explore] == [
        (0, 4, "new"), (4, 2, "variation"), (6, 2, "variation"), (8, 2, "new"), (10, 2, "new"), (12, 4, "repeat")]
    assert [w.cadence_bar for w in explore if w.cadence_bar is not None] == [3, 7, 11]
    # the last A is the first again, but for its last bar: the bridge into battle regenerated it
    assert np.array_equal(track.roll[..., :3 * SPB], track.roll[..., 12 * SPB:15 * SPB])
    assert track.transition.tolist().index(True) == 15
    assert not np.array_equal(track.roll[..., :4 * SPB], track.roll[..., 4 * SPB:8 * SPB])  # A' is varied
    assert track.bars == 18 and all(w.how == "continuation" for w in engine.windows if w.state == "battle")


def test_a_form_the_engine_cannot_plan_names_its_state():
    with pytest.raises(ValueError, match="state 'calm'.*varies an earlier B"):
        soundtrack.check_states({"calm": {"style": "folk", "form": "A B'"}})
    with pytest.raises(ValueError, match="state 'calm'.*bad form"):
        soundtrack.check_states({"calm": {"style": "folk", "form": "A-B"}})
