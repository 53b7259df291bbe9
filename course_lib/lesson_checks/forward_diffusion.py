"""Visible tests of lesson 2, Forward diffusion: ``checks.check_q_sample(q_sample)``, ...

Each check runs the student's function on toy inputs whose answers are worked out by hand (or
by the library), names the likely mistake when it is wrong, and checks what the docstring
promises about types, shapes and inputs left alone.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from course_lib import schedules
from course_lib.checks import (CheckFailure, call, check_close, check_equal, check_shape, check_type,
                               check_unchanged, use_student_or_library)

__all__ = ["check_alpha_bar_from_betas", "check_q_sample", "check_chain_moments", "check_cosine_alpha_bar",
           "check_log_snr", "check_chain_is_run", "use_student_or_library"]

ARRAY = (torch.Tensor, np.ndarray)


def check_alpha_bar_from_betas(alpha_bar_from_betas) -> None:
    toy_betas = torch.tensor([0.5, 0.2, 0.1, 0.5], dtype=torch.float64)  # so α_t = 0.5, 0.8, 0.9, 0.5
    before = toy_betas.clone()
    got = call(alpha_bar_from_betas, toy_betas, description="alpha_bar_from_betas(toy_betas)")
    check_type(got, ARRAY, "alpha_bar_from_betas(toy_betas)", what="a float tensor")
    check_shape(got, (4,), "alpha_bar_from_betas(toy_betas)",
                likely_mistakes={"one product of all the α_t: keep the running product at every level": ()})
    check_close(got, [0.5, 0.4, 0.36, 0.18], "alpha_bar_from_betas(toy_betas)", likely_mistakes={
        "a shift by one level: alpha_bar[0] is 1 - betas[0], the level after one step": [1.0, 0.5, 0.4, 0.36],
        "a product of the betas: ᾱ_t multiplies the α_t = 1 - β_t": [0.5, 0.1, 0.01, 0.005],
        "a running sum: ᾱ_t is a running *product* of the α_t": [0.5, 1.3, 2.2, 2.7],
        "1 minus the summed betas: ᾱ_t is a product of (1 - β_s), not 1 - Σ β_s": [0.5, 0.3, 0.2, -0.3],
        "√ᾱ_t instead of ᾱ_t: no square roots here": np.sqrt([0.5, 0.4, 0.36, 0.18])})
    check_unchanged(toy_betas, before, "toy_betas, passed to alpha_bar_from_betas")
    print("✓ alpha_bar_from_betas passes the visible tests")


def check_q_sample(q_sample) -> None:
    toy_alpha_bar = torch.tensor([0.96, 0.64, 0.36, 0.16])
    toy_t = torch.tensor([1, 2, 0])  # one level per sample
    toy_x0 = torch.linspace(-1, 1, 18).reshape(3, 2, 3)  # (B, C, L) = (3, 2, 3): B = L on purpose
    toy_noise = torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(2))
    inputs = {"toy_x0": toy_x0, "toy_t": toy_t, "toy_noise": toy_noise, "toy_alpha_bar": toy_alpha_bar}
    before = {name: x.clone() for name, x in inputs.items()}
    got = call(q_sample, toy_x0, toy_t, toy_noise, toy_alpha_bar,
               description="q_sample(toy_x0, toy_t, toy_noise, toy_alpha_bar)")
    check_type(got, torch.Tensor, "q_sample(toy_x0, toy_t, toy_noise, toy_alpha_bar)", what="a float tensor")
    check_shape(got, (3, 2, 3), "q_sample(toy_x0, toy_t, toy_noise, toy_alpha_bar)")

    def toy_mix(signal, noise_std, shape=(3, 1, 1)):
        """signal * x0 + noise_std * noise, one coefficient per sample (or per last-axis index)."""
        return torch.tensor(signal).reshape(shape) * toy_x0 + torch.tensor(noise_std).reshape(shape) * toy_noise

    root = math.sqrt
    check_close(got, toy_mix([0.8, 0.6, root(0.96)], [0.6, 0.8, 0.2]), "q_sample(toy_x0, toy_t, toy_noise, toy_alpha_bar)",
                atol=1e-6, likely_mistakes={
        "ᾱ_t without square roots: the coefficients are √ᾱ_t and √(1 - ᾱ_t)":
            toy_mix([0.64, 0.36, 0.96], [0.36, 0.64, 0.04]),
        "the square root forgotten on the signal term: x_0 is multiplied by √ᾱ_t, not ᾱ_t":
            toy_mix([0.64, 0.36, 0.96], [0.6, 0.8, 0.2]),
        "the coefficients swapped: x_0 is multiplied by √ᾱ_t, the noise by √(1 - ᾱ_t)":
            toy_mix([0.6, 0.8, 0.2], [0.8, 0.6, root(0.96)]),
        "the noise scaled by its variance 1 - ᾱ_t instead of its standard deviation √(1 - ᾱ_t)":
            toy_mix([0.8, 0.6, root(0.96)], [0.36, 0.64, 0.04]),
        "the next level's ᾱ (alpha_bar[t + 1]): level t uses alpha_bar[t]":
            toy_mix([0.6, 0.4, 0.8], [0.8, root(0.84), 0.6]),
        "the previous level's ᾱ (alpha_bar[t - 1]): level t uses alpha_bar[t]":
            toy_mix([root(0.96), 0.8, 0.4], [0.2, 0.6, root(0.84)]),
        "x_0 not scaled down: the signal is multiplied by √ᾱ_t": toy_mix([1.0, 1.0, 1.0], [0.6, 0.8, 0.2]),
        "the coefficients broadcast along the last axis: reshape alpha_bar[t] to (B, 1, 1)":
            toy_mix([0.8, 0.6, root(0.96)], [0.6, 0.8, 0.2], shape=(1, 1, 3)),
        "one level for the whole batch: each sample has its own t[i]": toy_mix([0.8] * 3, [0.6] * 3)})
    for name, x in inputs.items():
        check_unchanged(x, before[name], f"{name}, passed to q_sample")
    print("✓ q_sample passes the visible tests")


def check_chain_is_run(chain_moments) -> None:
    """The moments must come from chains run step by step: level t + 1 is one step from level t.

    The closed form gives every level the same mean and variance as the chain, so moments alone
    cannot tell the two apart. What can: the chains at neighbouring levels are the *same* chains,
    so the sampling errors of their means move together (nearly equal from one step to the next),
    while levels drawn one by one from q(x_t | x_0) have independent errors.
    """
    x0 = torch.tensor([1.0, -0.5, 0.25, 0.0], dtype=torch.float64)
    betas = torch.full((120,), 0.01, dtype=torch.float64)
    mean, _ = call(chain_moments, x0, betas, 500, torch.Generator().manual_seed(11),
                   description="chain_moments(x0, 120 betas of 0.01, 500)")
    closed = torch.cumprod(1 - betas, 0).sqrt()[:, None] * x0  # (120, 4)
    error = torch.as_tensor(np.asarray(mean, dtype=np.float64)) - closed
    if error.abs().max() < 1e-5:
        raise CheckFailure("chain_moments returned the closed form exactly: run the chain and measure "
                           "(the moments of random chains scatter)")
    a, b = error[:-1] - error[:-1].mean(0), error[1:] - error[1:].mean(0)
    correlation = float((a * b).sum() / (a.pow(2).sum() * b.pow(2).sum()).sqrt())
    if not correlation > 0.6:
        raise CheckFailure(
            f"chain_moments's means at neighbouring levels scatter independently (correlation of their "
            f"errors {correlation:.2f}; chains run step by step give about 0.99).",
            "Each level seems to be drawn on its own (from the closed form q(x_t | x_0)?): run the chains, "
            "so that x_t is one step of eq. 2 from x_{t-1} of the same chains.")


def check_chain_moments(chain_moments) -> None:
    toy_x0 = torch.tensor([2.0, -1.0, 0.5])
    toy_betas = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    before = toy_x0.clone(), toy_betas.clone()
    result = call(chain_moments, toy_x0, toy_betas, 20000, torch.Generator().manual_seed(0),
                  description="chain_moments(toy_x0, toy_betas, 20000)")
    check_equal(len(result), 2, "the number of results of chain_moments (return mean, variance)")
    mean, variance = result
    for name, value in (("mean", mean), ("variance", variance)):
        check_shape(value, (5, 3), f"the {name} from chain_moments(toy_x0, toy_betas, 20000)", likely_mistakes={
            "moments over the wrong axis: average over the chains (axis 0), keep the D cells": lambda s: s[-1] == 20000,
            "only the last level: record the moments after *every* step": (3,)})
    closed = schedules.NoiseSchedule.from_betas(toy_betas).alpha_bar[:, None]  # the library's ᾱ_t, (5, 1)
    tolerance = dict(rtol=0, atol=0.04)  # about 5 standard errors of 20,000 chains
    check_close(mean, closed.sqrt() * toy_x0, "the mean", **tolerance, likely_mistakes={
        "rows one step late: row t holds x_t *after* step t": torch.cat([toy_x0[None], closed.sqrt()[:-1] * toy_x0]),
        "x shrunk by 1 - β_t instead of √(1 - β_t)": closed * toy_x0,
        "x never shrunk: each step multiplies it by √(1 - β_t)": toy_x0.expand(5, 3)})
    check_close(variance, (1 - closed).expand(5, 3), "the variance", **tolerance, likely_mistakes={
        "the standard deviation instead of the variance": (1 - closed).sqrt().expand(5, 3),
        "rows one step late: row t holds x_t *after* step t":
            torch.cat([torch.zeros(1, 1), 1 - closed[:-1]]).expand(5, 3),
        "no spread between the chains: each chain needs its own noise, of shape (n_samples, D)":
            lambda v: abs(v).max() < 1e-6,
        "noise with standard deviation β_t: a step adds √β_t ε_t":
            torch.tensor([[0.01], [0.048], [0.1236], [0.23416], [0.36708]]).expand(5, 3),
        "one ε for all steps: draw fresh noise at every step":
            torch.tensor([[0.1], [0.53298], [1.34220], [2.34044], [3.20007]]).expand(5, 3)})
    check_unchanged(toy_x0, before[0], "toy_x0, passed to chain_moments")
    check_unchanged(toy_betas, before[1], "toy_betas, passed to chain_moments")
    check_chain_is_run(chain_moments)
    print("✓ chain_moments passes the visible tests")


def check_cosine_alpha_bar(cosine_alpha_bar) -> None:
    got = call(cosine_alpha_bar, 4, description="cosine_alpha_bar(4)")
    check_type(got, ARRAY, "cosine_alpha_bar(4)", what="a float64 tensor")
    check_shape(got, (4,), "cosine_alpha_bar(4)")
    if str(got.dtype) not in ("torch.float64", "float64"):
        raise CheckFailure(f"cosine_alpha_bar(4) has dtype {got.dtype}; compute in float64 "
                           "(torch.arange(..., dtype=torch.float64))")
    check_close(got, [0.8470121613269047, 0.49384359044063775, 0.1442721023857358, 0.0], "cosine_alpha_bar(4)",
                rtol=1e-6, atol=1e-9, likely_mistakes={
        "no offset s: the angle is (u / T + s) / (1 + s) · π / 2": [0.8535533905932737, 0.5, 0.1464466094067263, 0.0],
        "no division by f(0): ᾱ must start from 1, and f(0) is not exactly 1":
            [0.8468805280142708, 0.49376684270229254, 0.144249681202635, 0.0],
        "cos instead of cos²": [0.9203326362391506, 0.7027400589411691, 0.37983167638539017, 0.0],
        "f(t) instead of f(t + 1): level 0 is after one step, so alpha_bar[0] must be below 1":
            [1.0, 0.8470121613269047, 0.49384359044063775, 0.1442721023857358],
        "π instead of π / 2 in the angle":
            [0.4816037385559806, 0.00015550565248032558, 0.5065479968309362, 1.00062192594201]})
    print("✓ cosine_alpha_bar passes the visible tests")


def check_log_snr(log_snr) -> None:
    toy_alpha_bar = torch.tensor([0.5, 0.9, 0.1, 0.99, 1e-4], dtype=torch.float64)
    before = toy_alpha_bar.clone()
    got = call(log_snr, toy_alpha_bar, description="log_snr(toy_alpha_bar)")
    check_type(got, ARRAY, "log_snr(toy_alpha_bar)", what="a float tensor")
    check_shape(got, (5,), "log_snr(toy_alpha_bar)")
    expected = np.log([1.0, 9.0, 1 / 9, 99.0, 1e-4 / (1 - 1e-4)])
    check_close(got, expected, "log_snr(toy_alpha_bar)", rtol=1e-6, atol=1e-9, likely_mistakes={
        "a base-10 log: use the natural log, torch.log": expected / np.log(10),
        "the log of the amplitude ratio √ᾱ / √(1 - ᾱ): the SNR is a ratio of powers": expected / 2,
        "noise over signal: SNR = ᾱ_t / (1 - ᾱ_t)": -expected,
        "the SNR itself, not its log": np.exp(expected),
        "log ᾱ_t alone: divide by the noise power 1 - ᾱ_t": np.log(before.numpy())})
    check_unchanged(toy_alpha_bar, before, "toy_alpha_bar, passed to log_snr")
    grid = toy_alpha_bar[:4].reshape(2, 2)
    check_shape(call(log_snr, grid, description="log_snr(a 2 x 2 tensor)"), (2, 2), "log_snr(a 2 x 2 tensor)")
    print("✓ log_snr passes the visible tests")
