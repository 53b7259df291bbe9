"""Visible tests of lesson 3, The reverse process: ``checks.check_reverse_step(reverse_step)``, ...

The checks use the lesson's toy schedule (β_t = 0.1, 0.2, 0.5, so ᾱ_t = 0.9, 0.72, 0.36), whose
answers can be worked out by hand; on a wrong answer they name the likely mistake.
"""
from __future__ import annotations

import math

import torch

from course_lib import diffusion, schedules
from course_lib.checks import (CheckFailure, call, check_close, check_equal, check_shape, check_type,
                               check_unchanged, use_student_or_library)

__all__ = ["check_posterior_mean_variance", "check_predict_x0_from_eps", "check_epsilon_loss", "check_reverse_step",
           "OneWeightDenoiser", "toy_schedule", "use_student_or_library"]

root = math.sqrt


def toy_schedule() -> schedules.NoiseSchedule:
    """The lesson's `toy`: T = 3 levels with β_t = 0.1, 0.2, 0.5."""
    return schedules.NoiseSchedule.from_betas(torch.tensor([0.1, 0.2, 0.5]))


def _unchanged(inputs: dict, before: dict, function: str) -> None:
    for name, x in inputs.items():
        check_unchanged(x, before[name], f"{name}, passed to {function}")


def check_posterior_mean_variance(posterior_mean_variance) -> None:
    toy = toy_schedule()  # α_t = 0.9, 0.8, 0.5; ᾱ_t = 0.9, 0.72, 0.36
    toy_x0 = torch.tensor([[1.0, -1.0], [0.5, 0.0], [-0.2, 0.7]])  # three 2-D points
    toy_x_t = torch.tensor([[0.5, 2.0], [-1.0, 0.3], [0.0, -0.4]])
    inputs = {"toy_x0": toy_x0, "toy_x_t": toy_x_t}
    before = {name: x.clone() for name, x in inputs.items()}
    result = call(posterior_mean_variance, toy, toy_x0, toy_x_t, 2,
                  description="posterior_mean_variance(toy, toy_x0, toy_x_t, 2)")
    check_equal(len(result), 2, "the number of results of posterior_mean_variance (return mean, variance)")
    mean, variance = result
    check_type(mean, torch.Tensor, "the mean from posterior_mean_variance(toy, toy_x0, toy_x_t, 2)", what="a float tensor")
    check_shape(mean, (3, 2), "the mean from posterior_mean_variance(toy, toy_x0, toy_x_t, 2)")

    def blend(c0, ct):
        """c0 * toy_x0 + ct * toy_x_t: a candidate posterior mean."""
        return c0 * toy_x0 + ct * toy_x_t

    # at t = 2: β_t = 0.5, α_t = 0.5, ᾱ_t = 0.36, ᾱ_{t-1} = 0.72
    check_close(mean, blend(root(0.72) * 0.5 / 0.64, root(0.5) * 0.28 / 0.64), "the mean at t = 2", rtol=1e-5, atol=1e-6,
                likely_mistakes={
        "ᾱ_t where eq. 7 has ᾱ_{t-1}": blend(root(0.36) * 0.5 / 0.64, root(0.5) * 0.64 / 0.64),
        "α_t without its square root in the coefficient of x_t": blend(root(0.72) * 0.5 / 0.64, 0.5 * 0.28 / 0.64),
        "ᾱ_{t-1} without its square root in the coefficient of x_0": blend(0.72 * 0.5 / 0.64, root(0.5) * 0.28 / 0.64),
        "the two coefficients swapped: √ᾱ_{t-1} β_t / (1 - ᾱ_t) multiplies x_0": blend(root(0.5) * 0.28 / 0.64, root(0.72) * 0.5 / 0.64),
        "the constants of level t - 1: level t uses betas[t], alphas[t], alpha_bar[t]": blend(root(0.9) * 0.2 / 0.28, root(0.8) * 0.1 / 0.28)})
    check_shape(variance, (), "the variance at t = 2 (one number for the whole batch)")
    check_close(variance, 0.28 / 0.64 * 0.5, "the variance at t = 2", rtol=1e-5, atol=1e-7, likely_mistakes={
        "β_t (or ᾱ_t where eq. 7 has ᾱ_{t-1}): the posterior's variance is β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) · β_t": 0.5,
        "the standard deviation √β̃_t instead of the variance β̃_t": root(0.28 / 0.64 * 0.5),
        "the ratio upside down: β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) · β_t": 0.64 / 0.28 * 0.5})
    _unchanged(inputs, before, "posterior_mean_variance")
    mean, variance = call(posterior_mean_variance, toy, toy_x0, toy_x_t, 0,
                          description="posterior_mean_variance(toy, toy_x0, toy_x_t, 0)")
    check_close(mean, toy_x0, "the mean at t = 0 (the last step lands on x_0)", rtol=1e-5, atol=1e-6, likely_mistakes={
        "alpha_bar[t - 1] at t = 0, which Python reads as alpha_bar[-1], the *last* level; ᾱ_{-1} = 1":
            blend(root(0.36) * 0.1 / 0.1, root(0.9) * 0.64 / 0.1)})
    check_close(variance, 0.0, "the variance at t = 0", atol=1e-7, likely_mistakes={
        "alpha_bar[t - 1] at t = 0, which Python reads as alpha_bar[-1], the *last* level; ᾱ_{-1} = 1": 0.64,
        "β_t: the posterior's variance is β̃_t, which is 0 at t = 0": 0.1})
    print("✓ posterior_mean_variance passes the visible tests")


def check_predict_x0_from_eps(predict_x0_from_eps) -> None:
    toy = toy_schedule()
    toy_x_t = torch.tensor([[0.5, 2.0], [-1.0, 0.3]])
    toy_eps = torch.tensor([[1.0, -0.5], [0.2, 0.8]])
    inputs = {"toy_x_t": toy_x_t, "toy_eps": toy_eps}
    before = {name: x.clone() for name, x in inputs.items()}
    # level 1 of the toy schedule: ᾱ_t = 0.72, ᾱ_{t-1} = 0.9, β_t = 0.2
    got = call(predict_x0_from_eps, toy, toy_x_t, 1, toy_eps, description="predict_x0_from_eps(toy, toy_x_t, 1, toy_eps)")
    check_type(got, torch.Tensor, "predict_x0_from_eps(toy, toy_x_t, 1, toy_eps)", what="a float tensor")
    check_shape(got, (2, 2), "predict_x0_from_eps(toy, toy_x_t, 1, toy_eps)")
    check_close(got, (toy_x_t - root(0.28) * toy_eps) / root(0.72), "predict_x0_from_eps(toy, toy_x_t, 1, toy_eps)",
                rtol=1e-5, atol=1e-6, likely_mistakes={
        "ᾱ_t and 1 - ᾱ_t without square roots": (toy_x_t - 0.28 * toy_eps) / 0.72,
        "a missing square root on ᾱ_t in the denominator": (toy_x_t - root(0.28) * toy_eps) / 0.72,
        "a missing square root on 1 - ᾱ_t": (toy_x_t - 0.28 * toy_eps) / root(0.72),
        "the noise added instead of removed: x_0 = (x_t - √(1 - ᾱ_t) ε) / √ᾱ_t": (toy_x_t + root(0.28) * toy_eps) / root(0.72),
        "ᾱ_{t-1} instead of ᾱ_t: x_t was made with ᾱ_t (eq. 4)": (toy_x_t - root(0.1) * toy_eps) / root(0.9),
        "β_t instead of 1 - ᾱ_t: the noise in x_t has variance 1 - ᾱ_t, not β_t": (toy_x_t - root(0.2) * toy_eps) / root(0.72),
        "α_t instead of ᾱ_t: x_t holds the signal of all steps up to t": (toy_x_t - root(0.2) * toy_eps) / root(0.8),
        "a product instead of a division by √ᾱ_t": (toy_x_t - root(0.28) * toy_eps) * root(0.72)})
    _unchanged(inputs, before, "predict_x0_from_eps")
    toy_clean = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    noised = diffusion.q_sample(toy, toy_clean, 2, noise=toy_eps)  # forward with a known ε ...
    back = call(predict_x0_from_eps, toy, noised, 2, toy_eps, description="predict_x0_from_eps(toy, noised, 2, toy_eps)")
    check_close(back, toy_clean, "x̂_0 from x_t = q_sample(toy, x0, 2, ε) and the true ε",
                rtol=1e-5, atol=1e-5)  # ... and back: the exact ε gives back the exact x_0
    print("✓ predict_x0_from_eps passes the visible tests")


class OneWeightDenoiser(torch.nn.Module):
    """A stand-in network with one parameter: ε̂ = w · x_t + t / 100 (a real one is trained in section 5)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x, t, labels=None):
        return self.w * x + t.reshape(-1, *[1] * (x.dim() - 1)) / 100


def check_epsilon_loss(epsilon_loss) -> None:
    toy = toy_schedule()
    stand_in = OneWeightDenoiser()
    toy_levels = torch.tensor([2, 0, 1])  # one level per sample
    toy_clean = torch.tensor([[1.0, -1.0], [0.5, 0.0], [-0.5, 1.0]])
    toy_noise = torch.tensor([[0.3, -1.2], [1.0, 0.4], [-0.7, 0.9]])
    inputs = {"toy_clean": toy_clean, "toy_levels": toy_levels, "toy_noise": toy_noise}
    before = {name: x.clone() for name, x in inputs.items()}
    loss = call(epsilon_loss, stand_in, toy, toy_clean, toy_levels, toy_noise,
                description="epsilon_loss(stand_in, toy, toy_clean, toy_levels, toy_noise)")
    check_shape(loss, (), "epsilon_loss(...)", likely_mistakes={
        "a loss per sample: average over the batch too, to one number": (3,),
        "an average over the batch axis only: average over every element": (2,)})
    if not (torch.is_tensor(loss) and loss.requires_grad):
        raise CheckFailure("epsilon_loss must return a tensor that carries gradients (no .item(), no float(), "
                           "no torch.no_grad())")
    levels = toy.alpha_bar[toy_levels][:, None]  # ᾱ_t per sample, (3, 1)

    def squared_error(model_input, target, input_levels=toy_levels):
        """mean((stand_in(model_input, t) - target)²) with the stand-in's w = 0.5."""
        return ((0.5 * model_input + input_levels[:, None] / 100 - target) ** 2).mean()

    x_t = levels.sqrt() * toy_clean + (1 - levels).sqrt() * toy_noise
    check_close(loss, squared_error(x_t, toy_noise), "epsilon_loss(stand_in, toy, toy_clean, toy_levels, toy_noise)",
                rtol=1e-5, atol=1e-7, likely_mistakes={
        "x_0 as the target: an ε-prediction model is compared with the noise ε": squared_error(x_t, toy_clean),
        "the clean x_0 as the model's input: the model must see the noisy x_t": squared_error(toy_clean, toy_noise),
        "a sum instead of a mean": squared_error(x_t, toy_noise) * 6,
        "ᾱ_t without square roots in x_t": squared_error(levels * toy_clean + (1 - levels) * toy_noise, toy_noise),
        "one level for the whole batch: sample i is noised to level t[i]":
            squared_error(toy.alpha_bar[2].sqrt() * toy_clean + (1 - toy.alpha_bar[2]).sqrt() * toy_noise, toy_noise)})
    _unchanged(inputs, before, "epsilon_loss")
    loss.backward()
    expected_w = torch.tensor(0.5, requires_grad=True)
    ((expected_w * x_t + toy_levels[:, None] / 100 - toy_noise) ** 2).mean().backward()
    check_close(stand_in.w.grad, expected_w.grad, "the gradient of the loss with respect to the stand-in's weight", rtol=1e-4)
    print("✓ epsilon_loss passes the visible tests")


def check_reverse_step(reverse_step) -> None:
    toy = toy_schedule()
    toy_x_t = torch.tensor([[0.5, 2.0], [-1.0, 0.3]])
    toy_eps = torch.tensor([[1.0, -0.5], [0.2, 0.8]])
    toy_z = torch.tensor([[0.4, -1.0], [1.5, 0.1]])
    inputs = {"toy_x_t": toy_x_t, "toy_eps": toy_eps, "toy_z": toy_z}
    before = {name: x.clone() for name, x in inputs.items()}
    # at t = 2: β_t = 0.5, α_t = 0.5, ᾱ_t = 0.36, β̃_t = 0.21875; μ_θ = (x_t - 0.5 / 0.8 · ε) / √0.5
    toy_mean = (toy_x_t - 0.625 * toy_eps) / root(0.5)
    got = call(reverse_step, toy, toy_x_t, 2, toy_eps, toy_z, description="reverse_step(toy, toy_x_t, 2, toy_eps, toy_z)")
    check_type(got, torch.Tensor, "reverse_step(toy, toy_x_t, 2, toy_eps, toy_z)", what="a float tensor")
    check_shape(got, (2, 2), "reverse_step(toy, toy_x_t, 2, toy_eps, toy_z)")
    check_close(got, toy_mean + root(0.21875) * toy_z, "reverse_step(toy, toy_x_t, 2, toy_eps, toy_z)", rtol=1e-5, atol=1e-6,
                likely_mistakes={
        "no noise added: for t > 0, x_{t-1} = μ_θ + σ_t z": toy_mean,
        "the variance β̃_t used as the standard deviation: σ_t = √β̃_t": toy_mean + 0.21875 * toy_z,
        "σ_t² = β_t: variance='posterior' asks for β̃_t": toy_mean + root(0.5) * toy_z,
        "1/√ᾱ_t in front instead of 1/√α_t: one step undoes one α_t": (toy_x_t - 0.625 * toy_eps) / 0.6 + root(0.21875) * toy_z,
        "1/α_t in front instead of 1/√α_t": (toy_x_t - 0.625 * toy_eps) / 0.5 + root(0.21875) * toy_z,
        "β_t / (1 - ᾱ_t) instead of β_t / √(1 - ᾱ_t) in front of ε": (toy_x_t - 0.78125 * toy_eps) / root(0.5) + root(0.21875) * toy_z,
        "the predicted noise added instead of removed": (toy_x_t + 0.625 * toy_eps) / root(0.5) + root(0.21875) * toy_z,
        "the constants of level t - 1: level t uses betas[t], alphas[t], alpha_bar[t]":
            (toy_x_t - 0.2 / root(0.28) * toy_eps) / root(0.8) + root(0.1 / 0.28 * 0.2) * toy_z})
    _unchanged(inputs, before, "reverse_step")
    beta = call(reverse_step, toy, toy_x_t, 2, toy_eps, toy_z, variance="beta",
                description="reverse_step(..., variance='beta')")
    check_close(beta, toy_mean + root(0.5) * toy_z, "reverse_step(..., variance='beta') at t = 2", rtol=1e-5, atol=1e-6,
                likely_mistakes={
        "β̃_t: variance='beta' asks for σ_t² = β_t": toy_mean + root(0.21875) * toy_z,
        "the variance β_t used as the standard deviation: σ_t = √β_t": toy_mean + 0.5 * toy_z})
    toy_last = (toy_x_t - 0.1 / root(0.1) * toy_eps) / root(0.9)  # μ_θ at t = 0: β = 0.1, α = 0.9, ᾱ = 0.9
    last = call(reverse_step, toy, toy_x_t, 0, toy_eps, toy_z, variance="beta",
                description="reverse_step(..., t = 0, variance='beta')")
    check_close(last, toy_last, "reverse_step(..., t = 0, variance='beta')", rtol=1e-5, atol=1e-6, likely_mistakes={
        "noise added at t = 0: the last step returns μ_θ alone (Algorithm 2: z = 0 at the end)": toy_last + root(0.1) * toy_z,
        "the variance added at t = 0 as a standard deviation": toy_last + 0.1 * toy_z})
    _unchanged(inputs, before, "reverse_step")
    print("✓ reverse_step passes the visible tests")
