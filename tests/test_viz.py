"""Tests for course_lib.viz: what the plots contain (notes per track, labels, titles, grids)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from course_lib import music, viz  # noqa: E402

SPEC = music.CHORALE


@pytest.fixture(autouse=True)
def no_show_and_close(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("library code must not call plt.show()"))
    yield
    plt.close("all")


@pytest.fixture
def roll():
    """Two bars; the soprano repeats C5 (two notes), the bass has three notes."""
    notes = [(0, 72, 0, 8), (0, 72, 8, 16), (0, 74, 16, 32), (1, 67, 0, 32), (2, 60, 0, 16),
             (3, 48, 0, 8), (3, 43, 8, 16), (3, 48, 16, 32)]
    return music.notes_to_roll(np.array(notes), SPEC, 32)


def collections(ax, kind, track):
    return [c for c in ax.collections if c.get_gid() == f"{kind}:{track}"]


def count(ax, kind, track):
    return sum(len(c.get_paths()) for c in collections(ax, kind, track))


def test_one_rectangle_per_note_per_track(roll):
    ax = viz.plot_roll(roll, SPEC)
    assert [count(ax, "notes", name) for name in SPEC.tracks] == [3, 1, 1, 3]
    assert [count(ax, "onsets", name) for name in SPEC.tracks] == [3, 1, 1, 3]
    soprano = collections(ax, "notes", "soprano")[0].get_paths()
    starts = sorted(path.vertices[:, 0].min() for path in soprano)
    assert starts == [0, 8, 16], "the repeated C5 must be two rectangles"
    plain = viz.plot_roll(roll, SPEC, show_onsets=False)
    assert not [c for c in plain.collections if str(c.get_gid()).startswith("onsets")]


def test_labels_title_and_legend(roll):
    ax = viz.plot_roll(roll, SPEC)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["C2", "C3", "C4", "C5"]
    assert ax.get_ylim() == (SPEC.low - 0.5, SPEC.high - 0.5) and ax.get_xlim() == (0, 32)
    ax.figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]  # bar numbers
    assert "bar" in ax.get_xlabel() and ax.get_ylabel() == "pitch"
    assert ax.get_title() == "Piano roll: 2 bar(s), 8 notes"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["soprano (3 notes)", "alto (1 notes)", "tenor (1 notes)", "bass (3 notes)"]
    assert viz.plot_roll(roll, SPEC, title="Bach").get_title() == "Bach"


def test_colors_per_track_are_fixed_and_overridable(roll):
    ax = viz.plot_roll(roll, SPEC)
    faces = [tuple(collections(ax, "notes", n)[0].get_facecolor()[0][:3]) for n in SPEC.tracks]
    assert faces == [to_rgba(c)[:3] for c in viz.PALETTE[:4]] and len(set(faces)) == 4
    ax = viz.plot_roll(roll, SPEC, colors={"bass": "black"})
    assert tuple(collections(ax, "notes", "bass")[0].get_facecolor()[0][:3]) == (0, 0, 0)
    with pytest.raises(ValueError, match="unknown track"):
        viz.plot_roll(roll, SPEC, colors={"viola": "red"})


def test_float_and_noise_rolls(roll):
    rng = np.random.default_rng(0)
    soft = np.where(roll, 0.6 + 0.4 * rng.random(roll.shape), 0.49 * rng.random(roll.shape))
    ax = viz.plot_roll(soft, SPEC)
    assert [count(ax, "notes", n) for n in SPEC.tracks] == [3, 1, 1, 3]
    noise = rng.random(SPEC.shape(4)) * 2 - 1  # like a decoded x_T: many notes
    ax = viz.plot_roll(noise, SPEC)
    expected = np.bincount(music.roll_to_notes(noise, SPEC)[:, 0], minlength=4)
    assert [count(ax, "notes", n) for n in SPEC.tracks] == list(expected) and expected.min() > 100


def test_highlight_mask_fades_given_notes(roll):
    generated = np.zeros(32, bool)
    generated[16:] = True  # bar 2 was generated, bar 1 given
    ax = viz.plot_roll(roll, SPEC, highlight_mask=generated)
    given = [c for c in ax.collections if c.get_gid() == "notes:soprano" and c.get_hatch()]
    made = [c for c in ax.collections if c.get_gid() == "notes:soprano" and not c.get_hatch()]
    assert [len(c.get_paths()) for c in given] == [2] and [len(c.get_paths()) for c in made] == [1]
    assert given[0].get_facecolor()[0][3] < made[0].get_facecolor()[0][3]
    assert "given (not generated)" in [t.get_text() for t in ax.get_legend().get_texts()]
    # per-track mask (harmonize: soprano given, the others generated) and a roll-shaped mask
    per_track = np.ones((4, 32), bool)
    per_track[0] = False
    for mask in (per_track, np.broadcast_to(per_track[:, None, None, :], roll.shape)):
        ax = viz.plot_roll(roll, SPEC, highlight_mask=mask)
        hatched = [c.get_gid() for c in ax.collections if c.get_gid().startswith("notes") and c.get_hatch()]
        assert hatched == ["notes:soprano"]
    with pytest.raises(ValueError, match="highlight_mask has shape"):
        viz.plot_roll(roll, SPEC, highlight_mask=np.ones(31, bool))


def test_bad_roll_shapes_raise(roll):
    with pytest.raises(ValueError, match="spec=music.MELODY"):
        viz.plot_roll(roll[:1], SPEC)
    with pytest.raises(ValueError, match="decode model tensors"):
        viz.plot_roll(roll[:, 0], SPEC)


def test_melody_spec():
    melody = music.notes_to_roll(np.array([(0, 60, 0, 4), (0, 62, 4, 16)]), music.MELODY, 16)
    ax = viz.plot_roll(melody, music.MELODY)
    assert count(ax, "notes", "melody") == 2


def test_grid_of_rolls(roll):
    rolls = [roll, roll * 0.0, roll, roll, roll]
    fig = viz.plot_rolls(rolls, [f"step {i}" for i in range(5)], SPEC, ncols=3, suptitle="Denoising")
    axes = fig.axes
    assert len(axes) == 6 and [ax.get_visible() for ax in axes] == [True] * 5 + [False]
    assert axes[0].get_subplotspec().get_gridspec().get_geometry() == (2, 3)
    assert [ax.get_title() for ax in axes[:5]] == [f"step {i}" for i in range(5)]
    assert axes[0].get_shared_x_axes().joined(axes[0], axes[4])
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[4])
    assert count(axes[1], "notes", "soprano") == 0 and count(axes[2], "notes", "soprano") == 3
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(SPEC.tracks)
    assert fig.get_suptitle() == "Denoising"
    stacked = viz.plot_rolls(np.stack(rolls[:2]), spec=SPEC)
    assert [ax.get_title() for ax in stacked.axes] == ["roll 1", "roll 2"]
    with pytest.raises(ValueError, match="2 titles for 5 rolls"):
        viz.plot_rolls(rolls, ["a", "b"], SPEC)
    with pytest.raises(ValueError, match="same shape"):
        viz.plot_rolls([roll, roll[..., :16]], spec=SPEC)


def test_schedules():
    t = np.arange(1000)
    alpha_bar = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    ax = viz.plot_schedules({"linear": alpha_bar, "half": alpha_bar / 2}, ylabel="alpha_bar_t", title="ᾱ_t")
    assert [line.get_label() for line in ax.get_lines()] == ["linear", "half"]
    assert np.array_equal(ax.get_lines()[0].get_xdata(), t) and ax.get_title() == "ᾱ_t"
    snr = viz.plot_schedules({"linear": alpha_bar / (1 - alpha_bar)}, ylabel="SNR", log=True)
    assert snr.get_yscale() == "log"
    with pytest.raises(ValueError, match="log axis"):
        viz.plot_schedules({"x": np.array([1.0, 0.0])}, log=True)
    with pytest.raises(ValueError, match="1-D"):
        viz.plot_schedules({"x": np.ones((2, 3))})


def test_save_roll_png_leaves_no_figure_open(roll, tmp_path):
    before = plt.get_fignums()
    path = viz.save_roll_png(tmp_path / "roll.png", roll, SPEC, title="saved")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == before
