"""Denoising diffusion: the forward process, the training loss, and the DDPM and DDIM samplers.

Symbols follow Ho et al. 2020 ("DDPM") and Song et al. 2021 ("DDIM"); the constants ᾱ_t etc. come
from a ``schedules.NoiseSchedule`` and are gathered for a batch by ``schedules.extract``.

    forward   x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε,  ε ~ N(0, I)              (DDPM eq. 4)
    model     a network reads (x_t, t, labels) and predicts one of
                ε    the noise                                              ("eps", DDPM eq. 11)
                x_0  the clean data                                         ("x0")
                v    sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0                        ("v", Salimans & Ho 2022)
              any one of them gives the other two, given x_t (the ``predict_*`` functions).
    loss      || prediction - target ||² at a random t                      (DDPM eq. 14, "L_simple")
    reverse   DDPM: x_{t-1} ~ q(x_{t-1} | x_t, x̂_0), the posterior of eqs. 6-7 with x_0 guessed;
              DDIM: jump from t to any earlier t' with eq. 12 of Song et al., noise scaled by η.

Shapes: x is (B, ...) (e.g. (B, 2), (B, C, L) or (B, C, H, W)); t is a LongTensor (B,) or one int;
per-timestep constants are gathered as (B, 1, ..., 1) so they broadcast over the rest.
Timesteps are 0-based: t = 0 .. T-1, and "t = -1" means the clean data x_0 itself.

The forward process, its posterior and the ε/x_0/v conversions live in ``process`` (the bottom layer,
which ``guidance`` uses too) and are re-exported here: ``diffusion.q_sample`` is ``process.q_sample``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from course_lib import guidance, inputs
from course_lib.process import (PREDICTIONS, Posterior, Prediction, eps_and_x0_from_output,  # noqa: F401 (re-exported:
                                predict_eps_from_v, predict_eps_from_x0, predict_x0_from_eps,  # the lessons teach
                                predict_x0_from_v, prediction_type, q_posterior, q_sample,  # them as diffusion.*)
                                randn, renoise, velocity)
from course_lib.schedules import NoiseSchedule, extract, extract_alpha_bar

Labels = dict  # {"style": LongTensor (B,), "mode": LongTensor (B,), "density": FloatTensor (B,)}, keys optional


class SamplingError(ValueError):
    """A sampler produced NaN or inf (a diverged model, or guidance scales far too large)."""


# --------------------------------------------------------------------------- training loss

def training_loss(model: torch.nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, labels: Labels | None = None,
                  *, prediction: str | None = None, loss_mask: torch.Tensor | None = None,
                  t: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                  generator: torch.Generator | None = None, reduction: str = "mean") -> torch.Tensor:
    """The simplified DDPM objective (eq. 14) for any prediction type:

        t ~ Uniform{0..T-1},  ε ~ N(0, I),  x_t = q_sample(x_0, t, ε),
        loss = mean over (unmasked) elements of (model(x_t, t, labels) - target)²,
        target = ε ("eps"), x_0 ("x0") or v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0 ("v").

    x0: (B, ...) in [-1, 1]; loss_mask: 1 where the loss counts, broadcastable to x0 (e.g. (B, 1, L)
    to ignore padded steps); t, noise: fixed instead of drawn (for plots of loss against t).
    reduction: "mean" -> scalar, "none" -> (B,) per-sample losses.
    """
    prediction = prediction_type(model, prediction)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if t is None:
        t = torch.randint(0, schedule.timesteps, (x0.shape[0],), generator=generator,
                          device=generator.device if generator is not None else x0.device).to(x0.device)
    if noise is None:
        noise = randn(x0.shape, generator, x0.device)
    x_t = q_sample(schedule, x0, t, noise)
    output = model(x_t, t, labels)
    if output.shape != x0.shape:
        raise ValueError(f"the model returned shape {tuple(output.shape)} for input {tuple(x0.shape)}; "
                         "a denoiser must return a tensor of its input's shape")
    if prediction == "eps":
        target = noise
    elif prediction == "x0":
        target = x0
    else:
        target = velocity(schedule, x0, noise, t)
    squared = (output - target) ** 2  # (B, ...)
    mask = torch.ones_like(squared) if loss_mask is None else loss_mask.to(squared).expand_as(squared)
    if reduction == "none":  # (B,): each sample's mean over its unmasked elements
        return (squared * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1.0)
    return (squared * mask).sum() / mask.sum().clamp_min(1.0)


# --------------------------------------------------------------------------- one network evaluation

def denoise(model: torch.nn.Module, schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor,
            labels: Labels | None = None, *, guidance_scale: float = 0.0, clip_x0: bool = False,
            gradient_fn: Callable | None = None, x0_fn: Callable | None = None,
            prediction: str | None = None) -> Prediction:
    """(ε̂, x̂_0) for x_t: the model's output, optionally guided and clipped.

    - guidance_scale w > 0: classifier-free guidance (Ho & Salimans 2022, eq. 6),
      ε̂ = (1 + w) ε(x_t, labels) - w ε(x_t, ∅), both from ONE forward pass on a batch of 2B;
    - gradient_fn(x_t, t) -> ∇_{x_t} log p(y | x_t): classifier guidance,
      ε̂ ← ε̂ - sqrt(1 - ᾱ_t) ∇ (Dhariwal & Nichol 2021, sec. 4.2); see ``guidance.classifier_gradient``;
    - x0_fn(x̂_0, t) -> x̂_0: a correction of the clean guess (e.g. ``guidance.penalty_correction``:
      gradient steps on a rule penalty), ε̂ re-derived from it;
    - clip_x0: x̂_0 clipped to [-1, 1] and ε̂ re-derived from it, so the step stays consistent.
    x_t: (B, ...); t: LongTensor (B,).
    """
    prediction = prediction_type(model, prediction)
    if guidance_scale:
        if not labels:
            raise ValueError("guidance_scale > 0 needs labels: classifier-free guidance contrasts "
                             "ε(x_t, labels) with ε(x_t, ∅), which are equal without labels")
        batch = x_t.shape[0]
        null = guidance.null_labels(labels)
        x_t2, t2 = torch.cat([x_t, x_t]), torch.cat([t, t])  # first half conditional, second unconditional
        labels2 = {key: torch.cat([labels[key], null[key]]) for key in labels}
        both = eps_and_x0_from_output(schedule, x_t2, t2, model(x_t2, t2, labels2), prediction)  # (2B, ...)
        # ε and x_0 are affine in the output with the same x_t, so mixing both the same way is consistent.
        eps = guidance.classifier_free_eps(both.eps[:batch], both.eps[batch:], guidance_scale)
        x0 = guidance.classifier_free_eps(both.x0[:batch], both.x0[batch:], guidance_scale)
    else:
        eps, x0 = eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, labels), prediction)
    if gradient_fn is not None:
        with torch.enable_grad():
            gradient = gradient_fn(x_t, t)
        eps = guidance.classifier_guided_eps(schedule, eps, t, gradient)
        x0 = predict_x0_from_eps(schedule, x_t, t, eps)
    if x0_fn is not None:
        x0 = x0_fn(x0, t)
        eps = predict_eps_from_x0(schedule, x_t, t, x0)
    if clip_x0:
        x0 = x0.clamp(-1.0, 1.0)
        eps = predict_eps_from_x0(schedule, x_t, t, x0)
    return Prediction(eps, x0)


# --------------------------------------------------------------------------- single reverse steps

class StepOutput(NamedTuple):
    prev_sample: torch.Tensor           # x_{t-1} (DDPM) or x_{t'} (DDIM), shape of x_t
    pred_original_sample: torch.Tensor  # x̂_0 used for the step


def ddpm_step(schedule: NoiseSchedule, x_t: torch.Tensor, t, x0_pred: torch.Tensor, *,
              noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> StepOutput:
    """Ancestral step x_{t-1} = μ̃_t(x_t, x̂_0) + sqrt(β̃_t) z, z ~ N(0, I) (DDPM eqs. 6-7, Algorithm 2).

    With x̂_0 from ε̂ the mean equals eq. 11, 1/sqrt(α_t) (x_t - β_t / sqrt(1 - ᾱ_t) ε̂). We use the
    posterior variance β̃_t (Ho et al. found σ_t² = β_t similar); β̃_0 = 0, so the last step adds no noise.
    """
    posterior = q_posterior(schedule, x0_pred, x_t, t)
    if noise is None:
        noise = randn(x_t.shape, generator, x_t.device)
    return StepOutput(posterior.mean + posterior.variance.sqrt() * noise, x0_pred)


def ddim_step(schedule: NoiseSchedule, x_t: torch.Tensor, t, t_prev, eps_pred: torch.Tensor,
              x0_pred: torch.Tensor, *, eta: float = 0.0, noise: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> StepOutput:
    """Jump from t to an earlier t_prev (-1 = the end) with Song et al. 2021, eq. 12:

        x_{t'} = sqrt(ᾱ_{t'}) x̂_0 + sqrt(1 - ᾱ_{t'} - σ²) ε̂ + σ z,
        σ = η sqrt((1 - ᾱ_{t'}) / (1 - ᾱ_t)) sqrt(1 - ᾱ_t / ᾱ_{t'})                    (eq. 16)

    η = 0 is deterministic (DDIM); η = 1 with t' = t - 1 is exactly the DDPM step above.
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (0 = deterministic DDIM, 1 = DDPM-like), got {eta}")
    alpha_bar = extract_alpha_bar(schedule, t, x_t.shape)
    alpha_bar_prev = extract_alpha_bar(schedule, t_prev, x_t.shape)
    sigma = eta * ((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)).sqrt()
    prev = alpha_bar_prev.sqrt() * x0_pred + (1 - alpha_bar_prev - sigma ** 2).clamp_min(0).sqrt() * eps_pred
    if eta > 0:  # no noise is drawn at η = 0, so the result does not depend on the generator
        prev = prev + sigma * (noise if noise is not None else randn(x_t.shape, generator, x_t.device))
    return StepOutput(prev, x0_pred)


# --------------------------------------------------------------------------- samplers

def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """``steps`` timesteps from T-1 down to 0, evenly spaced, both ends included (e.g. T=1000, 5 ->
    [999, 749, 500, 250, 0]). Starting at T-1 matters: ᾱ there is ≈ 0, so x_T ~ N(0, I) fits."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be between 1 and the schedule's T={timesteps}, got {steps}")
    return [int(s) for s in np.linspace(timesteps - 1, 0, steps).round()]


def _sample(model, schedule, shape, labels, timesteps, step_fn, *, guidance_scale, clip_x0, callback,
            generator, known, known_mask, resample_steps, gradient_fn, progress, x_T, desc,
            x0_fn=None) -> torch.Tensor:
    """The reverse-process loop both samplers share: x_T -> x_0 over ``timesteps`` (descending).

    step_fn(x_t, t, t_prev, prediction) -> StepOutput makes one DDPM or DDIM step."""
    device = next(model.parameters(), torch.empty(0)).device
    inputs.check_number(guidance_scale, "guidance_scale", low=0.0)  # NaN would silently give silence
    if len(shape) < 2 or any(isinstance(size, bool) or not hasattr(size, "__index__") or size < 1 for size in shape):
        raise inputs.InputError(f"shape must be (batch, channels, ...) of whole numbers >= 1, got {tuple(shape)}")
    batch = shape[0]
    x = randn(shape, generator, device) if x_T is None else x_T.to(device)
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"x_T has shape {tuple(x.shape)} but shape={tuple(shape)} was asked for")
    labels = _labels_on(labels, batch, device)
    if (known is None) != (known_mask is None):
        raise ValueError("inpainting needs both known (the values) and known_mask (1 where known)")
    if known is not None:
        known = known.to(device, torch.float32).expand(shape)
        known_mask = known_mask.to(device, torch.float32).expand(shape)
    if resample_steps < 1:
        raise ValueError(f"resample_steps must be >= 1 (1 = no RePaint resampling), got {resample_steps}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            pairs = list(zip(timesteps, timesteps[1:] + [-1]))
            for i, (t, t_prev) in enumerate(tqdm(pairs, desc=desc, disable=not progress, leave=False)):
                t_batch = torch.full((batch,), t, dtype=torch.long, device=device)
                for r in range(resample_steps):
                    if r > 0:  # RePaint (Lugmayr et al. 2022): noise x_{t'} back to level t, step again
                        x = renoise(schedule, x_prev, t_prev, t, generator=generator)
                    prediction = denoise(model, schedule, x, t_batch, labels, guidance_scale=guidance_scale,
                                         clip_x0=clip_x0, gradient_fn=gradient_fn, x0_fn=x0_fn)
                    x_prev = step_fn(x, t_batch, t_prev, prediction).prev_sample
                    if known is not None:
                        x_prev = guidance.replace_known(schedule, x_prev, known, known_mask, t_prev,
                                                        generator=generator)
                    if t_prev < 0:
                        break  # the last step lands on x_0: nothing left to harmonize
                if callback is not None:
                    callback(i, t, x, prediction.x0)
                x = x_prev
    finally:
        model.train(was_training)
    return inputs.check_finite(x, "the sampled x_0", error=SamplingError)  # decoded, NaN would be silence


def _labels_on(labels: Labels | None, batch: int, device) -> Labels | None:
    """Labels moved to ``device``, each checked to hold one entry per sample."""
    if labels is None:
        return None
    moved = {}
    for key, value in labels.items():
        value = torch.as_tensor(value, device=device)
        if value.shape != (batch,):
            raise ValueError(f"labels[{key!r}] has shape {tuple(value.shape)}; it needs one entry per "
                             f"sample, shape ({batch},)")
        moved[key] = value
    return moved


def ddpm_sample(model: torch.nn.Module, schedule: NoiseSchedule, shape, labels: Labels | None = None, *,
                guidance_scale: float = 0.0, clip_x0: bool = True, callback: Callable | None = None,
                generator: torch.Generator | None = None, known: torch.Tensor | None = None,
                known_mask: torch.Tensor | None = None, resample_steps: int = 1,
                gradient_fn: Callable | None = None, progress: bool = False,
                x_T: torch.Tensor | None = None, x0_fn: Callable | None = None) -> torch.Tensor:
    """Ancestral sampling over all T steps (DDPM Algorithm 2): x_T ~ N(0, I), then ``ddpm_step``.

    shape: (B, ...) of the samples; labels: dict of (B,) tensors (missing key = null);
    guidance_scale: classifier-free guidance w; clip_x0: clip x̂_0 to [-1, 1] at every step;
    callback(step, t, x_t, x0_pred) once per step (step = 0..T-1, t = T-1..0; x_t is the step's input);
    known, known_mask (1 = known), broadcastable to shape: inpainting (RePaint); resample_steps > 1:
    RePaint's resampling; gradient_fn(x_t, t): classifier guidance; x0_fn(x̂_0, t): a correction of
    x̂_0 at every step (``guidance.penalty_correction``); x_T: a fixed start instead of drawn noise. Returns x_0, shape ``shape``. The model runs in eval mode, without gradients.
    """
    def step_fn(x, t, t_prev, prediction):
        return ddpm_step(schedule, x, t, prediction.x0, generator=generator)

    return _sample(model, schedule, shape, labels, list(range(schedule.timesteps - 1, -1, -1)), step_fn,
                   guidance_scale=guidance_scale, clip_x0=clip_x0, callback=callback, generator=generator,
                   known=known, known_mask=known_mask, resample_steps=resample_steps, gradient_fn=gradient_fn,
                   progress=progress, x_T=x_T, desc="DDPM sampling", x0_fn=x0_fn)


def ddim_sample(model: torch.nn.Module, schedule: NoiseSchedule, shape, labels: Labels | None = None, *,
                steps: int = 50, eta: float = 0.0, guidance_scale: float = 0.0, clip_x0: bool = True,
                callback: Callable | None = None, generator: torch.Generator | None = None,
                known: torch.Tensor | None = None, known_mask: torch.Tensor | None = None,
                resample_steps: int = 1, gradient_fn: Callable | None = None, progress: bool = False,
                x_T: torch.Tensor | None = None, x0_fn: Callable | None = None) -> torch.Tensor:
    """DDIM sampling (Song et al. 2021, eq. 12) over ``steps`` evenly spaced timesteps (``ddim_timesteps``).

    η = 0: deterministic given x_T; η = 1 with steps = T: the same process as ``ddpm_sample``
    (and with fewer steps, DDPM on a respaced schedule). Other arguments as in ``ddpm_sample``.
    """
    def step_fn(x, t, t_prev, prediction):
        return ddim_step(schedule, x, t, t_prev, prediction.eps, prediction.x0, eta=eta, generator=generator)

    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (0 = deterministic DDIM, 1 = DDPM-like), got {eta}")
    return _sample(model, schedule, shape, labels, ddim_timesteps(schedule.timesteps, steps), step_fn,
                   guidance_scale=guidance_scale, clip_x0=clip_x0, callback=callback, generator=generator,
                   known=known, known_mask=known_mask, resample_steps=resample_steps, gradient_fn=gradient_fn,
                   progress=progress, x_T=x_T, desc=f"DDIM-{steps} sampling", x0_fn=x0_fn)
