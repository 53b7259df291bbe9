"""Noise schedules: how much noise the forward process adds at each of its T steps.

The forward process of Ho et al. (2020) adds Gaussian noise in T small steps,

    q(x_t | x_{t-1}) = N(sqrt(1 - β_t) x_{t-1}, β_t I)                      (DDPM eq. 2)

and a *schedule* is the list β_0 .. β_{T-1}. Everything else is derived from it:

    α_t   = 1 - β_t
    ᾱ_t   = α_0 α_1 ... α_t              (alpha_bar: the signal fraction left at step t)
    q(x_t | x_0) = N(sqrt(ᾱ_t) x_0, (1 - ᾱ_t) I)                            (DDPM eq. 4)
    SNR(t) = ᾱ_t / (1 - ᾱ_t)             (signal-to-noise ratio, Kingma et al. 2021)

plus the constants of the posterior q(x_{t-1} | x_t, x_0) (DDPM eqs. 6-7), which the reverse
process needs. Timesteps are 0-based here: t = 0 is the first (least noisy) step and
t = T - 1 the last, where x_t is (nearly) pure noise.

Three shapes of schedule are offered:

- ``linear``  β rises linearly from 1e-4 to 0.02 (Ho et al. 2020), rescaled by 1000/T so that
  other T give the same overall amount of noise (Nichol & Dhariwal 2021, footnote);
- ``cosine``  ᾱ_t follows cos² (Nichol & Dhariwal 2021, eq. 17): noise is added more gently at
  the start, so fewer steps are wasted on nearly-pure noise;
- ``sigmoid`` ᾱ_t follows a shifted, rescaled sigmoid (Jabri et al. 2022, "Scalable Adaptive
  Computation for Iterative Generation", Fig. 8).

All constants are computed in float64 and stored as float32 tensors of shape (T,). The one
helper ``extract(values, t, shape)`` gathers them for a batch of timesteps.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field, fields, replace

import torch

SCHEDULE_KINDS = ("linear", "cosine", "sigmoid")
MAX_BETA = 0.999  # clip: β_t = 1 would erase the signal in one step and make ᾱ exactly 0
MAX_TIMESTEPS = 100_000  # far beyond any model here (T = 1000); 1e9 would take minutes and GBs to build


def _check(ok: bool, message: str) -> None:
    """The β functions' argument checks (a ValueError saying what is allowed)."""
    if not ok:
        raise ValueError(message)


def _check_timesteps(timesteps) -> None:
    _check(not isinstance(timesteps, bool) and hasattr(timesteps, "__index__") and 1 <= timesteps <= MAX_TIMESTEPS,
           f"timesteps must be a whole number 1..{MAX_TIMESTEPS} (e.g. 1000), got {timesteps!r}")


# --------------------------------------------------------------------------- the three β schedules
# Each returns β_0 .. β_{T-1} as a float64 tensor of shape (T,).

def linear_betas(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """β_t linear in t (Ho et al. 2020), scaled by 1000/T so any T adds as much noise as T=1000."""
    _check_timesteps(timesteps)
    _check(0.0 < beta_start <= beta_end < 1.0, f"linear betas need 0 < beta_start <= beta_end < 1, got "
           f"beta_start={beta_start!r}, beta_end={beta_end!r} (Ho et al.: 1e-4 and 0.02)")
    scale = 1000.0 / timesteps
    return torch.linspace(scale * beta_start, min(scale * beta_end, MAX_BETA), timesteps,
                          dtype=torch.float64)


def _betas_from_alpha_bar(alpha_bar: torch.Tensor) -> torch.Tensor:
    """ᾱ(τ) sampled at τ = 0, 1/T, ..., 1 (shape (T+1,)) -> β_t = 1 - ᾱ(t+1)/ᾱ(t), shape (T,)."""
    return (1.0 - alpha_bar[1:] / alpha_bar[:-1]).clamp(0.0, MAX_BETA)


def cosine_betas(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """ᾱ(τ) = f(τ)/f(0) with f(τ) = cos²((τ + s)/(1 + s) · π/2) (Nichol & Dhariwal 2021, eq. 17).

    The small offset s keeps β near τ = 0 from being too small to learn from.
    """
    _check_timesteps(timesteps)
    _check(0.0 <= s <= 1.0, f"the cosine offset s must lie in 0..1 (Nichol & Dhariwal: 0.008), got {s!r}")
    tau = torch.linspace(0.0, 1.0, timesteps + 1, dtype=torch.float64)
    f = torch.cos((tau + s) / (1 + s) * math.pi / 2) ** 2
    return _betas_from_alpha_bar(f / f[0])


def sigmoid_betas(timesteps: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> torch.Tensor:
    """ᾱ(τ) = (σ(end/tau) - σ((τ·(end - start) + start)/tau)) / (σ(end/tau) - σ(start/tau)).

    Jabri et al. 2022, Fig. 8; a larger ``tau`` flattens the curve (more steps at high noise).
    """
    _check_timesteps(timesteps)
    _check(-100.0 <= start < end <= 100.0 and 0.0 < tau <= 100.0,
           f"sigmoid betas need -100 <= start < end <= 100 and 0 < tau <= 100, got start={start!r}, end={end!r}, tau={tau!r}")
    t = torch.linspace(0.0, 1.0, timesteps + 1, dtype=torch.float64)
    v_start = torch.sigmoid(torch.tensor(start / tau, dtype=torch.float64))
    v_end = torch.sigmoid(torch.tensor(end / tau, dtype=torch.float64))
    alpha_bar = (v_end - torch.sigmoid((t * (end - start) + start) / tau)) / (v_end - v_start)
    return _betas_from_alpha_bar(alpha_bar)


_BETA_FUNCTIONS = {"linear": linear_betas, "cosine": cosine_betas, "sigmoid": sigmoid_betas}


def snr(alpha_bar: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio ᾱ / (1 - ᾱ) of x_t = sqrt(ᾱ) x_0 + sqrt(1 - ᾱ) ε, elementwise."""
    return alpha_bar / (1.0 - alpha_bar)


# --------------------------------------------------------------------------- the schedule object

@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """Every per-timestep constant of a schedule: float32 tensors of shape (T,), index t = 0..T-1.

    Build one with ``make_schedule`` (or ``NoiseSchedule.from_betas``); read constants for a batch
    with ``extract(schedule.sqrt_alpha_bar, t, x.shape)``.
    """

    kind: str
    options: dict  # keyword arguments of the β function (e.g. {"s": 0.008}); stored in checkpoints
    betas: torch.Tensor                           # β_t
    alphas: torch.Tensor                          # α_t = 1 - β_t
    alpha_bar: torch.Tensor                       # ᾱ_t = Π_{s<=t} α_s
    alpha_bar_prev: torch.Tensor                  # ᾱ_{t-1}, with ᾱ_{-1} = 1
    sqrt_alpha_bar: torch.Tensor                  # sqrt(ᾱ_t): how much x_0 is left in x_t
    sqrt_one_minus_alpha_bar: torch.Tensor        # sqrt(1 - ᾱ_t): the noise's standard deviation
    posterior_variance: torch.Tensor              # β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) · β_t  (eq. 7)
    posterior_log_variance_clipped: torch.Tensor  # log β̃_t, with β̃_0 = 0 replaced by β̃_1
    posterior_mean_coef1: torch.Tensor            # sqrt(ᾱ_{t-1}) β_t / (1 - ᾱ_t): multiplies x_0
    posterior_mean_coef2: torch.Tensor            # sqrt(α_t) (1 - ᾱ_{t-1}) / (1 - ᾱ_t): multiplies x_t
    snr: torch.Tensor                             # ᾱ_t / (1 - ᾱ_t)
    _float64: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_betas(cls, betas: torch.Tensor, kind: str = "custom", options: dict | None = None) -> "NoiseSchedule":
        """All constants from β_0 .. β_{T-1} (any 1-D sequence in (0, 1))."""
        b = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if b.numel() < 1:
            raise ValueError("a schedule needs at least one timestep (got an empty list of betas)")
        if not bool(((b > 0) & (b < 1)).all()):
            raise ValueError("every β_t must lie strictly between 0 and 1; "
                             f"got values from {b.min().item():.3g} to {b.max().item():.3g}")
        alphas = 1.0 - b
        alpha_bar = torch.cumprod(alphas, dim=0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        post_var = b * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        # β̃_0 = 0 (x_0 is known exactly given x_0); its log would be -inf, so borrow β̃_1.
        post_log_var = torch.log(torch.cat([post_var[1:2], post_var[1:]]) if b.numel() > 1 else b)
        constants = dict(
            betas=b, alphas=alphas, alpha_bar=alpha_bar, alpha_bar_prev=alpha_bar_prev,
            sqrt_alpha_bar=alpha_bar.sqrt(), sqrt_one_minus_alpha_bar=(1.0 - alpha_bar).sqrt(),
            posterior_variance=post_var, posterior_log_variance_clipped=post_log_var,
            posterior_mean_coef1=alpha_bar_prev.sqrt() * b / (1.0 - alpha_bar),
            posterior_mean_coef2=alphas.sqrt() * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar),
            snr=snr(alpha_bar),
        )
        options = dict(options or {})
        if kind == "custom":
            options["betas"] = b.tolist()  # a custom schedule can only be rebuilt from its betas
        return cls(kind=kind, options=options, **{k: v.float() for k, v in constants.items()},
                   _float64=constants)

    @property
    def timesteps(self) -> int:
        """T, the number of diffusion steps."""
        return self.betas.shape[0]

    def __len__(self) -> int:
        return self.timesteps

    def float64(self, name: str) -> torch.Tensor:
        """A constant in the float64 it was computed in (for tests and careful analysis)."""
        return self._float64[name]

    def to(self, device: torch.device | str) -> "NoiseSchedule":
        """A copy whose float32 constants live on ``device`` (the float64 originals stay on the CPU)."""
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if torch.is_tensor(getattr(self, f.name))}
        return replace(self, **moved)

    def to_dict(self) -> dict:
        """A small JSON-friendly description; ``NoiseSchedule.from_dict`` rebuilds the schedule."""
        return {"kind": self.kind, "timesteps": self.timesteps, **self.options}

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseSchedule":
        d = dict(d)
        kind = d.pop("kind")
        timesteps = d.pop("timesteps")
        if kind == "custom":
            return cls.from_betas(torch.tensor(d["betas"], dtype=torch.float64))
        return make_schedule(kind, timesteps, **d)

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v}" for k, v in self.options.items() if k != "betas")
        return (f"NoiseSchedule(kind={self.kind!r}, timesteps={self.timesteps}{opts}, "
                f"alpha_bar[-1]={self.alpha_bar[-1].item():.3g})")


def make_schedule(kind: str = "cosine", timesteps: int = 1000, **options) -> NoiseSchedule:
    """A schedule by name: ``make_schedule("cosine", 1000)``, ``make_schedule("linear", 200)``.

    ``options`` go to the β function: ``beta_start``/``beta_end`` (linear), ``s`` (cosine),
    ``start``/``end``/``tau`` (sigmoid).
    """
    if kind not in _BETA_FUNCTIONS:
        raise ValueError(f"unknown schedule kind {kind!r}; choose one of {SCHEDULE_KINDS}")
    try:
        steps = operator.index(timesteps)  # accepts Python and NumPy integers, not 1000.0
    except TypeError:
        steps = 0
    if not 2 <= steps <= MAX_TIMESTEPS:
        raise ValueError(f"timesteps must be an integer >= 2 and <= {MAX_TIMESTEPS} (e.g. 1000), got {timesteps!r}")
    timesteps = steps
    try:
        betas = _BETA_FUNCTIONS[kind](timesteps, **options)
    except TypeError as err:
        raise ValueError(f"bad option for the {kind} schedule: {err}") from None
    return NoiseSchedule.from_betas(betas, kind=kind, options=options)


# --------------------------------------------------------------------------- the one gather helper

def extract(values: torch.Tensor, t: torch.Tensor | int, shape: torch.Size | tuple) -> torch.Tensor:
    """Per-timestep constants for a batch, shaped to broadcast against a tensor of ``shape``.

    values: (T,) e.g. ``schedule.sqrt_alpha_bar``;  t: LongTensor (B,) of timesteps in 0..T-1, or
    one int for the whole batch;  shape: (B, ...) of the tensor they will multiply.
    Returns (B, 1, 1, ...) with len(shape) dimensions, on t's device (on the schedule's device
    when t is an int: use ``schedule.to(device)`` to sample on a GPU).
    """
    n = values.shape[0]
    if not torch.is_tensor(t):
        try:
            t = torch.full((shape[0],), operator.index(t), dtype=torch.long, device=values.device)
        except TypeError:
            raise ValueError(f"t must be an int or a LongTensor of shape (B,), got {t!r}") from None
    if t.dtype not in (torch.int64, torch.int32) or t.ndim > 1:
        raise ValueError(f"t must be an int or a LongTensor of shape (B,), got a {t.dtype} tensor "
                         f"of shape {tuple(t.shape)}")
    if t.ndim == 0:
        t = t.expand(shape[0])
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n):
        raise ValueError(f"timestep out of range: got t from {int(t.min())} to {int(t.max())}, "
                         f"but this schedule has T={n} steps (t = 0 .. {n - 1})")
    if t.shape[0] != shape[0]:
        raise ValueError(f"t has {t.shape[0]} timesteps but the batch has {shape[0]} samples; "
                         "pass one timestep per sample (or one int for all)")
    out = values.to(t.device).gather(0, t.long())
    return out.reshape(t.shape[0], *([1] * (len(shape) - 1)))


def extract_alpha_bar(schedule: NoiseSchedule, t: torch.Tensor | int, shape: torch.Size | tuple) -> torch.Tensor:
    """ᾱ_t gathered like ``extract``, also accepting t = -1, where ᾱ_{-1} = 1 (x is the clean data).

    Samplers that jump between noise levels (DDIM, RePaint) need ᾱ at the level they land on,
    and the last jump lands on x_0."""
    if (int(t.min()) if torch.is_tensor(t) else t) < -1:
        raise ValueError("timestep out of range: t = -1 means the clean data, 0..T-1 the noise levels")
    return extract(torch.nn.functional.pad(schedule.alpha_bar, (1, 0), value=1.0), t + 1, shape)
