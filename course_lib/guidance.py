"""Guidance: steering a trained denoiser while sampling, without retraining it.

Three ways to ask a diffusion model for *this* kind of music:

- **classifier-free guidance** (Ho & Salimans 2022): one model trained with labels that are
  sometimes dropped (``drop_labels``) predicts both ε(x_t, c) and ε(x_t, ∅); extrapolating from
  the second towards the first (``classifier_free_eps``) follows the label more strongly;
- **classifier guidance** (Dhariwal & Nichol 2021): the gradient of a classifier on noisy x_t,
  ∇_{x_t} log p(y | x_t), pushes ε̂ (``classifier_gradient``, ``classifier_guided_eps``);
- **known regions** (inpainting, continuation, harmonization; RePaint, Lugmayr et al. 2022): where
  the music is given (mask = 1), x is overwritten at every step by the given music noised to the
  current level (``replace_known``); with ``resample_steps`` > 1 the sampler also steps back up
  (``diffusion.renoise``) and tries again, so the generated part can fit the known part.

The samplers in ``course_lib.diffusion`` call these when given ``guidance_scale``, ``gradient_fn``
or ``known``/``known_mask``. Masks are per-sample tensors, (C, L) or (C, H, W), broadcast over the batch.
"""
from __future__ import annotations

import operator
from typing import Callable

import torch
import torch.nn.functional as F

from course_lib.schedules import NoiseSchedule, extract


# --------------------------------------------------------------------------- labels and their null

def null_labels(labels: dict) -> dict:
    """The same keys with every entry null: -1 for integer labels (style, mode), NaN for float ones
    (density). This is the ∅ of ε(x_t, ∅), the unconditional half of classifier-free guidance."""
    return {key: torch.full_like(value, float("nan") if value.is_floating_point() else -1)
            for key, value in labels.items()}


def drop_labels(labels: dict, p: float = 0.1, *, p_each: float = 0.0,
                generator: torch.Generator | None = None) -> dict:
    """Label dropout for training a model that classifier-free guidance can use (Ho & Salimans 2022).

    Each sample loses all its labels with probability ``p`` (so the model also learns ε(x_t, ∅));
    with ``p_each`` > 0, each remaining label is also dropped on its own with that probability, so
    any subset of labels can be asked for when sampling. labels: dict of (B,) tensors.
    """
    if not (0.0 <= p <= 1.0 and 0.0 <= p_each <= 1.0):
        raise ValueError(f"dropout probabilities must lie in [0, 1], got p={p}, p_each={p_each}")
    if not labels:
        return labels
    batch = next(iter(labels.values())).shape[0]
    device = generator.device if generator is not None else None
    drop_all = torch.rand(batch, generator=generator, device=device) < p  # (B,)
    null = null_labels(labels)
    dropped = {}
    for key, value in labels.items():
        drop = drop_all | (torch.rand(batch, generator=generator, device=device) < p_each)
        dropped[key] = torch.where(drop.to(value.device), null[key], value)
    return dropped


# --------------------------------------------------------------------------- classifier-free guidance

def classifier_free_eps(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """ε̃ = (1 + w) ε(x_t, c) - w ε(x_t, ∅) (Ho & Salimans 2022, eq. 6); w = 0 is plain conditional.

    The combination is affine with weights summing to 1, so the sampler applies it to x̂_0 too."""
    return (1.0 + scale) * eps_cond - scale * eps_uncond


# --------------------------------------------------------------------------- classifier guidance

def classifier_guided_eps(schedule: NoiseSchedule, eps: torch.Tensor, t, gradient: torch.Tensor) -> torch.Tensor:
    """ε̂ = ε - sqrt(1 - ᾱ_t) ∇_{x_t} log p(y | x_t) (Dhariwal & Nichol 2021, eq. 14 / Algorithm 2).

    Since ε = -sqrt(1 - ᾱ_t) ∇ log p(x_t), this is the score of p(x_t) p(y | x_t). eps, gradient: (B, ...).
    """
    if gradient.shape != eps.shape:
        raise ValueError(f"gradient_fn returned shape {tuple(gradient.shape)}; it must match x_t, "
                         f"{tuple(eps.shape)}")
    return eps - extract(schedule.sqrt_one_minus_alpha_bar, t, eps.shape) * gradient


def classifier_gradient(classifier: Callable, target, scale: float = 1.0) -> Callable:
    """A ``gradient_fn(x_t, t) -> scale · ∇_{x_t} log p(target | x_t)`` for the samplers.

    classifier(x_t, t) -> logits (B, K), trained on *noisy* x_t (put it in eval mode yourself);
    target: a class index, or a LongTensor (B,) of one per sample; scale: the guidance strength s.
    """
    def gradient_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x_t.detach().requires_grad_(True)
            logits = classifier(x, t)
            if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
                raise ValueError(f"the classifier must return logits of shape (B, classes), got "
                                 f"{tuple(logits.shape)} for a batch of {x.shape[0]}")
            y = torch.as_tensor(target, device=x.device).long().expand(x.shape[0])  # (B,)
            log_p = F.log_softmax(logits, dim=-1).gather(1, y[:, None]).sum()  # samples are independent
            (gradient,) = torch.autograd.grad(log_p, x)
        return scale * gradient

    return gradient_fn


# --------------------------------------------------------------------------- known regions (masks)
# A mask is a float tensor of one sample's shape, 1 where the music is known (kept), 0 where it is
# generated. Combine masks with * (both) or torch.maximum (either); 1 - mask swaps the roles.

def time_mask(shape, start_step: int, end_step: int) -> torch.Tensor:
    """1 on time steps start_step .. end_step - 1 (time is the last axis of (C, L) and (C, H, W)).

    E.g. continuation of a 4-bar window whose first 2 bars are given: time_mask((C, 64), 0, 32).
    """
    shape = tuple(shape)
    steps = shape[-1] if shape else 0
    if len(shape) < 2:
        raise ValueError(f"a mask shape is one sample's shape, (C, L) or (C, H, W); got {shape}")
    if not 0 <= start_step < end_step <= steps:
        raise ValueError(f"need 0 <= start_step < end_step <= {steps} (the number of time steps), "
                         f"got start_step={start_step}, end_step={end_step}")
    mask = torch.zeros(shape)
    mask[..., start_step:end_step] = 1.0
    return mask


def track_mask(shape, channels) -> torch.Tensor:
    """1 on the listed channels (first axis), at every time step and pitch.

    The encoding knows which channels hold which track: e.g. to harmonize a given soprano in a
    piano roll (tracks*2, pitches, steps), ``track_mask(shape, [0, 1])`` (its onset and sustain).
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"a mask shape is one sample's shape, (C, L) or (C, H, W); got {shape}")
    try:
        index = [operator.index(c) for c in channels]
    except TypeError:
        raise ValueError(f"channels must be a list of channel indices, got {channels!r}") from None
    if not index or not all(0 <= c < shape[0] for c in index):
        raise ValueError(f"channels must be a non-empty list of indices in 0..{shape[0] - 1}, got {index}")
    mask = torch.zeros(shape)
    mask[index] = 1.0
    return mask


def replace_known(schedule: NoiseSchedule, x: torch.Tensor, known: torch.Tensor, known_mask: torch.Tensor,
                  t: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """RePaint's combination (Lugmayr et al. 2022, Algorithm 1): x_t = m ⊙ q_sample(known, t) + (1 - m) ⊙ x_t.

    x: (B, ...) at noise level t; known, known_mask: broadcastable to x (mask 1 = known);
    t = -1 means x is the final clean sample, where the known values are put back exactly.
    """
    from course_lib.diffusion import q_sample  # diffusion imports this module: import at call time

    known = known.to(x).expand(x.shape)
    known_mask = known_mask.to(x).expand(x.shape)
    known_t = known if t < 0 else q_sample(schedule, known, t, generator=generator)
    return known_mask * known_t + (1.0 - known_mask) * x

