"""Fuzzing the project's entry points with bad (and good) input: MIDI files and objects, checkpoints,
CLI arguments and library calls (seeded; well over 300 cases).

Every bad input must end in the project's own clear error (MidiError, CheckpointError, InputError,
SamplingError or another ValueError raised inside course_lib; CLI: exit code 2 with a one-line
message), within a time limit; none may return normally; nothing outside the output folder may
change (assets/ is hashed before and after); every valid input must work.
"""
import contextlib
import hashlib
import io
import json
import os
import random
import signal
import struct
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch

from course_lib import ASSETS, audio, classifiers, cli, diffusion, encoding, guidance, harmony, inputs, metrics, models
from course_lib import music, pipeline, schedules, soundtrack, tasks, train, viz

torch.set_num_threads(1)
SEED = 18
CASE_SECONDS = 20  # a case that takes longer has hung


@contextlib.contextmanager
def time_limit(seconds=CASE_SECONDS):
    def stop(signum, frame):
        raise TimeoutError(f"hung: no answer within {seconds} s")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def raised_inside_course_lib(err: BaseException) -> bool:
    tb = err.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve().parent == Path(music.__file__).resolve().parent


def assert_project_error(call, kinds=(ValueError,)):
    """``call()`` must raise one of ``kinds`` raised by course_lib itself (not by torch, numpy, the OS)."""
    with time_limit():
        try:
            result = call()
        except kinds as err:
            assert isinstance(err, (music.MidiError, train.CheckpointError, inputs.InputError,
                                    diffusion.SamplingError)) or raised_inside_course_lib(err), repr(err)
            assert str(err).strip(), "the message says what is wrong"
            return err
    pytest.fail(f"returned {type(result).__name__} instead of raising on nonsense")


def assets_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(ASSETS.rglob("*")):
        if path.is_file():
            digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module", autouse=True)
def assets_unchanged():
    before = assets_digest()
    yield
    assert assets_digest() == before, "a fuzz case changed a file in assets/"


# --------------------------------------------------------------------------- MIDI files

def _chorale() -> pretty_midi.PrettyMIDI:
    rng = np.random.default_rng(SEED)
    notes = [(track, int(rng.integers(48 + 6 * (3 - track), 60 + 6 * (3 - track))), 4 * k, 4 * k + 4)
             for track in range(4) for k in range(16)]
    return music.roll_to_midi(music.notes_to_roll(np.array(notes), music.CHORALE, 64), music.CHORALE)


def _bytes(midi) -> bytes:
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


GOOD = _bytes(_chorale())


def _set_header(data: bytes, fmt=None, division=None) -> bytes:
    length, old_format, tracks, old_division = struct.unpack(">IHHh", data[4:14])
    header = struct.pack(">IHHh", length, old_format if fmt is None else fmt, tracks,
                         old_division if division is None else division)
    return data[:4] + header + data[14:]


def _with_unknown_chunk(data: bytes) -> bytes:
    first_track_end = 14 + 8 + struct.unpack(">I", data[18:22])[0]
    return data[:first_track_end] + b"XFIH" + struct.pack(">I", 5) + b"hello" + data[first_track_end:]


BAD_FILES = {  # name -> bytes that must give MidiError
    "empty": b"",
    "not MThd": b"RIFF" + GOOD[4:],
    "text": b"X:1\nT:tune\nK:C\nCDEF|",
    "header only": GOOD[:14],
    "short header": GOOD[:10],
    "format 3": _set_header(GOOD, fmt=3),
    "format 65535": _set_header(GOOD, fmt=65535),
    "division 0": _set_header(GOOD, division=0),
    "SMPTE division": _set_header(GOOD, division=-7720),
    "no tracks": GOOD[:10] + struct.pack(">H", 0) + GOOD[12:14],
    **{f"truncated at {k}/8": GOOD[:len(GOOD) * k // 8] for k in range(1, 8)},
}
rng = random.Random(SEED)
RANDOM_FILES = {f"random {i}": b"MThd" + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
                for i in range(40)}
FLIPPED = {}
for i in range(60):  # a few random bytes changed: damaged, or (rarely) still a valid file
    data = bytearray(GOOD)
    for _ in range(rng.randrange(1, 6)):
        data[rng.randrange(4, len(data))] = rng.randrange(256)
    FLIPPED[f"flipped {i}"] = bytes(data)


@pytest.mark.parametrize("name", sorted(BAD_FILES) + sorted(RANDOM_FILES))
def test_bad_midi_bytes(name):
    data = {**BAD_FILES, **RANDOM_FILES}[name]
    assert_project_error(lambda: music.midi_to_roll(data), music.MidiError)


@pytest.mark.parametrize("name", sorted(FLIPPED))
def test_damaged_midi_bytes_error_or_work(name):
    """Random damage: either a MidiError or a file that really reads as a roll (never another error)."""
    with time_limit():
        try:
            roll = music.midi_to_roll(FLIPPED[name])
        except music.MidiError as err:
            assert str(err)
        else:
            assert roll.ndim == 4 and roll.shape[-1] % 16 == 0 and roll.any()


def test_valid_files_with_an_unknown_chunk_and_a_program_change(tmp_path):
    expected = music.midi_to_roll(GOOD)
    np.testing.assert_array_equal(music.midi_to_roll(_with_unknown_chunk(GOOD)), expected)
    midi = _chorale()
    soprano = midi.instruments[0]
    flute = pretty_midi.Instrument(73, name=soprano.name)  # what pretty_midi makes of a program change
    flute.notes, soprano.notes = soprano.notes[8:], soprano.notes[:8]
    midi.instruments.insert(1, flute)
    np.testing.assert_array_equal(music.midi_to_roll(_bytes(midi)), expected)
    assert len(midi.instruments) == 5, "the user's object is left as it was"


@pytest.mark.parametrize("kind", ["folder", "fifo", "none", "int", "missing", "object"])
def test_bad_midi_paths(tmp_path, kind):
    target = tmp_path / "x.mid"
    if kind == "folder":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    source = {"none": None, "int": 7, "object": object()}.get(kind, target)
    assert_project_error(lambda: music.load_midi(source), music.MidiError)


def _object(**change) -> pretty_midi.PrettyMIDI:
    midi = _chorale()
    note = midi.instruments[change.pop("track", 0)].notes[3]
    for key, value in change.items():
        setattr(note, key, value)
    return midi


BAD_OBJECTS = {"pitch 200": dict(pitch=200), "pitch -1": dict(pitch=-1), "pitch 60.5": dict(pitch=60.5),
               "pitch None": dict(pitch=None), "start -1": dict(start=-1.0), "start nan": dict(start=float("nan")),
               "end inf": dict(end=float("inf")), "end nan": dict(end=float("nan")), "start 1e12": dict(start=1e12, end=1e12 + 1),
               "end 1e12": dict(end=1e12), "end before start": dict(start=2.0, end=1.0), "start -inf": dict(start=-float("inf")),
               "start text": dict(start="1"), **{f"bass pitch {p}": dict(track=3, pitch=p) for p in (128, 1000, -50)}}


@pytest.mark.parametrize("name", sorted(BAD_OBJECTS))
@pytest.mark.parametrize("entry", ["load_midi", "midi_to_roll", "check_midi"])
def test_bad_pretty_midi_objects(name, entry):
    midi = _object(**BAD_OBJECTS[name])
    call = {"load_midi": music.load_midi, "midi_to_roll": music.midi_to_roll, "check_midi": music.check_midi}[entry]
    assert_project_error(lambda: call(midi), music.MidiError)


def test_bad_tempo_and_meter_objects():
    for tempo in (float("nan"), 1e9, 5.0):
        midi = _chorale()
        midi._tick_scales = [(0, 60.0 / (tempo * midi.resolution))]
        assert_project_error(lambda: music.load_midi(midi), music.MidiError)
    midi = _chorale()
    midi.time_signature_changes = [pretty_midi.TimeSignature(7, 8, 0.0)]
    assert_project_error(lambda: music.load_midi(midi), music.MidiError)


# --------------------------------------------------------------------------- checkpoints

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(SEED)
    enc = encoding.VoiceEncoding()
    config = models.ModelConfig(kind="unet1d", in_channels=enc.shape()[0], channels=64, channel_mults=(1,), attention=False,
                                n_res_blocks=1, time_dim=16, prediction="v", n_styles=2, use_mode=True)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    train.save_checkpoint(path, models.build_model(config), schedules.make_schedule("cosine", 20), enc)
    clf = classifiers.build_classifier(classifiers.ClassifierConfig(in_channels=enc.shape()[0], channels=8,
                                                                    channel_mults=(1,), time_dim=8))
    clf_path = classifiers.save_classifier(path.with_name("clf.pt"), clf, enc)
    return path, clf_path


def _damage(blob: dict, how: str) -> dict:
    blob = dict(blob)
    meta = json.loads(blob["meta"])
    key = "model" if "model" in meta else "config"
    if how == "meta not json":
        blob["meta"] = "{not json"
    elif how == "meta a list":
        blob["meta"] = "[1, 2]"
    elif how == "meta missing":
        del blob["meta"]
    elif how.startswith("no "):
        del meta[how[3:]]
        blob["meta"] = json.dumps(meta)
    elif how == "version string":
        blob["version"] = "1"
    elif how == "version 2":
        blob["version"] = 2
    elif how == "version float":
        blob["version"] = 1.0
    elif how == "foreign format":
        blob["format"] = "something-else"
    elif how.startswith("config "):
        field, value = how[7:].split("=")
        meta[key][field] = json.loads(value)
        blob["meta"] = json.dumps(meta)
    elif how in ("nan weight", "inf weight"):
        state = dict(blob["state_dict"])
        name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
        state[name] = state[name].clone()
        state[name].view(-1)[0] = float("nan") if how == "nan weight" else float("inf")
        blob["state_dict"] = state
    elif how == "state not a dict":
        blob["state_dict"] = [1, 2, 3]
    elif how == "state missing weight":
        state = dict(blob["state_dict"])
        state.pop(next(iter(state)))
        blob["state_dict"] = state
    else:
        raise AssertionError(how)
    return blob


DAMAGE = ["meta not json", "meta a list", "meta missing", "no encoding", "version string", "version 2",
          "version float", "foreign format", "config channels=65536", "config channels=-8",
          "config channels=\"16\"", "config channel_mults=[1000]", "config channel_mults=[1,1,1,1,1,1,1,1,1,1]",
          "config in_channels=100000", "config time_dim=1e9", "config n_res_blocks=100", "config kind=\"gpt\"",
          "config unknown_field=1", "nan weight", "inf weight", "state not a dict", "state missing weight"]


@pytest.mark.parametrize("how", DAMAGE + ["no schedule", "no model", "schedule timesteps=10000000"])
def test_damaged_denoiser_checkpoint(tiny_checkpoint, tmp_path, how):
    blob = torch.load(tiny_checkpoint[0], weights_only=True)
    if how.startswith("schedule "):
        meta = json.loads(blob["meta"])
        meta["schedule"]["timesteps"] = 10_000_000
        blob["meta"] = json.dumps(meta)
    else:
        blob = _damage(blob, how)
    torch.save(blob, tmp_path / "bad.pt")
    assert_project_error(lambda: train.load_checkpoint(tmp_path / "bad.pt"), train.CheckpointError)
    assert_project_error(lambda: pipeline.load(tmp_path / "bad.pt"), train.CheckpointError)


@pytest.mark.parametrize("how", DAMAGE + ["no config"])
def test_damaged_classifier_checkpoint(tiny_checkpoint, tmp_path, how):
    blob = torch.load(tiny_checkpoint[1], weights_only=True)
    torch.save(_damage(blob, how), tmp_path / "bad.pt")
    assert_project_error(lambda: classifiers.load_classifier(tmp_path / "bad.pt"), train.CheckpointError)


@pytest.mark.parametrize("kind", ["folder", "fifo", "garbage", "truncated", "empty", "missing", "denoiser as classifier"])
def test_unreadable_checkpoint_files(tiny_checkpoint, tmp_path, kind):
    path = tmp_path / "x.pt"
    raw = tiny_checkpoint[0].read_bytes()
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind in ("garbage", "truncated", "empty"):
        path.write_bytes({"garbage": b"\x80\x02junk" * 30, "truncated": raw[:len(raw) // 3], "empty": b""}[kind])
    elif kind == "denoiser as classifier":
        path = tiny_checkpoint[0]
    loaders = [classifiers.load_classifier] if kind == "denoiser as classifier" else \
        [train.load_checkpoint, classifiers.load_classifier]
    for load in loaders:
        assert_project_error(lambda: load(path), train.CheckpointError)


def test_valid_checkpoints_load_and_sample(tiny_checkpoint):
    ckpt = train.load_checkpoint(tiny_checkpoint[0])
    rolls = pipeline.generate(ckpt, 2, steps=3, guidance_scale=1.0)
    assert rolls.shape[0] == 2 and rolls.dtype == bool
    assert classifiers.load_classifier(tiny_checkpoint[1]).classifier.config.channels == 8


# --------------------------------------------------------------------------- library calls

class NaNModel(torch.nn.Module):
    """A 'denoiser' whose output is NaN: what a diverged model gives."""
    config = models.ModelConfig(kind="mlp", in_channels=2, channels=8, prediction="eps")

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t, labels=None):
        return torch.full_like(x, float("nan"))


def test_samplers_refuse_nan_output():
    schedule = schedules.make_schedule("cosine", 10)
    for sample in (lambda: diffusion.ddim_sample(NaNModel(), schedule, (2, 2), steps=5),
                   lambda: diffusion.ddpm_sample(NaNModel(), schedule, (2, 2))):
        err = assert_project_error(sample, diffusion.SamplingError)
        assert "NaN" in str(err)


LIBRARY = {
    "generate n=0": lambda c: pipeline.generate(c, 0, steps=2),
    "generate n=-3": lambda c: pipeline.generate(c, -3, steps=2),
    "generate n=1e9": lambda c: pipeline.generate(c, 10 ** 9, steps=2),
    "generate n=2.5": lambda c: pipeline.generate(c, 2.5, steps=2),
    "generate steps=0": lambda c: pipeline.generate(c, 1, steps=0),
    "generate steps=1e6": lambda c: pipeline.generate(c, 1, steps=10 ** 6),
    "generate guidance nan": lambda c: pipeline.generate(c, 1, steps=2, guidance_scale=float("nan")),
    "generate guidance inf": lambda c: pipeline.generate(c, 1, steps=2, guidance_scale=float("inf")),
    "generate guidance -1": lambda c: pipeline.generate(c, 1, steps=2, guidance_scale=-1.0),
    "generate eta 2": lambda c: pipeline.generate(c, 1, steps=2, eta=2.0),
    "generate sampler": lambda c: pipeline.generate(c, 1, sampler="euler"),
    "generate bars 0": lambda c: pipeline.generate(c, 1, steps=2, bars=0),
    "generate bars 1e6": lambda c: pipeline.generate(c, 1, steps=2, bars=10 ** 6),
    "style": lambda c: pipeline.generate(c, 1, steps=2, style="jazz"),
    "mode": lambda c: pipeline.generate(c, 1, steps=2, mode="dorian"),
    "density nan": lambda c: pipeline.generate(c, 1, steps=2, density=float("nan")),
    "density 2": lambda c: pipeline.generate(c, 1, steps=2, density=2.0),
    "labels length": lambda c: pipeline.make_labels(2, style=["bach"]),
    "timeline 1e6 bars": lambda c: soundtrack.parse_timeline("battle:1000000"),
    "timeline total": lambda c: soundtrack.parse_timeline(",".join(["battle:1000"] * 3)),
    "timeline text": lambda c: soundtrack.parse_timeline("battle"),
    "timeline zero": lambda c: soundtrack.parse_timeline("battle:0"),
    "timeline negative": lambda c: soundtrack.parse_timeline("battle:-2"),
    "timeline unknown": lambda c: soundtrack.parse_timeline("disco:4"),
    "states empty": lambda c: soundtrack.check_states({}),
    "states tempo": lambda c: soundtrack.check_states({"a": {"tempo": float("nan")}}),
    "roll_to_midi tempo nan": lambda c: music.roll_to_midi(np.zeros((4, 2, 48, 16), bool), tempo=float("nan")),
    "roll_to_midi shape": lambda c: music.roll_to_midi(np.zeros((3, 2, 48, 16), bool)),
    "write stem escape": lambda c: pipeline.write_outputs(np.zeros((4, 2, 48, 64), bool), "unused-out", music.CHORALE,
                                                          stem="../escape"),
    "write stem slash": lambda c: pipeline.write_outputs(np.zeros((4, 2, 48, 64), bool), "unused-out", music.CHORALE,
                                                         stem="a/b"),
    "check_number nan": lambda c: inputs.check_number(float("nan"), "x"),
    "check_number str": lambda c: inputs.check_number("3", "x"),
    "check_number bool": lambda c: inputs.check_number(True, "x", integer=True),
    "check_number range": lambda c: inputs.check_number(5, "x", low=0, high=4),
    "check_number int": lambda c: inputs.check_number(2.5, "x", integer=True),
    "transpose": lambda c: music.transpose(music.notes_to_roll(np.array([[0, 80, 0, 4]]), music.CHORALE, 16), 12),
    "notes_to_roll": lambda c: music.notes_to_roll(np.array([[0, 200, 0, 4]]), music.CHORALE, 16),
    "RollSpec": lambda c: music.RollSpec(low=50, high=40),
    "schedule": lambda c: schedules.make_schedule("cosine", 0),
    "ddim timesteps": lambda c: diffusion.ddim_timesteps(10, 20),
    # arguments of the rest of the public API (each once returned nonsense or failed inside torch/numpy)
    "generate seed -1": lambda c: pipeline.generate(c, 1, steps=2, seed=-1),
    "generate seed 2.5": lambda c: pipeline.generate(c, 1, steps=2, seed=2.5),
    "noise_rolls n 0": lambda c: pipeline.noise_rolls(c, 0),
    "noise_rolls bars 0": lambda c: pipeline.noise_rolls(c, 1, bars=0),
    "duration tempo 0": lambda c: pipeline.duration_seconds(64, c.spec, 0),
    "write no rolls": lambda c: pipeline.write_outputs(np.zeros((0, 4, 2, 48, 64), bool), "unused-out", c.spec),
    "continuation n 0": lambda c: tasks.continuation(c, np.zeros((4, 2, 48, 64), bool), 0, steps=2),
    "tasks.sample n 0": lambda c: tasks.sample(c, 0, steps=2),
    "ddim_sample batch 0": lambda c: diffusion.ddim_sample(c.model, c.schedule, (0, *c.encoding.shape()), steps=2),
    "load_roll min_bars 0": lambda c: tasks.load_roll(GOOD, min_bars=0),
    "shift_roll 1e9": lambda c: tasks.shift_roll(np.zeros((4, 2, 48, 16), bool), 10 ** 9, music.CHORALE),
    "shift_roll 2.5": lambda c: tasks.shift_roll(np.zeros((4, 2, 48, 16), bool), 2.5, music.CHORALE),
    "engine steps 0": lambda c: soundtrack.SoundtrackEngine(c, steps=0),
    "engine steps > T": lambda c: soundtrack.SoundtrackEngine(c, steps=21),
    "engine guidance nan": lambda c: soundtrack.SoundtrackEngine(c, steps=2, guidance_scale=float("nan")),
    "bar starts tempo 0": lambda c: soundtrack.bar_start_seconds([0.0]),
    "bar starts tempo nan": lambda c: soundtrack.bar_start_seconds([90.0, float("nan")]),
    "synthesize a path": lambda c: audio.synthesize("x.mid"),
    "write_wav a folder": lambda c: audio.write_wav(".", np.zeros((4, 2, 48, 16), bool), music.CHORALE),
    "audio benchmark 1e9 s": lambda c: audio.benchmark(seconds=1e9),
    "audio benchmark 0 s": lambda c: audio.benchmark(seconds=0),
    "plot_rolls ncols 0": lambda c: viz.plot_rolls([np.zeros((4, 2, 48, 16), bool)], ncols=0),
    "save_roll_png a folder": lambda c: viz.save_roll_png(".", np.zeros((4, 2, 48, 16), bool)),
    "kl smoothing -1": lambda c: metrics.kl_divergence(np.ones(12), np.ones(12), smoothing=-1),
    "kl shapes": lambda c: metrics.kl_divergence(np.ones(12), np.ones(5)),
    "linear_betas 0": lambda c: schedules.linear_betas(0),
    "linear_betas start > end": lambda c: schedules.linear_betas(10, 0.5, 0.1),
    "linear_betas end 2": lambda c: schedules.linear_betas(10, 0.1, 2.0),
    "cosine s nan": lambda c: schedules.cosine_betas(10, s=float("nan")),
    "sigmoid tau 0": lambda c: schedules.sigmoid_betas(10, tau=0.0),
    "schedule T 1e9": lambda c: schedules.make_schedule("cosine", 10 ** 9),
    "key_penalty pitch class 13": lambda c: guidance.key_penalty(c.encoding, pitch_classes=[13]),
    "TrainConfig steps 0": lambda c: train.TrainConfig(steps=0),
    "TrainConfig lr nan": lambda c: train.TrainConfig(lr=float("nan")),
    "TrainConfig batch 0": lambda c: train.TrainConfig(batch_size=0),
    "TrainConfig ema 2": lambda c: train.TrainConfig(ema_decay=2.0),
    "TrainConfig dropout 2": lambda c: train.TrainConfig(label_dropout=2.0),
    "TrainConfig threads 0": lambda c: train.TrainConfig(threads=0),
    "TrainConfig style weights -1": lambda c: train.TrainConfig(style_weights=(-1.0, 1.0)),
    "TrainConfig style weights 0 0": lambda c: train.TrainConfig(style_weights=(0.0, 0.0)),
    "ClassifierTrainConfig steps 0": lambda c: classifiers.ClassifierTrainConfig(steps=0),
    "ClassifierTrainConfig lr -1": lambda c: classifiers.ClassifierTrainConfig(lr=-1.0),
    "update_ema decay 2": lambda c: train.update_ema(c.model, c.model, 2.0),
    "seed_everything -1": lambda c: train.seed_everything(-1),
    "seed_everything nan": lambda c: train.seed_everything(float("nan")),
    "RollSpec steps_per_beat 0": lambda c: music.RollSpec(steps_per_beat=0),
    "roll_to_midi NaN roll": lambda c: music.roll_to_midi(np.full((4, 2, 48, 16), np.nan)),
    "roll_to_midi velocity 200": lambda c: music.roll_to_midi(np.zeros((4, 2, 48, 16), bool), velocity=200),
    "regenerate track 9": lambda c: harmony.regenerate_tracks(c, np.zeros((4, 2, 48, 64), bool), [9], steps=2),
    "fit_octave low > high": lambda c: harmony.fit_octave([60], 70, 50),
}


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_bad_library_calls(tiny_checkpoint, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = pipeline.load(tiny_checkpoint[0])
    assert_project_error(lambda: LIBRARY[name](ckpt))
    assert not (tmp_path / "unused-out").exists() or not any((tmp_path / "unused-out").iterdir())
    assert not (tmp_path / "escape_00.mid").exists()


# --------------------------------------------------------------------------- the command line

def run_cli(argv, capsys):
    with time_limit(60):
        code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr()


def _cli_cases(tmp: Path, ckpt: Path):
    """(argv, why) that must give exit code 2 and a one-line message, before any file is written."""
    (tmp / "file.txt").write_text("x")
    (tmp / "dir.mid").mkdir()
    (tmp / "dir.json").mkdir()
    mapping_dir = tmp / "mapping"
    mapping_dir.mkdir()
    (tmp / "binary.json").write_bytes(b"\xff\xfe\x00junk")
    os.mkfifo(tmp / "fifo.mid")
    os.mkfifo(tmp / "fifo.json")
    mappings = {"number": {"a": 5}, "list": [1, 2], "empty": {}, "style": {"a": {"style": "jazz"}},
                "tempo text": {"a": {"tempo": "fast"}}, "density 5": {"a": {"density": 5}}, "unknown": {"a": {"wat": 1}}}
    for name, mapping in mappings.items():
        (tmp / f"{name}.json").write_text(json.dumps(mapping))
    out = tmp / "out"
    gen = ["generate", "--checkpoint", ckpt, "--out", out, "--steps", "2", "--n", "1"]
    cases = []
    for value in ("nan", "inf", "-inf", "-1", "1e999", "abc", ""):
        cases += [(gen + ["--guidance", value], f"generate --guidance {value}"),
                  (["demo", "--checkpoint", ckpt, "--out", out, "--guidance", value], f"demo --guidance {value}"),
                  (["soundtrack", "--checkpoint", ckpt, "--out", out, "--guidance", value], f"soundtrack --guidance {value}"),
                  (["evaluate", "--checkpoint", ckpt, "--n", "4", "--guidance", value], f"evaluate --guidance {value}"),
                  (["bench", "--checkpoint", ckpt, "--guidance", value], f"bench --guidance {value}")]
    for value in ("nan", "-1", "inf"):
        cases.append((gen + ["--style-transfer", tmp / "file.txt", "--classifier-scale", value], "classifier scale"))
        cases.append((gen + ["--density", value], "density"))
        cases.append((gen + ["--strength", value], "strength"))
    for option, values in {"--n": ["0", "-1", "1000000000", "2.5", "x"], "--steps": ["0", "-5"],
                           "--tempo": ["0", "-90", "nan", "1000"], "--threads": ["0", "-2"], "--seed": ["-1", "x"]}.items():
        cases += [(gen + [option, v], f"generate {option} {v}") for v in values]
    train_cmd = ["train", "--out", tmp / "model.pt", "--corpora", "bach"]
    for option, values in {"--steps": ["0", "-5"], "--batch-size": ["0", "-1", "100000"], "--valid-every": ["0"],
                           "--lr": ["0", "-1", "nan"], "--timesteps": ["0", "1"], "--channels": ["0", "65536"],
                           "--transpose": ["-1", "99"], "--style-weights": ["-1 1", "nan 1"]}.items():
        cases += [(train_cmd + [option, *v.split()], f"train {option} {v}") for v in values]
    cases += [
        (train_cmd + ["--style-weights", "0", "0"], "train: all style weights zero"),
        (["train", "--out", tmp / "dir.mid", "--steps", "1"], "train --out a folder"),
        (["train", "--out", tmp / "file.txt" / "model.pt", "--steps", "1"], "train --out under a file"),
        (["train", "--out", ASSETS / "checkpoints" / "soundtracks.pt", "--steps", "1"], "train over the bundled model"),
        (["train", "--out", tmp / "model.txt", "--steps", "1"], "train --out not .pt"),
        (["train-classifier", "--kind", "clean", "--steps", "0"], "train-classifier without --out"),
        (["train-classifier", "--kind", "clean", "--out", tmp / "c.pt", "--steps", "0"], "train-classifier --steps 0"),
        (["train-classifier", "--kind", "clean", "--out", ASSETS / "checkpoints" / "classifier_clean.pt"],
         "train-classifier over the bundled classifier"),
        (["train-classifier", "--kind", "noisy", "--out", tmp / "c.pt", "--batch-size", "0"], "classifier batch 0"),
        (["bench", "--checkpoint", ckpt, "--tempo", "0"], "bench --tempo 0"),
        (["bench", "--checkpoint", ckpt, "--tempo", "-90"], "bench --tempo -90"),
        (["bench", "--checkpoint", ckpt, "--repeats", "0"], "bench --repeats 0"),
        (["evaluate", "--checkpoint", ckpt, "--n", "0"], "evaluate --n 0"),
        (["evaluate", "--checkpoint", ckpt, "--n", "4", "--json", tmp / "dir.json"], "evaluate --json a folder"),
        (["soundtrack", "--checkpoint", ckpt, "--out", out, "--states", "battle:1000000"], "a million bars"),
        (["soundtrack", "--checkpoint", ckpt, "--out", out, "--states", "battle"], "no bar count"),
        (["soundtrack", "--checkpoint", ckpt, "--out", out, "--mapping", mapping_dir], "--mapping a folder"),
        (["soundtrack", "--checkpoint", ckpt, "--out", out, "--mapping", tmp / "binary.json"], "--mapping binary"),
        (["soundtrack", "--checkpoint", ckpt, "--out", out, "--mapping", tmp / "nope.json"], "--mapping missing"),
        (["soundtrack", "--checkpoint", ckpt, "--out", out, "--keep-bars", "0"], "--keep-bars 0"),
        (["soundtrack", "--checkpoint", ckpt, "--out", out, "--stem", "../escape"], "soundtrack --stem escapes"),
        (gen + ["--stem", "../escape"], "generate --stem escapes"),
        (gen + ["--stem", "/tmp/abs"], "generate --stem absolute"),
        (gen[:-4] + ["--out", tmp / "file.txt"], "generate --out a file"),
        (gen + ["--continue", tmp / "dir.mid"], "--continue a folder named .mid"),
        (gen + ["--continue", tmp / "fifo.mid"], "--continue a FIFO (would hang a read)"),
        (gen + ["--infill", tmp / "dir.mid"], "--infill a folder"),
        (gen + ["--transition", tmp / "dir.mid", tmp / "fifo.mid"], "--transition a folder and a FIFO"),
        (gen + ["--style-transfer", tmp / "fifo.mid"], "--style-transfer a FIFO"),
        (gen[:-4] + ["--out", "/proc/no-such-folder"], "generate --out not writable"),
        (["demo", "--checkpoint", ckpt, "--out", "/proc/no-such-folder"], "demo --out not writable"),
        (["soundtrack", "--checkpoint", ckpt, "--out", out, "--mapping", tmp / "fifo.json"], "--mapping a FIFO"),
        *[(["soundtrack", "--checkpoint", ckpt, "--out", out, "--mapping", tmp / f"{name}.json"], f"--mapping {name}")
          for name in mappings],
        (["soundtrack", "--checkpoint", ckpt, "--out", out, "--states", ""], "--states empty"),
        (["soundtrack", "--checkpoint", ckpt, "--out", out, "--states", "battle:2:3"], "--states two colons"),
        (["evaluate", "--checkpoint", ckpt, "--n", "4", "--json", "/proc/x.json"], "evaluate --json not writable"),
        (["evaluate", "--n", "10", "--card"], "evaluate --card into the bundled model"),
        (["evaluate", "--checkpoint", ckpt, "--n", "5", "--steps", "2"], "evaluate --n below the two-sample test's 10"),
        (train_cmd + ["--cache-dir", tmp / "file.txt"], "train --cache-dir a file"),
        (gen + ["--device", "no-such-device"], "generate --device unknown"),
        (gen + ["--infill", tmp / "nope.mid"], "--infill a missing file"),
        (gen + ["--continue", tmp / "file.txt"], "--continue a text file"),
        (["generate", "--checkpoint", tmp / "nope.pt", "--out", out], "missing checkpoint"),
        (["generate", "--checkpoint", tmp / "file.txt", "--out", out], "a text file as checkpoint"),
        (["generate", "--checkpoint", tmp / "dir.mid", "--out", out], "a folder as checkpoint"),
        (["nonsense"], "unknown command"),
        (["generate", "--no-such-option"], "unknown option"),
        ([], "no command"),
    ]
    return cases


def test_cli_bad_arguments_exit_2_with_one_line(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = _cli_cases(tmp_path, tiny_checkpoint[0])
    assert len(cases) >= 100
    for argv, why in cases:
        code, captured = run_cli(argv, capsys)
        lines = captured.err.strip().splitlines()
        assert code == 2, f"{why}: exit code {code}, stderr {captured.err[-300:]!r}"
        assert len(lines) == 1 and lines[0].startswith("error"), f"{why}: not one line: {captured.err[-500:]!r}"
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), f"{why} wrote files"
        assert not (tmp_path / "escape.mid").exists() and not (tmp_path / "model.pt").exists(), why
    assert (tmp_path / "file.txt").read_text() == "x"


def test_cli_generate_writes_refuses_to_overwrite_then_forces(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["generate", "--checkpoint", tiny_checkpoint[0], "--out", out, "--steps", "2", "--n", "2", "--quiet"]
    code, captured = run_cli(argv, capsys)
    assert code == 0, captured.err
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"sample_{i:02d}{ext}" for i in range(2) for ext in (".mid", ".wav", ".png"))
    first = (out / "sample_00.mid").read_bytes()
    (out / "sample_00.mid").write_bytes(b"mine")
    code, captured = run_cli(argv, capsys)
    assert code == 2 and "--force" in captured.err and (out / "sample_00.mid").read_bytes() == b"mine"
    code, captured = run_cli(argv + ["--force"], capsys)
    assert code == 0 and (out / "sample_00.mid").read_bytes() == first
    assert sorted(p.name for p in out.iterdir()) == written, "no temporary files left behind"


def test_cli_help_for_every_option(capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = [f"{name} {action.option_strings or action.dest}" for name, command in sub.choices.items()
               for action in command._actions if not action.help]
    assert not missing, f"options without help: {missing}"


def test_cli_real_bugs_keep_their_traceback(monkeypatch):
    def broken(args):
        torch.zeros(2) @ torch.zeros(3)  # a RuntimeError from torch: a bug, not a user's mistake
    monkeypatch.setattr(cli, "cmd_bench", broken)
    with pytest.raises(RuntimeError):
        cli.main(["bench"])


def test_cli_generate_dying_half_way_leaves_no_file(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """A run that fails while writing (disk full, a bug in a renderer) leaves no partial or temporary file."""
    calls = []

    def fail_on_second(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        Path(path).write_bytes(b"png")
    monkeypatch.setattr(viz, "save_roll_png", fail_on_second)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.mid").write_bytes(b"mine")
    code, captured = run_cli(["generate", "--checkpoint", tiny_checkpoint[0], "--out", out, "--steps", "2", "--n", "3",
                              "--quiet"], capsys)
    assert code == 2 and "No space left" in captured.err and len(captured.err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["mine.mid"], "nothing half-written, the user's file kept"
