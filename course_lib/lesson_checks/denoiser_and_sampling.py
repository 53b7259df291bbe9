"""Visible tests of lesson 4, The denoiser and sampling: ``checks.check_ddim_step(ddim_step)``, ...

The reference values are computed here (the embedding in NumPy, the DDIM step by the library),
out of the student's sight while they work; on a wrong answer the checks name the likely mistake.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from course_lib import diffusion, schedules
from course_lib.checks import (CheckFailure, call, check_close, check_shape, check_type, check_unchanged,
                               use_student_or_library)

__all__ = ["check_sinusoidal_embedding", "check_ema_update", "check_ddim_step", "use_student_or_library"]


def _sines_then_cosines(steps, frequencies, first=np.sin, second=np.cos):
    angles = np.asarray(steps)[:, None] * frequencies[None, :]  # (B, d/2)
    return np.concatenate([first(angles), second(angles)], axis=1)


def check_sinusoidal_embedding(sinusoidal_embedding) -> None:
    t = torch.tensor([0, 1, 10])
    got = call(sinusoidal_embedding, t, 6, description="sinusoidal_embedding(t, 6)")
    check_type(got, torch.Tensor, "sinusoidal_embedding(t, 6)", what="a torch tensor")
    check_shape(got, (3, 6), "sinusoidal_embedding(t, 6)")
    omega = 10000.0 ** (-np.arange(3) / 3)  # d = 6: the frequencies 1, 0.0464, 0.00215
    steps = [0, 1, 10]
    check_close(got, _sines_then_cosines(steps, omega), "sinusoidal_embedding(torch.tensor([0, 1, 10]), 6)",
                rtol=1e-4, atol=1e-3, likely_mistakes={
        "cos and sin swapped: the sines come first": _sines_then_cosines(steps, omega, np.cos, np.sin),
        "sin and cos interleaved (sin, cos, sin, cos, ...): all sines first, then all cosines":
            np.stack([np.sin(np.outer(steps, omega)), np.cos(np.outer(steps, omega))], axis=-1).reshape(3, 6),
        "a positive exponent: omega_k = 10000 ** (-k / (d/2)) gets smaller as k grows": _sines_then_cosines(steps, 1 / omega),
        "a missing ln(10000): omega_k = exp(-ln(10000) * k / (d/2)), not exp(-k / (d/2))":
            _sines_then_cosines(steps, np.exp(-np.arange(3) / 3)),
        "DDPM's original convention k / (d/2 - 1): this course's model uses k / (d/2)":
            _sines_then_cosines(steps, 10000.0 ** (-np.arange(3) / 2)),
        "an exponent -k / d: it is -k / (d/2), so the last frequency is close to 1/10000":
            _sines_then_cosines(steps, 10000.0 ** (-np.arange(3) / 6))})
    if got.dtype != torch.float32:
        raise CheckFailure(f"sinusoidal_embedding(t, 6) has dtype {got.dtype}; the embedding should be float32, "
                           "as the model's weights", "Convert at the end with .float() (or compute in float32).")
    check_unchanged(t, torch.tensor([0, 1, 10]), "t, passed to sinusoidal_embedding")
    print("✓ sinusoidal_embedding passes the visible tests")


def check_ema_update(ema_update) -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)  # a tiny "model"
    shadow = copy.deepcopy(net)  # its EMA starts as a copy, as in train.train
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)  # pretend an optimizer step moved every weight by +1
    call(ema_update, shadow, net, 0.999, step=0,  # warm-up: d = min(0.999, 1 / 10) = 0.1
         description="ema_update(shadow, net, 0.999, step=0)")
    check_close(net.weight, start + 1.0, "the model's weight after ema_update (only the EMA may change)", rtol=1e-6,
                atol=1e-6, likely_mistakes={
        "the model moved toward the EMA: the first argument is the EMA, the second the model": start + 0.1,
        "the average computed in the model's own tensors: clone before changing them": start + 0.9})
    check_close(shadow.weight, start + 0.9, "the EMA's weight after ema_update(shadow, net, 0.999, step=0)", rtol=1e-6,
                atol=1e-6, likely_mistakes={
        "the decay on the wrong side: the EMA keeps d of itself and takes 1 - d of the model": start + 0.1,
        "no warm-up: d = min(decay, (1 + step) / (10 + step)) (is there a max instead of a min?)": start + 0.001,
        "an EMA that did not change: update its tensors in place (mul_, add_, copy_, lerp_), don't rebind names": start,
        "a copy of the model: at step 0 the warm-up gives d = (1 + 0) / (10 + 0) = 0.1, not 0": start + 1.0,
        "Adam's bias correction, a division by 1 - d^n: it is for averages that start at zero, ours starts as a copy":
            (start + 0.9) / 0.9})
    with torch.no_grad():
        net.weight.add_(5.0)  # training goes on
    check_close(shadow.weight, start + 0.9, "the EMA's weight after the model changed again", rtol=1e-6, atol=1e-6,
                likely_mistakes={"an EMA that shares the model's tensors: it must keep its own copies": start + 6.0})
    if any(not p.requires_grad for p in net.parameters()):
        raise CheckFailure("ema_update switched off the model's gradients (requires_grad): the model must not change.")
    print("✓ ema_update passes the visible tests")


def check_ddim_step(ddim_step) -> None:
    toy = schedules.make_schedule("cosine", 100)  # a short schedule for testing
    draws = torch.Generator().manual_seed(0)
    x_t, eps_hat, x0_hat, z = (torch.randn(3, 4, 8, generator=draws) for _ in range(4))
    inputs = {"x_t": x_t, "eps_hat": eps_hat, "x0_hat": x0_hat, "z": z}
    before = {name: x.clone() for name, x in inputs.items()}
    ab = toy.alpha_bar

    def library_step(t, t_prev, eta=0.0, x0=x0_hat):  # course_lib.diffusion.ddim_step, the reference
        return diffusion.ddim_step(toy, x_t, t, t_prev, eps_hat, x0, eta=eta, noise=z).prev_sample

    got = call(ddim_step, toy, x_t, 60, 30, eps_hat, x0_hat, description="ddim_step(toy, x_t, 60, 30, eps_hat, x0_hat)")
    check_type(got, torch.Tensor, "ddim_step(toy, x_t, 60, 30, eps_hat, x0_hat)", what="a float tensor")
    check_shape(got, (3, 4, 8), "ddim_step(toy, x_t, 60, 30, eps_hat, x0_hat)")
    check_close(got, library_step(60, 30), "ddim_step(toy, x_t, 60, 30, eps_hat, x0_hat)", rtol=1e-4, atol=1e-5,
                likely_mistakes={
        "ᾱ_t used where ᾱ_{t'} = alpha_bar[t_prev] belongs": library_step(60, 60),
        "ᾱ_{t'} x̂_0 without the square root: the signal part is sqrt(ᾱ_{t'}) x̂_0":
            library_step(60, 30, x0=x0_hat * ab[30].sqrt()),
        "ᾱ_{t-1} = alpha_bar[t - 1] instead of ᾱ at t_prev: DDIM jumps straight to t_prev": library_step(60, 59)})
    sigma = 0.5 * ((1 - ab[30]) / (1 - ab[60]) * (1 - ab[60] / ab[30])).sqrt()
    noisy = call(ddim_step, toy, x_t, 60, 30, eps_hat, x0_hat, eta=0.5, noise=z,
                 description="ddim_step(toy, x_t, 60, 30, eps_hat, x0_hat, eta=0.5, noise=z)")
    check_close(noisy, library_step(60, 30, eta=0.5), "ddim_step(toy, x_t, 60, 30, eps_hat, x0_hat, eta=0.5, noise=z)",
                rtol=1e-4, atol=1e-5, likely_mistakes={
        "σ ignored: with η > 0 the step adds σ z, and the ε̂ term shrinks to sqrt(1 - ᾱ_{t'} - σ²)": library_step(60, 30),
        "σ² not taken out of the ε̂ term: its factor is sqrt(1 - ᾱ_{t'} - σ²)": library_step(60, 30) + sigma * z,
        "σ without the factor η": library_step(60, 30, eta=1.0)})
    last = call(ddim_step, toy, x_t, 20, -1, eps_hat, x0_hat, description="ddim_step(toy, x_t, 20, -1, eps_hat, x0_hat)")
    check_close(last, x0_hat, "ddim_step(toy, x_t, 20, -1, eps_hat, x0_hat), the last jump", rtol=1e-4, atol=1e-5,
                likely_mistakes={
        "alpha_bar[-1] for t_prev = -1: Python's index -1 is the last, noisiest ᾱ, but ᾱ_{-1} = 1 (the clean data)":
            library_step(99, 99)})
    for name, x in inputs.items():
        check_unchanged(x, before[name], f"{name}, passed to ddim_step")
    # η > 0 and no noise given: the step draws its own z ~ N(0, I), so x_prev - (the η-step with z = 0) is σ z
    with torch.random.fork_rng():  # the notebook's own random stream is left as it was
        torch.manual_seed(0)
        drawn = call(ddim_step, toy, x_t, 60, 30, eps_hat, x0_hat, eta=0.5,
                     description="ddim_step(toy, x_t, 60, 30, eps_hat, x0_hat, eta=0.5) (no noise given)")
    check_shape(drawn, (3, 4, 8), "ddim_step(..., eta=0.5) without noise")
    spread = float(((drawn - (library_step(60, 30, eta=0.5) - sigma * z)) / sigma).std())
    if not 0.7 < spread < 1.3:
        raise CheckFailure(
            f"ddim_step(toy, x_t, 60, 30, eps_hat, x0_hat, eta=0.5) with noise=None added noise of standard deviation "
            f"{spread:.2f} σ, not σ.", "With η > 0 and no noise given, draw z = torch.randn_like(x_t) and add σ z.")
    print("✓ ddim_step passes the visible tests")
