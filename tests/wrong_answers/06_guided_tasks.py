"""Plausible wrong answers and alternative correct answers to lesson 6's exercises.

Each function replaces the exercise's solution cell in the grading kernel (see
``course_lib.grading.run_probe``), where the notebook's first cells have imported ``np``, ``torch``
and defined ``VOICE_CHANNELS`` (15), ``STEPS_PER_BAR`` (16) and ``schedule``. Every wrong answer must
be rejected by the exercise's tests (visible or hidden), every correct one accepted by all of them.
The imports and constants here only keep linters and readers oriented.
"""
import numpy as np
import torch

from course_lib.grading import Variants

VOICE_CHANNELS, STEPS_PER_BAR = 15, 16
variants = Variants()


# --------------------------------------------------------------------------- bar_mask

@variants.wrong("bar_mask", "the last bar excluded (Python's half-open range)")
def bar_mask(first_bar, last_bar, tracks, bars=4):
    mask = torch.zeros(4 * VOICE_CHANNELS, bars * STEPS_PER_BAR)
    for k in tracks:
        mask[k * VOICE_CHANNELS:(k + 1) * VOICE_CHANNELS, (first_bar - 1) * STEPS_PER_BAR:(last_bar - 1) * STEPS_PER_BAR] = 1.0
    return mask


@variants.wrong("bar_mask", "bars counted from 0")
def bar_mask(first_bar, last_bar, tracks, bars=4):
    mask = torch.zeros(4 * VOICE_CHANNELS, bars * STEPS_PER_BAR)
    for k in tracks:
        mask[k * VOICE_CHANNELS:(k + 1) * VOICE_CHANNELS, first_bar * STEPS_PER_BAR:(last_bar + 1) * STEPS_PER_BAR] = 1.0
    return mask


@variants.wrong("bar_mask", "bars used as steps")
def bar_mask(first_bar, last_bar, tracks, bars=4):
    mask = torch.zeros(4 * VOICE_CHANNELS, bars * STEPS_PER_BAR)
    for k in tracks:
        mask[k * VOICE_CHANNELS:(k + 1) * VOICE_CHANNELS, first_bar - 1:last_bar] = 1.0
    return mask


@variants.wrong("bar_mask", "only the 12 pitch-class channels of each voice")
def bar_mask(first_bar, last_bar, tracks, bars=4):
    mask = torch.zeros(4 * VOICE_CHANNELS, bars * STEPS_PER_BAR)
    for k in tracks:
        mask[k * VOICE_CHANNELS:k * VOICE_CHANNELS + 12, (first_bar - 1) * STEPS_PER_BAR:last_bar * STEPS_PER_BAR] = 1.0
    return mask


@variants.wrong("bar_mask", "channel k instead of the voice's 15 channels")
def bar_mask(first_bar, last_bar, tracks, bars=4):
    mask = torch.zeros(4 * VOICE_CHANNELS, bars * STEPS_PER_BAR)
    mask[list(tracks), (first_bar - 1) * STEPS_PER_BAR:last_bar * STEPS_PER_BAR] = 1.0
    return mask


@variants.wrong("bar_mask", "a boolean mask (1 - mask then fails)")
def bar_mask(first_bar, last_bar, tracks, bars=4):
    mask = torch.zeros(4 * VOICE_CHANNELS, bars * STEPS_PER_BAR, dtype=torch.bool)
    for k in tracks:
        mask[k * VOICE_CHANNELS:(k + 1) * VOICE_CHANNELS, (first_bar - 1) * STEPS_PER_BAR:last_bar * STEPS_PER_BAR] = True
    return mask


@variants.wrong("bar_mask", "the window hard-coded to 4 bars")
def bar_mask(first_bar, last_bar, tracks, bars=4):
    mask = torch.zeros(60, 64)
    for k in tracks:
        mask[k * 15:(k + 1) * 15, (first_bar - 1) * 16:last_bar * 16] = 1.0
    return mask


@variants.correct("bar_mask", "an outer product of a channel vector and a step vector")
def bar_mask(first_bar, last_bar, tracks, bars=4):
    channels = torch.zeros(4, VOICE_CHANNELS)
    channels[list(tracks)] = 1.0
    steps = torch.zeros(bars, STEPS_PER_BAR)
    steps[first_bar - 1:last_bar] = 1.0
    return torch.outer(channels.flatten(), steps.flatten())


@variants.correct("bar_mask", "NumPy, then converted")
def bar_mask(first_bar, last_bar, tracks, bars=4):
    channel = np.arange(4 * VOICE_CHANNELS)[:, None] // VOICE_CHANNELS
    bar = np.arange(bars * STEPS_PER_BAR)[None, :] // STEPS_PER_BAR + 1
    mask = np.isin(channel, list(tracks)) & (bar >= first_bar) & (bar <= last_bar)
    return torch.from_numpy(mask.astype(np.float32))


@variants.wrong("bar_mask", "a NumPy array (the tasks need a tensor)")
def bar_mask(first_bar, last_bar, tracks, bars=4):
    mask = np.zeros((4 * VOICE_CHANNELS, bars * STEPS_PER_BAR), dtype=np.float32)
    for k in tracks:
        mask[k * VOICE_CHANNELS:(k + 1) * VOICE_CHANNELS, (first_bar - 1) * STEPS_PER_BAR:last_bar * STEPS_PER_BAR] = 1.0
    return mask


# --------------------------------------------------------------------------- transition_known

@variants.wrong("transition_known", "A's first bars instead of its last ones")
def transition_known(x_a, x_b, context_bars=1, bars=4):
    c = context_bars * STEPS_PER_BAR
    known, known_mask = torch.zeros(x_a.shape[0], bars * STEPS_PER_BAR), torch.zeros(x_a.shape[0], bars * STEPS_PER_BAR)
    known[:, :c], known[:, -c:] = x_a[:, :c], x_b[:, :c]
    known_mask[:, :c], known_mask[:, -c:] = 1.0, 1.0
    return known, known_mask


@variants.wrong("transition_known", "B's last bars instead of its first ones")
def transition_known(x_a, x_b, context_bars=1, bars=4):
    c = context_bars * STEPS_PER_BAR
    known, known_mask = torch.zeros(x_a.shape[0], bars * STEPS_PER_BAR), torch.zeros(x_a.shape[0], bars * STEPS_PER_BAR)
    known[:, :c], known[:, -c:] = x_a[:, -c:], x_b[:, -c:]
    known_mask[:, :c], known_mask[:, -c:] = 1.0, 1.0
    return known, known_mask


@variants.wrong("transition_known", "the mask marks the bars to generate")
def transition_known(x_a, x_b, context_bars=1, bars=4):
    c = context_bars * STEPS_PER_BAR
    known = torch.zeros(x_a.shape[0], bars * STEPS_PER_BAR)
    known[:, :c], known[:, -c:] = x_a[:, -c:], x_b[:, :c]
    known_mask = torch.ones_like(known)
    known_mask[:, :c], known_mask[:, -c:] = 0.0, 0.0
    return known, known_mask


@variants.wrong("transition_known", "context counted in steps")
def transition_known(x_a, x_b, context_bars=1, bars=4):
    c = context_bars
    known, known_mask = torch.zeros(x_a.shape[0], bars * STEPS_PER_BAR), torch.zeros(x_a.shape[0], bars * STEPS_PER_BAR)
    known[:, :c], known[:, -c:] = x_a[:, -c:], x_b[:, :c]
    known_mask[:, :c], known_mask[:, -c:] = 1.0, 1.0
    return known, known_mask


@variants.wrong("transition_known", "the middle filled with -1 (silence) instead of 0")
def transition_known(x_a, x_b, context_bars=1, bars=4):
    c = context_bars * STEPS_PER_BAR
    known = -torch.ones(x_a.shape[0], bars * STEPS_PER_BAR)
    known_mask = torch.zeros_like(known)
    known[:, :c], known[:, -c:] = x_a[:, -c:], x_b[:, :c]
    known_mask[:, :c], known_mask[:, -c:] = 1.0, 1.0
    return known, known_mask


@variants.wrong("transition_known", "a window of 4 bars whatever `bars` says")
def transition_known(x_a, x_b, context_bars=1, bars=4):
    c = context_bars * STEPS_PER_BAR
    known, known_mask = torch.zeros(x_a.shape[0], 64), torch.zeros(x_a.shape[0], 64)
    known[:, :c], known[:, -c:] = x_a[:, -c:], x_b[:, :c]
    known_mask[:, :c], known_mask[:, -c:] = 1.0, 1.0
    return known, known_mask


@variants.correct("transition_known", "torch.cat of the three parts")
def transition_known(x_a, x_b, context_bars=1, bars=4):
    c = context_bars * STEPS_PER_BAR
    gap = torch.zeros(x_a.shape[0], bars * STEPS_PER_BAR - 2 * c)
    known = torch.cat([x_a[:, x_a.shape[1] - c:], gap, x_b[:, :c]], dim=1)
    known_mask = torch.cat([torch.ones(x_a.shape[0], c), gap, torch.ones(x_a.shape[0], c)], dim=1)
    return known, known_mask


@variants.wrong("transition_known", "a bool known_mask (1 - known_mask then raises)")
def transition_known(x_a, x_b, context_bars=1, bars=4):
    c = context_bars * STEPS_PER_BAR
    known = torch.zeros(x_a.shape[0], bars * STEPS_PER_BAR)
    known_mask = torch.zeros(known.shape, dtype=torch.bool)
    known[:, :c], known[:, -c:] = x_a[:, -c:], x_b[:, :c]
    known_mask[:, :c], known_mask[:, -c:] = True, True
    return known, known_mask


@variants.correct("transition_known", "a list [known, known_mask], float mask from a bool one")
def transition_known(x_a, x_b, context_bars=1, bars=4):
    c, steps = context_bars * STEPS_PER_BAR, bars * STEPS_PER_BAR
    position = torch.arange(steps)
    given = (position < c) | (position >= steps - c)  # (L,)
    known = torch.zeros(x_a.shape[0], steps)
    known[:, :c] = x_a[:, x_a.shape[1] - c:]
    known[:, steps - c:] = x_b[:, :c]
    return [known, given.float().expand(x_a.shape[0], steps).clone()]


# --------------------------------------------------------------------------- sdedit_start

@variants.wrong("sdedit_start", "t0 = strength * T (one level too far; out of range at strength 1)")
def sdedit_start(schedule, x0, strength, noise):
    t0 = round(strength * schedule.timesteps)
    alpha_bar = schedule.alpha_bar[t0]
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise, t0


@variants.wrong("sdedit_start", "the strength upside down: t0 = (1 - strength) (T - 1)")
def sdedit_start(schedule, x0, strength, noise):
    t0 = round((1 - strength) * (schedule.timesteps - 1))
    alpha_bar = schedule.alpha_bar[t0]
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise, t0


@variants.wrong("sdedit_start", "alpha_bar instead of its square root")
def sdedit_start(schedule, x0, strength, noise):
    t0 = round(strength * (schedule.timesteps - 1))
    alpha_bar = schedule.alpha_bar[t0]
    return alpha_bar * x0 + (1 - alpha_bar) * noise, t0


@variants.wrong("sdedit_start", "truncation instead of rounding")
def sdedit_start(schedule, x0, strength, noise):
    t0 = int(strength * (schedule.timesteps - 1))
    alpha_bar = schedule.alpha_bar[t0]
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise, t0


@variants.wrong("sdedit_start", "noise added without shrinking the music")
def sdedit_start(schedule, x0, strength, noise):
    t0 = round(strength * (schedule.timesteps - 1))
    return x0 + (1 - schedule.alpha_bar[t0]).sqrt() * noise, t0


@variants.correct("sdedit_start", "through the library's q_sample")
def sdedit_start(schedule, x0, strength, noise):
    from course_lib.diffusion import q_sample
    t0 = int(np.rint(strength * (schedule.timesteps - 1)))
    return q_sample(schedule, x0, t0, noise), t0


@variants.wrong("sdedit_start", "t0 as a 0-d tensor (torch.round), not an int")
def sdedit_start(schedule, x0, strength, noise):
    t0 = torch.round(torch.tensor(strength * (schedule.timesteps - 1))).long()
    alpha_bar = schedule.alpha_bar[t0]
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise, t0


@variants.wrong("sdedit_start", "T = 1000 hard-coded: t0 = round(strength * 999)")
def sdedit_start(schedule, x0, strength, noise):
    t0 = min(round(strength * 999), schedule.timesteps - 1)
    alpha_bar = schedule.alpha_bar[t0]
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise, t0


@variants.wrong("sdedit_start", "the caller's noise scaled in place (noise.mul_)")
def sdedit_start(schedule, x0, strength, noise):
    t0 = round(strength * (schedule.timesteps - 1))
    alpha_bar = schedule.alpha_bar[t0]
    return alpha_bar.sqrt() * x0 + noise.mul_((1 - alpha_bar).sqrt()), t0


# --------------------------------------------------------------------------- reconstruction_guided_eps

@variants.wrong("reconstruction_guided_eps", "the sign flipped")
def reconstruction_guided_eps(denoiser, schedule, x_t, t, known, known_mask, scale):
    x = x_t.detach().requires_grad_(True)
    eps, x0 = denoiser(x, t)
    (gradient,) = torch.autograd.grad((known_mask * (x0 - known)).square().sum(), x)
    return eps.detach() - scale * schedule.sqrt_one_minus_alpha_bar[t].view(-1, 1, 1) * gradient


@variants.wrong("reconstruction_guided_eps", "no sqrt(1 - alpha_bar_t) factor")
def reconstruction_guided_eps(denoiser, schedule, x_t, t, known, known_mask, scale):
    x = x_t.detach().requires_grad_(True)
    eps, x0 = denoiser(x, t)
    (gradient,) = torch.autograd.grad((known_mask * (x0 - known)).square().sum(), x)
    return eps.detach() + scale * gradient


@variants.wrong("reconstruction_guided_eps", "the gradient with respect to x0, not through the denoiser")
def reconstruction_guided_eps(denoiser, schedule, x_t, t, known, known_mask, scale):
    eps, x0 = denoiser(x_t, t)
    gradient = 2 * known_mask * (x0.detach() - known)
    return eps.detach() + scale * schedule.sqrt_one_minus_alpha_bar[t].view(-1, 1, 1) * gradient


@variants.wrong("reconstruction_guided_eps", "sqrt(alpha_bar_t) instead of sqrt(1 - alpha_bar_t)")
def reconstruction_guided_eps(denoiser, schedule, x_t, t, known, known_mask, scale):
    x = x_t.detach().requires_grad_(True)
    eps, x0 = denoiser(x, t)
    (gradient,) = torch.autograd.grad((known_mask * (x0 - known)).square().sum(), x)
    return eps.detach() + scale * schedule.sqrt_alpha_bar[t].view(-1, 1, 1) * gradient


@variants.wrong("reconstruction_guided_eps", "the mask left out")
def reconstruction_guided_eps(denoiser, schedule, x_t, t, known, known_mask, scale):
    x = x_t.detach().requires_grad_(True)
    eps, x0 = denoiser(x, t)
    (gradient,) = torch.autograd.grad((x0 - known).square().sum(), x)
    return eps.detach() + scale * schedule.sqrt_one_minus_alpha_bar[t].view(-1, 1, 1) * gradient


@variants.wrong("reconstruction_guided_eps", "the factor of sample 0 used for the whole batch")
def reconstruction_guided_eps(denoiser, schedule, x_t, t, known, known_mask, scale):
    x = x_t.detach().requires_grad_(True)
    eps, x0 = denoiser(x, t)
    (gradient,) = torch.autograd.grad((known_mask * (x0 - known)).square().sum(), x)
    return eps.detach() + scale * schedule.sqrt_one_minus_alpha_bar[t[0]] * gradient


@variants.wrong("reconstruction_guided_eps", "the guidance moves x0 instead of eps")
def reconstruction_guided_eps(denoiser, schedule, x_t, t, known, known_mask, scale):
    x = x_t.detach().requires_grad_(True)
    eps, x0 = denoiser(x, t)
    (gradient,) = torch.autograd.grad((known_mask * (x0 - known)).square().sum(), x)
    return (x0 - scale * gradient).detach()


@variants.correct("reconstruction_guided_eps", "backward() on a leaf clone and the library's extract")
def reconstruction_guided_eps(denoiser, schedule, x_t, t, known, known_mask, scale):
    from course_lib.schedules import extract
    x = x_t.clone().requires_grad_(True)
    eps, x0 = denoiser(x, t)
    ((x0 - known) * known_mask).pow(2).sum().backward()
    return eps.detach() + scale * extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape) * x.grad


@variants.correct("reconstruction_guided_eps", "the library's guided-eps formula with -scale * gradient")
def reconstruction_guided_eps(denoiser, schedule, x_t, t, known, known_mask, scale):
    from course_lib.guidance import classifier_guided_eps
    with torch.enable_grad():
        x = x_t.detach().requires_grad_(True)
        eps, x0 = denoiser(x, t)
        (gradient,) = torch.autograd.grad((known_mask * (x0 - known)).square().sum(), x)
    return classifier_guided_eps(schedule, eps.detach(), t, -scale * gradient)


@variants.wrong("reconstruction_guided_eps", "requires_grad_ switched on on the caller's x_t")
def reconstruction_guided_eps(denoiser, schedule, x_t, t, known, known_mask, scale):
    x_t.requires_grad_(True)
    eps, x0 = denoiser(x_t, t)
    (gradient,) = torch.autograd.grad((known_mask * (x0 - known)).square().sum(), x_t)
    return eps.detach() + scale * schedule.sqrt_one_minus_alpha_bar[t].view(-1, 1, 1) * gradient


# --------------------------------------------------------------------------- out_of_key_penalty

@variants.wrong("out_of_key_penalty", "the mass inside the scale")
def out_of_key_penalty(x0, scale=(0, 2, 4, 5, 7, 9, 11), temperature=0.25):
    voices = x0.reshape(x0.shape[0], 4, VOICE_CHANNELS, x0.shape[-1])
    p = torch.softmax(voices[:, :, :12] / temperature, dim=2)
    weight = ((voices[:, :, 14] + 1) / 2).clamp(0, 1).detach()
    return (weight * p[:, :, list(scale)].sum(dim=2)).sum(dim=(1, 2))


@variants.wrong("out_of_key_penalty", "a softmax over time")
def out_of_key_penalty(x0, scale=(0, 2, 4, 5, 7, 9, 11), temperature=0.25):
    voices = x0.reshape(x0.shape[0], 4, VOICE_CHANNELS, x0.shape[-1])
    p = torch.softmax(voices[:, :, :12] / temperature, dim=3)
    outside = [c for c in range(12) if c not in scale]
    weight = ((voices[:, :, 14] + 1) / 2).clamp(0, 1).detach()
    return (weight * p[:, :, outside].sum(dim=2)).sum(dim=(1, 2))


@variants.wrong("out_of_key_penalty", "no temperature")
def out_of_key_penalty(x0, scale=(0, 2, 4, 5, 7, 9, 11), temperature=0.25):
    voices = x0.reshape(x0.shape[0], 4, VOICE_CHANNELS, x0.shape[-1])
    p = torch.softmax(voices[:, :, :12], dim=2)
    outside = [c for c in range(12) if c not in scale]
    weight = ((voices[:, :, 14] + 1) / 2).clamp(0, 1).detach()
    return (weight * p[:, :, outside].sum(dim=2)).sum(dim=(1, 2))


@variants.wrong("out_of_key_penalty", "rests penalised too (no active weight)")
def out_of_key_penalty(x0, scale=(0, 2, 4, 5, 7, 9, 11), temperature=0.25):
    voices = x0.reshape(x0.shape[0], 4, VOICE_CHANNELS, x0.shape[-1])
    p = torch.softmax(voices[:, :, :12] / temperature, dim=2)
    outside = [c for c in range(12) if c not in scale]
    return p[:, :, outside].sum(dim=(1, 2, 3))


@variants.wrong("out_of_key_penalty", "the active weight not detached")
def out_of_key_penalty(x0, scale=(0, 2, 4, 5, 7, 9, 11), temperature=0.25):
    voices = x0.reshape(x0.shape[0], 4, VOICE_CHANNELS, x0.shape[-1])
    p = torch.softmax(voices[:, :, :12] / temperature, dim=2)
    outside = [c for c in range(12) if c not in scale]
    weight = ((voices[:, :, 14] + 1) / 2).clamp(0, 1)
    return (weight * p[:, :, outside].sum(dim=2)).sum(dim=(1, 2))


@variants.wrong("out_of_key_penalty", "the first 12 channels of the whole tensor (only the soprano's)")
def out_of_key_penalty(x0, scale=(0, 2, 4, 5, 7, 9, 11), temperature=0.25):
    p = torch.softmax(x0[:, :12] / temperature, dim=1)
    outside = [c for c in range(12) if c not in scale]
    weight = ((x0[:, 14] + 1) / 2).clamp(0, 1).detach()
    return (weight * p[:, outside].sum(dim=1)).sum(dim=1)


@variants.wrong("out_of_key_penalty", "hard counting with argmax (no gradient)")
def out_of_key_penalty(x0, scale=(0, 2, 4, 5, 7, 9, 11), temperature=0.25):
    voices = x0.reshape(x0.shape[0], 4, VOICE_CHANNELS, x0.shape[-1])
    pitch_class = voices[:, :, :12].argmax(dim=2)
    outside = ~torch.isin(pitch_class, torch.tensor(list(scale)))
    return ((voices[:, :, 14] > 0) & outside).sum(dim=(1, 2)).float()


@variants.wrong("out_of_key_penalty", "the mean over voices and steps instead of the sum")
def out_of_key_penalty(x0, scale=(0, 2, 4, 5, 7, 9, 11), temperature=0.25):
    voices = x0.reshape(x0.shape[0], 4, VOICE_CHANNELS, x0.shape[-1])
    p = torch.softmax(voices[:, :, :12] / temperature, dim=2)
    outside = [c for c in range(12) if c not in scale]
    weight = ((voices[:, :, 14] + 1) / 2).clamp(0, 1).detach()
    return (weight * p[:, :, outside].sum(dim=2)).mean(dim=(1, 2))


@variants.correct("out_of_key_penalty", "1 - the mass inside, with einsum")
def out_of_key_penalty(x0, scale=(0, 2, 4, 5, 7, 9, 11), temperature=0.25):
    b, _, length = x0.shape
    voices = x0.view(b, 4, VOICE_CHANNELS, length)
    inside = torch.zeros(12)
    inside[list(scale)] = 1.0
    p = (voices[:, :, :12] / temperature).softmax(dim=2)
    weight = (0.5 * voices[:, :, 14] + 0.5).clamp(min=0.0, max=1.0).detach()
    return torch.einsum("bvl,bvl->b", weight, 1 - torch.einsum("bvcl,c->bvl", p, inside))


@variants.wrong("out_of_key_penalty", "the caller's x0 divided by the temperature in place (reshape is a view)")
def out_of_key_penalty(x0, scale=(0, 2, 4, 5, 7, 9, 11), temperature=0.25):
    voices = x0.reshape(x0.shape[0], 4, VOICE_CHANNELS, x0.shape[-1])
    if not voices.requires_grad:
        voices[:, :, :12] /= temperature
        p = torch.softmax(voices[:, :, :12], dim=2)
    else:
        p = torch.softmax(voices[:, :, :12] / temperature, dim=2)
    outside = torch.ones(12)
    outside[list(scale)] = 0.0
    weight = ((voices[:, :, 14] + 1) / 2).clamp(0, 1).detach()
    return (weight * (p * outside.view(1, 1, 12, 1)).sum(dim=2)).sum(dim=(1, 2))


@variants.wrong("out_of_key_penalty", "one number for the whole batch (summed over the samples too)")
def out_of_key_penalty(x0, scale=(0, 2, 4, 5, 7, 9, 11), temperature=0.25):
    voices = x0.reshape(x0.shape[0], 4, VOICE_CHANNELS, x0.shape[-1])
    p = torch.softmax(voices[:, :, :12] / temperature, dim=2)
    outside = torch.ones(12)
    outside[list(scale)] = 0.0
    weight = ((voices[:, :, 14] + 1) / 2).clamp(0, 1).detach()
    return (weight * (p * outside.view(1, 1, 12, 1)).sum(dim=2)).sum()
