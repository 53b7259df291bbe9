"""course_lib.data: corpora, caching, windows, labels and the split by piece."""
import warnings

import numpy as np
import pytest

from course_lib import data, encoding, music


@pytest.fixture(scope="module")
def bach():
    return data.load_corpus("bach")


@pytest.fixture(scope="module")
def folk():
    return data.load_corpus("folk")


def test_committed_caches_load_and_describe_themselves(bach, folk):
    assert bach.from_cache and folk.from_cache
    assert len(bach) > 250 and bach.spec == music.CHORALE
    assert len(folk) > 1000 and folk.spec == music.MELODY
    report = bach.report()
    assert "pieces" in report and "windows" in report and "rejected" in report
    assert any("meter 3/4" in reason for reason in bach.rejected), "3/4 chorales are reported as rejected"


def test_every_piece_is_transposed_to_tonic_c(bach):
    for i in range(0, len(bach), 25):
        tonic, _, _ = music.estimate_key(bach.notes[i])
        assert tonic == 0, f"{bach.pieces[i]['id']} has tonic {tonic} after transposition"


def test_split_is_by_piece_never_by_window(bach, folk):
    for corpus in (bach, folk):
        seen = {}
        for split in data.SPLITS:
            for name, piece_id, _ in data.WindowDataset(corpus, split).pieces:
                assert seen.setdefault(piece_id, split) == split, f"{piece_id} is in two splits"
        counts = {s: sum(v == s for v in seen.values()) for s in data.SPLITS}
        assert counts["train"] > 5 * counts["test"] > 0 and counts["valid"] > 0


def test_windows_items_and_labels(bach, folk):
    enc = encoding.VoiceEncoding()
    ds = data.WindowDataset([bach, folk], "valid", enc)
    x, labels = ds[0]
    assert tuple(x.shape) == enc.shape(4)
    assert set(labels) == {"style", "mode", "density"}
    styles = {l["style"] for l in ds.labels}
    assert styles == {data.STYLES.index("bach"), data.STYLES.index("folk")}
    assert {l["mode"] for l in ds.labels} == {music.MAJOR, music.MINOR}
    densities = np.array([l["density"] for l in ds.labels])
    assert 0.05 < densities.min() and densities.max() < 1.0
    # folk melodies sit in the soprano slot, the other voices rest
    folk_index = next(i for i, l in enumerate(ds.labels) if l["style"] == data.STYLES.index("folk"))
    assert not ds.roll(folk_index)[1:].any() and ds.roll(folk_index)[0].any()


def test_transposition_augmentation_stays_in_range(bach):
    ds = data.WindowDataset(bach, "valid", None, transpose_range=6, seed=3)
    shifted = 0
    for i in range(0, len(ds), 7):
        roll, _ = ds[i]
        assert roll.shape == music.CHORALE.shape(4)
        shifted += not np.array_equal(roll, ds.roll(i))
    assert shifted > 0, "augmentation never transposed anything"


def test_cache_miss_then_hit(tmp_path):
    first = data.load_corpus("bach", cache_dir=tmp_path, limit=6, workers=1)
    assert not first.from_cache and (tmp_path / "bach.npz").exists()
    second = data.load_corpus("bach", cache_dir=tmp_path)
    assert second.from_cache
    assert [p["id"] for p in second.pieces] == [p["id"] for p in first.pieces]
    for a, b in zip(first.notes, second.notes):
        np.testing.assert_array_equal(a, b)


def test_damaged_cache_is_rebuilt_with_a_warning(tmp_path):
    (tmp_path / "bach.npz").write_bytes(b"not a cache")
    with pytest.warns(UserWarning, match="rebuilding"):
        corpus = data.load_corpus("bach", cache_dir=tmp_path, limit=3, workers=1)
    assert not corpus.from_cache and len(corpus) > 0


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="unknown corpus"):
        data.load_corpus("mozart")
    with pytest.raises(ValueError, match="split"):
        data.WindowDataset([], "training")
