"""course_lib.encoding: both encodings round-trip real music and decode any tensor."""
import numpy as np
import pytest
import torch

from course_lib import data, encoding, music


@pytest.fixture(scope="module")
def rolls():
    ds = data.WindowDataset(data.load_corpus("bach"), "test")
    return [ds.roll(i) for i in range(0, len(ds), 5)]


@pytest.mark.parametrize("cls", [encoding.PianoRollEncoding, encoding.VoiceEncoding])
def test_round_trip_is_exact_on_real_chorales(cls, rolls):
    enc = cls()
    for roll in rolls:
        x = enc.encode(roll)
        assert tuple(x.shape) == enc.shape(4) and x.abs().max() <= 1
        np.testing.assert_array_equal(enc.decode(x), roll)


def test_voice_encoding_is_ten_times_smaller():
    assert np.prod(encoding.PianoRollEncoding().shape(4)) > 6 * np.prod(encoding.VoiceEncoding().shape(4))


@pytest.mark.parametrize("cls", [encoding.PianoRollEncoding, encoding.VoiceEncoding])
def test_decoding_noise_gives_a_roll_batch(cls):
    enc = cls()
    rolls = enc.decode(torch.randn(3, *enc.shape(4), generator=torch.Generator().manual_seed(0)))
    assert rolls.shape == (3, *music.CHORALE.shape(4)) and rolls.dtype == bool
    assert not (rolls[:, :, music.ONSET] & ~rolls[:, :, music.SUSTAIN]).any(), "onsets only where sounding"


def test_voice_decoding_is_monophonic_and_repeats_notes():
    enc = encoding.VoiceEncoding()
    rolls = enc.decode(torch.randn(8, *enc.shape(4)))
    assert rolls[:, :, music.SUSTAIN].sum(axis=2).max() <= 1, "a voice never sounds two pitches"
    table = np.array([[0, 60, 0, 4], [0, 60, 4, 8]])
    roll = music.notes_to_roll(table, music.CHORALE, 64)
    np.testing.assert_array_equal(music.roll_to_notes(enc.decode(enc.encode(roll))), table)


def test_height_only_needs_to_be_right_within_a_fifth():
    enc = encoding.VoiceEncoding()
    roll = music.notes_to_roll(np.array([[0, 67, 0, 16]]), music.CHORALE, 64)
    x = enc.encode(roll)
    x[encoding.HEIGHT] += 5 / float(enc.half_range[0])  # height says C5, pitch class says G
    assert music.roll_to_notes(enc.decode(x))[0, 1] == 67


def test_wrong_shapes_are_explained():
    with pytest.raises(ValueError, match="expected \\(tracks=4"):
        encoding.VoiceEncoding().encode(np.zeros((4, 48, 64), bool))
    with pytest.raises(ValueError, match="voice encoding"):
        encoding.VoiceEncoding().decode(torch.zeros(8, 48, 64))
    with pytest.raises(ValueError, match="unknown encoding"):
        encoding.encoding_from_dict({"name": "mp3"})


def test_per_voice_ranges_round_trip_and_are_stored(rolls):
    ranges = data.voice_ranges([data.load_corpus("bach")])
    assert ranges[0][0] > ranges[3][0] and ranges[0][1] > ranges[3][1]  # the soprano sits above the bass
    enc = encoding.VoiceEncoding(music.CHORALE, ranges)
    for roll in rolls[:8]:
        assert np.array_equal(enc.decode(enc.encode(roll)), roll)
    again = encoding.encoding_from_dict(enc.to_dict())
    assert again.ranges == enc.ranges
    assert "ranges" not in encoding.VoiceEncoding().to_dict()  # the whole range: the old format, unchanged


def test_a_voices_own_range_makes_an_octave_error_larger_in_x():
    whole = encoding.VoiceEncoding()
    own = encoding.VoiceEncoding(music.CHORALE, [(55, 83), (48, 79), (45, 74), (36, 67)])
    # an octave in the soprano's height channel: 12 / 14 of its half range, 12 / 23.5 of the whole one
    assert 12 / float(own.half_range[0]) > 1.5 * 12 / float(whole.half_range[0])


def test_bad_ranges_are_explained():
    with pytest.raises(ValueError, match="one \\(lowest, highest\\) pair per track"):
        encoding.VoiceEncoding(music.CHORALE, [(55, 83)])
    with pytest.raises(ValueError, match="lowest < highest"):
        encoding.VoiceEncoding(music.CHORALE, [(60, 60)] * 4)
