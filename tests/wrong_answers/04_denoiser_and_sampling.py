"""Plausible wrong answers and alternative correct answers to lesson 4's exercises.

Each function replaces the exercise's solution cell in the grading kernel (see
``course_lib.grading.run_probe``), where the notebook's first cells have imported ``math``,
``np`` and ``torch``. Every wrong answer must be rejected by the exercise's tests (visible or hidden),
every correct one accepted by all of them. The imports here only keep linters and readers oriented.
"""
import math

import numpy as np
import torch

from course_lib.grading import Variants

variants = Variants()


# --------------------------------------------------------------------------- sinusoidal_embedding

@variants.wrong("sinusoidal_embedding", "cosines first, then sines")
def sinusoidal_embedding(t, dim):
    half = dim // 2
    omega = torch.exp(-math.log(10000.0) * torch.arange(half) / half)
    angles = t.float()[:, None] * omega[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


@variants.wrong("sinusoidal_embedding", "sin and cos interleaved, as in the Transformer paper")
def sinusoidal_embedding(t, dim):
    half = dim // 2
    omega = torch.exp(-math.log(10000.0) * torch.arange(half) / half)
    angles = t.float()[:, None] * omega[None, :]
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(1)


@variants.wrong("sinusoidal_embedding", "a positive exponent: frequencies grow with k")
def sinusoidal_embedding(t, dim):
    half = dim // 2
    omega = torch.exp(math.log(10000.0) * torch.arange(half) / half)
    angles = t.float()[:, None] * omega[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


@variants.wrong("sinusoidal_embedding", "the ln(10000) scale missing: exp(-k / half)")
def sinusoidal_embedding(t, dim):
    half = dim // 2
    omega = torch.exp(-torch.arange(half) / half)
    angles = t.float()[:, None] * omega[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


@variants.wrong("sinusoidal_embedding", "DDPM's original code: k / (half - 1)")
def sinusoidal_embedding(t, dim):
    half = dim // 2
    omega = torch.exp(-math.log(10000.0) * torch.arange(half) / (half - 1))
    angles = t.float()[:, None] * omega[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


@variants.wrong("sinusoidal_embedding", "frequencies over the full width: k / dim with dim of them")
def sinusoidal_embedding(t, dim):
    omega = torch.exp(-math.log(10000.0) * torch.arange(dim // 2) / dim)
    angles = t.float()[:, None] * omega[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


@variants.wrong("sinusoidal_embedding", "returns a NumPy array, not a tensor")
def sinusoidal_embedding(t, dim):
    half = dim // 2
    omega = 10000.0 ** (-np.arange(half) / half)
    angles = np.asarray(t, dtype=float)[:, None] * omega[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


@variants.correct("sinusoidal_embedding", "10000 ** (-k / half) with torch.pow")
def sinusoidal_embedding(t, dim):
    k = torch.arange(dim // 2, dtype=torch.float32)
    omega = torch.pow(torch.tensor(10000.0), -k / (dim // 2))
    angles = torch.outer(t.to(torch.float32), omega)
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


@variants.correct("sinusoidal_embedding", "in float64 NumPy, converted at the end")
def sinusoidal_embedding(t, dim):
    half = dim // 2
    omega = np.exp(-np.log(10000.0) * np.arange(half) / half)
    angles = t.numpy().astype(np.float64)[:, None] * omega
    return torch.from_numpy(np.hstack([np.sin(angles), np.cos(angles)])).float()


@variants.correct("sinusoidal_embedding", "filled column by column")
def sinusoidal_embedding(t, dim):
    half = dim // 2
    out = torch.zeros(len(t), dim)
    for k in range(half):
        omega = 1.0 / 10000 ** (k / half)
        out[:, k] = torch.sin(t * omega)
        out[:, half + k] = torch.cos(t * omega)
    return out

@variants.wrong("sinusoidal_embedding", "a float64 embedding (the angles computed and returned in double)")
def sinusoidal_embedding(t, dim):
    half = dim // 2
    omega = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    angles = t.double()[:, None] * omega[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


# --------------------------------------------------------------------------- ema_update

@variants.wrong("ema_update", "the decay on the wrong side")
def ema_update(ema, model, decay, step):
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.copy_((1 - d) * e + d * p)


@variants.wrong("ema_update", "rebinds the loop variable: nothing changes in place")
def ema_update(ema, model, decay, step):
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e = d * e + (1 - d) * p


@variants.wrong("ema_update", "no warm-up: the constant decay from the first step")
def ema_update(ema, model, decay, step):
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.mul_(decay).add_(p, alpha=1 - decay)


@variants.wrong("ema_update", "max instead of min in the warm-up")
def ema_update(ema, model, decay, step):
    d = max(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.mul_(d).add_(p, alpha=1 - d)


@variants.wrong("ema_update", "Adam's bias correction on an average started as a copy")
def ema_update(ema, model, decay, step):
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.copy_((d * e + (1 - d) * p) / (1 - d ** (step + 1)))


@variants.wrong("ema_update", "the warm-up off by one: step / (10 + step)")
def ema_update(ema, model, decay, step):
    d = min(decay, step / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.mul_(d).add_(p, alpha=1 - d)


@variants.wrong("ema_update", "arguments swapped: moves the model toward the EMA")
def ema_update(ema, model, decay, step):
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            p.mul_(d).add_(e, alpha=1 - d)


@variants.wrong("ema_update", "starts from the model's tensor without .clone(): the two share storage")
def ema_update(ema, model, decay, step):
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        average = p.data  # meant as a copy of the model's weights
        average.mul_(1 - d).add_(e.data, alpha=d)
        e.data = average


@variants.wrong("ema_update", "forgets torch.no_grad(): in-place update of a leaf that requires grad")
def ema_update(ema, model, decay, step):
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.mul_(d).add_(p, alpha=1 - d)


@variants.correct("ema_update", "lerp_ toward the model")
def ema_update(ema, model, decay, step):
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1 - d)


@variants.correct("ema_update", "by name through state_dict, with copy_")
def ema_update(ema, model, decay, step):
    d = decay if (1 + step) / (10 + step) > decay else (1 + step) / (10 + step)
    current = dict(model.named_parameters())
    with torch.no_grad():
        for name, e in ema.named_parameters():
            e.copy_(d * e + (1 - d) * current[name].detach())
    return ema


@variants.correct("ema_update", "on .data, without no_grad")
def ema_update(ema, model, decay, step):
    d = min(decay, (1.0 + step) / (10.0 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.data.sub_((1 - d) * (e.data - p.data))


@variants.correct("ema_update", "assigns a new tensor to each parameter's .data")
def ema_update(ema, model, decay, step):
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.data = d * e.data + (1 - d) * p.data

@variants.wrong("ema_update", "switches off the model's gradients (requires_grad_(False)) to update without no_grad")
def ema_update(ema, model, decay, step):
    d = min(decay, (1 + step) / (10 + step))
    for averaged, current in zip(ema.parameters(), model.parameters()):
        current.requires_grad_(False)
        averaged.requires_grad_(False)
        averaged.mul_(d).add_(current, alpha=1 - d)
        averaged.requires_grad_(True)


# --------------------------------------------------------------------------- ddim_step

@variants.wrong("ddim_step", "ᾱ_t where ᾱ_{t'} belongs")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar = schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t]
    sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
    x_prev = torch.sqrt(alpha_bar_prev) * x0_pred + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps_pred
    if eta > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev


@variants.wrong("ddim_step", "no square root on ᾱ_{t'} in front of x̂_0")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar = schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
    x_prev = alpha_bar_prev * x0_pred + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps_pred
    if eta > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev


@variants.wrong("ddim_step", "σ ignored: every η behaves like η = 0")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    return torch.sqrt(alpha_bar_prev) * x0_pred + torch.sqrt(1 - alpha_bar_prev) * eps_pred


@variants.wrong("ddim_step", "σ z added but σ² not taken out of the ε̂ term")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar = schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
    x_prev = torch.sqrt(alpha_bar_prev) * x0_pred + torch.sqrt(1 - alpha_bar_prev) * eps_pred
    if eta > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev


@variants.wrong("ddim_step", "alpha_bar[t_prev] even for t_prev = -1 (Python's last entry)")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar = schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t_prev]
    sigma = eta * torch.sqrt(((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)).clamp(min=0))
    x_prev = torch.sqrt(alpha_bar_prev) * x0_pred + torch.sqrt((1 - alpha_bar_prev - sigma ** 2).clamp(min=0)) * eps_pred
    if eta > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev


@variants.wrong("ddim_step", "σ is the variance (a square root missing)")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar = schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    sigma = eta * (1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)
    x_prev = torch.sqrt(alpha_bar_prev) * x0_pred + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps_pred
    if eta > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev


@variants.wrong("ddim_step", "σ without η (full DDPM noise whenever η > 0)")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar = schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    sigma = torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)) if eta > 0 else 0.0
    x_prev = torch.sqrt(alpha_bar_prev) * x0_pred + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps_pred
    if eta > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev


@variants.wrong("ddim_step", "always one step back: schedule.alpha_bar_prev[t]")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar = schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar_prev[t]
    sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
    x_prev = torch.sqrt(alpha_bar_prev) * x0_pred + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps_pred
    if eta > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev


@variants.correct("ddim_step", "ᾱ padded with ᾱ_{-1} = 1 in front, and a clamp")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    padded = torch.cat([torch.ones(1), schedule.alpha_bar])  # padded[s + 1] = ᾱ_s, with ᾱ_{-1} = 1
    a, a_prev = padded[t + 1], padded[t_prev + 1]
    variance = eta ** 2 * (1 - a_prev) / (1 - a) * (1 - a / a_prev)
    direction = (1 - a_prev - variance).clamp(min=0).sqrt() * eps_pred
    z = noise if noise is not None else torch.randn_like(x_t)
    return a_prev.sqrt() * x0_pred + direction + (variance.sqrt() * z if eta > 0 else 0)


@variants.correct("ddim_step", "Python floats and math.sqrt")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    a = float(schedule.alpha_bar[t])
    a_prev = 1.0 if t_prev < 0 else float(schedule.alpha_bar[t_prev])
    sigma = eta * math.sqrt((1 - a_prev) / (1 - a)) * math.sqrt(1 - a / a_prev)
    out = math.sqrt(a_prev) * x0_pred + math.sqrt(max(0.0, 1 - a_prev - sigma ** 2)) * eps_pred
    if sigma > 0:
        out = out + sigma * (noise if noise is not None else torch.randn_like(x_t))
    return out


@variants.correct("ddim_step", "eq. 12 term by term, with ** 0.5 and σ² kept squared")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar_prev = torch.tensor(1.0) if t_prev == -1 else schedule.alpha_bar[t_prev]
    ratio = schedule.alpha_bar[t] / alpha_bar_prev
    sigma_squared = eta ** 2 * (1 - alpha_bar_prev) / (1 - schedule.alpha_bar[t]) * (1 - ratio)
    predicted_x0_part = alpha_bar_prev ** 0.5 * x0_pred
    direction_to_x_t = (1 - alpha_bar_prev - sigma_squared) ** 0.5 * eps_pred
    random_noise = sigma_squared ** 0.5 * (noise if noise is not None else torch.randn_like(x_t))
    return predicted_x0_part + direction_to_x_t + (random_noise if eta else 0.0)

@variants.wrong("ddim_step", "eta > 0 without an explicit noise tensor: no noise added")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar = schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
    x_prev = torch.sqrt(alpha_bar_prev) * x0_pred + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps_pred
    if eta > 0 and noise is not None:
        x_prev = x_prev + sigma * noise
    return x_prev


@variants.wrong("ddim_step", "eta > 0 without an explicit noise tensor: sigma * None fails")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar = schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
    x_prev = torch.sqrt(alpha_bar_prev) * x0_pred + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps_pred
    if eta > 0:
        x_prev = x_prev + sigma * noise
    return x_prev


@variants.wrong("ddim_step", "x0_pred scaled in place (x0_pred.mul_)")
def ddim_step(schedule, x_t, t, t_prev, eps_pred, x0_pred, eta=0.0, noise=None):
    alpha_bar = schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
    x_prev = x0_pred.mul_(torch.sqrt(alpha_bar_prev)) + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps_pred
    if eta > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev
