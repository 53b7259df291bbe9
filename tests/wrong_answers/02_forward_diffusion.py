"""Plausible wrong answers and alternative correct answers to lesson 2's exercises.

Each function replaces the exercise's solution cell in the grading kernel (see
``course_lib.grading.run_probe``), where the notebook's setup cells have imported ``np``, ``math``,
``torch`` and ``schedules``. Every wrong answer must be rejected by the exercise's tests (visible or
hidden), every correct one accepted by all of them. The imports here only keep linters and readers
oriented.
"""
import math

import numpy as np
import torch

from course_lib.grading import Variants

variants = Variants()


# --------------------------------------------------------------------------- alpha_bar_from_betas

@variants.wrong("alpha_bar_from_betas", "shifted by one level: starts at 1 (that is alpha_bar_prev)")
def alpha_bar_from_betas(betas):
    products = torch.cumprod(1.0 - betas, dim=0)
    return torch.cat([torch.ones(1, dtype=betas.dtype), products[:-1]])


@variants.wrong("alpha_bar_from_betas", "a running product of the betas instead of the alphas")
def alpha_bar_from_betas(betas):
    return torch.cumprod(betas, dim=0)


@variants.wrong("alpha_bar_from_betas", "a running sum: 1 - cumsum(betas)")
def alpha_bar_from_betas(betas):
    return 1.0 - torch.cumsum(betas, dim=0)


@variants.wrong("alpha_bar_from_betas", "a running sum of the alphas")
def alpha_bar_from_betas(betas):
    return torch.cumsum(1.0 - betas, dim=0)


@variants.wrong("alpha_bar_from_betas", "one product of all alphas (a scalar)")
def alpha_bar_from_betas(betas):
    return torch.prod(1.0 - betas)


@variants.wrong("alpha_bar_from_betas", "square roots of the products (sqrt(alpha_bar))")
def alpha_bar_from_betas(betas):
    return torch.cumprod(1.0 - betas, dim=0).sqrt()


@variants.wrong("alpha_bar_from_betas", "computed in place: 1 - betas written into betas")
def alpha_bar_from_betas(betas):
    betas.mul_(-1).add_(1)
    return torch.cumprod(betas, dim=0)


@variants.correct("alpha_bar_from_betas", "a Python loop keeping the running product")
def alpha_bar_from_betas(betas):
    out, running = [], 1.0
    for beta in betas.tolist():
        running *= 1.0 - beta
        out.append(running)
    return torch.tensor(out, dtype=betas.dtype)


@variants.correct("alpha_bar_from_betas", "exp of a running sum of log(1 - beta)")
def alpha_bar_from_betas(betas):
    return torch.exp(torch.cumsum(torch.log1p(-betas), dim=0))


@variants.correct("alpha_bar_from_betas", "NumPy's cumprod, returned as an array")
def alpha_bar_from_betas(betas):
    return np.cumprod(1.0 - np.asarray(betas))

@variants.wrong("alpha_bar_from_betas", "a Python list of floats (a tensor is asked)")
def alpha_bar_from_betas(betas):
    out, running = [], 1.0
    for beta in betas.tolist():
        running *= 1.0 - beta
        out.append(running)
    return out


# --------------------------------------------------------------------------- q_sample

@variants.wrong("q_sample", "no square roots")
def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
    return a * x0 + (1 - a) * noise


@variants.wrong("q_sample", "coefficients swapped")
def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
    return (1 - a).sqrt() * x0 + a.sqrt() * noise


@variants.wrong("q_sample", "alpha_bar[t + 1], clamped to stay in range")
def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[(t + 1).clamp(max=len(alpha_bar) - 1)].reshape(-1, *[1] * (x0.dim() - 1))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


@variants.wrong("q_sample", "noise scaled by the variance 1 - alpha_bar")
def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
    return a.sqrt() * x0 + (1 - a) * noise


@variants.wrong("q_sample", "coefficients broadcast along the last axis (no reshape)")
def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[t]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


@variants.wrong("q_sample", "one level for the whole batch (t[0])")
def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[t[0]]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


@variants.wrong("q_sample", "signal not scaled down: x0 + sqrt(1 - alpha_bar) noise")
def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
    return x0 + (1 - a).sqrt() * noise


@variants.wrong("q_sample", "updates x0 in place and returns it")
def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
    return x0.mul_(a.sqrt()).add_((1 - a).sqrt() * noise)


@variants.correct("q_sample", "view with a shape tuple, and torch.sqrt")
def q_sample(x0, t, noise, alpha_bar):
    shape = (x0.shape[0],) + (1,) * (x0.ndim - 1)
    return torch.sqrt(alpha_bar[t]).view(shape) * x0 + torch.sqrt(1 - alpha_bar[t]).view(shape) * noise


@variants.correct("q_sample", "one sample at a time, stacked")
def q_sample(x0, t, noise, alpha_bar):
    return torch.stack([math.sqrt(alpha_bar[k]) * x0[i] + math.sqrt(1 - alpha_bar[k]) * noise[i]
                        for i, k in enumerate(t.tolist())])


@variants.correct("q_sample", "the library's extract helper")
def q_sample(x0, t, noise, alpha_bar):
    a = schedules.extract(alpha_bar, t, x0.shape)  # noqa: F821 (the notebook imported schedules)
    return a ** 0.5 * x0 + (1 - a) ** 0.5 * noise

@variants.wrong("q_sample", "the square root forgotten on the signal term only")
def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
    return a * x0 + (1.0 - a).sqrt() * noise


@variants.wrong("q_sample", "scales the noise in place (noise.mul_)")
def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
    return a.sqrt() * x0 + noise.mul_((1.0 - a).sqrt())


@variants.wrong("q_sample", "returns a NumPy array (a tensor is asked)")
def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
    return (a.sqrt() * x0 + (1.0 - a).sqrt() * noise).numpy()


# --------------------------------------------------------------------------- chain_moments

@variants.wrong("chain_moments", "rows one step late (moments recorded before each step)")
def chain_moments(x0, betas, n_samples, generator=None):
    x = x0.expand(n_samples, -1)
    means, variances = [], []
    for beta in betas:
        means.append(x.mean(dim=0))
        variances.append(x.var(dim=0))
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return torch.stack(means), torch.stack(variances)


@variants.wrong("chain_moments", "noise standard deviation beta instead of sqrt(beta)")
def chain_moments(x0, betas, n_samples, generator=None):
    x = x0.expand(n_samples, -1)
    means, variances = [], []
    for beta in betas:
        x = (1 - beta).sqrt() * x + beta * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        means.append(x.mean(dim=0))
        variances.append(x.var(dim=0))
    return torch.stack(means), torch.stack(variances)


@variants.wrong("chain_moments", "x shrunk by 1 - beta instead of sqrt(1 - beta)")
def chain_moments(x0, betas, n_samples, generator=None):
    x = x0.expand(n_samples, -1)
    means, variances = [], []
    for beta in betas:
        x = (1 - beta) * x + beta.sqrt() * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        means.append(x.mean(dim=0))
        variances.append(x.var(dim=0))
    return torch.stack(means), torch.stack(variances)


@variants.wrong("chain_moments", "the standard deviation instead of the variance")
def chain_moments(x0, betas, n_samples, generator=None):
    x = x0.expand(n_samples, -1)
    means, stds = [], []
    for beta in betas:
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        means.append(x.mean(dim=0))
        stds.append(x.std(dim=0))
    return torch.stack(means), torch.stack(stds)


@variants.wrong("chain_moments", "one noise draw reused at every step")
def chain_moments(x0, betas, n_samples, generator=None):
    x = x0.expand(n_samples, -1)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    means, variances = [], []
    for beta in betas:
        x = (1 - beta).sqrt() * x + beta.sqrt() * noise
        means.append(x.mean(dim=0))
        variances.append(x.var(dim=0))
    return torch.stack(means), torch.stack(variances)


@variants.wrong("chain_moments", "the same noise for every chain (shape (D,))")
def chain_moments(x0, betas, n_samples, generator=None):
    x = x0.expand(n_samples, -1)
    means, variances = [], []
    for beta in betas:
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(x.shape[1:], generator=generator, dtype=x.dtype)
        means.append(x.mean(dim=0))
        variances.append(x.var(dim=0))
    return torch.stack(means), torch.stack(variances)


@variants.wrong("chain_moments", "moments over the cells (axis 1) instead of the chains")
def chain_moments(x0, betas, n_samples, generator=None):
    x = x0.expand(n_samples, -1)
    means, variances = [], []
    for beta in betas:
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        means.append(x.mean(dim=1))
        variances.append(x.var(dim=1))
    return torch.stack(means), torch.stack(variances)


@variants.wrong("chain_moments", "the closed form itself, without running any chain")
def chain_moments(x0, betas, n_samples, generator=None):
    alpha_bar = torch.cumprod(1 - betas, dim=0)[:, None]
    return alpha_bar.sqrt() * x0, (1 - alpha_bar).expand(-1, x0.shape[0])


@variants.correct("chain_moments", "all the noise drawn up front, moments by hand")
def chain_moments(x0, betas, n_samples, generator=None):
    noise = torch.randn(len(betas), n_samples, x0.shape[0], generator=generator, dtype=x0.dtype)  # (T, n, D)
    x = x0.repeat(n_samples, 1)
    means, variances = torch.empty(len(betas), x0.shape[0], dtype=x0.dtype), torch.empty(len(betas), x0.shape[0], dtype=x0.dtype)
    for t in range(len(betas)):
        x = math.sqrt(1 - float(betas[t])) * x + math.sqrt(float(betas[t])) * noise[t]
        means[t] = x.sum(0) / n_samples
        variances[t] = ((x - means[t]) ** 2).sum(0) / n_samples  # biased: fine for 20,000 chains
    return means, variances


@variants.correct("chain_moments", "NumPy with its own seeded generator")
def chain_moments(x0, betas, n_samples, generator=None):
    rng = np.random.default_rng(0)
    x = np.tile(np.asarray(x0, dtype=float), (n_samples, 1))
    means, variances = [], []
    for beta in np.asarray(betas, dtype=float):
        x = np.sqrt(1 - beta) * x + np.sqrt(beta) * rng.standard_normal(x.shape)
        means.append(x.mean(axis=0))
        variances.append(x.var(axis=0, ddof=1))
    return torch.tensor(np.array(means)), torch.tensor(np.array(variances))

@variants.wrong("chain_moments", "each level drawn on its own from the closed form q(x_t | x_0): no chain")
def chain_moments(x0, betas, n_samples, generator=None):
    alpha_bar = torch.cumprod(1.0 - betas, dim=0)
    means, variances = [], []
    for a in alpha_bar:
        x = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn(n_samples, len(x0), generator=generator, dtype=x0.dtype)
        means.append(x.mean(dim=0))
        variances.append(x.var(dim=0))
    return torch.stack(means), torch.stack(variances)


@variants.correct("chain_moments", "a running sum of the noise, rescaled at each step")
def chain_moments(x0, betas, n_samples, generator=None):
    x = x0.repeat(n_samples, 1)
    means, variances = torch.empty(len(betas), len(x0), dtype=x0.dtype), torch.empty(len(betas), len(x0), dtype=x0.dtype)
    for t in range(len(betas)):
        x = torch.sqrt(1 - betas[t]) * x + torch.sqrt(betas[t]) * torch.randn(x.shape, generator=generator, dtype=x0.dtype)
        means[t], variances[t] = x.mean(0), x.var(0, unbiased=False)
    return means, variances


# --------------------------------------------------------------------------- cosine_alpha_bar

@variants.wrong("cosine_alpha_bar", "no offset s")
def cosine_alpha_bar(timesteps, s=0.008):
    u = torch.arange(timesteps + 1, dtype=torch.float64)
    f = torch.cos(u / timesteps * math.pi / 2) ** 2
    return f[1:] / f[0]


@variants.wrong("cosine_alpha_bar", "not divided by f(0)")
def cosine_alpha_bar(timesteps, s=0.008):
    u = torch.arange(timesteps + 1, dtype=torch.float64)
    f = torch.cos((u / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    return f[1:]


@variants.wrong("cosine_alpha_bar", "cos instead of cos squared")
def cosine_alpha_bar(timesteps, s=0.008):
    u = torch.arange(timesteps + 1, dtype=torch.float64)
    f = torch.cos((u / timesteps + s) / (1 + s) * math.pi / 2)
    return f[1:] / f[0]


@variants.wrong("cosine_alpha_bar", "f(t) instead of f(t + 1): alpha_bar[0] = 1")
def cosine_alpha_bar(timesteps, s=0.008):
    u = torch.arange(timesteps + 1, dtype=torch.float64)
    f = torch.cos((u / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    return f[:-1] / f[0]


@variants.wrong("cosine_alpha_bar", "the offset not divided by 1 + s")
def cosine_alpha_bar(timesteps, s=0.008):
    u = torch.arange(timesteps + 1, dtype=torch.float64)
    f = torch.cos((u / timesteps + s) * math.pi / 2) ** 2
    return f[1:] / f[0]


@variants.wrong("cosine_alpha_bar", "the library's clipped schedule (last level not 0)")
def cosine_alpha_bar(timesteps, s=0.008):
    return schedules.make_schedule("cosine", timesteps, s=s).float64("alpha_bar")  # noqa: F821


@variants.wrong("cosine_alpha_bar", "computed in float32")
def cosine_alpha_bar(timesteps, s=0.008):
    u = torch.arange(1, timesteps + 1, dtype=torch.float32)
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    return torch.cos((u / timesteps + s) / (1 + s) * math.pi / 2) ** 2 / f0


@variants.correct("cosine_alpha_bar", "NumPy, converted to a float64 tensor")
def cosine_alpha_bar(timesteps, s=0.008):
    u = np.linspace(0.0, 1.0, timesteps + 1)
    f = np.cos((u + s) / (1 + s) * np.pi / 2) ** 2
    return torch.from_numpy(f[1:] / f[0])


@variants.correct("cosine_alpha_bar", "a list comprehension with math.cos")
def cosine_alpha_bar(timesteps, s=0.008):
    def f(u):
        return math.cos((u / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    return torch.tensor([f(t + 1) / f(0) for t in range(timesteps)], dtype=torch.float64)

@variants.wrong("cosine_alpha_bar", "a Python list of floats (a float64 tensor is asked)")
def cosine_alpha_bar(timesteps, s=0.008):
    def f(u):
        return math.cos((u / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    return [f(t + 1) / f(0) for t in range(timesteps)]


# --------------------------------------------------------------------------- log_snr

@variants.wrong("log_snr", "log base 10")
def log_snr(alpha_bar):
    return torch.log10(alpha_bar / (1 - alpha_bar))


@variants.wrong("log_snr", "log of the amplitude ratio (half the log-SNR)")
def log_snr(alpha_bar):
    return torch.log(alpha_bar.sqrt() / (1 - alpha_bar).sqrt())


@variants.wrong("log_snr", "noise over signal")
def log_snr(alpha_bar):
    return torch.log((1 - alpha_bar) / alpha_bar)


@variants.wrong("log_snr", "the SNR without the log")
def log_snr(alpha_bar):
    return alpha_bar / (1 - alpha_bar)


@variants.wrong("log_snr", "log of alpha_bar alone")
def log_snr(alpha_bar):
    return torch.log(alpha_bar)


@variants.correct("log_snr", "torch.logit")
def log_snr(alpha_bar):
    return torch.logit(alpha_bar)


@variants.correct("log_snr", "log of the ratio, via NumPy")
def log_snr(alpha_bar):
    a = np.asarray(alpha_bar, dtype=np.float64)
    return np.log(a / (1.0 - a))

@variants.wrong("log_snr", "computed in place: alpha_bar overwritten with its logit")
def log_snr(alpha_bar):
    return alpha_bar.div_(1 - alpha_bar).log_()
