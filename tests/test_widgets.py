"""course_lib.widgets: each viewer built from small inputs, its controls moved from Python, and what it
shows checked: figures and audio change, captions name what plays, the static fallback is complete."""
import sys
import types

import numpy as np
import pytest
import torch

from course_lib import data, diffusion, encoding, models, music, schedules, train, widgets

torch.set_num_threads(1)
SPEC = music.CHORALE
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def roll():
    """Two bars of a Bach chorale, (4, 2, 48, 32)."""
    return music.crop(data.load_corpus("bach").roll(0), 0, 2, SPEC).astype(bool)


@pytest.fixture(scope="module")
def voice():
    return encoding.VoiceEncoding(SPEC)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, voice):
    """A tiny conditional UNet1d with random (non-zero) weights, saved and loaded like the bundled one."""
    def build(labels: bool):
        config = models.ModelConfig(kind="unet1d", in_channels=60, channels=64, channel_mults=(1, 1),
                                    n_res_blocks=1, attention=False, time_dim=32, n_styles=2 if labels else 0,
                                    use_mode=labels, use_density=labels)
        model = models.build_model(config)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():  # the zero-initialised output layers would make every label look alike
            for name, parameter in model.named_parameters():  # strong label embeddings: guidance shows
                scale = 1.0 if name.startswith("embed.") else 0.05
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
        path = tmp_path_factory.mktemp("ckpt") / f"tiny_{labels}.pt"
        train.save_checkpoint(path, model, schedules.make_schedule("cosine", 100), voice)
        return train.load_checkpoint(path)

    return {"conditional": build(True), "unconditional": build(False)}


def check_view(view, *caption_parts):
    assert view.png.startswith(PNG) and view.title
    assert view.player.waveform.size > 0 and np.abs(view.player.waveform).max() > 0
    for part in caption_parts:
        assert part in view.player.caption, f"{part!r} not in caption {view.player.caption!r}"
    page = view.html()
    assert "<img" in page and "<audio" in page and f'alt="{view.title}"' in page and "<figcaption" in page


def test_noise_explorer_slider_changes_what_is_seen_and_heard(roll, voice):
    schedule = schedules.make_schedule("cosine", 100)
    explorer = widgets.noise_explorer(voice.encode(roll), schedule, voice, title="Dissolving a chorale")
    start = explorer.views[0]
    check_view(start, "x_t at t=0 of 100")
    assert np.array_equal(voice.decode(explorer.x_t(0)), roll)  # at t=0 nothing is lost yet

    shown_html = []  # what the panel sends to the browser: the figure first, then figure and audio
    explorer._panels[0].observe(lambda change: shown_html.append(change["new"]), names="value")
    explorer.slider.value = 99
    assert len(shown_html) == 2 and "<img" in shown_html[0] and "<audio" not in shown_html[0]
    assert "rendering the audio" in shown_html[0] and "<audio" in shown_html[1]
    end = explorer.views[0]
    check_view(end, "x_t at t=99 of 100")
    assert explorer.last_error is None and end.png != start.png
    assert not np.array_equal(voice.decode(explorer.x_t(99)), roll)  # what the figure and player show
    explorer.slider.value = 0
    assert explorer.views[0] is start  # cached: moving back renders nothing

    with pytest.raises(ValueError, match=r"encoding\.encode\(roll\)"):
        widgets.noise_explorer(torch.zeros(8, 48, 32), schedule, voice)


def shown(widget) -> dict:
    """The display data a frontend receives for ``widget`` (ipywidgets 8 builds it in _repr_mimebundle_,
    ipywidgets 7, Colab's, in _ipython_display_: this goes through IPython's display() like a cell does)."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    InteractiveShell.instance(config=config)
    try:
        with capture_output() as captured:
            display(widget)
    finally:
        InteractiveShell.clear_instance()  # leave no shell behind for other tests
    (output,) = captured.outputs
    return output.data


def test_fallback_carries_figure_audio_and_message(roll, voice, monkeypatch):
    explorer = widgets.noise_explorer(roll, schedules.make_schedule("linear", 50), voice)  # a roll: encoded
    assert torch.equal(explorer.x0, voice.encode(roll))
    bundle = shown(explorer)
    assert bundle[widgets.WIDGET_MIMETYPE]["model_id"] == explorer.model_id
    page = bundle["text/html"]
    assert page.count("<img") == 1 and page.count("<audio") == 1 and "x_t at t=0 of 50" in page
    assert "interactive widget: open in JupyterLab to use the slider" in page
    assert "The forward process" in page  # the viewer's title

    colab = types.ModuleType("google.colab")
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    bundle = shown(explorer)
    assert widgets.WIDGET_MIMETYPE in bundle and "text/html" not in bundle  # Colab renders the widget itself


def test_denoising_trace_records_copies_of_sample_0(checkpoint):
    model, schedule = checkpoint["conditional"].model, checkpoint["conditional"].schedule
    seen = []
    trace = widgets.DenoisingTrace()

    def both(step, t, x_t, x0_pred):
        seen.append((x_t.clone(), x0_pred.clone()))
        trace(step, t, x_t, x0_pred)

    generator = torch.Generator().manual_seed(0)
    diffusion.ddim_sample(model, schedule, (2, 60, 32), steps=4, callback=both, generator=generator)
    assert [s.step for s in trace] == [0, 1, 2, 3] and trace[-1].t == 0
    assert [s.t for s in trace] == sorted((s.t for s in trace), reverse=True)
    for record, (x_t, x0_pred) in zip(trace, seen):
        assert record.x_t.shape == (60, 32) and record.x_t.device.type == "cpu"
        assert torch.equal(record.x_t, x_t[0]) and torch.equal(record.x0_pred, x0_pred[0])
        assert not torch.equal(record.x_t, x_t[1])
    assert trace[0].x_t.data_ptr() != seen[0][0].data_ptr()

    sparse = widgets.DenoisingTrace(every=2)
    diffusion.ddim_sample(model, schedule, (1, 60, 32), steps=5, callback=sparse)
    assert [s.step for s in sparse] == [0, 2, 4]
    diffusion.ddim_sample(model, schedule, (1, 60, 32), steps=3, callback=sparse)  # a new run starts over
    assert [s.step for s in sparse] == [0, 2]
    with pytest.raises(ValueError, match="batch has 1"):
        diffusion.ddim_sample(model, schedule, (1, 60, 32), steps=2, callback=widgets.DenoisingTrace(sample=1))


def test_denoising_viewer_shows_x_t_and_prediction_side_by_side(checkpoint, voice):
    trace = widgets.DenoisingTrace()
    ckpt = checkpoint["conditional"]
    diffusion.ddim_sample(ckpt.model, ckpt.schedule, (1, 60, 32), steps=3, callback=trace,
                          generator=torch.Generator().manual_seed(1))
    viewer = widgets.denoising_viewer(trace, voice)
    x_t, x0 = viewer.views
    check_view(x_t, f"x_t at step 1 of 3 (t={trace[0].t})")
    check_view(x0, "predicted x̂₀ at step 1 of 3")
    viewer.slider.value = 3
    assert viewer.last_error is None
    check_view(viewer.views[0], "x_t at step 3 of 3 (t=0)")
    assert viewer.views[0].png != x_t.png
    page = viewer._repr_mimebundle_()["text/html"]
    assert page.count("<img") == 2 and page.count("<audio") == 2
    with pytest.raises(ValueError, match="callback=trace"):
        widgets.denoising_viewer(widgets.DenoisingTrace(), voice)


def test_guidance_explorer_switches_between_precomputed_scales(checkpoint, monkeypatch):
    calls = []
    real_generate = widgets.pipeline.generate

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(widgets.pipeline, "generate", spy)
    explorer = widgets.guidance_explorer(checkpoint["conditional"], scales=(0, 3), style="bach", mode="minor",
                                         steps=3)
    assert [(c["guidance_scale"], c["seed"], c["style"], c["mode"]) for c in calls] == \
        [(0.0, 0, "bach", "minor"), (3.0, 0, "bach", "minor")]  # one seed, so only w differs
    check_view(explorer.views[0], "guidance scale w=0", "style bach, mode minor, seed 0")
    assert explorer.samples[0.0].shape == (4, 2, 48, 64)
    explorer.slider.value = 3.0
    assert explorer.views == explorer.rendered[3.0] and "w=3" in explorer.views[0].player.caption
    assert "heard as" in explorer.views[0].title
    with pytest.raises(ValueError, match="without labels"):
        widgets.guidance_explorer(checkpoint["unconditional"], steps=2)


def test_region_picker_regenerates_only_the_chosen_region(checkpoint, roll, monkeypatch):
    masks = []  # known_mask of every generate call: 1 where the music is given
    real_generate = widgets.pipeline.generate
    monkeypatch.setattr(widgets.pipeline, "generate", lambda *a, **k: masks.append(k["known_mask"]) or
                        real_generate(*a, **k))
    picker = widgets.region_picker(checkpoint["conditional"], roll, steps=3)
    assert masks[-1].shape == (60, 32) and (masks[-1][:, :16] == 0).all() and (masks[-1][:, 16:] == 1).all()
    before, after = picker.views
    check_view(before, "before: the given music")
    check_view(after, "after: bar 1 of soprano, alto, tenor, bass regenerated (infill, seed 0)")
    assert picker.region() == (0, 16, [0, 1, 2, 3]) and picker.highlight[:, :16].all()
    assert not picker.highlight[:, 16:].any()
    # the known part comes back exactly (sustain; an onset may be added where a generated note meets it)
    assert np.array_equal(picker.result[:, music.SUSTAIN, :, 16:], roll[:, music.SUSTAIN, :, 16:])

    picker.task.value = "regenerate"
    assert picker.bar_range.disabled and picker.bar_range.value == (1, 2)  # the slider reads what is regenerated
    picker.task.value = "infill"
    assert not picker.bar_range.disabled and picker.bar_range.value == (1, 1)  # the range chosen before comes back
    picker.task.value = "regenerate"
    picker.track_boxes[0].value = False  # keep the soprano, write new alto, tenor and bass
    picker.seed.value = 3
    picker.button.click()
    assert picker.last_error is None and picker.region() == (0, 32, [1, 2, 3])
    assert (masks[-1][:15] == 1).all() and (masks[-1][15:] == 0).all()  # soprano channels 0..14 kept
    assert np.array_equal(picker.result[0, music.SUSTAIN], roll[0, music.SUSTAIN])
    assert not np.array_equal(picker.result[1:], roll[1:])
    check_view(picker.views[1], "bars 1-2 of alto, tenor, bass regenerated (regenerate, seed 3)")

    picker.task.value = "continuation"
    picker.bar_range.value = (2, 2)
    assert picker.region() == (16, 32, [1, 2, 3])
    for box in picker.track_boxes:
        box.value = False
    picker.button.click()  # nothing to generate: the widget says so instead of raising into the void
    assert isinstance(picker.last_error, ValueError) and "at least one track" in str(picker.last_error)
    assert "at least one track" in picker._message.value

    with pytest.raises(ValueError, match="unknown task"):
        widgets.region_picker(checkpoint["conditional"], roll, tasks=("harmonize",), steps=2)
    with pytest.raises(ValueError, match="tracks=4"):
        widgets.region_picker(checkpoint["conditional"], roll[:1], steps=2)


def test_long_plain_titles_are_wrapped_to_the_figure(roll, monkeypatch):
    titles = []
    monkeypatch.setattr(widgets.viz, "plot_roll", lambda *a, title=None, **k: titles.append(title))
    long = "before: the given music (bars 2-3 of soprano, alto, tenor, bass drawn solid: to regenerate)"
    widgets.draw(widgets.Scene(roll, long, "", size=widgets.HALF), music.CHORALE)
    widgets.draw(widgets.Scene(roll, long, "", figure_title="$x_t$ " + long, size=widgets.HALF), music.CHORALE)
    lines = titles[0].split("\n")
    assert len(lines) == 2 and " ".join(lines) == long and max(map(len, lines)) <= 9 * widgets.HALF[0]
    assert titles[1] == "$x_t$ " + long  # mathtext is left alone


def test_track_mixer_mutes_solos_and_regenerates(roll, monkeypatch):
    played = []  # the rolls the players were rendered from (FluidSynth renders are not bit-identical)
    real_to_audio = widgets.audio.to_audio
    monkeypatch.setattr(widgets.audio, "to_audio", lambda piece, *a, **k: played.append(piece) or
                        real_to_audio(piece, *a, **k))
    mixer = widgets.track_mixer(roll, SPEC, regenerate=lambda r, k: music.transpose(r, 2, SPEC))
    check_view(mixer.views[0], "mix: soprano, alto, tenor, bass (")
    assert np.array_equal(played[-1], roll)
    mixer.mutes[1].value = True
    check_view(mixer.views[0], "mix: soprano, tenor, bass (alto muted")
    assert not played[-1][1].any() and np.array_equal(played[-1][[0, 2, 3]], roll[[0, 2, 3]])
    mixer.solos[3].value = True
    assert mixer.audible() == (3,) and "mix: bass (soprano, alto, tenor muted" in mixer.views[0].player.caption
    assert played[-1][:3].sum() == 0 and np.array_equal(played[-1][3], roll[3])
    mixer.solos[3].value = False
    assert mixer.audible() == (0, 2, 3)

    mixer.regenerate_track(2)
    assert mixer.last_error is None and "regenerated: tenor" in mixer.views[0].title
    assert np.array_equal(mixer.roll[2], music.transpose(roll, 2, SPEC)[2])
    assert np.array_equal(mixer.roll[[0, 1, 3]], roll[[0, 1, 3]])

    mixer.regenerate = lambda r, k: r[:2]  # a broken regenerate function
    mixer.regenerate_buttons[1].click()
    assert isinstance(mixer.last_error, ValueError) and "regenerate returned shape" in str(mixer.last_error)
    assert "regenerate returned shape" in mixer._message.value
    with pytest.raises(ValueError, match="tracks=1"):
        widgets.track_mixer(roll, music.MELODY)


def test_the_soundtrack_player_is_reachable_from_widgets():
    from course_lib import soundtrack_widgets

    assert widgets.soundtrack_player is soundtrack_widgets.soundtrack_player
    assert issubclass(widgets.SoundtrackPlayer, widgets.CourseWidget)
    with pytest.raises(AttributeError, match="no attribute 'soundtrak_player'"):
        widgets.soundtrak_player
