"""course_lib.soundtrack: continuity across windows, transitions at state changes, latency accounting
(a fake slow sampler on a fake clock misses the budget and is reported), clear errors for bad states and
timelines, MIDI/WAV/PNG export, the seam statistics, the CLI and the live player."""
import math

import numpy as np
import pytest
import torch

from course_lib import cli, encoding, models, music, schedules, soundtrack, train

torch.set_num_threads(1)
SPEC = music.CHORALE
STEPS = SPEC.steps_per_bar


@pytest.fixture(scope="module")
def checkpoint():
    """A tiny conditional UNet1d with random weights: the engine's plumbing, not its music, is tested."""
    torch.manual_seed(0)
    config = models.ModelConfig(kind="unet1d", in_channels=60, channels=64, channel_mults=(1,), n_res_blocks=1,
                                attention=False, time_dim=32, n_styles=2, use_mode=True, use_density=True,
                                prediction="v")
    return train.Checkpoint(models.build_model(config).eval(), schedules.make_schedule("cosine", 100),
                            encoding.VoiceEncoding(SPEC))


@pytest.fixture(scope="module")
def checkpoint_path(checkpoint, tmp_path_factory):
    return train.save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", checkpoint.model,
                                 checkpoint.schedule, checkpoint.encoding)


class Recorder:
    """Wraps the engine's DDIM sampler and keeps what each call got and returned."""

    def __init__(self, engine):
        self.inner, self.calls = engine.sampler, []
        engine.sampler = self

    def __call__(self, shape, labels, known, known_mask, generator):
        x = self.inner(shape, labels, known, known_mask, generator)
        self.calls.append({"labels": labels, "known": known, "mask": known_mask, "x": x})
        return x


def engine_for(checkpoint, **kwargs):
    return soundtrack.SoundtrackEngine(checkpoint, steps=2, **kwargs)


# --------------------------------------------------------------------------- states and timelines

def test_conditions_are_label_kwargs_with_nulls_and_no_tempo():
    states = {"calm": {"mode": "major", "tempo": 70.0}, "chase": {"style": "bach", "density": 0.4}}
    assert soundtrack.conditions_for("calm", states) == {"style": None, "mode": "major", "density": None}
    assert soundtrack.conditions_for("chase", states) == {"style": "bach", "mode": None, "density": 0.4}
    assert soundtrack.tempo_for("calm", states) == 70.0
    assert soundtrack.tempo_for("chase", states) == 90.0  # pipeline.DEFAULT_TEMPO


def test_an_unknown_state_names_every_known_state():
    with pytest.raises(ValueError) as err:
        soundtrack.conditions_for("boss fight", soundtrack.DEFAULT_STATES)
    assert "'boss fight'" in str(err.value)
    assert all(repr(state) in str(err.value) for state in soundtrack.DEFAULT_STATES)


@pytest.mark.parametrize("states, words", [
    ({"calm": {"densty": 0.2}}, "unknown condition"),
    ({"calm": {"style": "jazz"}}, "unknown style"),
    ({"calm": {"mode": "dorian"}}, "'major' or 'minor'"),
    ({"calm": {"density": 1.5}}, "outside 0..1"),
    ({"calm": {"tempo": 5}}, "tempo"),
    ({"a:b": {}}, "without ':'"),
    ({}, "non-empty"),
])
def test_bad_state_mappings_are_explained(states, words):
    with pytest.raises(ValueError, match=words):
        soundtrack.check_states(states)


def test_timelines_parse_and_bad_syntax_says_how_to_write_them():
    assert soundtrack.parse_timeline(" exploration:8, battle:2 ,victory:1") == \
        [("exploration", 8), ("battle", 2), ("victory", 1)]
    for bad in ("exploration8", "battle:0", "battle:two", "", "battle:2,", ":3", "battle:-1"):
        with pytest.raises(ValueError, match="STATE:BARS"):
            soundtrack.parse_timeline(bad)
    with pytest.raises(ValueError, match="known states: 'exploration', 'battle', 'victory'"):
        soundtrack.parse_timeline("exploration:2,bos:3")
    assert soundtrack.expand_timeline([("battle", 2), ("victory", 1)], soundtrack.DEFAULT_STATES) == \
        ["battle", "battle", "victory"]


def test_engine_settings_are_checked(checkpoint):
    with pytest.raises(ValueError, match="keep_bars"):
        engine_for(checkpoint, keep_bars=4)
    with pytest.raises(ValueError, match="transition_bars"):
        engine_for(checkpoint, keep_bars=2, transition_bars=2)
    with pytest.raises(ValueError, match="known states"):
        engine_for(checkpoint).advance("boss")


# --------------------------------------------------------------------------- continuity and transitions

def test_each_window_keeps_the_previous_bars_exactly(checkpoint):
    engine = engine_for(checkpoint, keep_bars=2)
    recorder = Recorder(engine)
    first = engine.advance("battle")
    assert (first.first_bar, first.new_bars, recorder.calls[0]["known"]) == (0, 4, None)
    before = engine.soundtrack().roll
    second = engine.advance("battle")
    assert (second.first_bar, second.new_bars, second.transition) == (4, 2, False)
    call = recorder.calls[1]
    keep = 2 * STEPS
    expected_mask = torch.zeros(60, 4 * STEPS)
    expected_mask[:, :keep] = 1
    assert torch.equal(call["mask"], expected_mask)
    tail = checkpoint.encoding.encode(before[..., -keep:])  # the last 2 bars of the first window
    assert torch.equal(call["x"][0, :, :keep], tail)  # the sampler returned them untouched
    decoded = checkpoint.encoding.decode(call["x"][0])
    assert np.array_equal(decoded[:, music.SUSTAIN, :, :keep], before[:, music.SUSTAIN, :, -keep:])
    after = engine.soundtrack()
    assert after.bars == 6 and np.array_equal(after.roll[..., :4 * STEPS], before)  # played bars never change
    assert np.array_equal(after.roll[..., 4 * STEPS:], decoded[..., keep:])  # the new bars follow on


def test_the_continuation_window_puts_the_last_bars_first():
    previous = torch.arange(3 * 5 * 2, dtype=torch.float32).reshape(3, 10)  # (C=3, 5 bars of 2 steps)
    known, mask = soundtrack.continuation_window(previous, keep_bars=2, window_bars=4, steps_per_bar=2)
    assert known.shape == mask.shape == (3, 8)
    assert torch.equal(known[:, :4], previous[:, 6:]) and not known[:, 4:].any()
    assert torch.equal(mask, torch.tensor([1.0] * 4 + [0.0] * 4).expand(3, 8))
    for bad in ({"keep_bars": 4}, {"keep_bars": 0}):
        with pytest.raises(ValueError, match="keep_bars"):
            soundtrack.continuation_window(previous, window_bars=4, steps_per_bar=2, **bad)


def test_a_state_change_regenerates_the_seam_with_the_new_labels(checkpoint):
    engine = engine_for(checkpoint, keep_bars=2, transition_bars=1)
    recorder = Recorder(engine)
    track = engine.render([("exploration", 4), ("battle", 4)])
    assert track.states == ["exploration"] * 4 + ["battle"] * 4
    assert track.transition.tolist() == [False] * 3 + [True] + [False] * 4
    bridge = next(w for w in track.windows if w.transition)
    assert (bridge.state, bridge.first_bar) == ("battle", 3)  # bar 4 (index 3) made again ...
    call = recorder.calls[bridge.index]
    assert call["labels"]["style"].tolist() == [0] and call["labels"]["mode"].tolist() == [1]  # ... as battle
    assert torch.equal(call["mask"][0], (torch.arange(4 * STEPS) < 2 * STEPS).float())  # after bars 2-3, kept
    exploration_bar_3 = checkpoint.encoding.decode(recorder.calls[0]["x"][0])[..., 3 * STEPS:]
    assert not np.array_equal(track.roll[..., 3 * STEPS:4 * STEPS], exploration_bar_3)
    assert track.tempos.tolist() == [84.0] * 3 + [108.0] + [132.0] * 4  # the bridge ramps the tempo


def test_without_transition_bars_the_switch_happens_at_the_bar_line(checkpoint):
    track = engine_for(checkpoint, transition_bars=0).render("exploration:3,battle:3")
    assert not track.transition.any() and not any(w.transition for w in track.windows)
    assert track.state_changes() == [3]
    assert track.segments() == [("exploration", 0, 3), ("battle", 3, 6)]


def test_any_timeline_gives_exactly_its_bars(checkpoint):
    plan = [("victory", 1), ("battle", 3), ("exploration", 2), ("battle", 5)]
    track = engine_for(checkpoint, keep_bars=1, transition_bars=2).render(plan)
    assert track.states == soundtrack.expand_timeline(plan, soundtrack.DEFAULT_STATES)
    assert track.roll.shape == SPEC.shape(11) and len(track.tempos) == 11
    assert track.roll.dtype == bool


def test_the_engine_is_reproducible_with_a_seed(checkpoint):
    a = engine_for(checkpoint, seed=3).render("battle:6")
    b = engine_for(checkpoint, seed=3).render("battle:6")
    c = engine_for(checkpoint, seed=4).render("battle:6")
    assert np.array_equal(a.roll, b.roll) and not np.array_equal(a.roll, c.roll)


# --------------------------------------------------------------------------- latency

class FakeClock:
    """A wall clock that only moves when the fake sampler says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def fake_engine(checkpoint, seconds_per_window):
    clock = FakeClock()

    def slow_sampler(shape, labels, known, known_mask, generator):
        clock.now += seconds_per_window
        x = torch.randn(shape, generator=generator)
        return x if known is None else known_mask * known + (1 - known_mask) * x

    states = {"steady": {"style": "bach", "tempo": 120.0}}  # a bar is 2 s
    return soundtrack.SoundtrackEngine(checkpoint, states, sampler=slow_sampler, clock=clock)


def test_a_fast_engine_is_within_budget(checkpoint):
    engine = fake_engine(checkpoint, 0.1)
    track = engine.render("steady:10")
    report = engine.latency()
    assert track.duration() == pytest.approx(20.0)
    assert [w.new_bars for w in report.windows] == [4, 2, 2, 2]
    assert report.load == pytest.approx([0.1 / 4 / 2, 0.1 / 2 / 2, 0.1 / 2 / 2, 0.1 / 2 / 2])
    assert report.realtime_factor == pytest.approx(0.4 / 20.0)
    assert report.over_budget == [] and report.underruns == []
    assert "every window within budget" in str(report)


def test_a_slow_sampler_misses_the_budget_and_it_is_reported(checkpoint):
    engine = fake_engine(checkpoint, 1.0)  # 0.5 s per 2-s bar: 25% > 10%
    engine.render("steady:8")
    report = engine.latency()
    assert report.load == pytest.approx([1.0 / 4 / 2, 1.0 / 2 / 2, 1.0 / 2 / 2])  # 12.5%, 25%, 25%
    assert report.over_budget == [0, 1, 2]
    assert "OVER BUDGET" in str(report) and report.underruns == []


def test_a_sampler_slower_than_the_music_underruns(checkpoint):
    engine = fake_engine(checkpoint, 5.0)  # 5 s per window, but the previous window's 2 bars play 4 s
    engine.render("steady:8")
    report = engine.latency()
    assert report.underruns == [2] and report.realtime_factor == pytest.approx(15.0 / 16.0)
    assert "UNDERRUN" in str(report)


def test_deadlines_follow_the_tempo_of_every_bar():
    starts = soundtrack.bar_start_seconds([120.0, 60.0, 90.0])
    assert starts == pytest.approx([0.0, 2.0, 6.0, 6.0 + 8 / 3])
    assert soundtrack.latest_start_seconds(2, [120.0, 60.0, 90.0], 0.5) == pytest.approx(5.5)
    assert soundtrack.latest_start_seconds(0, [100.0], 0.2) == pytest.approx(-0.2)  # before the music starts
    assert soundtrack.bar_start_seconds([60.0], beats_per_bar=3) == pytest.approx([0.0, 3.0])


# --------------------------------------------------------------------------- seams and conditions

def test_seam_jumps_compare_each_voice_across_one_step():
    notes = np.array([[0, 60, 0, 16], [0, 64, 16, 32],   # soprano C4 -> E4 at the bar line: 4
                      [1, 55, 0, 12], [1, 57, 16, 32],   # alto rests just before it: undefined
                      [2, 50, 8, 24],                    # tenor holds D3 across it: 0
                      [3, 40, 0, 16], [3, 52, 16, 20]])  # bass leaps an octave: 12
    roll = music.notes_to_roll(notes, SPEC, 32)
    pitches = soundtrack.voice_pitches(roll, SPEC)
    assert pitches.shape == (4, 32) and pitches[0, 15] == 60 and pitches[1, 14] == -1
    jumps = soundtrack.seam_jumps(roll, 16, SPEC)
    assert np.array_equal(jumps, [4.0, np.nan, 0.0, 12.0], equal_nan=True)
    assert np.array_equal(soundtrack.bar_line_jumps([roll], SPEC), [4.0, 0.0, 12.0])
    summary = soundtrack.jump_summary(jumps)
    assert summary["n"] == 3 and summary["mean"] == pytest.approx(16 / 3) and summary["large"] == pytest.approx(1 / 3)
    assert math.isnan(soundtrack.jump_summary([np.nan])["mean"])


def test_reports_cover_every_state_and_seam(checkpoint):
    track = engine_for(checkpoint).render("exploration:4,battle:4")
    conditions = soundtrack.condition_report(track)
    assert list(conditions) == ["exploration", "battle"]
    assert conditions["battle"]["density asked"] == 0.40 and conditions["battle"]["mode asked"] == "minor"
    seams = soundtrack.seam_report(track, [music.notes_to_roll(np.array([[0, 60, 0, 32]]), SPEC, 32)])
    assert set(seams) == {"state changes", "bridge starts", "other bar lines", "real music bar lines"}
    assert seams["real music bar lines"] == {"mean": 0.0, "large": 0.0, "n": 1}
    assert "state" in soundtrack.format_rows(conditions, "state").splitlines()[0]


# --------------------------------------------------------------------------- export, CLI, player

def test_midi_export_keeps_the_notes_and_the_tempo_map(checkpoint):
    track = engine_for(checkpoint).render("exploration:3,battle:3")
    midi = track.to_midi()
    times, tempi = midi.get_tempo_changes()
    assert tempi == pytest.approx([84.0, 108.0, 132.0], rel=1e-4)
    assert times == pytest.approx([0.0, 2 * 4 * 60 / 84, 2 * 4 * 60 / 84 + 4 * 60 / 108], rel=1e-4)
    back = music.midi_to_roll(midi, SPEC)
    assert np.array_equal(back, track.roll[..., :back.shape[-1]]) and not back[..., back.shape[-1]:].any()
    excerpt = track.excerpt(2, 4)
    assert excerpt.states == ["exploration", "battle"] and excerpt.roll.shape == SPEC.shape(2)
    with pytest.raises(ValueError, match="first"):
        track.excerpt(4, 2)


def test_cli_writes_midi_wav_and_timeline(checkpoint_path, tmp_path, capsys):
    out, mapping = tmp_path / "out", tmp_path / "states.json"
    mapping.write_text('{"calm": {"style": "folk", "tempo": 70}, "boss": {"mode": "minor", "density": 0.4}}')
    code = cli.main(["soundtrack", "--states", "calm:2,boss:3", "--mapping", str(mapping), "--checkpoint",
                     str(checkpoint_path), "--out", str(out), "--steps", "2", "--threads", "1", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    for name, size in (("soundtrack.mid", 200), ("soundtrack.wav", 100_000), ("soundtrack.png", 10_000)):
        assert (out / name).stat().st_size > size, name
    assert (out / "soundtrack.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "real-time factor" in printed and "boss" in printed
    midi = music.load_midi(str(out / "soundtrack.mid"))
    assert midi.get_tempo_changes()[1][0] == pytest.approx(70.0, rel=1e-4)
    back = music.midi_to_roll(midi, SPEC)
    assert back.shape[-1] <= 5 * STEPS and back.any()


@pytest.mark.parametrize("states, mapping, words", [
    ("exploration:2,boss:3", None, "known states: 'exploration'"),
    ("exploration=2", None, "STATE:BARS"),
    ("calm:2", '{"calm": {"tempo": 70,}}', "not valid JSON"),
    ("calm:2", '{"calm": {"speed": 70}}', "unknown condition")])
def test_cli_explains_a_bad_timeline_or_mapping(states, mapping, words, tmp_path, capsys):
    extra = []
    if mapping:
        (tmp_path / "states.json").write_text(mapping)
        extra = ["--mapping", str(tmp_path / "states.json")]
    out = tmp_path / "out"
    code = cli.main(["soundtrack", "--states", states, "--out", str(out), "--checkpoint", "nowhere.pt", *extra])
    assert code == 2 and words in capsys.readouterr().err  # refused before any model is loaded
    assert not out.exists()


def test_the_player_queues_bars_for_each_pressed_state(checkpoint):
    from course_lib import soundtrack_widgets

    engine = engine_for(checkpoint)
    player = soundtrack_widgets.soundtrack_player(engine, start="exploration")
    assert set(player.buttons) == {"exploration", "battle", "victory"}
    assert engine.bars == 4 and player.views[0].png[:4] == b"\x89PNG"
    player.buttons["battle"].click()
    assert player.last_error is None and engine.soundtrack().transition.tolist()[3] is True
    assert "transition into battle" in player._message.value
    captions = [p.caption for p in player.views[0].players]
    assert captions[0].startswith("queued next: bars 4-5 (battle, with the transition)")
    assert captions[1].startswith("the soundtrack so far, 5 bars")
    html = player.fallback_html()
    assert "data:image/png;base64" in html and "state buttons" in html
    player.start_over()
    assert engine.bars == 0


def test_timeline_labels_give_whole_bpm_and_show_a_ramp():
    from course_lib import soundtrack_widgets

    assert soundtrack_widgets.tempo_label(np.array([84.0, 84.0])) == "84 BPM"
    assert soundtrack_widgets.tempo_label(np.array([94.6667, 113.3333, 132.0])) == "95 \u2192 132 BPM"
