"""The forward process, the loss and the samplers, checked against analytic Gaussian results.

An exact denoiser for Gaussian data (models.GaussianDenoiser) stands in for a trained network,
so every sampler property here is exact or statistical, with no training."""
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from course_lib import diffusion as d
from course_lib.models import GaussianDenoiser
from course_lib.schedules import make_schedule

torch.set_num_threads(1)
MEAN, STD = torch.tensor([0.3, -0.2]), torch.tensor([0.2, 0.1])


@pytest.fixture(scope="module")
def schedule():
    return make_schedule("linear", 200)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


class Fake(nn.Module):
    """A deterministic 'network' whose output depends on x, t and the style label."""

    def __init__(self, prediction="eps"):
        super().__init__()
        self.config = SimpleNamespace(prediction=prediction)
        self.calls = []  # batch size of every forward pass
        self.modes = []  # was the model in training mode during the call?

    def forward(self, x, t, labels=None):
        self.calls.append(x.shape[0])
        self.modes.append(self.training)
        style = torch.zeros(x.shape[0]) if not labels or "style" not in labels else labels["style"].float()
        return 0.5 * x + 0.001 * t.float().view(-1, *[1] * (x.ndim - 1)) + 0.3 * style.view(-1, *[1] * (x.ndim - 1))


# --------------------------------------------------------------------------- forward process

def test_closed_form_matches_iterating_the_chain(schedule):
    x0 = torch.tensor([0.8, -0.5]).expand(20000, 2)
    t = 120
    x = x0.clone()
    g = gen(1)
    for s in range(t + 1):  # x_s = sqrt(1 - β_s) x_{s-1} + sqrt(β_s) z   (DDPM eq. 2)
        x = (1 - schedule.betas[s]).sqrt() * x + schedule.betas[s].sqrt() * torch.randn(x.shape, generator=g)
    closed = d.q_sample(schedule, x0, torch.full((20000,), t), generator=gen(2))
    ab = schedule.float64("alpha_bar")[t].item()
    for sample in (x, closed):
        assert torch.allclose(sample.mean(0), math.sqrt(ab) * x0[0], atol=0.02)
        assert torch.allclose(sample.var(0), torch.full((2,), 1 - ab), rtol=0.04)
    noise = torch.randn(3, 2)
    exact = d.q_sample(schedule, x0[:3], 7, noise)
    assert torch.allclose(exact, schedule.sqrt_alpha_bar[7] * x0[:3] + schedule.sqrt_one_minus_alpha_bar[7] * noise)


def test_posterior_matches_bayes_rule_in_float64(schedule):
    x0, x_t = torch.randn(5, 3), torch.randn(5, 3)
    t = torch.tensor([1, 17, 80, 150, 199])
    mean, var, log_var = d.q_posterior(schedule, x0, x_t, t)
    b = schedule.float64("betas")
    for i, ti in enumerate(t.tolist()):
        ab_prev = torch.prod(1 - b[:ti]).item()  # ᾱ_{t-1}, straight from the betas
        beta = b[ti].item()
        # prior q(x_{t-1}|x_0) = N(sqrt(ᾱ_{t-1}) x_0, 1 - ᾱ_{t-1}); likelihood q(x_t|x_{t-1}) = N(sqrt(α_t) x_{t-1}, β_t)
        precision = 1 / (1 - ab_prev) + (1 - beta) / beta
        post_mean = (math.sqrt(ab_prev) * x0[i].double() / (1 - ab_prev)
                     + math.sqrt(1 - beta) * x_t[i].double() / beta) / precision
        assert var[i].item() == pytest.approx(1 / precision, rel=1e-5)
        assert log_var[i].item() == pytest.approx(math.log(1 / precision), rel=1e-5)
        assert torch.allclose(mean[i].double(), post_mean, atol=1e-5)
    mean0, var0, _ = d.q_posterior(schedule, x0, x_t, 0)
    assert torch.allclose(mean0, x0, atol=1e-6) and bool((var0 == 0).all())  # at t = 0, x_0 is known


def test_conversions_invert_each_other(schedule):
    x0, eps = torch.randn(64, 4), torch.randn(64, 4)
    t = torch.randint(0, 150, (64,), generator=gen())  # away from ᾱ ≈ 0, where x_0 from ε is ill-conditioned
    x_t = d.q_sample(schedule, x0, t, eps)
    v = d.velocity(schedule, x0, eps, t)
    assert torch.allclose(d.predict_x0_from_eps(schedule, x_t, t, eps), x0, atol=1e-4)
    assert torch.allclose(d.predict_eps_from_x0(schedule, x_t, t, x0), eps, atol=1e-3)
    assert torch.allclose(d.predict_x0_from_v(schedule, x_t, t, v), x0, atol=1e-5)
    assert torch.allclose(d.predict_eps_from_v(schedule, x_t, t, v), eps, atol=1e-5)
    for kind, output in (("eps", eps), ("x0", x0), ("v", v)):
        got = d.eps_and_x0_from_output(schedule, x_t, t, output, kind)
        assert torch.allclose(got.eps, eps, atol=1e-3) and torch.allclose(got.x0, x0, atol=1e-4), kind


# --------------------------------------------------------------------------- loss

@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_loss_is_zero_for_the_exact_denoiser_and_positive_otherwise(schedule, prediction):
    point = torch.tensor([0.5, -0.5])
    oracle = GaussianDenoiser(schedule, point, std=0.0, prediction=prediction)
    x0 = point.expand(256, 2)
    assert d.training_loss(oracle, schedule, x0, generator=gen()).item() < 1e-8
    wrong = Fake(prediction)
    assert d.training_loss(wrong, schedule, x0, generator=gen()).item() > 0.05
    per_sample = d.training_loss(wrong, schedule, x0, generator=gen(), reduction="none")
    assert per_sample.shape == (256,) and bool((per_sample > 0).all())


def test_loss_mask_ignores_masked_elements(schedule):
    point = torch.tensor([0.5, -0.5])
    oracle = GaussianDenoiser(schedule, point, std=0.0, prediction="x0")
    x0 = torch.stack([point.expand(64, 2), torch.zeros(64, 2)], dim=1)  # (B, 2, 2): row 1 is not what the oracle knows
    oracle.mean = torch.stack([point, point])
    mask = torch.tensor([[1.0], [0.0]])  # only row 0 counts
    assert d.training_loss(oracle, schedule, x0, loss_mask=mask, generator=gen()).item() < 1e-10
    assert d.training_loss(oracle, schedule, x0, generator=gen()).item() > 0.1


def test_loss_refuses_contradictions(schedule):
    with pytest.raises(ValueError, match="contradicts"):
        d.training_loss(Fake("eps"), schedule, torch.zeros(4, 2), prediction="v")
    bad = Fake()
    bad.forward = lambda x, t, labels=None: x[:, :1]
    with pytest.raises(ValueError, match="input's shape"):
        d.training_loss(bad, schedule, torch.zeros(4, 2))


# --------------------------------------------------------------------------- steps

def test_last_steps_return_the_x0_prediction(schedule):
    x_t, x0 = torch.randn(3, 2), torch.randn(3, 2)
    assert torch.allclose(d.ddpm_step(schedule, x_t, 0, x0, generator=gen()).prev_sample, x0, atol=1e-6)
    eps = d.predict_eps_from_x0(schedule, x_t, 40, x0)
    out = d.ddim_step(schedule, x_t, 40, -1, eps, x0)
    assert torch.equal(out.prev_sample, x0) and out.pred_original_sample is x0


def test_ddim_step_with_eta_1_is_the_ddpm_step(schedule):
    x_t, x0, z = torch.randn(3, 2), torch.randn(3, 2), torch.randn(3, 2)
    t = torch.tensor([5, 60, 199])
    eps = d.predict_eps_from_x0(schedule, x_t, t, x0)
    ddpm = d.ddpm_step(schedule, x_t, t, x0, noise=z).prev_sample
    ddim = d.ddim_step(schedule, x_t, t, t - 1, eps, x0, eta=1.0, noise=z).prev_sample
    assert torch.allclose(ddpm, ddim, atol=1e-5)
    with pytest.raises(ValueError, match="eta"):
        d.ddim_step(schedule, x_t, t, t - 1, eps, x0, eta=1.5)


def test_ddim_timesteps():
    assert d.ddim_timesteps(1000, 5) == [999, 749, 500, 250, 0]
    assert d.ddim_timesteps(10, 10) == list(range(9, -1, -1))
    assert d.ddim_timesteps(10, 1) == [9]
    with pytest.raises(ValueError, match="between 1"):
        d.ddim_timesteps(10, 11)


# --------------------------------------------------------------------------- samplers vs analytic results

def analytic_std(schedule, timesteps, std, eta_like_ddpm):
    """Exact std of the samplers' output for N(0, std²) data and the exact denoiser (a linear map per step)."""
    ab = schedule.float64("alpha_bar")
    variance = 1.0
    for t, t_prev in zip(timesteps, timesteps[1:] + [-1]):
        a, a_prev = ab[t].item(), (ab[t_prev].item() if t_prev >= 0 else 1.0)
        gain = math.sqrt(a) * std ** 2 / (a * std ** 2 + 1 - a)  # x̂_0 = gain · x_t
        sigma2 = (1 - a_prev) / (1 - a) * (1 - a / a_prev) if eta_like_ddpm else 0.0
        eps_gain = (1 - math.sqrt(a) * gain) / math.sqrt(1 - a)  # ε̂ = eps_gain · x_t
        factor = math.sqrt(a_prev) * gain + math.sqrt(max(1 - a_prev - sigma2, 0.0)) * eps_gain
        variance = factor ** 2 * variance + sigma2
    return math.sqrt(variance)


def test_ddpm_and_ddim_match_their_analytic_output_distribution(schedule):
    oracle = GaussianDenoiser(schedule, MEAN, STD, prediction="v")
    n = 6000
    ddpm = d.ddpm_sample(oracle, schedule, (n, 2), clip_x0=False, generator=gen(1))
    ddim = d.ddim_sample(oracle, schedule, (n, 2), steps=20, clip_x0=False, generator=gen(2))
    all_steps = list(range(199, -1, -1))
    for sample, steps, stochastic in ((ddpm, all_steps, True), (ddim, d.ddim_timesteps(200, 20), False)):
        assert torch.allclose(sample.mean(0), MEAN, atol=0.01)
        for i in range(2):
            expected = analytic_std(schedule, steps, STD[i].item(), stochastic)
            assert sample[:, i].std().item() == pytest.approx(expected, rel=0.04)
    assert analytic_std(schedule, all_steps, 0.2, True) == pytest.approx(0.2, rel=0.1)  # and DDPM is close to the data


def test_ddim_eta_1_over_all_steps_is_ddpm(schedule):
    oracle = GaussianDenoiser(schedule, MEAN, STD, prediction="eps")
    ddpm = d.ddpm_sample(oracle, schedule, (2000, 2), clip_x0=False, generator=gen(3))
    ddim = d.ddim_sample(oracle, schedule, (2000, 2), steps=200, eta=1.0, clip_x0=False, generator=gen(3))
    assert torch.allclose(ddpm, ddim, atol=1e-3)  # the same noise draws give the same path
    other = d.ddim_sample(oracle, schedule, (2000, 2), steps=200, eta=1.0, clip_x0=False, generator=gen(4))
    assert torch.allclose(other.std(0), ddpm.std(0), rtol=0.08) and torch.allclose(other.mean(0), ddpm.mean(0), atol=0.01)


def test_ddim_eta_0_is_deterministic_and_seeded_sampling_reproducible(schedule):
    oracle = GaussianDenoiser(schedule, MEAN, STD, prediction="x0")
    x_T = torch.randn(8, 2, generator=gen(5))
    a = d.ddim_sample(oracle, schedule, (8, 2), steps=10, x_T=x_T, generator=gen(1))
    b = d.ddim_sample(oracle, schedule, (8, 2), steps=10, x_T=x_T, generator=gen(2))
    assert torch.equal(a, b)
    for sampler in (d.ddpm_sample, d.ddim_sample):
        kwargs = {"eta": 0.5, "steps": 20} if sampler is d.ddim_sample else {}
        one = sampler(oracle, schedule, (8, 2), generator=gen(7), **kwargs)
        two = sampler(oracle, schedule, (8, 2), generator=gen(7), **kwargs)
        three = sampler(oracle, schedule, (8, 2), generator=gen(8), **kwargs)
        assert torch.equal(one, two) and not torch.allclose(one, three)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_callback_is_called_once_per_step_with_the_right_t(schedule, sampler):
    seen = []
    record = lambda step, t, x_t, x0_pred: seen.append((step, t, tuple(x_t.shape), tuple(x0_pred.shape)))
    oracle = GaussianDenoiser(schedule, MEAN, STD)
    if sampler == "ddpm":
        d.ddpm_sample(oracle, schedule, (3, 2), callback=record)
        expected_t = list(range(199, -1, -1))
    else:
        d.ddim_sample(oracle, schedule, (3, 2), steps=7, callback=record)
        expected_t = d.ddim_timesteps(200, 7)
    assert [s[0] for s in seen] == list(range(len(expected_t)))
    assert [s[1] for s in seen] == expected_t
    assert all(s[2] == s[3] == (3, 2) for s in seen)


def test_clip_x0_keeps_x0_in_range_and_eps_consistent(schedule):
    x_t, t = 3 * torch.randn(16, 2), torch.full((16,), 150)
    pred = d.denoise(Fake("x0"), schedule, x_t, t, clip_x0=True)
    assert pred.x0.abs().max() <= 1.0 and (Fake("x0")(x_t, t).abs() > 1).any()
    rebuilt = schedule.sqrt_alpha_bar[150] * pred.x0 + schedule.sqrt_one_minus_alpha_bar[150] * pred.eps
    assert torch.allclose(rebuilt, x_t, atol=1e-5)


# --------------------------------------------------------------------------- classifier-free guidance in the sampler

def test_guidance_scale_0_is_the_conditional_prediction_and_w_extrapolates(schedule):
    model, x_t, t = Fake("v"), torch.randn(4, 2), torch.full((4,), 50)
    labels = {"style": torch.tensor([1, 2, 0, 1])}
    plain = d.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, labels), "v")
    assert all(torch.equal(a, b) for a, b in zip(d.denoise(model, schedule, x_t, t, labels), plain))
    model.calls.clear()
    guided = d.denoise(model, schedule, x_t, t, labels, guidance_scale=2.0)
    assert model.calls == [8], "conditional and unconditional must share ONE forward pass of batch 2B"
    uncond = d.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, {"style": torch.full((4,), -1)}), "v")
    assert torch.allclose(guided.eps, 3 * plain.eps - 2 * uncond.eps, atol=1e-5)
    assert torch.allclose(guided.x0, 3 * plain.x0 - 2 * uncond.x0, atol=1e-5)
    with pytest.raises(ValueError, match="needs labels"):
        d.denoise(model, schedule, x_t, t, None, guidance_scale=1.0)


def test_sampling_uses_eval_mode_and_restores_it(schedule):
    model = Fake()
    model.train()
    d.ddim_sample(model, schedule, (2, 2), steps=3, labels={"style": torch.tensor([0, 1])}, guidance_scale=1.0,
                  progress=True)
    assert model.modes == [False] * 3 and model.calls == [4] * 3 and model.training
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        d.ddim_sample(model, schedule, (2, 2), steps=3, labels={"style": torch.tensor([0, 1, 2])})
