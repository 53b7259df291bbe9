"""Plausible wrong answers and alternative correct answers to lesson 3's exercises.

Each function replaces the exercise's solution cell in the grading kernel (see
``course_lib.grading.run_probe``), where the notebook has imported ``torch``, ``math``,
``diffusion`` and ``schedules``. Every wrong answer must be rejected by the exercise's tests
(visible or hidden), every correct one accepted by all of them. The imports here only keep
linters and readers oriented.
"""
import math

import torch

from course_lib import diffusion, schedules
from course_lib.grading import Variants

variants = Variants()


# --------------------------------------------------------------------------- posterior_mean_variance

@variants.wrong("posterior_mean_variance", "ᾱ_t where eq. 7 has ᾱ_{t-1}")
def posterior_mean_variance(schedule, x0, x_t, t):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    mean = alpha_bar.sqrt() * beta / (1 - alpha_bar) * x0 + alpha.sqrt() * (1 - alpha_bar) / (1 - alpha_bar) * x_t
    return mean, (1 - alpha_bar) / (1 - alpha_bar) * beta


@variants.wrong("posterior_mean_variance", "alpha_bar[t - 1] also at t = 0 (wraps round to the last level)")
def posterior_mean_variance(schedule, x0, x_t, t):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t - 1]
    mean = (alpha_bar_prev.sqrt() * beta / (1 - alpha_bar) * x0
            + alpha.sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar) * x_t)
    return mean, (1 - alpha_bar_prev) / (1 - alpha_bar) * beta


@variants.wrong("posterior_mean_variance", "no square root on α_t")
def posterior_mean_variance(schedule, x0, x_t, t):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
    mean = alpha_bar_prev.sqrt() * beta / (1 - alpha_bar) * x0 + alpha * (1 - alpha_bar_prev) / (1 - alpha_bar) * x_t
    return mean, (1 - alpha_bar_prev) / (1 - alpha_bar) * beta


@variants.wrong("posterior_mean_variance", "β_t as the variance")
def posterior_mean_variance(schedule, x0, x_t, t):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
    mean = (alpha_bar_prev.sqrt() * beta / (1 - alpha_bar) * x0
            + alpha.sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar) * x_t)
    return mean, beta


@variants.wrong("posterior_mean_variance", "the two coefficients swapped")
def posterior_mean_variance(schedule, x0, x_t, t):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
    mean = (alpha.sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar) * x0
            + alpha_bar_prev.sqrt() * beta / (1 - alpha_bar) * x_t)
    return mean, (1 - alpha_bar_prev) / (1 - alpha_bar) * beta


@variants.wrong("posterior_mean_variance", "the standard deviation √β̃_t returned as the variance")
def posterior_mean_variance(schedule, x0, x_t, t):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
    mean = (alpha_bar_prev.sqrt() * beta / (1 - alpha_bar) * x0
            + alpha.sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar) * x_t)
    return mean, ((1 - alpha_bar_prev) / (1 - alpha_bar) * beta).sqrt()


@variants.wrong("posterior_mean_variance", "returns the mean only")
def posterior_mean_variance(schedule, x0, x_t, t):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
    return (alpha_bar_prev.sqrt() * beta / (1 - alpha_bar) * x0
            + alpha.sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar) * x_t)


@variants.correct("posterior_mean_variance", "the schedule's precomputed posterior constants")
def posterior_mean_variance(schedule, x0, x_t, t):
    mean = schedule.posterior_mean_coef1[t] * x0 + schedule.posterior_mean_coef2[t] * x_t
    return mean, schedule.posterior_variance[t]


@variants.correct("posterior_mean_variance", "ᾱ_{t-1} from a padded array, through schedules.extract, in float64")
def posterior_mean_variance(schedule, x0, x_t, t):
    alpha_bar = schedule.float64("alpha_bar")
    alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
    beta = schedule.float64("betas")
    coef_x0 = alpha_bar_prev.sqrt() * beta / (1 - alpha_bar)
    coef_x_t = (1 - beta).sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar)
    shape = x_t.shape
    mean = (schedules.extract(coef_x0, t, shape) * x0.double() + schedules.extract(coef_x_t, t, shape) * x_t.double())
    variance = (1 - alpha_bar_prev[t]) / (1 - alpha_bar[t]) * beta[t]
    return mean.float(), float(variance)


@variants.correct("posterior_mean_variance", "with Python floats and the precision form of the derivation")
def posterior_mean_variance(schedule, x0, x_t, t):
    beta = float(schedule.betas[t])
    alpha = 1.0 - beta
    alpha_bar_prev = 1.0 if t == 0 else float(schedule.alpha_bar[t - 1])
    if t == 0:  # the posterior is a point mass on x_0
        return x0.clone(), 0.0
    precision = alpha / beta + 1.0 / (1.0 - alpha_bar_prev)
    variance = 1.0 / precision
    mean = variance * (math.sqrt(alpha) / beta * x_t + math.sqrt(alpha_bar_prev) / (1.0 - alpha_bar_prev) * x0)
    return mean, variance

@variants.wrong("posterior_mean_variance", "the variance broadcast to a tensor of x_t's shape (one number is asked)")
def posterior_mean_variance(schedule, x0, x_t, t):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
    mean = alpha_bar_prev.sqrt() * beta / (1 - alpha_bar) * x0 + alpha.sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar) * x_t
    return mean, torch.full_like(x_t, float((1 - alpha_bar_prev) / (1 - alpha_bar) * beta))


@variants.wrong("posterior_mean_variance", "x0 scaled in place (x0.mul_), then added")
def posterior_mean_variance(schedule, x0, x_t, t):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    alpha_bar_prev = schedule.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
    mean = x0.mul_(alpha_bar_prev.sqrt() * beta / (1 - alpha_bar)) + alpha.sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar) * x_t
    return mean, (1 - alpha_bar_prev) / (1 - alpha_bar) * beta


# --------------------------------------------------------------------------- predict_x0_from_eps

@variants.wrong("predict_x0_from_eps", "no square roots")
def predict_x0_from_eps(schedule, x_t, t, eps):
    alpha_bar = schedule.alpha_bar[t]
    return (x_t - (1 - alpha_bar) * eps) / alpha_bar


@variants.wrong("predict_x0_from_eps", "the noise added instead of subtracted")
def predict_x0_from_eps(schedule, x_t, t, eps):
    alpha_bar = schedule.alpha_bar[t]
    return (x_t + (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()


@variants.wrong("predict_x0_from_eps", "ᾱ_{t-1} instead of ᾱ_t")
def predict_x0_from_eps(schedule, x_t, t, eps):
    alpha_bar = schedule.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
    return (x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()


@variants.wrong("predict_x0_from_eps", "the square root missing in the denominator only")
def predict_x0_from_eps(schedule, x_t, t, eps):
    alpha_bar = schedule.alpha_bar[t]
    return (x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar


@variants.wrong("predict_x0_from_eps", "β_t in place of 1 - ᾱ_t")
def predict_x0_from_eps(schedule, x_t, t, eps):
    return (x_t - schedule.betas[t].sqrt() * eps) / schedule.alpha_bar[t].sqrt()


@variants.correct("predict_x0_from_eps", "the schedule's sqrt constants through schedules.extract")
def predict_x0_from_eps(schedule, x_t, t, eps):
    signal = schedules.extract(schedule.sqrt_alpha_bar, t, x_t.shape)
    noise_std = schedules.extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape)
    return (x_t - noise_std * eps) / signal


@variants.correct("predict_x0_from_eps", "written as sqrt(1/ᾱ) x_t - sqrt(1/ᾱ - 1) ε, in float64")
def predict_x0_from_eps(schedule, x_t, t, eps):
    alpha_bar = schedule.float64("alpha_bar")[t]
    return ((1 / alpha_bar).sqrt() * x_t.double() - (1 / alpha_bar - 1).sqrt() * eps.double()).to(x_t.dtype)

@variants.wrong("predict_x0_from_eps", "x_t updated in place (x_t.sub_(...).div_(...))")
def predict_x0_from_eps(schedule, x_t, t, eps):
    alpha_bar = schedule.alpha_bar[t]
    return x_t.sub_((1 - alpha_bar).sqrt() * eps).div_(alpha_bar.sqrt())


# --------------------------------------------------------------------------- epsilon_loss

@variants.wrong("epsilon_loss", "x_0 as the target")
def epsilon_loss(model, schedule, x0, t, noise):
    x_t = diffusion.q_sample(schedule, x0, t, noise)
    return ((model(x_t, t) - x0) ** 2).mean()


@variants.wrong("epsilon_loss", "the clean x_0 as the model's input")
def epsilon_loss(model, schedule, x0, t, noise):
    return ((model(x0, t) - noise) ** 2).mean()


@variants.wrong("epsilon_loss", "a sum instead of a mean")
def epsilon_loss(model, schedule, x0, t, noise):
    x_t = diffusion.q_sample(schedule, x0, t, noise)
    return ((model(x_t, t) - noise) ** 2).sum()


@variants.wrong("epsilon_loss", "a mean per sample (over the wrong axes)")
def epsilon_loss(model, schedule, x0, t, noise):
    x_t = diffusion.q_sample(schedule, x0, t, noise)
    return ((model(x_t, t) - noise) ** 2).flatten(1).mean(dim=1)


@variants.wrong("epsilon_loss", "a mean over the batch axis only")
def epsilon_loss(model, schedule, x0, t, noise):
    x_t = diffusion.q_sample(schedule, x0, t, noise)
    return ((model(x_t, t) - noise) ** 2).mean(dim=0)


@variants.wrong("epsilon_loss", "returns a Python float (.item()): no gradients")
def epsilon_loss(model, schedule, x0, t, noise):
    x_t = diffusion.q_sample(schedule, x0, t, noise)
    return ((model(x_t, t) - noise) ** 2).mean().item()


@variants.wrong("epsilon_loss", "x_t made with ᾱ_t instead of its square roots")
def epsilon_loss(model, schedule, x0, t, noise):
    alpha_bar = schedule.alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
    x_t = alpha_bar * x0 + (1 - alpha_bar) * noise
    return ((model(x_t, t) - noise) ** 2).mean()


@variants.wrong("epsilon_loss", "one level (t[0]) for the whole batch")
def epsilon_loss(model, schedule, x0, t, noise):
    x_t = diffusion.q_sample(schedule, x0, int(t[0]), noise)
    return ((model(x_t, t) - noise) ** 2).mean()


@variants.correct("epsilon_loss", "x_t by hand, torch.nn.functional.mse_loss")
def epsilon_loss(model, schedule, x0, t, noise):
    alpha_bar = schedule.alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))  # (B, 1, ...)
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
    return torch.nn.functional.mse_loss(model(x_t, t), noise)


@variants.correct("epsilon_loss", "per-sample means, then their mean (equal sizes)")
def epsilon_loss(model, schedule, x0, t, noise):
    x_t = schedules.extract(schedule.sqrt_alpha_bar, t, x0.shape) * x0 \
        + schedules.extract(schedule.sqrt_one_minus_alpha_bar, t, x0.shape) * noise
    per_sample = (noise - model(x_t, t)).pow(2).reshape(len(x0), -1).mean(dim=1)
    return per_sample.mean()

@variants.wrong("epsilon_loss", "x_t built in the noise tensor (noise.mul_(...).add_(...))")
def epsilon_loss(model, schedule, x0, t, noise):
    a = schedule.alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
    target = noise.clone()
    x_t = noise.mul_((1 - a).sqrt()).add_(a.sqrt() * x0)
    return ((model(x_t, t) - target) ** 2).mean()


# --------------------------------------------------------------------------- reverse_step

@variants.wrong("reverse_step", "noise added at t = 0 too")
def reverse_step(schedule, x_t, t, eps, noise, variance="posterior"):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    mean = (x_t - beta / (1 - alpha_bar).sqrt() * eps) / alpha.sqrt()
    sigma_squared = schedule.posterior_variance[t] if variance == "posterior" else beta
    return mean + sigma_squared.sqrt() * noise


@variants.wrong("reverse_step", "the variance used as the standard deviation (no square root)")
def reverse_step(schedule, x_t, t, eps, noise, variance="posterior"):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    mean = (x_t - beta / (1 - alpha_bar).sqrt() * eps) / alpha.sqrt()
    if t == 0:
        return mean
    sigma_squared = schedule.posterior_variance[t] if variance == "posterior" else beta
    return mean + sigma_squared * noise


@variants.wrong("reverse_step", "σ_t = √β_t whatever the variance argument says")
def reverse_step(schedule, x_t, t, eps, noise, variance="posterior"):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    mean = (x_t - beta / (1 - alpha_bar).sqrt() * eps) / alpha.sqrt()
    if t == 0:
        return mean
    return mean + beta.sqrt() * noise


@variants.wrong("reverse_step", "the constants of level t - 1 (off by one)")
def reverse_step(schedule, x_t, t, eps, noise, variance="posterior"):
    s = max(t - 1, 0)
    beta, alpha, alpha_bar = schedule.betas[s], schedule.alphas[s], schedule.alpha_bar[s]
    mean = (x_t - beta / (1 - alpha_bar).sqrt() * eps) / alpha.sqrt()
    if t == 0:
        return mean
    sigma_squared = schedule.posterior_variance[s] if variance == "posterior" else beta
    return mean + sigma_squared.sqrt() * noise


@variants.wrong("reverse_step", "the constants of level t + 1 (off by one the other way)")
def reverse_step(schedule, x_t, t, eps, noise, variance="posterior"):
    s = min(t + 1, schedule.timesteps - 1)
    beta, alpha, alpha_bar = schedule.betas[s], schedule.alphas[s], schedule.alpha_bar[s]
    mean = (x_t - beta / (1 - alpha_bar).sqrt() * eps) / alpha.sqrt()
    if t == 0:
        return mean
    sigma_squared = schedule.posterior_variance[s] if variance == "posterior" else beta
    return mean + sigma_squared.sqrt() * noise


@variants.wrong("reverse_step", "1/√ᾱ_t in front instead of 1/√α_t")
def reverse_step(schedule, x_t, t, eps, noise, variance="posterior"):
    beta, alpha_bar = schedule.betas[t], schedule.alpha_bar[t]
    mean = (x_t - beta / (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()
    if t == 0:
        return mean
    sigma_squared = schedule.posterior_variance[t] if variance == "posterior" else beta
    return mean + sigma_squared.sqrt() * noise


@variants.wrong("reverse_step", "β_t / (1 - ᾱ_t) in front of ε (missing square root)")
def reverse_step(schedule, x_t, t, eps, noise, variance="posterior"):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    mean = (x_t - beta / (1 - alpha_bar) * eps) / alpha.sqrt()
    if t == 0:
        return mean
    sigma_squared = schedule.posterior_variance[t] if variance == "posterior" else beta
    return mean + sigma_squared.sqrt() * noise


@variants.wrong("reverse_step", "x̂_0 returned as the step (jumps straight to the data)")
def reverse_step(schedule, x_t, t, eps, noise, variance="posterior"):
    alpha_bar = schedule.alpha_bar[t]
    return (x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()


@variants.correct("reverse_step", "through x̂_0 and the posterior mean (eqs. 15 and 7)")
def reverse_step(schedule, x_t, t, eps, noise, variance="posterior"):
    alpha_bar = schedule.alpha_bar[t]
    x0_hat = (x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()
    mean = schedule.posterior_mean_coef1[t] * x0_hat + schedule.posterior_mean_coef2[t] * x_t
    if t > 0:
        std = (schedule.posterior_variance[t] if variance == "posterior" else schedule.betas[t]).sqrt()
        mean = mean + std * noise
    return mean


@variants.correct("reverse_step", "a noise factor z · [t > 0], in float64")
def reverse_step(schedule, x_t, t, eps, noise, variance="posterior"):
    beta = schedule.float64("betas")[t]
    alpha_bar = schedule.float64("alpha_bar")[t]
    mu = (x_t.double() - beta / torch.sqrt(1 - alpha_bar) * eps.double()) / torch.sqrt(1 - beta)
    sigma = torch.sqrt(schedule.float64("posterior_variance")[t] if variance == "posterior" else beta)
    return (mu + float(t > 0) * sigma * noise.double()).float()

@variants.wrong("reverse_step", "x_t updated in place")
def reverse_step(schedule, x_t, t, eps, noise, variance="posterior"):
    beta, alpha, alpha_bar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    x_t.sub_(beta / (1 - alpha_bar).sqrt() * eps).div_(alpha.sqrt())
    if t == 0:
        return x_t
    sigma_squared = schedule.posterior_variance[t] if variance == "posterior" else beta
    return x_t.add_(sigma_squared.sqrt() * noise)
