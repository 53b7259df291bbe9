"""Noise schedules: the constants against independent float64 formulas, round trips, errors."""
import json
import math

import pytest
import torch

from course_lib.schedules import (SCHEDULE_KINDS, NoiseSchedule, extract, extract_alpha_bar, make_schedule,
                                  snr)


@pytest.mark.parametrize("kind", SCHEDULE_KINDS)
def test_every_kind_destroys_the_signal_gradually(kind):
    s = make_schedule(kind, 1000)
    assert s.timesteps == len(s) == 1000
    assert bool(((s.betas > 0) & (s.betas < 1)).all())
    assert bool((s.alpha_bar[1:] < s.alpha_bar[:-1]).all()), "ᾱ_t must decrease"
    assert s.alpha_bar[0] > 0.999 and s.alpha_bar[-1] < 1e-4
    assert bool((s.snr[1:] < s.snr[:-1]).all())
    for name in ("betas", "alpha_bar", "posterior_variance", "snr"):
        assert getattr(s, name).dtype == torch.float32 and getattr(s, name).shape == (1000,)


def test_linear_schedule_matches_ho_et_al_and_rescales_with_T():
    s = make_schedule("linear", 1000)
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    short = make_schedule("linear", 100)
    assert short.betas[0].item() == pytest.approx(1e-3)
    # β scaled by 1000/T: about as much noise in the end as with T = 1000
    assert math.log(short.alpha_bar[-1]) == pytest.approx(math.log(s.alpha_bar[-1]), rel=0.1)


def test_cosine_alpha_bar_follows_nichol_dhariwal_eq_17():
    T, eps = 1000, 0.008
    s = make_schedule("cosine", T)
    f = lambda tau: math.cos((tau + eps) / (1 + eps) * math.pi / 2) ** 2
    for t in (0, 100, 500, 900):  # ᾱ at 0-based step t is f((t + 1)/T) / f(0) (β clipping only bites at the end)
        assert s.float64("alpha_bar")[t].item() == pytest.approx(f((t + 1) / T) / f(0), rel=1e-9)


def test_sigmoid_schedule_changes_with_tau():
    flat, steep = make_schedule("sigmoid", 500, tau=2.0), make_schedule("sigmoid", 500, tau=0.5)
    assert flat.alpha_bar[250] != pytest.approx(steep.alpha_bar[250].item(), abs=1e-3)
    assert flat.to_dict() == {"kind": "sigmoid", "timesteps": 500, "tau": 2.0}


def test_derived_constants_match_an_independent_float64_computation():
    s = make_schedule("cosine", 50)
    betas = s.float64("betas").tolist()
    alpha_bar, prod = [], 1.0
    for b in betas:
        prod *= 1 - b
        alpha_bar.append(prod)
    for t, b in enumerate(betas):
        ab, ab_prev = alpha_bar[t], (alpha_bar[t - 1] if t else 1.0)
        expected = {
            "alpha_bar": ab, "alpha_bar_prev": ab_prev, "sqrt_alpha_bar": math.sqrt(ab),
            "sqrt_one_minus_alpha_bar": math.sqrt(1 - ab), "snr": ab / (1 - ab),
            "posterior_variance": b * (1 - ab_prev) / (1 - ab),
            "posterior_mean_coef1": math.sqrt(ab_prev) * b / (1 - ab),
            "posterior_mean_coef2": math.sqrt(1 - b) * (1 - ab_prev) / (1 - ab),
        }
        for name, value in expected.items():
            assert s.float64(name)[t].item() == pytest.approx(value, rel=1e-12, abs=1e-300), (name, t)
            assert getattr(s, name)[t].item() == pytest.approx(value, rel=1e-6), (name, t)
    assert s.posterior_variance[0].item() == 0.0
    assert s.posterior_log_variance_clipped[0] == s.posterior_log_variance_clipped[1]
    assert torch.allclose(snr(s.float64("alpha_bar")), s.float64("snr"), rtol=1e-12)


@pytest.mark.parametrize("kind", SCHEDULE_KINDS)
def test_to_dict_round_trip_is_json_friendly(kind):
    s = make_schedule(kind, 300)
    d = json.loads(json.dumps(s.to_dict()))
    again = NoiseSchedule.from_dict(d)
    assert again.kind == kind and torch.equal(again.betas, s.betas)


def test_custom_betas_round_trip():
    s = NoiseSchedule.from_betas(torch.linspace(0.01, 0.2, 20))
    again = NoiseSchedule.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again.kind == "custom" and torch.equal(again.alpha_bar, s.alpha_bar)


def test_extract_gathers_and_broadcasts():
    s = make_schedule("linear", 10)
    t = torch.tensor([0, 9, 3])
    out = extract(s.sqrt_alpha_bar, t, (3, 4, 5, 6))
    assert out.shape == (3, 1, 1, 1)
    assert torch.equal(out.flatten(), s.sqrt_alpha_bar[t])
    assert torch.equal(extract(s.betas, 4, (2, 7)).flatten(), s.betas[[4, 4]])  # one int for the batch
    assert extract(s.betas, torch.tensor(4), (2, 7)).shape == (2, 1)


def test_extract_alpha_bar_knows_the_clean_level():
    s = make_schedule("cosine", 10)
    assert torch.equal(extract_alpha_bar(s, torch.tensor([-1, 0, 9]), (3, 2)).flatten(),
                       torch.cat([torch.ones(1), s.alpha_bar[[0, 9]]]))
    with pytest.raises(ValueError, match="-1 means the clean data"):
        extract_alpha_bar(s, -2, (1, 2))


@pytest.mark.parametrize("t", [10, -1, torch.tensor([0, 10]), torch.tensor([-1, 3])])
def test_extract_rejects_out_of_range_timesteps(t):
    s = make_schedule("linear", 10)
    with pytest.raises(ValueError, match=r"out of range.*T=10"):
        extract(s.betas, t, (2, 3))


def test_extract_rejects_bad_t():
    s = make_schedule("linear", 10)
    with pytest.raises(ValueError, match="LongTensor"):
        extract(s.betas, torch.tensor([0.5, 1.0]), (2, 3))
    with pytest.raises(ValueError, match="one timestep per sample"):
        extract(s.betas, torch.tensor([1, 2, 3]), (2, 3))


def test_bad_schedules_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="choose one of"):
        make_schedule("quadratic")
    for bad in (1, 0, 1000.0, "1000"):
        with pytest.raises(ValueError, match="integer >= 2"):
            make_schedule("linear", bad)
    with pytest.raises(ValueError, match="bad option"):
        make_schedule("cosine", 100, beta_end=0.02)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        NoiseSchedule.from_betas(torch.tensor([0.1, 1.0]))


def test_to_device_moves_constants():
    s = make_schedule("linear", 10).to("meta")
    assert s.alpha_bar.device.type == "meta" and s.float64("alpha_bar").device.type == "cpu"
