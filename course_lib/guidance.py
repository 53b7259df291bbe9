"""Guidance: steering a trained denoiser while sampling, without retraining it.

Three ways to ask a diffusion model for *this* kind of music:

- **classifier-free guidance** (Ho & Salimans 2022): one model trained with labels that are
  sometimes dropped (``drop_labels``) predicts both ε(x_t, c) and ε(x_t, ∅); extrapolating from
  the second towards the first (``classifier_free_eps``) follows the label more strongly;
- **classifier guidance** (Dhariwal & Nichol 2021): the gradient of a classifier on noisy x_t,
  ∇_{x_t} log p(y | x_t), pushes ε̂ (``classifier_gradient``, ``classifier_guided_eps``);
- **known regions** (inpainting, continuation, harmonization; RePaint, Lugmayr et al. 2022): where
  the music is given (mask = 1), x is overwritten at every step by the given music noised to the
  current level (``replace_known``); with ``resample_steps`` > 1 the sampler also steps back up
  (``diffusion.renoise``) and tries again, so the generated part can fit the known part.

- **guidance by a penalty on x̂_0** (lesson 6): a differentiable penalty R(x̂_0) on the model's
  clean guess, pulled back through the network to x_t (``penalty_gradient``) and used like a
  classifier's log-probability, log p(rule | x_t) ≈ -R(x̂_0(x_t)). With R = ||m ⊙ (x̂_0 - known)||²
  (``reconstruction_penalty``) this is *reconstruction guidance* (Ho et al. 2022, "Video Diffusion
  Models", eq. 7; Chung et al. 2023, DPS): a pull toward the known notes instead of overwriting
  them. With a penalty on the voice encoding's channels it is *rule guidance* (``key_penalty``:
  stay in a scale; ``range_penalty``: stay in the voices' ranges; ``density_penalty``: hit a
  note density; ``cadence_penalty``: close a phrase on a dominant-tonic cadence);
  ``combine_penalties`` adds several.

The samplers in ``course_lib.diffusion`` call these when given ``guidance_scale``, ``gradient_fn``
or ``known``/``known_mask``. Masks are per-sample tensors, (C, L) or (C, H, W), broadcast over the batch.
"""
from __future__ import annotations

import operator
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from course_lib.encoding import ACTIVE, HEIGHT, ONSET, PITCH_CLASSES, VOICE_CHANNELS, VoiceEncoding
from course_lib.metrics import SATB_RANGES
from course_lib.process import eps_and_x0_from_output, prediction_type, q_sample
from course_lib.schedules import NoiseSchedule, extract


# --------------------------------------------------------------------------- labels and their null

def null_labels(labels: dict) -> dict:
    """The same keys with every entry null: -1 for integer labels (style, mode), NaN for float ones
    (density). This is the ∅ of ε(x_t, ∅), the unconditional half of classifier-free guidance."""
    return {key: torch.full_like(value, float("nan") if value.is_floating_point() else -1)
            for key, value in labels.items()}


def drop_labels(labels: dict, p: float = 0.1, *, p_each: float = 0.0,
                generator: torch.Generator | None = None) -> dict:
    """Label dropout for training a model that classifier-free guidance can use (Ho & Salimans 2022).

    Each sample loses all its labels with probability ``p`` (so the model also learns ε(x_t, ∅));
    with ``p_each`` > 0, each remaining label is also dropped on its own with that probability, so
    any subset of labels can be asked for when sampling. labels: dict of (B,) tensors.
    """
    if not (0.0 <= p <= 1.0 and 0.0 <= p_each <= 1.0):
        raise ValueError(f"dropout probabilities must lie in [0, 1], got p={p}, p_each={p_each}")
    if not labels:
        return labels
    batch = next(iter(labels.values())).shape[0]
    device = generator.device if generator is not None else None
    drop_all = torch.rand(batch, generator=generator, device=device) < p  # (B,)
    null = null_labels(labels)
    dropped = {}
    for key, value in labels.items():
        drop = drop_all | (torch.rand(batch, generator=generator, device=device) < p_each)
        dropped[key] = torch.where(drop.to(value.device), null[key], value)
    return dropped


# --------------------------------------------------------------------------- classifier-free guidance

def classifier_free_eps(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """ε̃ = (1 + w) ε(x_t, c) - w ε(x_t, ∅) (Ho & Salimans 2022, eq. 6); w = 0 is plain conditional.

    The combination is affine with weights summing to 1, so the sampler applies it to x̂_0 too."""
    return (1.0 + scale) * eps_cond - scale * eps_uncond


# --------------------------------------------------------------------------- classifier guidance

def classifier_guided_eps(schedule: NoiseSchedule, eps: torch.Tensor, t, gradient: torch.Tensor) -> torch.Tensor:
    """ε̂ = ε - sqrt(1 - ᾱ_t) ∇_{x_t} log p(y | x_t) (Dhariwal & Nichol 2021, eq. 14 / Algorithm 2).

    Since ε = -sqrt(1 - ᾱ_t) ∇ log p(x_t), this is the score of p(x_t) p(y | x_t). eps, gradient: (B, ...).
    """
    if gradient.shape != eps.shape:
        raise ValueError(f"gradient_fn returned shape {tuple(gradient.shape)}; it must match x_t, "
                         f"{tuple(eps.shape)}")
    return eps - extract(schedule.sqrt_one_minus_alpha_bar, t, eps.shape) * gradient


def classifier_gradient(classifier: Callable, target, scale: float = 1.0) -> Callable:
    """A ``gradient_fn(x_t, t) -> scale · ∇_{x_t} log p(target | x_t)`` for the samplers.

    classifier(x_t, t) -> logits (B, K), trained on *noisy* x_t (put it in eval mode yourself);
    target: a class index, or a LongTensor (B,) of one per sample; scale: the guidance strength s.
    """
    def gradient_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x_t.detach().requires_grad_(True)
            logits = classifier(x, t)
            if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
                raise ValueError(f"the classifier must return logits of shape (B, classes), got "
                                 f"{tuple(logits.shape)} for a batch of {x.shape[0]}")
            y = torch.as_tensor(target, device=x.device).long().expand(x.shape[0])  # (B,)
            log_p = F.log_softmax(logits, dim=-1).gather(1, y[:, None]).sum()  # samples are independent
            (gradient,) = torch.autograd.grad(log_p, x)
        return scale * gradient

    return gradient_fn


# --------------------------------------------------------------------------- known regions (masks)
# A mask is a float tensor of one sample's shape, 1 where the music is known (kept), 0 where it is
# generated. Combine masks with * (both) or torch.maximum (either); 1 - mask swaps the roles.

def time_mask(shape, start_step: int, end_step: int) -> torch.Tensor:
    """1 on time steps start_step .. end_step - 1 (time is the last axis of (C, L) and (C, H, W)).

    E.g. continuation of a 4-bar window whose first 2 bars are given: time_mask((C, 64), 0, 32).
    """
    shape = tuple(shape)
    steps = shape[-1] if shape else 0
    if len(shape) < 2:
        raise ValueError(f"a mask shape is one sample's shape, (C, L) or (C, H, W); got {shape}")
    if not 0 <= start_step < end_step <= steps:
        raise ValueError(f"need 0 <= start_step < end_step <= {steps} (the number of time steps), "
                         f"got start_step={start_step}, end_step={end_step}")
    mask = torch.zeros(shape)
    mask[..., start_step:end_step] = 1.0
    return mask


def track_mask(shape, channels) -> torch.Tensor:
    """1 on the listed channels (first axis), at every time step and pitch.

    The encoding knows which channels hold which track: e.g. to harmonize a given soprano in a
    piano roll (tracks*2, pitches, steps), ``track_mask(shape, [0, 1])`` (its onset and sustain).
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"a mask shape is one sample's shape, (C, L) or (C, H, W); got {shape}")
    try:
        index = [operator.index(c) for c in channels]
    except TypeError:
        raise ValueError(f"channels must be a list of channel indices, got {channels!r}") from None
    if not index or not all(0 <= c < shape[0] for c in index):
        raise ValueError(f"channels must be a non-empty list of indices in 0..{shape[0] - 1}, got {index}")
    mask = torch.zeros(shape)
    mask[index] = 1.0
    return mask


def replace_known(schedule: NoiseSchedule, x: torch.Tensor, known: torch.Tensor, known_mask: torch.Tensor,
                  t: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """RePaint's combination (Lugmayr et al. 2022, Algorithm 1): x_t = m ⊙ q_sample(known, t) + (1 - m) ⊙ x_t.

    x: (B, ...) at noise level t; known, known_mask: broadcastable to x (mask 1 = known);
    t = -1 means x is the final clean sample, where the known values are put back exactly.
    """

    known = known.to(x).expand(x.shape)
    known_mask = known_mask.to(x).expand(x.shape)
    known_t = known if t < 0 else q_sample(schedule, known, t, generator=generator)
    return known_mask * known_t + (1.0 - known_mask) * x


# --------------------------------------------------------------------------- guidance by a penalty on x̂_0
# A *penalty* maps the model's clean guess x̂_0 (B, ...) to one non-negative number per sample, (B,),
# differentiably: 0 where the rule holds. The penalties below are sums over cells (not means), so a
# guidance scale means about the same whatever the length of the music.

def penalty_gradient(model: torch.nn.Module, schedule: NoiseSchedule, penalty: Callable, scale: float = 1.0,
                     labels: dict | None = None, *, prediction: str | None = None) -> Callable:
    """A ``gradient_fn(x_t, t) -> -scale · ∇_{x_t} R(x̂_0(x_t))`` for the samplers.

    The samplers treat it as ∇ log p(y | x_t) with log p(y | x_t) ≈ -scale · R(x̂_0(x_t)), so the
    step uses ε̂ ← ε̂ + scale · sqrt(1 - ᾱ_t) ∇_{x_t} R (``classifier_guided_eps``): the noise
    estimate moves *up* the penalty, hence x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε̂) / sqrt(ᾱ_t) moves down it.
    The gradient is taken through the network (x̂_0 depends on x_t through the model), which is
    what lets a penalty on the known bars reshape the generated ones. One extra forward and
    backward pass per step. labels: the (B,) label tensors the model is conditioned on (or None).
    """

    kind = prediction_type(model, prediction)

    def gradient_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x_t.detach().requires_grad_(True)
            x0 = eps_and_x0_from_output(schedule, x, t, model(x, t, labels), kind).x0
            values = penalty(x0)
            if values.shape != (x.shape[0],):
                raise ValueError(f"a penalty must return one value per sample, shape ({x.shape[0]},); "
                                 f"got {tuple(values.shape)}")
            (gradient,) = torch.autograd.grad(values.sum(), x)  # samples are independent
        return -scale * gradient

    return gradient_fn


def combine_penalties(*weighted: tuple[Callable, float]) -> Callable:
    """(penalty, weight) pairs -> one penalty x0 -> Σ weight · penalty(x0), shape (B,)."""
    if not weighted:
        raise ValueError("give at least one (penalty, weight) pair")

    def combined(x0: torch.Tensor) -> torch.Tensor:
        return sum(weight * penalty(x0) for penalty, weight in weighted)

    return combined


def reconstruction_penalty(known: torch.Tensor, known_mask: torch.Tensor) -> Callable:
    """R(x̂_0) = ||m ⊙ (x̂_0 - known)||² per sample: how far the model's guess is from the given music.

    known, known_mask: one sample's shape (or the batch's), mask 1 where the music is given."""
    def penalty(x0: torch.Tensor) -> torch.Tensor:
        mask = known_mask.to(x0)
        return (mask * (x0 - known.to(x0))).square().flatten(1).sum(1)

    return penalty


# Rule penalties read the VoiceEncoding's channels (course_lib.encoding): per voice, 12 pitch-class
# channels, then height, onset and active. A cell's weight is how strongly x̂_0 says the voice sounds
# there, (active + 1) / 2 clipped to [0, 1] and held fixed (detached): the rule steers the notes, it
# does not silence voices to escape the penalty.

C_MAJOR = (0, 2, 4, 5, 7, 9, 11)  # pitch classes of the C major scale; the course's data are in C


def _voices(encoding, x0: torch.Tensor) -> torch.Tensor:
    """x̂_0 (B, tracks * 15, L) -> (B, tracks, 15, L), after checking it is the voice encoding."""
    if not isinstance(encoding, VoiceEncoding):
        raise ValueError(f"rule penalties read the voice encoding's channels; this model uses the "
                         f"{getattr(encoding, 'name', type(encoding).__name__)!r} encoding")
    tracks = encoding.spec.n_tracks
    if x0.ndim != 3 or x0.shape[1] != tracks * VOICE_CHANNELS:
        raise ValueError(f"x0 has shape {tuple(x0.shape)}; expected (B, {tracks * VOICE_CHANNELS}, steps)")
    return x0.reshape(x0.shape[0], tracks, VOICE_CHANNELS, x0.shape[-1])


def _sounding(voices: torch.Tensor) -> torch.Tensor:
    return ((voices[:, :, ACTIVE] + 1) / 2).clamp(0, 1).detach()  # (B, tracks, L)


def key_penalty(encoding, pitch_classes: Sequence[int] = C_MAJOR, temperature: float = 0.25) -> Callable:
    """R = Σ_{voice, step} w · P(pitch class outside the scale), P = softmax(x̂_0[pitch classes] / τ).

    The 12 pitch-class channels of a voice (±1 one-hot in clean data) become a soft distribution
    by a softmax at temperature τ; its mass outside ``pitch_classes`` is the expected share of
    that cell's note that is out of key, weighted by w, how much the voice sounds there."""
    if not all(not isinstance(pc, bool) and hasattr(pc, "__index__") and 0 <= pc < 12 for pc in pitch_classes):
        raise ValueError(f"pitch_classes must be whole numbers 0..11 (0 = C), got {list(pitch_classes)}")
    outside = torch.ones(12)
    outside[list(pitch_classes)] = 0.0  # 1 on the pitch classes to avoid
    if not 0 < outside.sum() < 12:
        raise ValueError(f"pitch_classes must name some but not all of 0..11, got {list(pitch_classes)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")

    def penalty(x0: torch.Tensor) -> torch.Tensor:
        voices = _voices(encoding, x0)
        p = torch.softmax(voices[:, :, PITCH_CLASSES] / temperature, dim=2)  # (B, tracks, 12, L)
        out_of_key = torch.einsum("bkcl,c->bkl", p, outside.to(p))  # (B, tracks, L)
        return (_sounding(voices) * out_of_key).flatten(1).sum(1)

    return penalty


def range_penalty(encoding, ranges: dict | None = None) -> Callable:
    """R = Σ_{voice, step} w · (semitones outside the voice's range / 12)², read off the height channel.

    ranges: {track name: (lowest, highest MIDI pitch)}, default ``metrics.SATB_RANGES``; tracks
    without an entry may use the whole pitch range. Height h means MIDI pitch center + h · half_range."""
    ranges = SATB_RANGES if ranges is None else ranges
    spec = encoding.spec
    unknown = set(ranges) - set(spec.tracks) - (set(SATB_RANGES) if ranges is SATB_RANGES else set())
    if unknown:
        raise ValueError(f"ranges name track(s) {sorted(unknown)} that this model does not have; "
                         f"its tracks are {spec.tracks}")
    bounds = torch.tensor([ranges.get(name, (spec.low, spec.high - 1)) for name in spec.tracks], dtype=torch.float32)

    def penalty(x0: torch.Tensor) -> torch.Tensor:
        voices = _voices(encoding, x0)
        pitch = encoding.heights_to_pitches(voices[:, :, HEIGHT])  # (B, tracks, L), MIDI
        low, high = bounds[:, 0].to(pitch)[None, :, None], bounds[:, 1].to(pitch)[None, :, None]
        outside = (torch.relu(low - pitch) + torch.relu(pitch - high)) / 12  # octaves outside
        return (_sounding(voices) * outside.square()).flatten(1).sum(1)

    return penalty


def density_penalty(encoding, target: float, temperature: float = 0.25) -> Callable:
    """R = S · (soft density - target)², S = sounding voices × steps; density as in the dataset's
    label: onsets per step per sounding voice, with a soft onset σ(x̂_0[onset] / τ) weighted by w."""
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target density must lie in 0..1 (onsets per 16th step per voice), got {target}")

    def penalty(x0: torch.Tensor) -> torch.Tensor:
        voices = _voices(encoding, x0)
        weight = _sounding(voices)  # (B, tracks, L)
        onsets = (weight * torch.sigmoid(voices[:, :, ONSET] / temperature)).flatten(1).sum(1)
        cells = (weight.amax(dim=2) > 0.5).sum(1).clamp_min(1) * x0.shape[-1]  # sounding voices × steps
        return cells * (onsets / cells - target).square()

    return penalty


# Scale degrees as pitch classes above the tonic. The dominant keeps its major third (the leading
# tone) in minor too, as in harmonic minor; its seventh is allowed (V7).
DOMINANT_CHORD = (7, 11, 2, 5)  # 5̂ 7̂ 2̂ 4̂: G B D F in C
TONIC_CHORD = {"major": (0, 4, 7), "minor": (0, 3, 7)}  # 1̂ 3̂ 5̂: C E G / C Eb G


def cadence_penalty(encoding, start_step: int, end_step: int, *, tonic: int = 0, mode: str = "major",
                    bass_weight: float = 1.0, temperature: float = 0.25) -> Callable:
    """An authentic cadence (V -> I) on the closing bar, steps start_step .. end_step - 1 of x̂_0:
    R = Σ_{voice, step} w · P(pitch class outside the chord) + bass_weight · Σ_step w · P(bass ≠ its root),
    with the chord ``DOMINANT_CHORD`` on the first half of the bar and the tonic triad (``TONIC_CHORD``
    of ``mode``) on the second half, both above ``tonic`` (0 = C, the course's key). P is the
    softmax of the pitch-class channels at temperature τ, w how much the voice sounds (``key_penalty``)."""
    if mode not in TONIC_CHORD:
        raise ValueError(f"mode must be 'major' or 'minor', not {mode!r}")
    if not 0 <= start_step < end_step or end_step - start_step < 2:
        raise ValueError(f"the cadence needs a closing span of at least 2 steps, 0 <= start_step < end_step; "
                         f"got start_step={start_step}, end_step={end_step}")
    if temperature <= 0 or bass_weight < 0:
        raise ValueError(f"need temperature > 0 and bass_weight >= 0, got {temperature}, {bass_weight}")
    middle = (start_step + end_step) // 2
    outside = torch.ones(2, 12)  # (dominant half, tonic half) x pitch classes: 1 = not in the chord
    outside[0, [(tonic + pc) % 12 for pc in DOMINANT_CHORD]] = 0.0
    outside[1, [(tonic + pc) % 12 for pc in TONIC_CHORD[mode]]] = 0.0
    roots = [(tonic + 7) % 12, tonic % 12]  # the bass sounds each chord's root

    def penalty(x0: torch.Tensor) -> torch.Tensor:
        voices = _voices(encoding, x0)[..., start_step:end_step]  # (B, tracks, 15, span)
        if voices.shape[-1] != end_step - start_step:
            raise ValueError(f"the cadence spans steps {start_step}..{end_step - 1}, but x0 has only "
                             f"{x0.shape[-1]} steps")
        p = torch.softmax(voices[:, :, PITCH_CLASSES] / temperature, dim=2)  # (B, tracks, 12, span)
        half = (torch.arange(end_step - start_step) >= middle - start_step).long()  # (span,): 0 = V, 1 = I
        wrong = torch.einsum("bkcl,lc->bkl", p, outside.to(p)[half])  # (B, tracks, span)
        sound = _sounding(voices)  # (B, tracks, span)
        root = torch.tensor(roots)[half]  # (span,) the bass's root on each step
        bass_wrong = 1 - p[:, -1].gather(1, root.to(p.device)[None, None].expand(p.shape[0], 1, -1))[:, 0]  # (B, span)
        return (sound * wrong).flatten(1).sum(1) + bass_weight * (sound[:, -1] * bass_wrong).sum(1)

    return penalty


# --------------------------------------------------------------------------- voice-leading rules
# The rules of four-part writing (realism.voice_leading measures them) as penalties on x̂_0. Pitch
# height comes from each voice's height channel (encoding.heights_to_pitches), pitch classes from a
# softmax over its 12 pitch-class channels; every term is weighted by how much both voices sound.

def voice_leading_penalty(encoding, *, crossing: float = 1.0, spacing: float = 1.0, leaps: float = 1.0,
                          parallels: float = 1.0, temperature: float = 0.25) -> Callable:
    """R = crossing · Σ relu(lower - upper) + spacing · Σ relu(gap - 12) + leaps · Σ relu(|step| - 7)
    (all in octaves: semitones / 12) + parallels · Σ P(same perfect interval before and after) · P(both move).

    - crossing: every pair (upper voice i, lower voice j > i) at every step;
    - spacing: soprano-alto and alto-tenor more than an octave apart;
    - leaps: a voice's height moving more than a fifth from one step to the next;
    - parallels: for each pair and step s -> s+1, Σ_{k ∈ {0, 7}} P_k(s) P_k(s+1) · m_i · m_j, where
      P_k(s) = Σ_c p_i(c, s) p_j(c - k, s) is the chance that the interval class is k (unison/octave,
      fifth) and m = 1 - Σ_c p(c, s) p(c, s+1) the chance that a voice changes pitch class.
    Needs four voices ordered from the highest (soprano) down."""
    if encoding.spec.n_tracks != 4:
        raise ValueError(f"voice-leading rules need four voices (soprano, alto, tenor, bass); this model has "
                         f"{encoding.spec.n_tracks}: {encoding.spec.tracks}")
    if min(crossing, spacing, leaps, parallels) < 0 or temperature <= 0:
        raise ValueError("voice-leading weights must be >= 0 and the temperature > 0")

    upper, lower = torch.triu_indices(4, 4, offset=1)  # the 6 pairs (upper voice, lower voice)

    def penalty(x0: torch.Tensor) -> torch.Tensor:
        voices = _voices(encoding, x0)
        sound = _sounding(voices)  # (B, 4, L)
        pitch = encoding.heights_to_pitches(voices[:, :, HEIGHT])  # (B, 4, L) MIDI, real-valued
        both = sound[:, upper] * sound[:, lower]  # (B, 6, L)
        total = crossing * (both * torch.relu(pitch[:, lower] - pitch[:, upper]) / 12).flatten(1).sum(1)
        gap = torch.relu(pitch[:, :2] - pitch[:, 1:3] - 12) / 12  # (B, 2, L): S-A, A-T
        total = total + spacing * (sound[:, :2] * sound[:, 1:3] * gap).flatten(1).sum(1)
        step = torch.relu((pitch[:, :, 1:] - pitch[:, :, :-1]).abs() - 7) / 12  # (B, 4, L-1)
        total = total + leaps * (sound[:, :, 1:] * sound[:, :, :-1] * step).flatten(1).sum(1)
        if parallels:
            p = torch.softmax(voices[:, :, PITCH_CLASSES] / temperature, dim=2)  # (B, 4, 12, L)
            move = 1 - (p[..., 1:] * p[..., :-1]).sum(2)  # (B, 4, L-1): chance the pitch class changes
            perfect = 0
            for k in (0, 7):  # P_k(s) = Σ_c p_upper(c) p_lower(c - k): interval class k
                same = (p[:, upper] * torch.roll(p[:, lower], k, dims=2)).sum(2)  # (B, 6, L)
                perfect = perfect + same[..., 1:] * same[..., :-1]
            moving = both[..., 1:] * both[..., :-1] * move[:, upper] * move[:, lower]  # (B, 6, L-1)
            total = total + parallels * (moving * perfect).flatten(1).sum(1)
        return total

    return penalty


def penalty_correction(penalty: Callable, scale: float = 0.1, iterations: int = 1) -> Callable:
    """An ``x0_fn(x0, t) -> x0`` for the samplers: gradient steps on R right on the clean guess,
    x̂_0 ← x̂_0 - scale · ∇_{x̂_0} R(x̂_0), ``iterations`` times.

    Unlike ``penalty_gradient`` it does not differentiate through the network, so it costs almost
    nothing (no extra forward or backward pass); the sampler then re-derives ε̂ from the corrected
    x̂_0, exactly as clipping x̂_0 does, so the step stays consistent. The price: the network only
    hears about the rule through the corrected x̂_0 it is handed back at the next step."""
    if not (scale >= 0 and iterations >= 1):
        raise ValueError(f"penalty_correction needs scale >= 0 and iterations >= 1, got {scale}, {iterations}")

    def x0_fn(x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x0.detach()
            for _ in range(iterations):
                x = x.requires_grad_(True)
                (gradient,) = torch.autograd.grad(penalty(x).sum(), x)
                x = (x - scale * gradient).detach()
        return x

    return x0_fn
