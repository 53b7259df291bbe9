"""The diffusion process itself: the forward process q, its posterior, and how ε, x_0 and v follow
from each other. The maths at the bottom of the library: it imports nothing of ``course_lib`` but
``schedules``, so ``diffusion`` (losses, samplers) and ``guidance`` (which noises known music and
reads x̂_0) both build on it without importing each other. ``diffusion`` re-exports every name
here, so ``diffusion.q_sample`` and the rest work as the lessons teach them.

    forward   x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε,  ε ~ N(0, I)              (DDPM eq. 4)
    posterior q(x_{t-1} | x_t, x_0) = N(μ̃_t, β̃_t I)                            (DDPM eqs. 6-7)
    v         sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0                               (Salimans & Ho 2022)

Shapes as in ``diffusion``: x is (B, ...); t is a LongTensor (B,) or one int; timesteps 0 .. T-1.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from course_lib.schedules import NoiseSchedule, extract, extract_alpha_bar

PREDICTIONS = ("eps", "x0", "v")


def randn(shape, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Standard normal noise. Drawn on the generator's device, then moved: a seed gives the same
    numbers whatever device the model runs on."""
    draw_on = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=draw_on).to(device)


# --------------------------------------------------------------------------- forward process

def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t, noise: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """A sample of q(x_t | x_0) in one step: x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε (DDPM eq. 4).

    x0: (B, ...); t: (B,) or int; noise: ε of x0's shape (drawn when None). Returns x_t (B, ...).
    """
    if noise is None:
        noise = randn(x0.shape, generator, x0.device)
    return (extract(schedule.sqrt_alpha_bar, t, x0.shape) * x0
            + extract(schedule.sqrt_one_minus_alpha_bar, t, x0.shape) * noise)


def renoise(schedule: NoiseSchedule, x_s: torch.Tensor, s: int, t: int, *,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """A sample of q(x_t | x_s) for s < t: sqrt(ᾱ_t/ᾱ_s) x_s + sqrt(1 - ᾱ_t/ᾱ_s) z (eq. 2, chained).

    s = -1 means x_s is clean data, and then this is ``q_sample``. RePaint's resampling (Lugmayr
    et al. 2022) steps back up this way. x_s: (B, ...); s, t: ints."""
    if not -1 <= s < t:
        raise ValueError(f"renoise goes up in noise: need -1 <= s < t, got s={s}, t={t}")
    ratio = extract_alpha_bar(schedule, t, x_s.shape) / extract_alpha_bar(schedule, s, x_s.shape)
    return ratio.sqrt() * x_s + (1.0 - ratio).sqrt() * randn(x_s.shape, generator, x_s.device)


class Posterior(NamedTuple):
    mean: torch.Tensor          # μ̃_t(x_t, x_0), shape of x_t
    variance: torch.Tensor      # β̃_t, (B, 1, ..., 1)
    log_variance: torch.Tensor  # log β̃_t (clipped at t = 0), (B, 1, ..., 1)


def q_posterior(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t) -> Posterior:
    """q(x_{t-1} | x_t, x_0) = N(μ̃_t, β̃_t I) (DDPM eqs. 6-7):

    μ̃_t = sqrt(ᾱ_{t-1}) β_t / (1 - ᾱ_t) · x_0 + sqrt(α_t) (1 - ᾱ_{t-1}) / (1 - ᾱ_t) · x_t,
    β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) · β_t.
    """
    mean = (extract(schedule.posterior_mean_coef1, t, x_t.shape) * x0
            + extract(schedule.posterior_mean_coef2, t, x_t.shape) * x_t)
    return Posterior(mean, extract(schedule.posterior_variance, t, x_t.shape),
                     extract(schedule.posterior_log_variance_clipped, t, x_t.shape))


# --------------------------------------------------------------------------- ε, x_0 and v from each other
# All follow from x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε and v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0.

def predict_x0_from_eps(schedule: NoiseSchedule, x_t: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
    """x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε) / sqrt(ᾱ_t). Ill-conditioned near t = T-1, where ᾱ_t ≈ 0."""
    return ((x_t - extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape) * eps)
            / extract(schedule.sqrt_alpha_bar, t, x_t.shape))


def predict_eps_from_x0(schedule: NoiseSchedule, x_t: torch.Tensor, t, x0: torch.Tensor) -> torch.Tensor:
    """ε̂ = (x_t - sqrt(ᾱ_t) x_0) / sqrt(1 - ᾱ_t)."""
    return ((x_t - extract(schedule.sqrt_alpha_bar, t, x_t.shape) * x0)
            / extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape))


def velocity(schedule: NoiseSchedule, x0: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:
    """The v-prediction target v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0 (Salimans & Ho 2022, sec. 4)."""
    return (extract(schedule.sqrt_alpha_bar, t, x0.shape) * eps
            - extract(schedule.sqrt_one_minus_alpha_bar, t, x0.shape) * x0)


def predict_x0_from_v(schedule: NoiseSchedule, x_t: torch.Tensor, t, v: torch.Tensor) -> torch.Tensor:
    """x̂_0 = sqrt(ᾱ_t) x_t - sqrt(1 - ᾱ_t) v (well conditioned at every t)."""
    return (extract(schedule.sqrt_alpha_bar, t, x_t.shape) * x_t
            - extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape) * v)


def predict_eps_from_v(schedule: NoiseSchedule, x_t: torch.Tensor, t, v: torch.Tensor) -> torch.Tensor:
    """ε̂ = sqrt(1 - ᾱ_t) x_t + sqrt(ᾱ_t) v."""
    return (extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape) * x_t
            + extract(schedule.sqrt_alpha_bar, t, x_t.shape) * v)


class Prediction(NamedTuple):
    eps: torch.Tensor  # ε̂, shape of x_t
    x0: torch.Tensor   # x̂_0, shape of x_t


def eps_and_x0_from_output(schedule: NoiseSchedule, x_t: torch.Tensor, t, output: torch.Tensor,
                           prediction: str) -> Prediction:
    """A model output (meaning ``prediction``: "eps", "x0" or "v") -> (ε̂, x̂_0), each computed
    directly from what the model predicted (not through the other), which is the stable way."""
    if prediction == "eps":
        return Prediction(output, predict_x0_from_eps(schedule, x_t, t, output))
    if prediction == "x0":
        return Prediction(predict_eps_from_x0(schedule, x_t, t, output), output)
    if prediction == "v":
        return Prediction(predict_eps_from_v(schedule, x_t, t, output), predict_x0_from_v(schedule, x_t, t, output))
    raise ValueError(f"unknown prediction type {prediction!r}; choose one of {PREDICTIONS}")


def prediction_type(model: torch.nn.Module, prediction: str | None = None) -> str:
    """What ``model`` predicts: ``prediction`` if given, else ``model.config.prediction``."""
    configured = getattr(getattr(model, "config", None), "prediction", None)
    prediction = prediction or configured
    if prediction not in PREDICTIONS:
        raise ValueError(f"cannot tell what the model predicts (got {prediction!r}): pass prediction= one of "
                         f"{PREDICTIONS}, or give the model a .config with a .prediction")
    if configured is not None and configured != prediction:
        raise ValueError(f"prediction={prediction!r} contradicts model.config.prediction={configured!r}")
    return prediction
