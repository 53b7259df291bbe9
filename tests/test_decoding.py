"""Tests for course_lib.decoding: the rule-aware decoder gives the plain decoder's notes back when
its rules are off, keeps the rhythm always, keeps given music, and repairs what the rules name
(voice crossing, parallels) on real chorale windows whose channels were blurred by noise."""
import numpy as np
import pytest
import torch

from course_lib import data, decoding, encoding, music, realism

OFF = decoding.DecodingRules(confidence=1.0, height=1.0, crossing=0, spacing=0, parallels=0, leaps=0,
                             motion=0, repeats=0, dissonance=0, range=0, classes=1)


@pytest.fixture(scope="module")
def chorales():
    """Per-voice encoding and 24 real 4-bar Bach windows in model space."""
    corpus = data.load_corpus("bach")
    enc = encoding.VoiceEncoding(music.CHORALE, data.voice_ranges([corpus]))
    windows = data.WindowDataset(corpus, "valid", encoding=enc)
    x = torch.stack([windows[i][0] for i in range(0, 24 * 7, 7)])
    return enc, x


def blurred(x, scale, seed=0):
    g = torch.Generator().manual_seed(seed)
    return x + scale * torch.randn(x.shape, generator=g)


def test_with_the_rules_off_it_is_the_plain_decoder(chorales):
    enc, x = chorales
    for scale in (0.0, 0.5):
        noisy = blurred(x, scale)
        assert np.array_equal(decoding.decode_voice_leading(enc, noisy, OFF), enc.decode(noisy))


def test_real_music_keeps_almost_every_note_under_the_rules(chorales):
    enc, x = chorales
    plain, ruled = enc.decode(x), decoding.decode_voice_leading(enc, x, decoding.DecodingRules())
    onsets = plain[:, :, music.ONSET].any(axis=2)  # (N, tracks, S)
    changed = (plain[:, :, music.ONSET] != ruled[:, :, music.ONSET]).any(axis=2) & onsets
    # Bach too crosses and leaps now and then; the default rules may move such a note, but the
    # model's say (a clean one-hot class, an exact height) outweighs them almost everywhere
    assert changed.sum() <= 0.02 * onsets.sum(), f"{changed.sum()} of {onsets.sum()} real notes moved"


def test_the_rhythm_is_the_plain_decoders(chorales):
    enc, x = chorales
    noisy = blurred(x, 0.6, seed=1)
    plain, ruled = enc.decode(noisy), decoding.decode_voice_leading(enc, noisy, decoding.DecodingRules(crossing=3))
    # per voice and step: sounding or not, and onset or not, are the same; only pitches may move
    for layer in (music.SUSTAIN, music.ONSET):
        assert np.array_equal(plain[:, :, layer].any(axis=2), ruled[:, :, layer].any(axis=2))
    assert (ruled[:, :, music.SUSTAIN].sum(axis=2) <= 1).all()  # each voice stays monophonic


def test_rules_repair_crossing_and_parallels_that_blur_makes(chorales):
    enc, x = chorales
    noisy = blurred(x, 0.7, seed=2)
    plain = realism.voice_leading_summary(enc.decode(noisy))
    ruled = realism.voice_leading_summary(decoding.decode_voice_leading(
        enc, noisy, decoding.DecodingRules(crossing=3, spacing=2, parallels=4, leaps=3)))
    real = realism.voice_leading_summary(enc.decode(x))
    assert plain["crossing"] > 2 * real["crossing"], "the blur should make crossings for the test to mean anything"
    assert ruled["crossing"] < 0.5 * plain["crossing"]
    assert ruled["parallels"] < plain["parallels"]
    assert ruled["leaps"] < plain["leaps"]


def test_given_music_keeps_its_plain_pitches(chorales):
    enc, x = chorales
    noisy = blurred(x, 0.7, seed=3)
    known = torch.zeros_like(noisy)
    known[..., :32] = 1  # the first two bars are given
    rules = decoding.DecodingRules(crossing=5, parallels=5, leaps=5)
    plain = enc.decode(noisy)
    ruled = decoding.decode_voice_leading(enc, noisy, rules, known_mask=known)
    assert np.array_equal(ruled[..., :32], plain[..., :32])
    free = decoding.decode_voice_leading(enc, noisy, rules)
    assert not np.array_equal(free[..., :32], plain[..., :32])  # without the mask the rules do move them


def test_bad_rules_and_inputs_are_refused(chorales):
    enc, x = chorales
    with pytest.raises(ValueError, match="weights >= 0"):
        decoding.DecodingRules(crossing=-1)
    with pytest.raises(ValueError, match="finite"):
        decoding.DecodingRules(leaps=float("inf"))
    with pytest.raises(ValueError, match="classes"):
        decoding.DecodingRules(classes=0)
    with pytest.raises(ValueError, match="expected"):
        decoding.decode_voice_leading(enc, x[:, :30])
    with pytest.raises(ValueError, match="voice encoding"):
        decoding.decode_voice_leading(encoding.PianoRollEncoding(music.CHORALE), x)


# --------------------------------------------------------------------------- the model card's say

@pytest.fixture(scope="module")
def carded_checkpoint(tmp_path_factory):
    """A tiny untrained per-voice checkpoint whose card recommends 3 DDIM steps and the rule decoder."""
    from course_lib import models, schedules, train
    torch.manual_seed(0)
    enc = encoding.VoiceEncoding(music.CHORALE, data.voice_ranges([data.load_corpus("bach")]))
    config = models.ModelConfig(kind="unet1d", in_channels=enc.shape()[0], channels=64, channel_mults=(1,),
                                attention=False, n_res_blocks=1, time_dim=16, prediction="v", n_styles=2, use_mode=True)
    sampling = {"steps": 3, "guidance_scale": 1.5, "decoder": "voice_leading",
                "decoder_rules": {"crossing": 4.0, "parallels": 3.0}}
    path = tmp_path_factory.mktemp("carded") / "carded.pt"
    train.save_checkpoint(path, models.build_model(config), schedules.make_schedule("cosine", 50), enc,
                          card={"sampling": sampling})
    from course_lib import pipeline
    checkpoint = pipeline.load(path)
    checkpoint.meta["test_path"] = str(path)  # for the CLI tests below
    return checkpoint


def test_generate_takes_the_cards_sampling_settings(carded_checkpoint):
    from course_lib import pipeline
    defaults = pipeline.sampling_defaults(carded_checkpoint)
    assert defaults["steps"] == 3 and defaults["decoder"] == "voice_leading"
    assert defaults["sampler"] == pipeline.FALLBACK_SAMPLING["sampler"]  # what the card leaves out falls back
    seen = []
    pipeline.generate(carded_checkpoint, 2, callback=lambda *a, **k: seen.append(1))
    assert len(seen) == 3
    seen.clear()
    pipeline.generate(carded_checkpoint, 2, steps=5, callback=lambda *a, **k: seen.append(1))
    assert len(seen) == 5  # an explicit setting wins over the card


def test_decode_follows_the_card_and_can_be_overridden(carded_checkpoint):
    from course_lib import pipeline
    enc = carded_checkpoint.encoding
    x = torch.randn(3, *enc.shape(), generator=torch.Generator().manual_seed(4))
    rules = decoding.DecodingRules(crossing=4.0, parallels=3.0)
    assert np.array_equal(pipeline.decode(carded_checkpoint, x), decoding.decode_voice_leading(enc, x, rules))
    assert np.array_equal(pipeline.decode(carded_checkpoint, x, decoder="plain"), enc.decode(x))
    with pytest.raises(ValueError, match="decoder must be"):
        pipeline.decode(carded_checkpoint, x, decoder="beam")
    other = {"crossing": 0.0, "spacing": 0.0, "parallels": 0.0, "leaps": 0.0, "range": 0.0, "height": 0.0}
    assert np.array_equal(pipeline.decode(carded_checkpoint, x, decoder_rules=other),
                          decoding.decode_voice_leading(enc, x, decoding.DecodingRules(**other)))
    assert np.array_equal(pipeline.generate(carded_checkpoint, 2, seed=5, decoder_rules=other),
                          pipeline.decode(carded_checkpoint, pipeline.sample(carded_checkpoint, 2, seed=5),
                                          decoder_rules=other))


def test_evaluate_names_its_decoder_and_refuses_bad_rules(carded_checkpoint, capsys):
    from course_lib import cli
    for bad, why in (("crossing=x", "not a number"), ("bogus=1", "NAME=WEIGHT"), ("leaps=-1", "weights >= 0"),
                     ("leaps=nan", "finite"), ("classes=0", "classes")):
        assert cli.main(["evaluate", "--decoder-rules", bad, "--n", "10"]) == 2
        assert why in capsys.readouterr().err, bad
    assert cli.decoder_rules("crossing=3, classes=1") == {"crossing": 3.0, "classes": 1}


def test_bench_times_the_cards_default_first(carded_checkpoint, capsys):
    """Issue 14's speed limit is for the default settings: the card's sampler, w and decoder."""
    from course_lib import cli
    assert cli.main(["bench", "--checkpoint", carded_checkpoint.meta["test_path"], "--quick", "--repeats", "1",
                     "--threads", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "batch" in line]
    assert rows[0].startswith("default (card: DDIM-3, w = 1.5, voice_leading decoder)") and "batch   1" in rows[0]
    assert rows[1].startswith("default (card:") and "batch  64" in rows[1]
    assert rows[2].startswith("DDIM-50, w = 0, plain decoder")


def test_the_repeat_rule_turns_close_calls_into_motion(chorales):
    """Blur makes the plain decoder repeat pitches (the runner-up class was the real one); a repeat
    cost picks the runner-up where it was close, and the rest of the notes stay."""
    enc, x = chorales
    noisy = blurred(x, 0.7, seed=3)

    def repeat_share(rolls):
        pitch, onset = realism._voices(rolls, music.CHORALE)
        intervals = np.concatenate(realism._melodic_intervals(pitch, onset))
        return float(np.mean(intervals == 0))

    base = decoding.DecodingRules(crossing=1, leaps=3)
    without = decoding.decode_voice_leading(enc, noisy, base)
    with_rule = decoding.decode_voice_leading(enc, noisy, decoding.DecodingRules(crossing=1, leaps=3, repeats=1.0))
    assert repeat_share(with_rule) < 0.8 * repeat_share(without)
    assert repeat_share(with_rule) > 0.25 * repeat_share(enc.decode(x)), "Bach repeats notes too: not to zero"
    for layer in (music.SUSTAIN, music.ONSET):  # still only pitches move
        assert np.array_equal(without[:, :, layer].any(axis=2), with_rule[:, :, layer].any(axis=2))


def test_the_melodic_prior_is_bachs_interval_histogram_and_pulls_toward_it(chorales):
    costs = decoding.interval_costs()
    assert costs.shape == (2 * decoding.MAX_INTERVAL + 1,) and costs.min() == 0
    at = lambda interval: costs[interval + decoding.MAX_INTERVAL]  # noqa: E731
    assert max(at(-2), at(-1), at(1), at(2)) < min(at(3), at(4), at(-4), at(6), at(-6))  # steps beat skips
    assert at(6) > at(7) and at(-6) > at(-5)  # tritones are rarer than fifths and fourths
    enc, x = chorales
    noisy = blurred(x, 0.7, seed=4)

    def histogram(rolls):
        pitch, onset = realism._voices(rolls, music.CHORALE)
        steps = np.clip(np.concatenate(realism._melodic_intervals(pitch, onset)), -12, 12)
        return np.bincount(steps + 12, minlength=25) / len(steps)

    real = histogram(enc.decode(x))
    base = decoding.DecodingRules(crossing=1, leaps=3)
    plain = histogram(decoding.decode_voice_leading(enc, noisy, base))
    fused = histogram(decoding.decode_voice_leading(enc, noisy, decoding.DecodingRules(crossing=1, leaps=3, intervals=1.0)))
    assert np.abs(fused - real).sum() < 0.85 * np.abs(plain - real).sum(), (np.abs(fused - real).sum(), np.abs(plain - real).sum())


def test_the_dissonance_rule_hears_sonorities_as_metrics_does(chorales):
    """A fourth above the bass (a 6/4) is a dissonance for metrics.consonance, so for the decoder too."""
    from course_lib import metrics
    assert not decoding.CONSONANT_ABOVE_BASS[5] and decoding.CONSONANT_ABOVE_BASS[[0, 3, 4, 7, 8, 9]].all()
    assert decoding.CLASH_BETWEEN_UPPER[[1, 2, 6, 10, 11]].all() and not decoding.CLASH_BETWEEN_UPPER[[0, 3, 4, 5, 7]].any()
    enc, x = chorales
    noisy = blurred(x, 0.7, seed=5)
    base = decoding.DecodingRules(crossing=1, leaps=3, classes=3)
    hearing = decoding.DecodingRules(crossing=1, leaps=3, classes=3, dissonance=1.0)
    before = np.nanmean(metrics.consonance(decoding.decode_voice_leading(enc, noisy, base)))
    after = np.nanmean(metrics.consonance(decoding.decode_voice_leading(enc, noisy, hearing)))
    assert after > before + 0.05, (before, after)


def test_a_single_melody_is_decoded_plainly(chorales):
    """A folk tune (one voice) has no voices to lead, and Bach's melodic prior is not its style."""
    enc, x = chorales
    noisy = blurred(x, 0.7, seed=6)
    tune = noisy.clone()
    tune.view(len(tune), 4, encoding.VOICE_CHANNELS, tune.shape[-1])[:, 1:, encoding.ACTIVE] = -1.0  # alto, tenor, bass silent
    rules = decoding.DecodingRules(intervals=1.0, repeats=1.0, classes=4)
    assert np.array_equal(decoding.decode_voice_leading(enc, tune, rules), enc.decode(tune))
    stray = tune.clone()
    stray.view(len(stray), 4, encoding.VOICE_CHANNELS, stray.shape[-1])[:, 2, encoding.ACTIVE, 10:13] = 1.0  # a tenor note
    assert np.array_equal(decoding.decode_voice_leading(enc, stray, rules), enc.decode(stray))
    assert not np.array_equal(decoding.decode_voice_leading(enc, noisy, rules), enc.decode(noisy))


def test_generate_and_demo_default_to_the_cards_settings(carded_checkpoint, tmp_path, monkeypatch):
    """Issue 14: 'the default generate output' is what the card recommends, not a CLI literal."""
    from course_lib import cli, pipeline
    seen = []
    real_generate = pipeline.generate
    monkeypatch.setattr(pipeline, "generate", lambda *a, **k: seen.append(k) or real_generate(*a, **k))
    path = carded_checkpoint.meta["test_path"]
    assert cli.main(["generate", "--checkpoint", path, "--n", "1", "--out", str(tmp_path / "g"), "--quiet",
                     "--threads", "1"]) == 0
    assert seen[-1]["steps"] == 3 and seen[-1]["guidance_scale"] == 1.5
    assert cli.main(["generate", "--checkpoint", path, "--n", "1", "--out", str(tmp_path / "h"), "--quiet",
                     "--steps", "2", "--guidance", "0", "--threads", "1"]) == 0
    assert seen[-1]["steps"] == 2 and seen[-1]["guidance_scale"] == 0.0
    assert cli.main(["demo", "--checkpoint", path, "--out", str(tmp_path / "d"), "--threads", "1"]) == 0
    assert seen[-1]["guidance_scale"] is None  # pipeline.generate then takes the card's (tested above)


def test_the_bundled_models_default_output_keeps_the_rules():
    """A guard on the wiring of issue 14 (card -> generate -> rule decoder): 32 default samples of the
    bundled model stay within loose multiples of real Bach's rates; the plain decoder would not
    (its crossing is 4-6x real, its parallels 40x: the card's ablation table)."""
    from course_lib import pipeline
    checkpoint = pipeline.load()
    rolls = pipeline.generate(checkpoint, 32, style="bach", mode=[k % 2 for k in range(32)], seed=11)
    real, _, _ = realism.real_windows("bach", "test")
    got, want = realism.voice_leading_summary(rolls), realism.voice_leading_summary(real)
    assert got["crossing"] < 3 * want["crossing"], (got, want)
    assert got["parallels"] < 8 * want["parallels"], (got, want)
    assert got["leaps"] < 3 * want["leaps"], (got, want)
    plain = realism.voice_leading_summary(pipeline.generate(checkpoint, 32, style="bach", mode=[k % 2 for k in range(32)],
                                                            seed=11, decoder="plain"))
    assert plain["parallels"] > 8 * want["parallels"]  # the guard can fail: without the decoder it does
