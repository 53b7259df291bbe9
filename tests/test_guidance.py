"""Guidance: CFG algebra, label dropout, masks, known-region replacement, RePaint, classifier guidance."""
import math

import pytest
import torch
from torch import nn

from course_lib import diffusion as d
from course_lib import guidance as g
from course_lib.models import GaussianDenoiser
from course_lib.schedules import make_schedule

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def schedule():
    return make_schedule("linear", 100)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- labels

def test_classifier_free_eps():
    cond, uncond = torch.randn(3, 4), torch.randn(3, 4)
    assert torch.equal(g.classifier_free_eps(cond, uncond, 0.0), cond)
    assert torch.allclose(g.classifier_free_eps(cond, uncond, 2.0), cond + 2 * (cond - uncond))


def test_null_labels_by_dtype():
    null = g.null_labels({"style": torch.tensor([3, 1]), "density": torch.tensor([0.2, 0.5])})
    assert null["style"].tolist() == [-1, -1] and null["style"].dtype == torch.long
    assert bool(null["density"].isnan().all())


def test_drop_labels():
    labels = {"style": torch.arange(4000) % 5, "mode": torch.ones(4000, dtype=torch.long),
              "density": torch.full((4000,), 0.3)}
    assert all(torch.equal(v, labels[k]) for k, v in g.drop_labels(labels, 0.0, generator=gen()).items())
    assert bool((g.drop_labels(labels, 1.0, generator=gen())["mode"] == -1).all())
    dropped = g.drop_labels(labels, 0.3, generator=gen())
    style_null, mode_null = dropped["style"] == -1, dropped["mode"] == -1
    assert style_null.float().mean().item() == pytest.approx(0.3, abs=0.03)
    assert torch.equal(style_null, mode_null) and torch.equal(style_null, dropped["density"].isnan())  # jointly
    each = g.drop_labels(labels, 0.0, p_each=0.5, generator=gen())
    agree = ((each["style"] == -1) == (each["mode"] == -1)).float().mean().item()
    assert agree == pytest.approx(0.5, abs=0.04)  # independent
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        g.drop_labels(labels, 1.5)


# --------------------------------------------------------------------------- masks

@pytest.mark.parametrize("shape", [(6, 64), (8, 48, 64)])
def test_masks_work_for_both_layouts(shape):
    m = g.time_mask(shape, 0, 32)
    assert m.shape == shape and m[..., :32].eq(1).all() and m[..., 32:].eq(0).all()
    tm = g.track_mask(shape, [0, 1])
    assert tm.shape == shape and tm[:2].eq(1).all() and tm[2:].eq(0).all()
    both = m * tm  # the first two bars of the first track
    assert both.sum().item() == 2 * 32 * (shape[1] if len(shape) == 3 else 1)


def test_mask_errors():
    with pytest.raises(ValueError, match="start_step < end_step"):
        g.time_mask((4, 64), 32, 80)
    with pytest.raises(ValueError, match=r"0\.\.3"):
        g.track_mask((4, 64), [4])
    with pytest.raises(ValueError, match="one sample's shape"):
        g.time_mask((64,), 0, 8)
    with pytest.raises(ValueError, match="channel indices"):
        g.track_mask((4, 64), [0.5])


# --------------------------------------------------------------------------- known regions

def test_replace_known_noises_the_known_part_to_the_current_level(schedule):
    known = torch.tensor([[0.7, -0.7, 0.0]])
    mask = torch.tensor([1.0, 1.0, 0.0])
    x = torch.full((20000, 3), 5.0)
    out = g.replace_known(schedule, x, known, mask, 40, generator=gen())
    ab = schedule.alpha_bar[40].item()
    assert torch.allclose(out[:, :2].mean(0), math.sqrt(ab) * known[0, :2], atol=0.02)
    assert torch.allclose(out[:, :2].var(0), torch.full((2,), 1 - ab), rtol=0.05)
    assert bool((out[:, 2] == 5.0).all())  # the unknown part is the sampler's
    final = g.replace_known(schedule, x, known, mask, -1)
    assert torch.equal(final[:, :2], known[:, :2].expand(20000, 2)) and bool((final[:, 2] == 5.0).all())


def test_renoise_samples_q_xt_given_xs(schedule):
    x_s = torch.full((20000, 1), 0.5)
    out = d.renoise(schedule, x_s, 30, 60, generator=gen())
    ratio = (schedule.float64("alpha_bar")[60] / schedule.float64("alpha_bar")[30]).item()
    assert out.mean().item() == pytest.approx(math.sqrt(ratio) * 0.5, abs=0.025)  # 3.5 standard errors
    assert out.var().item() == pytest.approx(1 - ratio, rel=0.05)
    with pytest.raises(ValueError, match="s < t"):
        d.renoise(schedule, x_s, 60, 30)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_inpainting_keeps_the_known_region_exactly(schedule, sampler):
    oracle = GaussianDenoiser(schedule, torch.zeros(4, 16), 0.5)
    known = torch.rand(4, 16, generator=gen(3)) * 2 - 1  # (C, L)
    mask = g.time_mask((4, 16), 0, 8)
    kwargs = dict(known=known, known_mask=mask, generator=gen(1))
    out = (d.ddpm_sample(oracle, schedule, (5, 4, 16), **kwargs) if sampler == "ddpm"
           else d.ddim_sample(oracle, schedule, (5, 4, 16), steps=10, **kwargs))
    assert torch.equal(out[..., :8], known[..., :8].expand(5, 4, 8))
    assert not torch.allclose(out[..., 8:], known[..., 8:].expand(5, 4, 8), atol=0.1)
    with pytest.raises(ValueError, match="both known"):
        d.ddim_sample(oracle, schedule, (5, 4, 16), steps=3, known=known)


class Counting(GaussianDenoiser):
    calls = 0

    def forward(self, x, t, labels=None):
        Counting.calls += 1
        return super().forward(x, t, labels)


def test_repaint_resampling_harmonizes_the_generated_part(schedule):
    """x = (a, b) with corr(a, b) = 0.95; given a = 0.8, E[b | a] = 0.76. Plain replacement lands near 0.5
    (b hardly feels a); RePaint's resampling gets much closer (0.69 with 5, 0.74 with 10 resamplings)."""
    cov = 0.25 * torch.tensor([[1.0, 0.95], [0.95, 1.0]])
    oracle = Counting(schedule, torch.zeros(2), covariance=cov, prediction="eps")
    known, mask = torch.tensor([0.8, 0.0]), torch.tensor([1.0, 0.0])
    means = {}
    for r in (1, 5):
        Counting.calls = 0
        out = d.ddim_sample(oracle, schedule, (2000, 2), steps=25, eta=1.0, known=known, known_mask=mask,
                            resample_steps=r, clip_x0=False, generator=gen(r))
        assert Counting.calls == 24 * r + 1  # the last step (to x_0) is not resampled
        assert bool((out[:, 0] == 0.8).all())
        means[r] = out[:, 1].mean().item()
    assert means[1] < 0.6 and means[5] > 0.65


# --------------------------------------------------------------------------- classifier guidance

class Linear(nn.Module):
    """logits = W x: ∇_x log softmax(W x)[y] = W_y - Σ_k p_k W_k."""

    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def forward(self, x, t):
        return x @ self.weight.T


def test_classifier_gradient_is_the_analytic_gradient():
    W = torch.tensor([[1.0, -1.0], [0.0, 2.0], [-1.0, 0.5]])
    x = torch.randn(6, 2)
    grad = g.classifier_gradient(Linear(W), 1, scale=2.0)(x, torch.zeros(6, dtype=torch.long))
    p = torch.softmax(x @ W.T, dim=1)
    assert torch.allclose(grad, 2.0 * (W[1] - p @ W), atol=1e-6)
    per_sample = g.classifier_gradient(Linear(W), torch.tensor([0, 1, 2, 0, 1, 2]))(x, None)
    assert torch.allclose(per_sample[2], W[2] - p[2] @ W, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(B, classes\)"):
        g.classifier_gradient(lambda x, t: x.sum(1), 0)(x, None)


def test_classifier_guided_eps(schedule):
    eps, grad, t = torch.randn(3, 2), torch.randn(3, 2), torch.tensor([0, 50, 99])
    out = g.classifier_guided_eps(schedule, eps, t, grad)
    assert torch.allclose(out, eps - schedule.sqrt_one_minus_alpha_bar[t][:, None] * grad)
    with pytest.raises(ValueError, match="must match x_t"):
        g.classifier_guided_eps(schedule, eps, t, grad[:, :1])


def test_classifier_guidance_steers_samples_to_the_target_class(schedule):
    """Data N(0, 0.5²); a classifier 'is it positive?' with logit 4x. Guided towards class 1, most samples are > 0."""
    oracle = GaussianDenoiser(schedule, torch.zeros(1), 0.5)
    classifier = Linear(torch.tensor([[0.0], [4.0]]))
    plain = d.ddim_sample(oracle, schedule, (1000, 1), steps=20, eta=1.0, generator=gen(1))
    guided = d.ddim_sample(oracle, schedule, (1000, 1), steps=20, eta=1.0, generator=gen(1),
                           gradient_fn=g.classifier_gradient(classifier, 1, scale=1.0))
    assert (plain > 0).float().mean().item() == pytest.approx(0.5, abs=0.06)
    assert (guided > 0).float().mean().item() > 0.8
