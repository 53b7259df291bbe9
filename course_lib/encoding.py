"""Encodings: how a piano roll becomes the tensor a diffusion model sees, and back.

The model works on real numbers in [-1, 1]; music is notes. An encoding is the bridge, and the
choice matters more than the network on a CPU budget (lesson 4 compares the two):

``PianoRollEncoding``  the roll itself, ±1: x has shape (tracks * 2, pitches, steps), e.g.
                       (8, 48, 64) = 24,576 numbers for 4 bars of 4 voices. Image-like, intuitive,
                       but the model must *learn* that a voice sounds one pitch at a time.

``VoiceEncoding``      compact, for monophonic voices: per voice and 16th step, 15 channels:
                       12 pitch-class channels (one-hot ±1: which of C, C#, ..., B),
                       1 height channel (where in the voice's range, -1 lowest .. +1 highest),
                       1 onset channel (+1 where a note starts, so repeated notes survive),
                       1 active channel (+1 where the voice sounds, -1 for a rest).
                       x has shape (tracks * 15, steps) = (60, 64) = 3,840 numbers. Decoding cuts
                       each voice into notes at its onsets, takes each note's arg-max pitch class
                       and puts it in the octave the height points at, so the height only needs
                       to be right within ±6 semitones, and a voice can never sound two notes
                       at once. The height spans either the whole pitch range for every voice, or
                       each voice's own range (``ranges``: the bundled model's, from the data): a
                       soprano's height then only says where it is among soprano notes, so an
                       error of the same size in x moves it fewer semitones and an octave error
                       (a soprano placed an octave low, under the alto) needs a much larger one.

Both decode *any* tensor of the right shape (a noisy x_t, a predicted x0) to a boolean roll, so
every denoising step can be drawn and played.
"""
from __future__ import annotations

import numpy as np
import torch

from . import music

PITCH_CLASSES, HEIGHT, ONSET, ACTIVE = slice(0, 12), 12, 13, 14
VOICE_CHANNELS = 15


def _as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


class PianoRollEncoding:
    """Roll (tracks, 2, pitches, steps) <-> x (tracks*2, pitches, steps) with values ±1."""

    name = "pianoroll"

    def __init__(self, spec: music.RollSpec = music.CHORALE):
        self.spec = spec

    def shape(self, bars: int = 4) -> tuple[int, int, int]:
        return (self.spec.n_tracks * 2, self.spec.n_pitches, bars * self.spec.steps_per_bar)

    def track_channels(self, track: int) -> list[int]:
        """Channels of x that belong to ``track`` (for track masks)."""
        return [2 * track, 2 * track + 1]

    def encode(self, roll) -> torch.Tensor:
        """Roll(s) (…, tracks, 2, pitches, steps) -> x (…, tracks*2, pitches, steps)."""
        roll = _as_tensor(roll).float()
        _check_roll(roll, self.spec)
        return (roll * 2 - 1).reshape(*roll.shape[:-4], -1, *roll.shape[-2:])

    def decode(self, x) -> np.ndarray:
        """x (C, P, S) or (B, C, P, S) -> bool roll(s) (…, tracks, 2, pitches, steps)."""
        x = _as_tensor(x).detach().float().cpu()
        if x.shape[-3:-1] != (self.spec.n_tracks * 2, self.spec.n_pitches):
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (…, {self.spec.n_tracks * 2}, "
                             f"{self.spec.n_pitches}, steps) for a piano-roll encoding")
        roll = (x > 0).reshape(*x.shape[:-3], self.spec.n_tracks, 2, *x.shape[-2:]).numpy()
        roll[..., music.ONSET, :, :] &= roll[..., music.SUSTAIN, :, :]
        return roll

    def to_dict(self) -> dict:
        return {"name": self.name, "spec": self.spec.to_dict()}


class VoiceEncoding:
    """Roll (tracks, 2, pitches, steps) <-> x (tracks*15, steps): one monophonic voice per track."""

    name = "voice"

    def __init__(self, spec: music.RollSpec = music.CHORALE, ranges=None):
        """``ranges``: per track (lowest, highest) MIDI pitch the height spans, both inclusive;
        None = the whole pitch range ``spec.low .. spec.high - 1`` for every voice."""
        self.spec = spec
        if ranges is None:
            ranges = [(spec.low, spec.high - 1)] * spec.n_tracks
        ranges = tuple((int(low), int(high)) for low, high in ranges)
        if len(ranges) != spec.n_tracks or any(not spec.low <= low < high <= spec.high - 1 for low, high in ranges):
            raise ValueError(f"ranges must give one (lowest, highest) pair per track ({spec.n_tracks}) inside "
                             f"MIDI {spec.low}..{spec.high - 1}, with lowest < highest; got {ranges}")
        self.ranges = ranges
        low, high = torch.tensor(ranges, dtype=torch.float32).T  # (tracks,), (tracks,)
        self.center = (low + high) / 2  # (tracks,): MIDI pitch at height 0
        self.half_range = (high - low) / 2  # (tracks,): semitones from height 0 to height ±1

    def heights_to_pitches(self, height: torch.Tensor) -> torch.Tensor:
        """Height values (B, tracks, S) -> MIDI pitch (B, tracks, S), real-valued."""
        return self.center.view(-1, 1) + height * self.half_range.view(-1, 1)

    def shape(self, bars: int = 4) -> tuple[int, int]:
        return (self.spec.n_tracks * VOICE_CHANNELS, bars * self.spec.steps_per_bar)

    def track_channels(self, track: int) -> list[int]:
        return list(range(track * VOICE_CHANNELS, (track + 1) * VOICE_CHANNELS))

    def encode(self, roll) -> torch.Tensor:
        """Roll(s) (…, tracks, 2, pitches, steps) -> x (…, tracks*15, steps).

        Where a voice sounds several pitches at once (never in the chorales) the top one is kept.
        """
        roll = _as_tensor(roll).bool()
        _check_roll(roll, self.spec)
        *batch, tracks, _, pitches, steps = roll.shape
        roll = roll.reshape(-1, tracks, 2, pitches, steps)
        sustain = roll[:, :, music.SUSTAIN]  # (B, T, P, S)
        active = sustain.any(dim=2)  # (B, T, S)
        index = torch.arange(pitches).view(1, 1, -1, 1)
        top = torch.where(sustain, index, -1).amax(dim=2)  # (B, T, S): pitch index of the top note
        pitch = top + self.spec.low
        x = -torch.ones(roll.shape[0], tracks, VOICE_CHANNELS, steps)
        pc = torch.nn.functional.one_hot((pitch % 12).clamp(min=0), 12).movedim(-1, 2).float()  # (B, T, 12, S)
        x[:, :, PITCH_CLASSES] = torch.where(active.unsqueeze(2), pc * 2 - 1, -1.0)
        height = (pitch - self.center.view(-1, 1)) / self.half_range.view(-1, 1)  # (B, T, S)
        x[:, :, HEIGHT] = torch.where(active, height, torch.zeros(()))
        onset_at_top = roll[:, :, music.ONSET].gather(2, top.clamp(min=0).unsqueeze(2)).squeeze(2)
        x[:, :, ONSET] = torch.where(active & onset_at_top, 1.0, -1.0)
        x[:, :, ACTIVE] = torch.where(active, 1.0, -1.0)
        return x.reshape(*batch, tracks * VOICE_CHANNELS, steps)

    def decode(self, x) -> np.ndarray:
        """x (C, S) or (B, C, S) -> bool roll(s) (…, tracks, 2, pitches, steps).

        Decoding is note by note: the onset and active channels cut each voice into notes (a note
        starts where the onset channel is positive or the voice starts to sound), and each note
        gets ONE pitch: the pitch class with the largest summed score over the note's steps, in
        the octave its mean height points at. So a pitch-class channel that flickers inside a
        held note cannot chop it into many short notes. Exact on encoded music (there, every pitch
        change comes with an onset).
        """
        x = _as_tensor(x).detach().float().cpu()
        spec = self.spec
        if x.shape[-2] != spec.n_tracks * VOICE_CHANNELS:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (…, {spec.n_tracks * VOICE_CHANNELS}, "
                             "steps) for a voice encoding")
        batch_shape, steps = x.shape[:-2], x.shape[-1]
        v = x.reshape(-1, spec.n_tracks, VOICE_CHANNELS, steps)  # (B, T, 15, S)
        active = v[:, :, ACTIVE] > 0  # (B, T, S)
        was_active = torch.cat([torch.zeros_like(active[..., :1]), active[..., :-1]], dim=-1)
        onset = active & ((v[:, :, ONSET] > 0) | ~was_active)  # (B, T, S): where notes start
        note = torch.cumsum(onset.long(), dim=-1) * active  # (B, T, S): note number, 0 = rest
        weight = active.float()
        # Per note: summed pitch-class scores (B, T, 12, S+1) and mean height (B, T, S+1), by scatter.
        pc_sum = torch.zeros(*note.shape[:2], 12, steps + 1).scatter_add_(
            3, note.unsqueeze(2).expand(-1, -1, 12, -1), v[:, :, PITCH_CLASSES] * weight.unsqueeze(2))
        height_sum = torch.zeros(*note.shape[:2], steps + 1).scatter_add_(2, note, v[:, :, HEIGHT] * weight)
        count = torch.zeros(*note.shape[:2], steps + 1).scatter_add_(2, note, weight).clamp(min=1)
        pitch_class = pc_sum.argmax(dim=2).gather(2, note)  # (B, T, S)
        target = self.heights_to_pitches((height_sum / count).gather(2, note).clamp(-1, 1))
        lowest = spec.low + (pitch_class - spec.low) % 12  # lowest pitch of that class in range
        octaves = torch.round((target - lowest) / 12).clamp(min=0)
        octaves = torch.minimum(octaves, torch.div(spec.high - 1 - lowest, 12, rounding_mode="floor"))
        pitch = (lowest + 12 * octaves).long()  # (B, T, S)
        roll = torch.zeros(v.shape[0], spec.n_tracks, 2, spec.n_pitches, steps, dtype=torch.bool)
        index = (pitch - spec.low).clamp(0, spec.n_pitches - 1).unsqueeze(2)  # (B, T, 1, S)
        roll[:, :, music.SUSTAIN].scatter_(2, index, active.unsqueeze(2))
        roll[:, :, music.ONSET].scatter_(2, index, onset.unsqueeze(2))
        return roll.reshape(*batch_shape, spec.n_tracks, 2, spec.n_pitches, steps).numpy()

    def to_dict(self) -> dict:
        whole = all(r == (self.spec.low, self.spec.high - 1) for r in self.ranges)
        return {"name": self.name, "spec": self.spec.to_dict(),
                **({} if whole else {"ranges": [list(r) for r in self.ranges]})}


ENCODINGS = {cls.name: cls for cls in (PianoRollEncoding, VoiceEncoding)}


def encoding_from_dict(d: dict):
    """Rebuild an encoding stored in a checkpoint."""
    if d.get("name") not in ENCODINGS:
        raise ValueError(f"unknown encoding {d.get('name')!r}; known: {sorted(ENCODINGS)}")
    spec = music.RollSpec.from_dict(d["spec"])
    return ENCODINGS[d["name"]](spec, d["ranges"]) if d.get("ranges") else ENCODINGS[d["name"]](spec)


def _check_roll(roll: torch.Tensor, spec: music.RollSpec) -> None:
    if roll.dim() < 4 or tuple(roll.shape[-4:-1]) != (spec.n_tracks, 2, spec.n_pitches):
        raise ValueError(f"roll has shape {tuple(roll.shape)}; expected (tracks={spec.n_tracks}, 2, "
                         f"pitches={spec.n_pitches}, steps)")
