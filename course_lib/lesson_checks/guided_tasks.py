"""Visible tests of lesson 6, Guided tasks: ``checks.check_bar_mask(bar_mask)``, ...

The checks use windows of the lesson's voice encoding, (C, L) = (60, 64): 4 voices of 15 channels,
16 steps a bar. Each one names the likely mistake when an answer is wrong and checks what the
docstring promises: float tensors (a bool mask breaks ``1 - mask``), a Python int for a level,
inputs left alone (``requires_grad`` included), and edge cases such as a schedule with T ≠ 1000.
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib import diffusion, schedules
from course_lib.checks import (CheckFailure, call, check_close, check_dtype, check_equal, check_new, check_shape,
                               check_type, check_unchanged, use_student_or_library)

__all__ = ["check_bar_mask", "check_transition_known", "check_sdedit_start", "check_reconstruction_guided_eps",
           "check_out_of_key_penalty", "use_student_or_library"]

BAR = 16  # steps per bar
FLOAT_TENSOR = "a float tensor"


def _unchanged(inputs: dict, before: dict, function: str) -> None:
    for name, x in inputs.items():
        check_unchanged(x, before[name], f"{name}, passed to {function}")


def _float_tensor(value, shape: tuple, name: str) -> None:
    check_type(value, torch.Tensor, name, what=FLOAT_TENSOR)
    check_shape(value, shape, name)
    check_dtype(value, np.floating, name)


def _given_bars(first: int, last: int, steps: int = 4 * BAR) -> torch.Tensor:
    """(60, steps): 1 on every channel of the steps of bars first..last and of nothing else."""
    mask = torch.zeros(60, steps)
    mask[:, (first - 1) * BAR:last * BAR] = 1.0
    return mask


def check_bar_mask(bar_mask) -> None:
    def mask_of(channels, steps, total=64):
        """The expected mask, written out by hand: 1 on channels x steps."""
        expected = torch.zeros(60, total)
        expected[channels, steps] = 1.0
        return expected

    got = call(bar_mask, 2, 3, [1], description="bar_mask(2, 3, [1])")  # bars 2-3 of the alto: channels 15..29, steps 16..47
    _float_tensor(got, (60, 64), "bar_mask(2, 3, [1])")
    check_equal(got, mask_of(slice(15, 30), slice(16, 48)), "bar_mask(2, 3, [1])", likely_mistakes={
        "an exclusive last bar: bars 2-3 include bar 3, so the steps run to 3 * 16 - 1 = 47":
            mask_of(slice(15, 30), slice(16, 32)),
        "bars counted from 0: bar 1 is steps 0..15": mask_of(slice(15, 30), slice(32, 64)),
        "steps where bars were meant: multiply the bars by STEPS_PER_BAR": mask_of(slice(15, 30), slice(1, 3)),
        "only the 12 pitch-class channels: a voice owns all 15 of its channels": mask_of(slice(15, 27), slice(16, 48)),
        "the wrong voice's channels: voice k starts at channel 15k": mask_of(slice(0, 15), slice(16, 48))})
    check_equal(call(bar_mask, 1, 4, [0, 3], description="bar_mask(1, 4, [0, 3])"),
                mask_of([*range(15), *range(45, 60)], slice(0, 64)), "bar_mask(1, 4, [0, 3])")
    got = call(bar_mask, 2, 2, [2], bars=2, description="bar_mask(2, 2, [2], bars=2)")
    check_shape(got, (60, 32), "bar_mask(2, 2, [2], bars=2)", likely_mistakes={
        "a window of 4 bars whatever `bars` says: its length is bars * STEPS_PER_BAR steps": (60, 64)})
    check_equal(got, mask_of(slice(30, 45), slice(16, 32), total=32), "bar_mask(2, 2, [2], bars=2)")
    print("✓ bar_mask passes the visible tests")


def check_transition_known(transition_known) -> None:
    a_steps, b_steps = torch.arange(48.0), 100 + torch.arange(32.0)  # step numbers as values: easy to trace
    x_a, x_b = a_steps.repeat(3, 1), b_steps.repeat(3, 1)  # (3, 48): A is 3 bars; (3, 32): B is 2 bars
    inputs = {"x_a": x_a, "x_b": x_b}
    before = {name: x.clone() for name, x in inputs.items()}
    description = "transition_known(x_a, x_b, context_bars=1)"
    got = call(transition_known, x_a, x_b, context_bars=1, description=description)
    _unchanged(inputs, before, "transition_known")
    check_type(got, (tuple, list), description, what="a pair (known, known_mask)")
    check_equal(len(got), 2, f"the number of results of {description} (return known, known_mask)")
    known, known_mask = got
    _float_tensor(known, (3, 64), "known")
    _float_tensor(known_mask, (3, 64), "known_mask")  # a bool mask would break `1 - known_mask`
    check_new(known, inputs, "known")
    expected = torch.cat([a_steps[32:], torch.zeros(32), b_steps[:16]]).repeat(3, 1)
    check_equal(known, expected, "known = transition_known(x_a, x_b, 1)[0]", likely_mistakes={
        "A's first bar: the bridge starts where A ends, with A's last bar":
            torch.cat([a_steps[:16], torch.zeros(32), b_steps[:16]]).repeat(3, 1),
        "B's last bar: the bridge ends where B begins, with B's first bar":
            torch.cat([a_steps[32:], torch.zeros(32), b_steps[16:]]).repeat(3, 1),
        "context counted in steps, not bars": torch.cat([a_steps[47:], torch.zeros(62), b_steps[:1]]).repeat(3, 1),
        "the bars between filled with -1 (silence in model space): known is 0 where nothing is given":
            torch.cat([a_steps[32:], -torch.ones(32), b_steps[:16]]).repeat(3, 1)})
    expected_mask = torch.cat([torch.ones(16), torch.zeros(32), torch.ones(16)]).repeat(3, 1)
    check_equal(known_mask, expected_mask, "known_mask = transition_known(x_a, x_b, 1)[1]", likely_mistakes={
        "the mask of the generated part: known_mask is 1 where the music is given": 1 - expected_mask})
    known, known_mask = call(transition_known, x_a, x_b, context_bars=1, bars=3,
                             description="transition_known(x_a, x_b, context_bars=1, bars=3)")
    check_shape(known, (3, 48), "known for bars=3", likely_mistakes={
        "a window of 4 bars whatever `bars` says": (3, 64)})
    check_equal(known_mask, torch.cat([torch.ones(16), torch.zeros(16), torch.ones(16)]).repeat(3, 1),
                "known_mask for bars=3")
    print("✓ transition_known passes the visible tests")


def check_sdedit_start(sdedit_start) -> None:
    schedule = schedules.make_schedule("cosine", 1000)
    x0 = torch.rand(2, 60, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1  # (2, 60, 64) in [-1, 1]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    inputs = {"x0": x0, "noise": noise}
    before = {name: x.clone() for name, x in inputs.items()}
    description = "sdedit_start(schedule, x0, 0.6, noise)"
    got = call(sdedit_start, schedule, x0, 0.6, noise, description=description)
    _unchanged(inputs, before, "sdedit_start")
    check_type(got, (tuple, list), description, what="a pair (x_t0, t0)")
    check_equal(len(got), 2, f"the number of results of {description} (return x_t0, t0)")
    got_x, got_t = got
    check_type(got_t, (int, np.integer), "t0", what="a Python int (round(...) gives one)")
    check_equal(got_t, 599, "t0 for strength 0.6 (T = 1000)", likely_mistakes={
        "t0 = strength * T: the last level is T - 1 = 999, so t0 = round(0.6 * 999)": 600,
        "the strength upside down: strength 0.6 noises 60% of the way": 400})
    _float_tensor(got_x, (2, 60, 64), "x_t0")
    a = schedule.alpha_bar[599]
    check_close(got_x, a.sqrt() * x0 + (1 - a).sqrt() * noise, "x_t0 for strength 0.6", atol=1e-5, likely_mistakes={
        "alpha_bar where its square root belongs (the forward process scales by sqrt(alpha_bar))": a * x0 + (1 - a) * noise,
        "the level t0 = strength * T": schedule.alpha_bar[600].sqrt() * x0 + (1 - schedule.alpha_bar[600]).sqrt() * noise,
        "noise added without shrinking the music: x0 is scaled by sqrt(alpha_bar[t0])": x0 + (1 - a).sqrt() * noise})
    check_close(call(sdedit_start, schedule, x0, 0.0, noise, description="sdedit_start(schedule, x0, 0.0, noise)")[0],
                schedule.alpha_bar[0].sqrt() * x0 + (1 - schedule.alpha_bar[0]).sqrt() * noise, "x_t0 for strength 0",
                atol=1e-5)
    short = schedules.make_schedule("cosine", 100)  # T = 100: t0 = round(0.45 * 99) = round(44.55) = 45
    got_x, got_t = call(sdedit_start, short, x0, 0.45, noise, description="sdedit_start(short, x0, 0.45, noise) (T = 100)")
    check_equal(got_t, 45, "t0 for strength 0.45 with T = 100", likely_mistakes={
        "a hard-coded T = 1000: read T from schedule.timesteps": lambda got: int(got) in (round(0.45 * 999), 99),
        "truncation (int) instead of rounding: round(0.45 * 99) = round(44.55) = 45": 44})
    check_close(got_x, diffusion.q_sample(short, x0, 45, noise), "x_t0 for strength 0.45 with T = 100", atol=1e-5)
    print("✓ sdedit_start passes the visible tests")


def check_reconstruction_guided_eps(reconstruction_guided_eps) -> None:
    schedule = schedules.make_schedule("cosine", 1000)

    def toy_denoiser(x_t, t):
        """A made-up denoiser (no network): x0 = tanh(1.5 x_t) mixed across neighbouring steps."""
        x0 = torch.tanh(1.5 * x_t + 0.5 * x_t.roll(1, dims=-1))
        return diffusion.predict_eps_from_x0(schedule, x_t, t, x0), x0

    toy_x = torch.randn(3, 60, 64, generator=torch.Generator().manual_seed(1))
    toy_t = torch.tensor([100, 500, 900])
    toy_known = torch.rand(60, 64, generator=torch.Generator().manual_seed(2)).round() * 2 - 1  # ±1, like clean music
    toy_mask = 1 - _given_bars(2, 3)  # bars 1 and 4 given
    inputs = {"x_t": toy_x, "t": toy_t, "known": toy_known, "known_mask": toy_mask}
    before = {name: x.clone() for name, x in inputs.items()}
    description = "reconstruction_guided_eps(toy_denoiser, schedule, x_t, t, known, known_mask, 0.5)"
    got = call(reconstruction_guided_eps, toy_denoiser, schedule, toy_x, toy_t, toy_known, toy_mask, 0.5,
               description=description)
    _unchanged(inputs, before, "reconstruction_guided_eps")
    if toy_x.requires_grad or toy_x.grad is not None:
        raise CheckFailure("reconstruction_guided_eps switched on gradients of the caller's x_t (x_t.requires_grad is "
                           f"now {toy_x.requires_grad}): every later sampler step would build a graph through it.",
                           "Differentiate by a new leaf: x = x_t.detach().requires_grad_(True).")
    _float_tensor(got, (3, 60, 64), description)
    x = toy_x.clone().requires_grad_(True)
    eps, x0 = toy_denoiser(x, toy_t)
    ((toy_mask * (x0 - toy_known)) ** 2).sum().backward()
    scale_t = schedule.sqrt_one_minus_alpha_bar[toy_t].view(-1, 1, 1)
    check_close(got.detach(), eps.detach() + 0.5 * scale_t * x.grad, "reconstruction_guided_eps(...)", atol=1e-4,
                likely_mistakes={
        "a flipped sign: the noise estimate moves UP the mismatch, so x0 moves down it": eps.detach() - 0.5 * scale_t * x.grad,
        "the sqrt(1 - alpha_bar_t) factor missing": eps.detach() + 0.5 * x.grad,
        "sqrt(alpha_bar_t) where sqrt(1 - alpha_bar_t) belongs":
            eps.detach() + 0.5 * schedule.sqrt_alpha_bar[toy_t].view(-1, 1, 1) * x.grad,
        "the gradient with respect to x0 instead of x_t (it must go through the denoiser)":
            eps.detach() + 0.5 * scale_t * 2 * toy_mask * (x0.detach() - toy_known),
        "the mean over the batch instead of the sum: each sample keeps its own, full gradient":
            eps.detach() + 0.5 * scale_t * x.grad / 3})
    check_close(call(reconstruction_guided_eps, toy_denoiser, schedule, toy_x, toy_t, toy_known, toy_mask, 0.0,
                     description="reconstruction_guided_eps(..., scale=0)").detach(),
                eps.detach(), "reconstruction_guided_eps(..., scale=0)", atol=1e-5)
    print("✓ reconstruction_guided_eps passes the visible tests")


def _out_of_key(x0: torch.Tensor, tau: float = 0.25, dim: int = 2, inside: bool = False,
                unweighted: bool = False) -> torch.Tensor:
    """R_key for C major (the reference), or what a mistake would give (the flags)."""
    v = x0.reshape(x0.shape[0], 4, 15, x0.shape[-1])
    p = torch.softmax(v[:, :, :12] / tau, dim=dim)
    outside = torch.tensor([0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0.0]).view(1, 1, 12, 1)  # C# D# F# G# A#
    mass = (p * (1 - outside if inside else outside)).sum(2)
    weight = torch.ones(()) if unweighted else ((v[:, :, 14] + 1) / 2).clamp(0, 1).detach()
    return (weight * mass).sum((1, 2))


def check_out_of_key_penalty(out_of_key_penalty) -> None:
    rule_x0 = torch.randn(2, 60, 16, generator=torch.Generator().manual_seed(3)).clamp(-1.5, 1.5)
    plain = rule_x0.clone()  # a copy without gradients: in-place changes to it would go unnoticed by autograd
    call(out_of_key_penalty, plain, description="out_of_key_penalty(x0)")
    check_unchanged(plain, rule_x0, "x0, passed to out_of_key_penalty")
    rule_x0.requires_grad_(True)
    got = call(out_of_key_penalty, rule_x0, description="out_of_key_penalty(x0)")
    _float_tensor(got, (2,), "out_of_key_penalty(x0)")
    if not got.requires_grad:
        raise CheckFailure("out_of_key_penalty(x0) carries no gradient.", "Build it from softmax, not argmax or rounding "
                           "(and not .item(), .detach() or torch.no_grad()).")
    v = rule_x0.detach()
    check_close(got.detach(), _out_of_key(v), "out_of_key_penalty(x0)", atol=1e-4, likely_mistakes={
        "the mass INSIDE the scale: the penalty counts what is out of key": _out_of_key(v, inside=True),
        "a softmax over time steps: it runs over the 12 pitch classes of each voice and step": _out_of_key(v, dim=3),
        "no temperature: divide the channels by tau before the softmax": _out_of_key(v, tau=1.0),
        "no weighting by the active channel: rests would be penalised too": _out_of_key(v, unweighted=True)})
    got.sum().backward()
    expected_x0 = v.clone().requires_grad_(True)
    _out_of_key(expected_x0).sum().backward()
    check_close(rule_x0.grad, expected_x0.grad, "the gradient of out_of_key_penalty", atol=1e-4, likely_mistakes={
        "a weight that is not detached: the rule must not push the active channel":
            lambda g: bool(g[:, 14::15].abs().sum() > 0)})
    print("✓ out_of_key_penalty passes the visible tests")
