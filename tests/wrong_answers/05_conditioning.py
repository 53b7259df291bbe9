"""Plausible wrong answers and alternative correct answers to lesson 5's exercises.

Each function replaces the exercise's solution cell in the grading kernel (see
``course_lib.grading.run_probe``), where the notebook's first cells have imported ``np``,
``torch``, ``F`` (torch.nn.functional), ``diffusion``, ``guidance`` and ``schedules``. Every wrong
answer must be rejected by the exercise's tests (visible or hidden), every correct one accepted by
all of them. The imports here only keep linters and readers oriented.
"""
import numpy as np
import torch
import torch.nn.functional as F

from course_lib import diffusion, guidance, schedules
from course_lib.grading import Variants

variants = Variants()


# --------------------------------------------------------------------------- drop_labels

@variants.wrong("drop_labels", "each label dropped on its own with probability p: all-null is rare (p³)")
def drop_labels(labels, p, generator=None):
    dropped = {}
    for key, value in labels.items():
        drop = torch.rand(value.shape[0], generator=generator) < p
        null = torch.full_like(value, float("nan") if value.is_floating_point() else -1)
        dropped[key] = torch.where(drop, null, value)
    return dropped


@variants.wrong("drop_labels", "drops with probability 1 - p (keeps with p)")
def drop_labels(labels, p, generator=None):
    batch = next(iter(labels.values())).shape[0]
    drop = torch.rand(batch, generator=generator) >= p
    return {key: torch.where(drop, torch.full_like(value, float("nan") if value.is_floating_point() else -1), value)
            for key, value in labels.items()}


@variants.wrong("drop_labels", "nulls the caller's tensors in place")
def drop_labels(labels, p, generator=None):
    batch = next(iter(labels.values())).shape[0]
    drop = torch.rand(batch, generator=generator) < p
    for key, value in labels.items():
        value[drop] = float("nan") if value.is_floating_point() else -1
    return labels


@variants.wrong("drop_labels", "a shallow copy of the dict: the tensors are still the caller's")
def drop_labels(labels, p, generator=None):
    batch = next(iter(labels.values())).shape[0]
    drop = torch.rand(batch, generator=generator) < p
    dropped = dict(labels)
    for key in dropped:
        dropped[key][drop] = float("nan") if dropped[key].is_floating_point() else -1
    return dropped


@variants.wrong("drop_labels", "0 as the null class instead of -1")
def drop_labels(labels, p, generator=None):
    batch = next(iter(labels.values())).shape[0]
    drop = torch.rand(batch, generator=generator) < p
    return {key: torch.where(drop, torch.full_like(value, float("nan") if value.is_floating_point() else 0), value)
            for key, value in labels.items()}


@variants.wrong("drop_labels", "the whole batch dropped together with probability p")
def drop_labels(labels, p, generator=None):
    if torch.rand(1, generator=generator).item() < p:
        return guidance.null_labels(labels)
    return {key: value.clone() for key, value in labels.items()}


@variants.correct("drop_labels", "torch.bernoulli mask, clone, then index assignment on the clone")
def drop_labels(labels, p, generator=None):
    batch = len(next(iter(labels.values())))
    drop = torch.bernoulli(torch.full((batch,), float(p)), generator=generator).bool()
    out = {}
    for key, value in labels.items():
        new = value.clone()
        new[drop] = float("nan") if new.dtype.is_floating_point else -1
        out[key] = new
    return out


@variants.wrong("drop_labels", "a fixed seed inside: the same positions lose their labels in every batch")
def drop_labels(labels, p, generator=None):
    batch = len(next(iter(labels.values())))
    drop = torch.rand(batch, generator=torch.Generator().manual_seed(0)) < p
    null = guidance.null_labels(labels)
    return {key: torch.where(drop, null[key], value) for key, value in labels.items()}


@variants.correct("drop_labels", "NumPy random numbers, the library's null_labels")
def drop_labels(labels, p, generator=None):
    batch = len(next(iter(labels.values())))
    drop = torch.from_numpy(np.random.default_rng().random(batch) < p)
    null = guidance.null_labels(labels)
    return {key: torch.where(drop, null[key], value) for key, value in labels.items()}


@variants.wrong("drop_labels", "NaN as the null of every label: style and mode become float tensors")
def drop_labels(labels, p, generator=None):
    batch = next(iter(labels.values())).shape[0]
    drop = torch.rand(batch, generator=generator) < p
    return {key: torch.where(drop, torch.tensor(float("nan")), value.float()) for key, value in labels.items()}


@variants.wrong("drop_labels", "the caller's dict returned as it is when p = 0 (no new tensors)")
def drop_labels(labels, p, generator=None):
    if p == 0:
        return labels
    batch = next(iter(labels.values())).shape[0]
    drop = torch.rand(batch, generator=generator) < p
    null = guidance.null_labels(labels)
    return {key: torch.where(drop, null[key], value) for key, value in labels.items()}


@variants.wrong("drop_labels", "the new tensors written into the caller's dict")
def drop_labels(labels, p, generator=None):
    batch = next(iter(labels.values())).shape[0]
    drop = torch.rand(batch, generator=generator) < p
    null = guidance.null_labels(labels)
    for key in list(labels):
        labels[key] = torch.where(drop, null[key], labels[key])
    return labels


# --------------------------------------------------------------------------- guided_eps

@variants.wrong("guided_eps", "(1 - w) on the conditional, w on the unconditional")
def guided_eps(model, schedule, x_t, t, labels, w):
    kind = model.config.prediction
    eps_c = diffusion.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, labels), kind).eps
    null = guidance.null_labels(labels)
    eps_u = diffusion.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, null), kind).eps
    return (1 - w) * eps_c + w * eps_u


@variants.wrong("guided_eps", "conditional and unconditional swapped")
def guided_eps(model, schedule, x_t, t, labels, w):
    kind = model.config.prediction
    eps_c = diffusion.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, labels), kind).eps
    null = guidance.null_labels(labels)
    eps_u = diffusion.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, null), kind).eps
    return (1 + w) * eps_u - w * eps_c


@variants.wrong("guided_eps", "w on the difference without the +1: eps_u + w (eps_c - eps_u)")
def guided_eps(model, schedule, x_t, t, labels, w):
    kind = model.config.prediction
    eps_c = diffusion.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, labels), kind).eps
    null = guidance.null_labels(labels)
    eps_u = diffusion.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, null), kind).eps
    return eps_u + w * (eps_c - eps_u)


@variants.wrong("guided_eps", "the raw network output (v for the bundled model) used as ε")
def guided_eps(model, schedule, x_t, t, labels, w):
    out_c = model(x_t, t, labels)
    out_u = model(x_t, t, guidance.null_labels(labels))
    return (1 + w) * out_c - w * out_u


@variants.wrong("guided_eps", "nulls the caller's labels in place for the second pass")
def guided_eps(model, schedule, x_t, t, labels, w):
    kind = model.config.prediction
    eps_c = diffusion.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, labels), kind).eps
    for key, value in labels.items():
        value.fill_(float("nan") if value.is_floating_point() else -1)
    eps_u = diffusion.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, labels), kind).eps
    return (1 + w) * eps_c - w * eps_u


@variants.correct("guided_eps", "one batched pass over 2B, as the library does")
def guided_eps(model, schedule, x_t, t, labels, w):
    null = guidance.null_labels(labels)
    both = {key: torch.cat([labels[key], null[key]]) for key in labels}
    out = model(torch.cat([x_t, x_t]), torch.cat([t, t]), both)
    eps = diffusion.eps_and_x0_from_output(schedule, torch.cat([x_t, x_t]), torch.cat([t, t]), out,
                                           model.config.prediction).eps
    eps_c, eps_u = eps.chunk(2)
    return eps_c + w * (eps_c - eps_u)


@variants.correct("guided_eps", "∅ as an empty label dict, ε from v written out")
def guided_eps(model, schedule, x_t, t, labels, w):
    def eps_of(out):
        if model.config.prediction == "eps":
            return out
        a = schedule.alpha_bar[t].view(-1, *([1] * (x_t.ndim - 1)))
        if model.config.prediction == "v":
            return (1 - a).sqrt() * x_t + a.sqrt() * out
        return (x_t - a.sqrt() * out) / (1 - a).sqrt()
    eps_c, eps_u = eps_of(model(x_t, t, labels)), eps_of(model(x_t, t, {}))
    return eps_u + (1 + w) * (eps_c - eps_u)


@variants.wrong("guided_eps", "a NumPy array returned (the samplers need a tensor)")
def guided_eps(model, schedule, x_t, t, labels, w):
    kind = model.config.prediction
    eps_c = diffusion.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, labels), kind).eps
    eps_u = diffusion.eps_and_x0_from_output(schedule, x_t, t, model(x_t, t, guidance.null_labels(labels)), kind).eps
    return ((1 + w) * eps_c - w * eps_u).detach().numpy()


# --------------------------------------------------------------------------- classifier_guided_eps

def _log_p_gradient(classifier, x_t, t, target):
    x = x_t.detach().requires_grad_(True)
    log_p = torch.log_softmax(classifier(x, t), dim=-1)
    (gradient,) = torch.autograd.grad(log_p[torch.arange(len(x)), target].sum(), x)
    return gradient


@variants.wrong("classifier_guided_eps", "the sign flipped: eps + sqrt(1 - ᾱ_t) s ∇")
def classifier_guided_eps(classifier, schedule, x_t, t, eps, target, scale):
    x = x_t.detach().requires_grad_(True)
    log_p = torch.log_softmax(classifier(x, t), dim=-1)
    (gradient,) = torch.autograd.grad(log_p[torch.arange(len(x)), target].sum(), x)
    return eps + schedules.extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape) * scale * gradient


@variants.wrong("classifier_guided_eps", "sqrt(1 - ᾱ_t) missing")
def classifier_guided_eps(classifier, schedule, x_t, t, eps, target, scale):
    x = x_t.detach().requires_grad_(True)
    log_p = torch.log_softmax(classifier(x, t), dim=-1)
    (gradient,) = torch.autograd.grad(log_p[torch.arange(len(x)), target].sum(), x)
    return eps - scale * gradient


@variants.wrong("classifier_guided_eps", "1 - ᾱ_t without the square root")
def classifier_guided_eps(classifier, schedule, x_t, t, eps, target, scale):
    x = x_t.detach().requires_grad_(True)
    log_p = torch.log_softmax(classifier(x, t), dim=-1)
    (gradient,) = torch.autograd.grad(log_p[torch.arange(len(x)), target].sum(), x)
    return eps - (1 - schedule.alpha_bar[t]).view(-1, 1, 1) * scale * gradient


@variants.wrong("classifier_guided_eps", "the gradient of p(y | x_t), not of log p")
def classifier_guided_eps(classifier, schedule, x_t, t, eps, target, scale):
    x = x_t.detach().requires_grad_(True)
    p = torch.softmax(classifier(x, t), dim=-1)
    (gradient,) = torch.autograd.grad(p[torch.arange(len(x)), target].sum(), x)
    return eps - schedules.extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape) * scale * gradient


@variants.wrong("classifier_guided_eps", "the gradient of the raw logit, not of log-softmax")
def classifier_guided_eps(classifier, schedule, x_t, t, eps, target, scale):
    x = x_t.detach().requires_grad_(True)
    logits = classifier(x, t)
    (gradient,) = torch.autograd.grad(logits[torch.arange(len(x)), target].sum(), x)
    return eps - schedules.extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape) * scale * gradient


@variants.wrong("classifier_guided_eps", "the mean over the batch: every gradient divided by B")
def classifier_guided_eps(classifier, schedule, x_t, t, eps, target, scale):
    x = x_t.detach().requires_grad_(True)
    log_p = torch.log_softmax(classifier(x, t), dim=-1)
    (gradient,) = torch.autograd.grad(log_p[torch.arange(len(x)), target].mean(), x)
    return eps - schedules.extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape) * scale * gradient


@variants.wrong("classifier_guided_eps", "sqrt(ᾱ_t) instead of sqrt(1 - ᾱ_t)")
def classifier_guided_eps(classifier, schedule, x_t, t, eps, target, scale):
    x = x_t.detach().requires_grad_(True)
    log_p = torch.log_softmax(classifier(x, t), dim=-1)
    (gradient,) = torch.autograd.grad(log_p[torch.arange(len(x)), target].sum(), x)
    return eps - schedules.extract(schedule.sqrt_alpha_bar, t, x_t.shape) * scale * gradient


@variants.correct("classifier_guided_eps", "minus the summed cross-entropy, backward()")
def classifier_guided_eps(classifier, schedule, x_t, t, eps, target, scale):
    x = x_t.detach().clone().requires_grad_(True)
    log_p = -F.cross_entropy(classifier(x, t), target, reduction="sum")
    log_p.backward()
    sigma = torch.sqrt(1 - schedule.alpha_bar[t]).reshape(-1, *([1] * (x_t.ndim - 1)))
    return eps - sigma * scale * x.grad


@variants.correct("classifier_guided_eps", "one-hot dot product, with torch.enable_grad")
def classifier_guided_eps(classifier, schedule, x_t, t, eps, target, scale):
    with torch.enable_grad():
        x = x_t.detach().requires_grad_(True)
        log_probs = classifier(x, t).log_softmax(-1)
        chosen = (log_probs * F.one_hot(target, log_probs.shape[-1])).sum()
        gradient = torch.autograd.grad(chosen, x)[0]
    return eps - scale * schedule.sqrt_one_minus_alpha_bar[t].view(-1, *([1] * (x_t.ndim - 1))) * gradient


@variants.wrong("classifier_guided_eps", "requires_grad_ switched on on the caller's x_t")
def classifier_guided_eps(classifier, schedule, x_t, t, eps, target, scale):
    x_t.requires_grad_(True)
    log_p = torch.log_softmax(classifier(x_t, t), dim=-1)
    (gradient,) = torch.autograd.grad(log_p[torch.arange(len(x_t)), target].sum(), x_t)
    return eps - schedules.extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape) * scale * gradient


@variants.wrong("classifier_guided_eps", "the model's ε updated in place (eps.sub_) and returned")
def classifier_guided_eps(classifier, schedule, x_t, t, eps, target, scale):
    x = x_t.detach().requires_grad_(True)
    log_p = torch.log_softmax(classifier(x, t), dim=-1)
    (gradient,) = torch.autograd.grad(log_p[torch.arange(len(x)), target].sum(), x)
    return eps.sub_(schedules.extract(schedule.sqrt_one_minus_alpha_bar, t, x_t.shape) * scale * gradient)
