"""course_lib.tasks and the lesson-6 parts of course_lib.guidance: production tasks on rolls and
guidance by penalties on x̂_0 (reconstruction and rules), plus ``generate --continue/--infill/
--transition/--style-transfer`` on small MIDI files written here. Uses the bundled checkpoint with
a few DDIM steps; nothing here depends on how good its music is."""
import numpy as np
import pretty_midi
import pytest
import torch

from course_lib import cli, data, diffusion, guidance, music, pipeline, tasks
from course_lib.encoding import PITCH_CLASSES, VOICE_CHANNELS

torch.set_num_threads(1)
STEPS = 6  # DDIM steps: enough to exercise every code path, cheap


@pytest.fixture(scope="module")
def ckpt():
    return pipeline.load()


@pytest.fixture(scope="module")
def real():
    """Four 4-bar windows of real chorales (test split), (4, tracks, 2, pitches, 64)."""
    test = data.WindowDataset(data.load_corpus("bach"), "test")
    return np.stack([test.roll(i) for i in (0, 40, 80, 120)])


# --------------------------------------------------------------------------- masks

def test_bar_mask_covers_exactly_the_bars_and_tracks(ckpt):
    enc = ckpt.encoding
    mask = tasks.bar_mask(enc, 4, 2, 3, tracks=[1])
    assert mask.shape == (60, 64)
    expected = torch.zeros(60, 64)
    expected[15:30, 16:48] = 1
    assert torch.equal(mask, expected)
    assert torch.equal(tasks.bar_mask(enc, 4, 1, 4), torch.ones(60, 64))
    for bad in [(0, 2), (3, 2), (2, 5)]:
        with pytest.raises(ValueError, match="counted from 1"):
            tasks.bar_mask(enc, 4, *bad)
    with pytest.raises(ValueError, match="tracks must be"):
        tasks.bar_mask(enc, 4, 1, 2, tracks=[4])


# --------------------------------------------------------------------------- tasks keep what is given

def test_infill_keeps_the_known_region_exactly(ckpt, real):
    result = tasks.infill(ckpt, real[0], 2, first_bar=2, last_bar=3, steps=STEPS, seed=1)
    known, region = ckpt.encoding.encode(real[0]), tasks.bar_mask(ckpt.encoding, 4, 2, 3)
    assert torch.equal(result.x * (1 - region), (known * (1 - region)).expand(2, -1, -1))
    for roll in result.rolls:
        assert np.array_equal(roll[..., :16], real[0][..., :16])  # bar 1 decodes to itself
        # bar 4: every sounding step is as given; an onset may be added on its first step where a
        # note held across the seam now follows a different generated pitch
        assert np.array_equal(roll[:, music.SUSTAIN, :, 48:], real[0][:, music.SUSTAIN, :, 48:])
        assert np.array_equal(roll[:, music.ONSET, :, 49:], real[0][:, music.ONSET, :, 49:])
    assert result.generated.shape == (4, 64)
    assert result.generated[:, 16:48].all() and not result.generated[:, :16].any() and not result.generated[:, 48:].any()
    assert not np.array_equal(result.rolls[0][..., 16:48], real[0][..., 16:48])  # the middle is new


def test_infill_of_some_tracks_keeps_the_others(ckpt, real):
    result = tasks.infill(ckpt, real[1], 1, first_bar=1, last_bar=4, tracks=[1, 2], steps=STEPS)
    assert np.array_equal(result.rolls[0][[0, 3]], real[1][[0, 3]])
    assert result.generated[[1, 2]].all() and not result.generated[[0, 3]].any()


def test_continuation_keeps_the_given_bars_and_grows_window_by_window(ckpt, real):
    result = tasks.continuation(ckpt, real[2], 2, given_bars=2, steps=STEPS)
    assert result.rolls.shape == (2, 4, 2, 48, 64)
    assert all(np.array_equal(r[..., :32], real[2][..., :32]) for r in result.rolls)
    longer = tasks.continuation(ckpt, real[2], 1, given_bars=2, bars=7, steps=STEPS)
    assert longer.rolls.shape == (1, 4, 2, 48, 7 * 16)
    assert np.array_equal(longer.rolls[0][..., :32], real[2][..., :32])
    assert longer.generated[:, 32:].all() and not longer.generated[:, :32].any()
    with pytest.raises(ValueError, match="given_bars"):
        tasks.continuation(ckpt, real[2], given_bars=4)


def test_continuation_of_a_melody_generates_the_other_voices_everywhere(ckpt, real):
    melody = real[3].copy()
    melody[1:] = False
    result = tasks.continuation(ckpt, melody, 1, given_tracks=[0], steps=STEPS)
    assert np.array_equal(result.rolls[0][0, ..., :32], melody[0, ..., :32])
    assert result.generated[1:].all() and not result.generated[0, :32].any()


def test_transition_keeps_both_ends(ckpt, real):
    a, b = real[0], real[1]
    result = tasks.transition(ckpt, a, b, 2, context_bars=1, steps=STEPS)
    for bridge in result.rolls:
        assert np.array_equal(bridge[..., :16], music.crop(a, 3, 1, ckpt.spec))  # A's last bar
        assert np.array_equal(bridge[:, music.SUSTAIN, :, 48:], b[:, music.SUSTAIN, :, :16])  # B's first bar
    assert result.generated[:, 16:48].all() and not result.generated[:, :16].any()
    whole = tasks.stitch(a, result.rolls[0], b, 1, ckpt.spec)
    assert whole.shape[-1] == 64 - 16 + 64 + 64 - 16
    with pytest.raises(ValueError, match="context_bars"):
        tasks.transition(ckpt, a, b, context_bars=2)


def test_sdedit_at_strength_zero_returns_the_input_and_small_strength_stays_close(ckpt, real):
    same = tasks.regenerate(ckpt, real[0], 2, strength=0.0)
    assert all(np.array_equal(r, real[0]) for r in same.rolls) and not same.generated.any()
    assert np.array_equal(tasks.style_transfer(ckpt, real[0], "folk", strength=0.0).rolls[0], real[0])
    close = tasks.regenerate(ckpt, real[0], 1, strength=0.1, steps=STEPS).x
    far = tasks.regenerate(ckpt, real[0], 1, strength=1.0, steps=STEPS).x
    x0 = ckpt.encoding.encode(real[0])
    assert (close - x0).abs().mean() < 0.5 * (far - x0).abs().mean()
    region = tasks.regenerate(ckpt, real[0], 1, strength=0.7, first_bar=3, steps=STEPS)
    assert np.array_equal(region.rolls[0][..., :32], real[0][..., :32])
    with pytest.raises(ValueError, match="strength"):
        tasks.regenerate(ckpt, real[0], strength=1.5)


def test_style_transfer_toward_a_classifier_target_moves_the_style(ckpt, real):
    """by="classifier": labels null, the noisy classifier pulls toward folk; the clean one hears it.
    Four voices to one is a change of texture, which SDEdit keeps up to high strengths (measured with
    scale 30: folk 0/8 at strength 0.8, 7/8 at 0.9, 8/8 at 0.95; 0/8 without the pull)."""
    from course_lib import classifiers
    judge = classifiers.load_bundled("clean")
    chorales = ckpt.encoding.decode(ckpt.encoding.encode(real))  # 4 real chorales, as the model sees them

    def folk_share(**options):
        rolls = np.concatenate([tasks.style_transfer(ckpt, roll, "folk", 2, strength=0.95, steps=10, seed=1,
                                                     **options).rolls for roll in chorales])
        return np.mean(classifiers.classify_rolls(judge.classifier, judge.encoding, rolls)["style"] == 1)

    assert folk_share(by="classifier", classifier_scale=30.0) > folk_share(by="classifier", classifier_scale=0.0) + 0.5
    with pytest.raises(ValueError, match="by must be one of"):
        tasks.style_transfer(ckpt, real[0], "folk", by="magic")
    with pytest.raises(ValueError, match="target style"):
        tasks.style_transfer(ckpt, real[0], None)
    with pytest.raises(ValueError, match="noisy one"):
        tasks.style_transfer(ckpt, real[0], "folk", by="classifier", classifier=judge)


def test_steer_adds_the_heads_gradients_toward_named_classes():
    from course_lib import classifiers
    noisy = classifiers.load_bundled("noisy")
    x, t = torch.randn(3, 60, 64, generator=torch.Generator().manual_seed(0)), torch.tensor([10, 400, 900])
    got = classifiers.steer(noisy, 2.0, style="folk", mode=torch.tensor([0, 1, 1]))(x, t)
    heads = noisy.classifier.head
    expected = (guidance.classifier_gradient(heads("style"), 1, 2.0)(x, t)
                + guidance.classifier_gradient(heads("mode"), torch.tensor([0, 1, 1]), 2.0)(x, t))
    torch.testing.assert_close(got, expected)
    assert got.abs().sum() > 0
    for targets, words in (({"tempo": "fast"}, "heads"), ({"style": "jazz"}, "one of"), ({}, "at least one")):
        with pytest.raises(ValueError, match=words):
            classifiers.steer(noisy, 1.0, **targets)
    with pytest.raises(ValueError, match="noisy one"):
        classifiers.steer(classifiers.load_bundled("clean"), 1.0, style="folk")


def test_sample_needs_the_given_music_for_masks_and_strength(ckpt):
    with pytest.raises(ValueError, match="known="):
        tasks.sample(ckpt, 1, strength=0.5)
    with pytest.raises(ValueError, match="shape"):
        tasks.sample(ckpt, 1, known=torch.zeros(60, 32), known_mask=torch.ones(60, 32))


# --------------------------------------------------------------------------- guidance by penalties

def test_reconstruction_guidance_moves_x0_toward_the_known_notes(ckpt, real):
    enc, schedule = ckpt.encoding, ckpt.schedule
    known = enc.encode(real)  # (4, 60, 64)
    mask = 1 - tasks.bar_mask(enc, 4, 2, 3)
    generator = torch.Generator().manual_seed(0)
    t = torch.full((4,), 600)
    x_t = diffusion.q_sample(schedule, known, t, generator=generator)
    x_t = mask * x_t + (1 - mask) * torch.randn(x_t.shape, generator=generator)
    labels = pipeline.make_labels(4, style="bach")
    penalty = guidance.reconstruction_penalty(known, mask)
    with torch.no_grad():
        plain = diffusion.denoise(ckpt.model, schedule, x_t, t, labels)
        gradient_fn = guidance.penalty_gradient(ckpt.model, schedule, penalty, 0.05, labels)
        guided = diffusion.denoise(ckpt.model, schedule, x_t, t, labels, gradient_fn=gradient_fn)
    assert (penalty(guided.x0) < penalty(plain.x0)).all()


def test_penalty_gradient_is_minus_scale_times_the_gradient_through_the_model(ckpt):
    enc, schedule = ckpt.encoding, ckpt.schedule
    x_t = torch.randn(2, 60, 64, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([100, 700])
    penalty = guidance.key_penalty(enc)
    got = guidance.penalty_gradient(ckpt.model, schedule, penalty, 2.0)(x_t, t)
    x = x_t.clone().requires_grad_(True)
    x0 = diffusion.eps_and_x0_from_output(schedule, x, t, ckpt.model(x, t, None), "v").x0
    penalty(x0).sum().backward()
    assert torch.allclose(got, -2.0 * x.grad, atol=1e-6)
    with pytest.raises(ValueError, match="one value per sample"):
        guidance.penalty_gradient(ckpt.model, schedule, lambda x0: x0.sum(), 1.0)(x_t, t)


def test_rule_penalties_score_music_that_breaks_the_rule_higher(ckpt, real):
    enc, spec = ckpt.encoding, ckpt.spec
    in_c = torch.stack([enc.encode(r) for r in real])
    shifted = torch.stack([enc.encode(music.transpose(r, 1, spec)) for r in real])  # tonic C#: mostly out of C major
    key = guidance.key_penalty(enc, temperature=0.1)
    assert (key(shifted) > key(in_c) + 40).all()  # (minor windows have Eb, Ab, Bb: out of C major too)
    in_range = enc.encode(music.notes_to_roll(np.array([[0, 72, 0, 64], [3, 48, 0, 64]]), spec, 64))[None]
    assert guidance.range_penalty(enc)(in_range).item() == 0  # soprano C5 and bass C3: inside their ranges
    swapped = torch.stack([enc.encode(r[[3, 1, 2, 0]]) for r in real])  # the bass line sung by the soprano
    assert (guidance.range_penalty(enc)(swapped) > guidance.range_penalty(enc)(in_c) + 10).all()
    density = tasks.note_density(real, spec)
    right = torch.stack([guidance.density_penalty(enc, float(d), temperature=0.1)(x[None]) for d, x in zip(density, in_c)])
    wrong = torch.stack([guidance.density_penalty(enc, float(d) + 0.3, temperature=0.1)(x[None]) for d, x in zip(density, in_c)])
    assert (right < wrong).all()
    both = guidance.combine_penalties((key, 1.0), (guidance.range_penalty(enc), 2.0))
    assert torch.allclose(both(shifted), key(shifted) + 2 * guidance.range_penalty(enc)(shifted))
    with pytest.raises(ValueError, match="voice encoding"):
        guidance.key_penalty(object())(in_c)


def test_key_penalty_is_differentiable_and_points_into_the_scale(ckpt):
    enc = ckpt.encoding
    x0 = -torch.ones(1, 60, 16)
    x0[0, 14] = 1.0  # soprano sounds
    x0[0, 1] = 1.0  # ... a C#, outside C major
    x0.requires_grad_(True)
    guidance.key_penalty(enc)(x0).sum().backward()
    grad = x0.grad[0, PITCH_CLASSES]  # the soprano's pitch classes
    assert (grad[1] > 0).all() and (grad[0] < 0).all()  # descent lowers C#, raises C
    assert x0.grad[0, VOICE_CHANNELS:].abs().sum() == 0  # silent voices are left alone


def test_rule_guidance_raises_the_in_scale_share(ckpt):
    enc, spec = ckpt.encoding, ckpt.spec
    options = dict(style="bach", mode="minor", steps=8, seed=3)
    plain = enc.decode(tasks.sample(ckpt, 4, **options))
    guided = enc.decode(tasks.sample(ckpt, 4, rule=guidance.key_penalty(enc), rule_scale=1.0, **options))
    assert np.nanmean(tasks.in_scale_share(guided, spec)) > np.nanmean(tasks.in_scale_share(plain, spec)) + 0.05


# --------------------------------------------------------------------------- measures

def test_seam_statistics_on_a_hand_made_roll():
    spec = music.CHORALE
    notes = np.array([[0, 60, 0, 8], [0, 67, 8, 16], [0, 65, 16, 24], [1, 48, 0, 16], [1, 48, 16, 32]])
    roll = music.notes_to_roll(notes, spec, 32)
    crossing = tasks.crossing_intervals(roll[None], spec, 16)
    assert crossing[0, 0] == 2 and crossing[0, 1] == 0 and np.isnan(crossing[0, 2])
    stats = tasks.seam_statistics(roll[None], spec, [8, 16])
    assert stats["interval"] == pytest.approx((7 + 0 + 2 + 0) / 4)  # soprano 7, 2; the held bass 0, 0
    assert stats["leaps"] == 0
    assert tasks.onset_change(roll[None], spec, 16)[0, :2].tolist() == [1, 0]
    assert tasks.in_scale_share(roll, spec)[0] == 1.0
    assert tasks.note_density(roll, spec)[0] == pytest.approx(5 / (32 * 2))


# --------------------------------------------------------------------------- music from files

def _write_midi(path, parts, *, meter=(4, 4), drums=False, tempo=100.0):
    """parts: per instrument a list of (pitch, start beat, end beat)."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(*meter, 0.0))
    beat = 60.0 / tempo
    for k, notes in enumerate(parts):
        inst = pretty_midi.Instrument(program=0, is_drum=drums, name=f"part {k}")
        inst.notes = [pretty_midi.Note(80, p, s * beat, e * beat) for p, s, e in notes]
        midi.instruments.append(inst)
    midi.write(str(path))
    return path


def _d_major_tune(bars):
    """A tune of quarter notes in D major (D F# A F# | G B A F# | E G F# E | D A D D), ``bars`` bars."""
    pitches = [62, 66, 69, 66, 67, 71, 69, 66, 64, 67, 66, 64, 62, 69, 62, 62]
    return [(pitches[i % 16], i, i + 1) for i in range(4 * bars)]


@pytest.fixture
def files(tmp_path, real):
    chorale = tmp_path / "chorale.mid"
    music.roll_to_midi(real[0], music.CHORALE).write(str(chorale))
    other = tmp_path / "other.mid"
    music.roll_to_midi(real[1], music.CHORALE).write(str(other))
    return {"chorale": chorale, "other": other, "melody": _write_midi(tmp_path / "melody.mid", [_d_major_tune(4)]),
            "short": _write_midi(tmp_path / "short.mid", [_d_major_tune(1)]),
            "waltz": _write_midi(tmp_path / "waltz.mid", [_d_major_tune(4)], meter=(3, 4)),
            "drums": _write_midi(tmp_path / "drums.mid", [[(36, 0, 1), (38, 1, 2)]], drums=True),
            "empty": tmp_path / "empty.mid", "corrupt": tmp_path / "corrupt.mid"}


def test_load_roll_reads_chorales_and_melodies(files, real):
    files["empty"].write_bytes(b"")
    roll, tracks = tasks.load_roll(files["chorale"])
    assert tracks == [0, 1, 2, 3] and np.array_equal(roll, real[0])
    melody, tracks = tasks.load_roll(files["melody"])
    assert tracks == [0] and melody.shape == (4, 2, 48, 64) and not melody[1:].any() and melody[0].any()
    with pytest.raises(music.MidiError, match="at least 2 bars"):
        tasks.load_roll(files["short"], min_bars=2)
    for bad, message in [("waltz", "meter 3/4"), ("drums", "drum"), ("empty", "empty")]:
        with pytest.raises(music.MidiError, match=message):
            tasks.load_roll(files[bad])


def test_to_tonic_c_and_back(files):
    melody, _ = tasks.load_roll(files["melody"])  # D major
    in_c, shift = tasks.to_tonic_c(melody, music.CHORALE)
    assert shift == -2 and tasks.key_of(in_c, music.CHORALE) == (0, "major")
    assert np.array_equal(tasks.shift_roll(in_c, -shift, music.CHORALE), melody)
    top = music.notes_to_roll(np.array([[0, 82, 0, 4]]), music.CHORALE, 16)
    assert music.roll_to_notes(tasks.shift_roll(top, 3, music.CHORALE))[0, 1] == 73  # 85 folded down an octave


# --------------------------------------------------------------------------- the command line

@pytest.mark.parametrize("task", ["continue", "infill", "transition", "style-transfer", "style-by-classifier"])
def test_generate_tasks_write_midi_wav_and_png(task, files, tmp_path, capsys):
    out = tmp_path / task
    inputs = {"continue": ["--continue", str(files["melody"])], "infill": ["--infill", str(files["chorale"])],
              "transition": ["--transition", str(files["chorale"]), str(files["other"])],
              "style-transfer": ["--style-transfer", str(files["chorale"]), "--style", "folk", "--strength", "0.5"],
              "style-by-classifier": ["--style-transfer", str(files["chorale"]), "--style", "folk", "--by",
                                      "classifier", "--classifier-scale", "5"]}
    code = cli.main(["generate", *inputs[task], "--n", "1", "--steps", "3", "--out", str(out), "--quiet",
                     "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.suffix for p in out.iterdir()) == [".mid", ".png", ".wav"]
    written = _read_back(out / "sample_00.mid")
    assert 0 < written[:, 3].max() <= (48 + 64 + 48 if task == "transition" else 64)  # A - 1 bar, bridge, B - 1 bar
    if task == "continue":  # the given melody is still there, in its own key
        given = music.roll_to_notes(tasks.load_roll(files["melody"])[0], music.CHORALE)
        first_bars = {tuple(n[:3]) for n in written if n[0] == 0 and n[2] < 32}
        assert first_bars == {tuple(n[:3]) for n in given if n[2] < 32}


def _read_back(path):
    """Note table (N, 4) of a MIDI file the CLI wrote: one instrument per sounding track, named after it
    (a silent voice leaves no instrument in the file, which music.midi_to_roll does not accept)."""
    midi = pretty_midi.PrettyMIDI(str(path))
    tracks = list(music.CHORALE.tracks)
    assert {inst.name for inst in midi.instruments} <= set(tracks)
    step = 60 / midi.get_tempo_changes()[1][0] / music.CHORALE.steps_per_beat  # seconds per step
    return np.array([(tracks.index(inst.name), n.pitch, round(n.start / step), round(n.end / step))
                     for inst in midi.instruments for n in inst.notes]).reshape(-1, 4)


@pytest.mark.parametrize("bad, option, message", [
    ("corrupt", "--continue", "not a Standard MIDI File"), ("empty", "--infill", "empty"),
    ("drums", "--style-transfer", "drum"), ("waltz", "--continue", "meter 3/4"),
    ("short", "--continue", "at least 2 bars"), ("short", "--infill", "at least 4 bars"),
    ("missing", "--continue", "no such file")])
def test_generate_tasks_reject_bad_files_with_exit_code_2(bad, option, message, files, tmp_path, capsys):
    files["empty"].write_bytes(b"")
    files["corrupt"].write_bytes(b"this is not MIDI")
    path = files.get(bad, tmp_path / "missing.mid")
    code = cli.main(["generate", option, str(path), "--steps", "2", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
