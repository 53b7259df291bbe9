"""Tests for course_lib.audio: both backends, WAV files, the captioned player, bad input."""
import wave

import numpy as np
import pretty_midi
import pytest

from course_lib import audio, music

RATE = 22050
FLUIDSYNTH_MISSING = audio._import_fluidsynth()[0] is None
BACKENDS = ["builtin", pytest.param("fluidsynth", marks=pytest.mark.skipif(
    FLUIDSYNTH_MISSING, reason="pyfluidsynth or the FluidSynth library is not installed: "
                               "apt-get install fluidsynth; pip install pyfluidsynth"))]


def seconds(steps, tempo=90.0, spec=music.CHORALE):
    return steps / spec.steps_per_beat * 60.0 / tempo


@pytest.fixture
def chorale():
    """Two bars of four voices: a held chord, then a moving soprano and a repeated bass note."""
    notes = [(0, 72, 0, 16), (1, 67, 0, 16), (2, 64, 0, 16), (3, 48, 0, 8), (3, 48, 8, 16),
             (0, 74, 16, 20), (0, 76, 20, 24), (0, 77, 24, 32), (1, 65, 16, 32), (2, 60, 16, 32),
             (3, 41, 16, 32)]
    return music.notes_to_roll(np.array(notes), music.CHORALE, 32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_render_length_range_and_sound(chorale, backend):
    x = audio.render(chorale, music.CHORALE, tempo=120, sample_rate=RATE, backend=backend)
    assert x.dtype == np.float32 and x.ndim == 1
    assert x.size == round((seconds(32, 120) + audio.TAIL_SECONDS) * RATE)
    assert np.all(np.isfinite(x)) and np.abs(x).max() == pytest.approx(audio.PEAK, abs=1e-6)
    sounding = x[: int(seconds(32, 120) * RATE)]
    assert np.sqrt(np.mean(sounding ** 2)) > 0.05, "the music should be clearly audible"
    assert np.abs(x[-20:]).max() < 1e-2, "the render must end in silence (no click)"


@pytest.mark.parametrize("backend", BACKENDS)
def test_notes_sound_when_the_roll_says(backend):
    # one note in bar 2 only: bar 1 must be silent, bar 2 not
    roll = music.notes_to_roll(np.array([[0, 60, 16, 32]]), music.MELODY, 32)
    x = audio.render(roll, music.MELODY, tempo=90, backend=backend)
    bar = int(seconds(16) * RATE)
    assert np.abs(x[: bar - 200]).max() < 1e-3
    assert np.sqrt(np.mean(x[bar + 2000: 2 * bar] ** 2)) > 0.05


@pytest.mark.parametrize("backend", BACKENDS)
def test_pitch_is_right(backend):
    roll = music.notes_to_roll(np.array([[0, 69, 0, 16]]), music.MELODY, 16)  # A4 = 440 Hz
    x = audio.render(roll, music.MELODY, backend=backend)[: RATE]
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(x.size, 1 / RATE)
    assert abs(freqs[spectrum.argmax()] - 440.0) < 440 * 0.02


def test_builtin_notes_have_harmonics_and_envelope():
    roll = music.notes_to_roll(np.array([[0, 69, 0, 16]]), music.MELODY, 16)
    x = audio.render(roll, music.MELODY, backend="builtin")
    spectrum = np.abs(np.fft.rfft(x[:RATE]))
    freqs = np.fft.rfftfreq(RATE, 1 / RATE)
    near = lambda f: spectrum[np.abs(freqs - f) < 10].max() / spectrum.max()
    assert near(880) > 0.1 and near(1320) > 0.03, "a timbre is more than a sine wave"
    assert np.abs(x[:10]).max() < 0.05, "the attack starts from silence (no click)"
    note_end = int(seconds(16) * RATE)
    assert np.abs(x[note_end + int(0.3 * RATE):]).max() < 1e-6, "the release fades to silence"


def test_builtin_is_deterministic_and_thresholds_float_rolls(chorale):
    a = audio.render(chorale, backend="builtin")
    b = audio.render(chorale.astype(np.float32) * 0.9, backend="builtin")  # 0.9 > 0.5: same notes
    assert np.array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_music_is_silence_of_the_right_length(backend):
    x = audio.render(np.zeros(music.CHORALE.shape(1)), backend=backend)
    assert x.size == round((seconds(16) + audio.TAIL_SECONDS) * RATE) and not x.any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_render_pretty_midi(backend):
    midi = pretty_midi.PrettyMIDI(initial_tempo=100)
    piano = pretty_midi.Instrument(program=0, name="piano")
    piano.notes += [pretty_midi.Note(90, 60, 0.25, 1.0), pretty_midi.Note(90, 64, 1.0, 2.0)]
    midi.instruments.append(piano)
    x = audio.render(midi, backend=backend, sample_rate=16000)
    assert x.size == round((2.0 + audio.TAIL_SECONDS) * 16000)
    assert np.abs(x[: int(0.2 * 16000)]).max() < 1e-3 and np.abs(x).max() > 0.5
    assert np.array_equal(audio.render(midi, tempo=100, backend="builtin"), audio.render(midi, backend="builtin"))
    with pytest.raises(ValueError, match=r"own tempo \(100 BPM\), not 120"):
        audio.render(midi, tempo=120)


@pytest.mark.skipif(FLUIDSYNTH_MISSING, reason="pyfluidsynth or the FluidSynth library is not installed")
def test_auto_uses_fluidsynth_when_available(chorale):
    info = audio.backend_info()
    assert info.name == "fluidsynth" and info.soundfont.endswith(".sf2") and "FluidSynth" in str(info)
    auto = audio.render(chorale, backend="auto")
    assert not np.array_equal(auto, audio.render(chorale, backend="builtin"))


def test_auto_falls_back_to_builtin_without_fluidsynth(monkeypatch, chorale):
    monkeypatch.setattr(audio, "_import_fluidsynth", lambda: (None, "pyfluidsynth cannot be used (test)"))
    info = audio.backend_info()
    assert info.name == "builtin" and "apt-get install" in info.reason
    assert np.array_equal(audio.render(chorale), audio.render(chorale, backend="builtin"))
    with pytest.raises(RuntimeError, match="pip install pyfluidsynth"):
        audio.render(chorale, backend="fluidsynth")


@pytest.mark.skipif(FLUIDSYNTH_MISSING, reason="pyfluidsynth or the FluidSynth library is not installed")
def test_soundfont_choice(monkeypatch, tmp_path):
    bundled = audio._find_soundfont()[0]
    monkeypatch.setenv(audio.SOUNDFONT_ENV, bundled)
    assert audio.backend_info().soundfont == bundled
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(tmp_path / "missing.sf2"))
    with pytest.raises(FileNotFoundError, match=audio.SOUNDFONT_ENV):
        audio.backend_info()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        audio.backend_info(soundfont=tmp_path / "nope.sf2")


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_wav_reads_back(tmp_path, chorale, backend):
    path = audio.write_wav(tmp_path / "chorale.wav", chorale, tempo=100, sample_rate=16000, backend=backend)
    with wave.open(str(path), "rb") as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, 16000)
        assert f.getnframes() == round((seconds(32, 100) + audio.TAIL_SECONDS) * 16000)
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    if backend == "builtin":  # deterministic: the file holds exactly the rendered samples
        expected = audio.render(chorale, tempo=100, sample_rate=16000, backend="builtin")
        assert np.abs(pcm / 32767 - expected).max() <= 1 / 32767
    assert np.abs(pcm).max() == round(audio.PEAK * 32767)


def test_to_audio_has_a_visible_caption(chorale):
    player = audio.to_audio(chorale, tempo=120, caption="Test <chorale>", backend="builtin")
    assert player.caption.startswith("Test <chorale> (2 bar(s) of soprano, alto, tenor, bass at 120 BPM")
    page = player._repr_html_()
    assert "<figcaption" in page and "Test &lt;chorale&gt;" in page and "<chorale>" not in page
    assert 'aria-label="Test &lt;chorale&gt;' in page and "<audio" in page and "data:audio/wav;base64," in page
    default = audio.to_audio(chorale, backend="builtin").caption
    assert default.startswith("2 bar(s) of soprano") and "90 BPM" in default and "builtin" in default


def test_to_audio_and_write_wav_accept_a_waveform(tmp_path):
    tone = 0.5 * np.sin(np.linspace(0, 2 * np.pi * 440, 8000)).astype(np.float32)
    assert audio.to_audio(tone, sample_rate=8000).caption.startswith("Audio, 1.0 s")
    path = audio.write_wav(tmp_path / "tone.wav", tone, sample_rate=8000)
    with wave.open(str(path), "rb") as f:
        assert f.getnframes() == 8000
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        audio.to_audio(tone * 4, sample_rate=8000)


@pytest.mark.parametrize("bad, kwargs, message", [
    (np.zeros((4, 2, 48)), {}, "pick one roll"),
    (np.zeros((1, 2, 48, 16)), {}, "spec=music.MELODY"),
    (np.zeros((4, 2, 40, 16)), {}, "does not match the RollSpec"),
    (np.full((4, 2, 48, 16), np.nan), {}, "NaN"),
    (np.zeros((4, 2, 48, 16)), {"tempo": 0}, "tempo"),
    (np.zeros((4, 2, 48, 16)), {"tempo": 1000}, "tempo"),
    (np.zeros((4, 2, 48, 16)), {"sample_rate": 100}, "sample_rate"),
    (np.zeros((4, 2, 48, 16)), {"backend": "timidity"}, "backend must be"),
])
def test_bad_input_raises_clear_errors(bad, kwargs, message):
    with pytest.raises(ValueError, match=message):
        audio.render(bad, **kwargs)


def test_benchmark_reports_every_available_backend():
    times = audio.benchmark(seconds=2.0, repeats=1)
    backends = {"builtin"} | (set() if FLUIDSYNTH_MISSING else {"fluidsynth"})
    assert set(times) == {(b, kind) for b in backends for kind in ("chorale-like", "noise")}
    assert all(0 < t < 30 for t in times.values())
