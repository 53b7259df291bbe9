"""course_lib.live_player: bars that join sample-exactly, the kernel thread kept just ahead of a
(simulated) browser, state changes heard from the next bar line or the one after, nothing generated
without a front end, and the generator stopped by stop, close and a silent page.
The real browser plays it in tests/test_browser.py."""
import time

import numpy as np
import pytest
import torch

from course_lib import encoding, live_player, models, music, schedules, soundtrack, train

torch.set_num_threads(1)
SPEC = music.CHORALE
# Fast tempos keep the real-time tests short: a bar lasts 1.0 s (240 BPM) or 0.8 s (300 BPM).
STATES = {"calm": {"style": "folk", "mode": "major", "density": 0.2, "tempo": 240.0},
          "fight": {"style": "bach", "mode": "minor", "density": 0.4, "tempo": 300.0}}


@pytest.fixture(scope="module")
def checkpoint():
    """A tiny conditional UNet1d with random weights: the player's plumbing, not its music, is tested."""
    torch.manual_seed(0)
    voices = encoding.VoiceEncoding(SPEC)
    config = models.ModelConfig(kind="unet1d", in_channels=voices.shape(1)[0], channels=64, channel_mults=(1,), n_res_blocks=1,
                                attention=False, time_dim=32, n_styles=2, use_mode=True, use_density=True,
                                prediction="v")
    return train.Checkpoint(models.build_model(config).eval(), schedules.make_schedule("cosine", 100),
                            voices)


def engine_for(checkpoint, **kwargs):
    return soundtrack.SoundtrackEngine(checkpoint, STATES, steps=2, **kwargs)


def test_a_held_note_crosses_the_bar_line_without_an_event():
    roll = np.zeros(SPEC.shape(2), dtype=bool)  # (tracks, 2, pitches, 32): two bars
    held, struck = 10, 20  # pitch rows: one note held over the bar line, one struck again on it
    roll[0, music.SUSTAIN, held, 12:20] = True
    roll[0, music.ONSET, held, 12] = True
    roll[1, music.SUSTAIN, struck, 8:24] = True
    roll[1, music.ONSET, struck, [8, 16]] = True
    low = SPEC.low
    assert live_player.note_events(roll, 0, SPEC) == [(8, True, 1, low + struck), (12, True, 0, low + held)]
    assert live_player.note_events(roll, 1, SPEC) == [(0, False, 1, low + struck), (0, True, 1, low + struck),
                                                      (4, False, 0, low + held), (8, False, 1, low + struck)]


def test_the_stream_gives_every_bar_its_exact_length_and_keeps_sounding(checkpoint):
    track = engine_for(checkpoint).render([("calm", 2), ("fight", 2)])
    stream = live_player.BarStream(SPEC)
    bars = [stream.bar(track, b) for b in range(track.bars)]
    stream.close()
    lengths = [round(4 * 60 / tempo * live_player.SAMPLE_RATE) for tempo in track.tempos]
    assert [b.size for b in bars] == lengths and all(b.dtype == np.int16 for b in bars)
    assert 1000 < np.abs(np.concatenate(bars)).max() < 32000  # audible, not clipped
    alone = live_player.bar_audio(track, 2)  # the fallback renders a bar on its own, same length
    assert alone.size == lengths[2] and alone.dtype == np.int16


def check_played(browser, live, clicks_after_start):
    bars = browser.bars
    gaps = [b["start"] - a["start"] - a["duration"] for a, b in zip(bars, bars[1:])]
    assert max(map(abs, gaps)) < 1e-9 and browser.underruns == 0, (gaps, browser.underruns)
    assert [b["index"] for b in bars] == list(range(len(bars)))
    for click in browser.clicks[1:]:
        upcoming = [b for b in bars if b["start"] >= click["at"]][:2]  # the next bar line and the one after
        assert click["state"] in [b["state"] for b in upcoming], (click, upcoming)
        first = next(b for b in bars if b["state"] == click["state"] and b["start"] >= click["at"])
        assert all(b["state"] == click["state"] for b in bars if b["start"] >= first["start"]
                   and b["start"] < click["at"] + clicks_after_start)
    assert len(live.changes) == len(browser.clicks)
    assert all(c.first_bar is not None for c in live.changes)


def test_a_state_change_is_heard_from_the_next_bar_line_or_the_one_after(checkpoint):
    engine = engine_for(checkpoint)
    browser = live_player.SimulatedBrowser(lead=0.4)
    live = browser.connect(engine)
    try:
        browser.play(6.0, {0.0: "calm", 1.7: "fight", 3.9: "calm"})
    finally:
        live.stop()
    assert sum(b["duration"] for b in browser.bars) > 5.0
    check_played(browser, live, 2.0)
    bar = {"calm": 1.0, "fight": 0.8}
    for latency, click in zip(browser.latencies(), browser.clicks[1:]):
        previous = "fight" if click["state"] == "calm" else "calm"
        assert 0 <= latency <= bar[previous] + 0.4 + bar["calm"] + 0.1, latency  # at most the bar after next
    transitions = [b for b in browser.bars if b["transition"]]
    assert [b["state"] for b in transitions] == ["fight", "calm"]  # each change bridged, with the new labels


def test_only_bars_that_can_no_longer_change_are_sent(checkpoint):
    engine = engine_for(checkpoint)
    browser = live_player.SimulatedBrowser(lead=0.3)
    live = browser.connect(engine)
    try:
        browser.play(2.5, {0.0: "calm", 1.0: "fight"})
        played = engine.soundtrack()
    finally:
        live.stop()
    assert live.sent <= played.bars - engine.transition_bars
    for bar in browser.bars:  # what was sent is still the engine's music: never regenerated after sending
        assert bar["tempo"] == pytest.approx(played.tempos[bar["index"]])
        assert bar["transition"] == bool(played.transition[bar["index"]])


def test_without_a_front_end_nothing_is_generated(checkpoint):
    engine = engine_for(checkpoint)
    player = live_player.live_player(engine, start="calm")
    time.sleep(0.3)
    assert not player.soundtrack.running and engine.bars == 0
    data = player._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "static player" in data["text/html"]  # nbconvert, nbgrader, GitHub show this
    assert player.states == ["calm", "fight"] and player.state == "calm"
    assert "source.start(nextStart)" in player._esm and "window.liveSoundtracks" in player._esm
    player.close()


def test_the_widget_sends_bars_on_request_and_close_stops_the_generator(checkpoint, monkeypatch):
    engine = engine_for(checkpoint)
    player = live_player.live_player(engine)
    sent = []
    monkeypatch.setattr(player, "send", lambda content, buffers=None: sent.append((content, buffers)))
    player._on_message(player, {"type": "state", "state": "fight"}, [])
    player._on_message(player, {"type": "need", "index": 0}, [])
    deadline = time.monotonic() + 20
    while not sent and time.monotonic() < deadline:
        time.sleep(0.02)
    assert player.state == "fight" and player.soundtrack.running
    content, buffers = sent[0]
    assert content["index"] == 0 and content["state"] == "fight"
    assert len(buffers[0]) == 2 * content["samples"] == 2 * round(0.8 * content["sample_rate"])
    player._on_message(player, {"type": "state", "state": "nowhere"}, [])
    assert "unknown state 'nowhere'" in player.status
    player.close()
    assert not player.soundtrack.running and engine.bars == 0


def test_a_silent_page_stops_the_generator_and_stop_starts_over(checkpoint):
    engine = engine_for(checkpoint)
    statuses = []
    live = live_player.LiveSoundtrack(engine, lambda message, buffers: None, idle_seconds=0.3,
                                      on_status=statuses.append)
    live.receive({"type": "state", "state": "calm"})
    live.receive({"type": "need", "index": 0})
    deadline = time.monotonic() + 10
    while live.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not live.running and statuses[-1] == "the page stopped answering: the generator stopped"
    assert live.sent >= 1 and engine.bars <= live.sent + engine.transition_bars + 3  # ahead by a window at most
    live.receive({"type": "stop"})
    assert live.sent == 0 and engine.bars == 0


def test_bad_settings_are_explained(checkpoint):
    with pytest.raises(TypeError, match="SoundtrackEngine"):
        live_player.live_player("not an engine")
    with pytest.raises(ValueError, match="known states: calm, fight"):
        live_player.live_player(engine_for(checkpoint), start="boss")
    with pytest.raises(ValueError, match="lead"):
        live_player.live_player(engine_for(checkpoint), lead=0)
