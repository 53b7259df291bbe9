"""course_lib.music: round trips and every kind of bad input."""
import io
import warnings

import numpy as np
import pretty_midi
import pytest

from course_lib import data, music


def _midi_bytes(midi: pretty_midi.PrettyMIDI) -> bytes:
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def chorale_roll():
    corpus = data.load_corpus("bach")
    return corpus.roll(0)


def test_roll_midi_roll_round_trip_keeps_every_note(chorale_roll):
    table = music.roll_to_notes(chorale_roll)
    assert set(table[:, 0]) == {0, 1, 2, 3}, "all four voices are present"
    midi = music.roll_to_midi(chorale_roll, tempo=72)
    assert [i.name for i in midi.instruments] == list(music.CHORALE.tracks)
    back = music.midi_to_roll(_midi_bytes(midi))
    np.testing.assert_array_equal(back[..., :chorale_roll.shape[-1]], chorale_roll)
    np.testing.assert_array_equal(music.roll_to_notes(back), table)


def test_repeated_notes_survive_as_two_notes():
    table = np.array([[0, 60, 0, 4], [0, 60, 4, 8]])
    roll = music.notes_to_roll(table, music.MELODY, 16)
    assert roll[0, music.SUSTAIN, 60 - 36, :8].all(), "sustain is continuous"
    np.testing.assert_array_equal(music.roll_to_notes(roll, music.MELODY), table)
    midi = music.roll_to_midi(roll, music.MELODY)
    assert len(midi.instruments[0].notes) == 2


@pytest.mark.parametrize("tempo", [50.0, 90.0, 163.0])
def test_quantization_follows_the_files_tempo(tempo):
    table = np.array([[0, 60, 0, 3], [0, 62, 3, 4], [0, 64, 4, 12], [0, 65, 13, 16]])
    roll = music.notes_to_roll(table, music.MELODY, 16)
    midi = music.roll_to_midi(roll, music.MELODY, tempo=tempo)
    np.testing.assert_array_equal(music.midi_to_roll(_midi_bytes(midi), music.MELODY), roll)


def test_tempo_change_inside_the_file_is_respected():
    # 4 quarter notes at 120 BPM, then 4 at 60 BPM: still one note per beat on the grid.
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(0, name="melody")
    times = [0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0]
    inst.notes = [pretty_midi.Note(80, 60 + i, times[i], times[i + 1]) for i in range(8)]
    midi.instruments.append(inst)
    # pretty_midi has no public tempo-change API: write a file with mido and read it back.
    import mido
    buffer = io.BytesIO(_midi_bytes(midi))
    mid = mido.MidiFile(file=buffer)
    track = mid.tracks[0]
    ticks_two_seconds = 4 * mid.ticks_per_beat  # 4 beats at 120 BPM
    track.insert(len(track) - 1, mido.MetaMessage("set_tempo", tempo=1_000_000, time=ticks_two_seconds))
    out = io.BytesIO()
    mid.save(file=out)
    # the notes after 2 s were written assuming 120 BPM; rebuild them at 60 BPM with pretty_midi
    pm = pretty_midi.PrettyMIDI(io.BytesIO(out.getvalue()))
    pm.instruments[0].notes = [pretty_midi.Note(80, 60 + i, pm.tick_to_time(4 * i * pm.resolution // 4),
                                                pm.tick_to_time((i + 1) * pm.resolution)) for i in range(8)]
    roll = music.midi_to_roll(pm, music.MELODY)
    starts = music.roll_to_notes(roll, music.MELODY)[:, 2]
    np.testing.assert_array_equal(starts, np.arange(8) * 4)


def test_transpose_moves_notes_and_refuses_to_leave_the_range():
    roll = music.notes_to_roll(np.array([[0, 60, 0, 4]]), music.MELODY, 16)
    up = music.transpose(roll, 5, music.MELODY)
    assert music.roll_to_notes(up, music.MELODY)[0, 1] == 65
    with pytest.raises(music.MidiError, match="outside"):
        music.transpose(roll, 30, music.MELODY)


def test_crop_restarts_held_notes():
    roll = music.notes_to_roll(np.array([[0, 60, 0, 32]]), music.MELODY, 32)
    second_bar = music.crop(roll, 1, 1, music.MELODY)
    np.testing.assert_array_equal(music.roll_to_notes(second_bar, music.MELODY), [[0, 60, 0, 16]])


# ---------------------------------------------------------------------- bad input

def _pm(notes=((60, 0.0, 0.5),), drum=False, tempo=120.0, meter=(4, 4)):
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    if meter:
        midi.time_signature_changes.append(pretty_midi.TimeSignature(*meter, 0.0))
    inst = pretty_midi.Instrument(0, is_drum=drum, name="melody")
    inst.notes = [pretty_midi.Note(90, p, s, e) for p, s, e in notes]
    midi.instruments.append(inst)
    return midi


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"hello, this is text", "not a Standard MIDI File"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\xff\xff\x00", "damaged"),
])
def test_unreadable_files_give_clear_errors_and_stay_untouched(tmp_path, content, message):
    path = tmp_path / "song.mid"
    path.write_bytes(content)
    with pytest.raises(music.MidiError, match=message):
        music.load_midi(path)
    assert path.read_bytes() == content, "the user's file is never modified"


def test_truncated_real_file_is_reported_as_damaged(tmp_path):
    good = _midi_bytes(_pm([(60 + i, i * 0.5, i * 0.5 + 0.5) for i in range(16)]))
    path = tmp_path / "cut.mid"
    path.write_bytes(good[:len(good) // 2])
    with pytest.raises(music.MidiError, match="damaged"):
        music.load_midi(path)


def test_missing_file(tmp_path):
    with pytest.raises(music.MidiError, match="no such file"):
        music.load_midi(tmp_path / "nope.mid")


@pytest.mark.parametrize("midi, message", [
    (_pm(notes=()), "no notes"),
    (_pm(drum=True), "only drum"),
    (_pm(tempo=1000.0), "tempo"),
    (_pm(tempo=5.0), "tempo"),
    (_pm(meter=(3, 4)), "meter 3/4"),
    (_pm(meter=(6, 8)), "meter 6/8"),
])
def test_unusable_music_gives_specific_errors(midi, message):
    with pytest.raises(music.MidiError, match=message):
        music.midi_to_roll(_midi_bytes(midi), music.MELODY)


def test_notes_outside_the_range_are_clipped_with_a_warning_or_refused():
    midi = _pm([(100, 0.0, 0.5), (60, 0.5, 1.0), (20, 1.0, 1.5)])
    with pytest.warns(music.MidiWarning, match="2 note\\(s\\) moved by octaves"):
        roll = music.midi_to_roll(midi, music.MELODY)
    pitches = music.roll_to_notes(roll, music.MELODY)[:, 1]
    np.testing.assert_array_equal(pitches, [76, 60, 44])  # 100-24, 60, 20+24
    with pytest.raises(music.MidiError, match="outside the range"):
        music.midi_to_roll(midi, music.MELODY, out_of_range="error")
    with pytest.warns(music.MidiWarning, match="2 dropped"):
        roll = music.midi_to_roll(midi, music.MELODY, out_of_range="drop")
    assert len(music.roll_to_notes(roll, music.MELODY)) == 1


def test_wrong_number_of_instruments_says_what_to_do():
    midi = _pm()
    midi.instruments[0].name = "lead"  # no instrument named after the track: matched by count
    midi.instruments.append(pretty_midi.Instrument(0, name="second"))
    midi.instruments[-1].notes.append(pretty_midi.Note(90, 64, 0, 1))
    with pytest.raises(music.MidiError, match="2 pitched instrument"):
        music.midi_to_roll(midi, music.MELODY)


def test_drums_beside_a_melody_are_ignored():
    midi = _pm([(60, 0.0, 0.5)])
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes.append(pretty_midi.Note(90, 36, 0, 0.25))
    midi.instruments.append(drums)
    assert len(music.roll_to_notes(music.midi_to_roll(midi, music.MELODY), music.MELODY)) == 1


def test_roll_to_midi_checks_the_shape():
    with pytest.raises(ValueError, match="expected \\(tracks=4"):
        music.roll_to_midi(np.zeros((4, 48, 64)))


# ---------------------------------------------------------------------- key estimation

def test_estimate_key_agrees_with_music21():
    from music21 import corpus as m21corpus
    agree = 0
    names = ["bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1", "bach/bwv86.6", "bach/bwv267"]
    for name in names:
        score = m21corpus.parse(name)
        rows = [(0, n.pitch.midi, int(round(n.offset * 4)), int(round((n.offset + n.quarterLength) * 4)))
                for n in score.flatten().notes if n.isNote and n.quarterLength > 0]
        tonic, mode, _ = music.estimate_key(np.array(rows))
        key = score.flatten().notes.stream().analyze("key")
        agree += (tonic == key.tonic.pitchClass and mode == (key.mode == "minor"))
    assert agree >= len(names) - 1, f"only {agree}/{len(names)} keys agree with music21"


def test_estimate_key_needs_notes():
    with pytest.raises(ValueError, match="without notes"):
        music.estimate_key(np.zeros((0, 4), dtype=int))


def test_a_silent_voice_survives_the_round_trip():
    table = np.array([[0, 72, 0, 16], [3, 48, 0, 16]])  # soprano and bass only
    roll = music.notes_to_roll(table, music.CHORALE, 16)
    back = music.midi_to_roll(_midi_bytes(music.roll_to_midi(roll)))
    np.testing.assert_array_equal(back, roll)
