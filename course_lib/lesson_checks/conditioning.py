"""Visible tests of lesson 5, Conditioning: ``checks.check_drop_labels(drop_labels)``, ...

Each check runs the student's function on small inputs (a batch of 20,000 label sets, a random
MLP denoiser on 2-D points, a linear classifier whose gradient is known by hand), names the likely
mistake when the answer is wrong, and checks what the docstring promises: the type and dtype of the
result, new tensors, and inputs (labels, x_t, eps) left as they were, ``requires_grad`` included.
"""
from __future__ import annotations

import torch

from course_lib import diffusion, guidance, models, schedules
from course_lib.checks import (CheckFailure, call, check_close, check_equal, check_new, check_shape, check_type,
                               check_unchanged, use_student_or_library)

__all__ = ["check_drop_labels", "check_guided_eps", "check_classifier_guided_eps", "use_student_or_library"]


def _unchanged(inputs: dict, before: dict, function: str) -> None:
    for name, x in inputs.items():
        check_unchanged(x, before[name], f"{name}, passed to {function}")


def _labels_result(result, labels: dict, description: str) -> None:
    """``result`` is a dict with ``labels``' keys of new tensors of their dtypes and shapes."""
    check_type(result, dict, description, what="a dict of label tensors")
    if set(result) != set(labels):
        raise CheckFailure(f"{description} has the keys {sorted(result)} but should have {sorted(labels)}.",
                           "Return one entry for every key of the labels passed in, and no other.")
    for key, value in labels.items():
        check_type(result[key], torch.Tensor, f"{description}[{key!r}]", what="a tensor")
        check_shape(result[key], tuple(value.shape), f"{description}[{key!r}]")
        if result[key].dtype != value.dtype:
            raise CheckFailure(f"{description}[{key!r}] has dtype {result[key].dtype} but the labels passed in have "
                               f"{value.dtype}.", "Keep each label's dtype: -1 for style and mode (integers), "
                               "NaN for the density (floats); torch.full_like(value, ...) does.")
        check_new(result[key], {f"labels[{key!r}]": value}, f"{description}[{key!r}]")


def check_drop_labels(drop_labels) -> None:
    n = 20_000
    train_labels = {"style": torch.arange(n) % 2, "mode": (torch.arange(n) // 2) % 2,
                    "density": torch.linspace(0.05, 0.6, n)}
    before = {key: value.clone() for key, value in train_labels.items()}
    description = "drop_labels(train_labels, 0.3, generator=...)"
    dropped = call(drop_labels, train_labels, 0.3, generator=torch.Generator().manual_seed(0), description=description)
    for key in before:
        check_equal(train_labels.get(key), before[key], f"train_labels[{key!r}] after drop_labels (the input must not change)",
                    likely_mistakes={"labels nulled in place: build new tensors (torch.where, or clone first)":
                                     lambda changed: True})
    _labels_result(dropped, train_labels, description)
    changed = dropped["mode"] != train_labels["mode"]
    if not bool((dropped["mode"][changed] == -1).all()):
        raise CheckFailure(f"a dropped mode should become -1 (null), got {dropped['mode'][changed][:5].tolist()}.")
    is_null = {"style": dropped["style"] == -1, "mode": dropped["mode"] == -1, "density": dropped["density"].isnan()}
    check_close(is_null["style"].float().mean(), 0.3, "the share of samples that lost their style (p = 0.3, 20,000 samples)",
                atol=0.02, likely_mistakes={"dropping with 1 - p: p is the probability to DROP the labels": 0.7})
    for key in ("mode", "density"):
        check_equal(is_null[key], is_null["style"], f"which samples lost their {key} (the same ones that lost their style)",
                    likely_mistakes={"each label dropped on its own: a sample loses all its labels together, so ∅ is common":
                                     lambda got: True})
    kept = ~is_null["style"]
    for key in train_labels:
        check_equal(dropped[key][kept], train_labels[key][kept], f"dropped[{key!r}] where the labels were kept")
    small = {"style": torch.tensor([0, 1, 1, 0]), "mode": torch.tensor([1, -1, 0, 0])}
    nothing = call(drop_labels, small, 0.0, description="drop_labels(labels, 0.0)")
    _labels_result(nothing, small, "drop_labels(labels, 0.0)")  # new tensors even when nothing is dropped
    for key, value in small.items():
        check_equal(nothing[key], value, f"drop_labels(labels, 0.0)[{key!r}] (nothing dropped)")
    print("✓ drop_labels passes the visible tests")


def _toy_denoiser(prediction: str) -> torch.nn.Module:
    """A small random network that reads style and mode, on 2-D points."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return models.build_model(models.ModelConfig("mlp", in_channels=2, channels=32, n_res_blocks=2, n_styles=2,
                                                     use_mode=True, prediction=prediction)).eval()


def check_guided_eps(guided_eps) -> None:
    schedule = schedules.make_schedule("cosine", 1000)
    toy_eps = _toy_denoiser("eps")
    x_toy, t_toy = torch.randn(4, 2, generator=torch.Generator().manual_seed(1)), torch.tensor([10, 200, 500, 900])
    c_toy = {"style": torch.tensor([0, 1, 0, 1]), "mode": torch.tensor([1, 1, 0, -1])}
    with torch.no_grad():
        e_c, e_u = toy_eps(x_toy, t_toy, c_toy), toy_eps(x_toy, t_toy, guidance.null_labels(c_toy))
    inputs = {"x": x_toy, "t": t_toy, **{f"labels[{key!r}]": value for key, value in c_toy.items()}}
    before = {name: x.clone() for name, x in inputs.items()}
    description = "guided_eps(toy_eps, schedule, x, t, c, 2.0)"
    with torch.no_grad():
        got = call(guided_eps, toy_eps, schedule, x_toy, t_toy, c_toy, 2.0, description=description)
    _unchanged(inputs, before, "guided_eps (the caller's labels and x_t must not change)")
    check_type(got, torch.Tensor, description, what="a float tensor")
    check_shape(got, (4, 2), description)
    check_close(got, 3 * e_c - 2 * e_u, "guided_eps(toy_eps, schedule, x, t, c, w=2.0)", rtol=1e-4, atol=1e-5,
                likely_mistakes={
        "(1 - w) ε(x_t, c) + w ε(x_t, ∅): the conditional prediction gets the weight 1 + w": -e_c + 2 * e_u,
        "ε(x_t, c) and ε(x_t, ∅) swapped: move away from the unconditional prediction": 3 * e_u - 2 * e_c,
        "ε(x_t, ∅) + w (ε(x_t, c) - ε(x_t, ∅)): that form needs the scale 1 + w; here w = 0 means the plain conditional":
            e_u + 2 * (e_c - e_u)})
    with torch.no_grad():
        check_close(call(guided_eps, toy_eps, schedule, x_toy, t_toy, c_toy, 0.0, description="guided_eps(..., w=0)"),
                    e_c, "guided_eps(..., w=0)", rtol=1e-4, atol=1e-5)
        toy_v = _toy_denoiser("v")
        v_c, v_u = toy_v(x_toy, t_toy, c_toy), toy_v(x_toy, t_toy, guidance.null_labels(c_toy))

        def eps_v(v):
            return diffusion.eps_and_x0_from_output(schedule, x_toy, t_toy, v, "v").eps

        check_close(call(guided_eps, toy_v, schedule, x_toy, t_toy, c_toy, 1.5, description="guided_eps(toy_v, ..., 1.5)"),
                    2.5 * eps_v(v_c) - 1.5 * eps_v(v_u), "guided_eps with a v-prediction model, w=1.5", rtol=1e-4, atol=1e-5,
                    likely_mistakes={"the network's output used as ε: a v-prediction model's output must be converted "
                                     "(diffusion.eps_and_x0_from_output)": 2.5 * v_c - 1.5 * v_u})
    _unchanged(inputs, before, "guided_eps")
    print("✓ guided_eps passes the visible tests")


def check_classifier_guided_eps(classifier_guided_eps) -> None:
    schedule = schedules.make_schedule("cosine", 1000)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        toy_linear = torch.nn.Linear(8, 3)  # logits from x (B, 2, 4) flattened: a classifier we can differentiate by hand

    def toy_classifier(x, t):
        return toy_linear(x.flatten(1))

    x_toy = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(1))
    eps_toy = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(2))
    t_toy, target_toy = torch.tensor([50, 400, 900]), torch.tensor([0, 2, 1])
    inputs = {"x_t": x_toy, "eps": eps_toy, "t": t_toy, "target": target_toy}
    before = {name: x.clone() for name, x in inputs.items()}
    description = "classifier_guided_eps(toy_classifier, schedule, x, t, eps, target, 2.0)"
    got = call(classifier_guided_eps, toy_classifier, schedule, x_toy, t_toy, eps_toy, target_toy, 2.0,
               description=description)
    _unchanged(inputs, before, "classifier_guided_eps")
    check_type(got, torch.Tensor, description, what="a float tensor")
    check_shape(got, (3, 2, 4), description)
    W = toy_linear.weight.detach()  # (3, 8): the logit of class k is W[k] · x + b[k]
    p = toy_linear(x_toy.flatten(1)).softmax(dim=-1).detach()  # (3, 3)
    grad_log_p = (W[target_toy] - p @ W).view(3, 2, 4)  # ∇ log p(y | x) = W_y - Σ_k p_k W_k
    sigma, root = schedule.sqrt_one_minus_alpha_bar[t_toy].view(3, 1, 1), schedule.sqrt_alpha_bar[t_toy].view(3, 1, 1)
    chosen_p = p[torch.arange(3), target_toy].view(3, 1, 1)
    expected = eps_toy - sigma * 2.0 * grad_log_p
    check_close(got.detach(), expected, "classifier_guided_eps(toy_classifier, ..., scale=2.0)", rtol=1e-4, atol=1e-5,
                likely_mistakes={
        "the sign flipped: a step up log p(c | x_t) is a step DOWN in ε": eps_toy + sigma * 2.0 * grad_log_p,
        "the factor sqrt(1 - ᾱ_t) missing": eps_toy - 2.0 * grad_log_p,
        "1 - ᾱ_t without the square root": eps_toy - sigma ** 2 * 2.0 * grad_log_p,
        "sqrt(ᾱ_t) instead of sqrt(1 - ᾱ_t)": eps_toy - root * 2.0 * grad_log_p,
        "the gradient of p(c | x_t), not of log p (take log_softmax)": eps_toy - sigma * 2.0 * chosen_p * grad_log_p,
        "the gradient of the raw logit: take log_softmax of the logits first":
            eps_toy - sigma * 2.0 * W[target_toy].view(3, 2, 4),
        "the mean over the batch: sum the samples' log-probabilities, so each keeps its own gradient":
            eps_toy - sigma * 2.0 * grad_log_p / 3})
    if x_toy.requires_grad or x_toy.grad is not None:
        raise CheckFailure("classifier_guided_eps switched on gradients of the caller's x_t (x_t.requires_grad is now "
                           f"{x_toy.requires_grad}): the sampler's next step would build a graph through every step.",
                           "Differentiate by a new leaf: x = x_t.detach().requires_grad_(True), not x_t.requires_grad_().")
    check_close(call(classifier_guided_eps, toy_classifier, schedule, x_toy, t_toy, eps_toy, target_toy, 0.0,
                     description="classifier_guided_eps(..., scale=0)").detach(),
                eps_toy, "classifier_guided_eps(..., scale=0) (no guidance)", rtol=1e-5, atol=1e-6)
    print("✓ classifier_guided_eps passes the visible tests")
