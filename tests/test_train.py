"""course_lib.train: the loop learns, checkpoints round-trip, bad checkpoints are explained."""
import json

import pytest
import torch

from course_lib import data, encoding, models, schedules, train


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(2)
    enc = encoding.VoiceEncoding()
    ds = data.WindowDataset(data.load_corpus("bach"), "valid", enc)
    x, labels = train.stack_dataset(ds)
    config = models.ModelConfig(kind="unet1d", in_channels=60, channels=64, channel_mults=(1, 2),
                                attention=False, n_styles=2, use_mode=True, use_density=True)
    return enc, (x[:96], {k: v[:96] for k, v in labels.items()}), config


def test_a_short_run_lowers_the_loss_and_returns_an_ema_copy(tiny):
    enc, batch, config = tiny
    model = models.build_model(config)
    schedule = schedules.make_schedule("cosine", 100)
    untrained = train.validation_loss(model, schedule, *batch)
    result = train.train(model, schedule, batch, batch, train.TrainConfig(steps=60, batch_size=16, valid_every=20,
                                                                           warmup=5, ema_decay=0.9, threads=2), progress=False, log=None)
    history = result["history"]
    assert [row["step"] for row in history] == [20, 40, 60]
    assert history[-1]["valid_loss"] < 0.8 * untrained, (untrained, history)
    assert history[-1]["train_loss"] < history[0]["train_loss"], history
    assert result["ema"] is not model
    assert any(not torch.equal(a, b) for a, b in zip(result["ema"].parameters(), model.parameters()))


def test_training_is_reproducible_with_a_seed(tiny):
    enc, batch, config = tiny
    schedule = schedules.make_schedule("cosine", 100)
    runs = []
    for _ in range(2):
        train.seed_everything(0)
        model = models.build_model(config)
        runs.append(train.train(model, schedule, batch, None, train.TrainConfig(steps=5, batch_size=8, warmup=2),
                                progress=False, log=None)["history"][-1]["train_loss"])
    assert runs[0] == runs[1]


@pytest.fixture()
def saved(tiny, tmp_path):
    enc, batch, config = tiny
    train.seed_everything(1)
    model = models.build_model(config).eval()
    schedule = schedules.make_schedule("linear", 50)
    path = train.save_checkpoint(tmp_path / "m.pt", model, schedule, enc, train_config=train.TrainConfig(steps=1),
                                 data={"corpora": ["bach"]}, card={"note": "test"})
    return path, model, batch


def test_checkpoint_round_trip(saved):
    path, model, (x, labels) = saved
    blob = torch.load(path, weights_only=True)  # loads with the safe unpickler
    assert blob["format"] == train.FORMAT
    ckpt = train.load_checkpoint(path)
    t = torch.full((4,), 10)
    lab = {k: v[:4] for k, v in labels.items()}
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model(x[:4], t, lab), model(x[:4], t, lab))
    assert ckpt.schedule.timesteps == 50 and ckpt.schedule.kind == "linear"
    assert ckpt.encoding.name == "voice" and ckpt.meta["card"] == {"note": "test"}
    assert ckpt.meta["train"]["steps"] == 1 and ckpt.spec.tracks == ("soprano", "alto", "tenor", "bass")


def test_missing_checkpoint(tmp_path):
    with pytest.raises(train.CheckpointError, match="no such checkpoint"):
        train.load_checkpoint(tmp_path / "nothing.pt")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_checkpoint(saved, damage):
    path = saved[0]
    raw = path.read_bytes()
    path.write_bytes(b"\x00garbage" * 10 if damage == "garbage" else raw[:len(raw) // 2])
    with pytest.raises(train.CheckpointError, match="damaged"):
        train.load_checkpoint(path)


def test_foreign_torch_file(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(train.CheckpointError, match="not a Diffusion Soundtracks checkpoint"):
        train.load_checkpoint(tmp_path / "other.pt")


def test_weights_that_do_not_fit_their_config(saved):
    path = saved[0]
    blob = torch.load(path, weights_only=True)
    meta = json.loads(blob["meta"])
    meta["model"]["channels"] = 96
    blob["meta"] = json.dumps(meta)
    torch.save(blob, path)
    with pytest.raises(train.CheckpointError, match="do not fit"):
        train.load_checkpoint(path)


def test_checkpoint_for_another_encoding_or_spec(saved):
    path = saved[0]
    with pytest.raises(train.CheckpointError, match="'pianoroll' was asked for"):
        train.load_checkpoint(path, expect_encoding="pianoroll")
    from course_lib import music
    with pytest.raises(train.CheckpointError, match="your data use"):
        train.load_checkpoint(path, expect_spec=music.MELODY)


# ---------------------------------------------------------------------- the one-process CPU path is unchanged

def _loop_before_devices(model, schedule, train_data, config):
    """The training loop as it was before devices, several processes and resuming were added (a
    verbatim copy of its sampling, dropout, loss, step and EMA lines): the bundled model was trained
    by it, so the default one-process CPU path must give exactly its numbers."""
    import copy
    from course_lib import diffusion, guidance
    generator = train.seed_everything(config.seed)
    x, labels = train_data if isinstance(train_data, tuple) else train.stack_dataset(train_data)
    augment = getattr(train_data, "transpose_range", 0) > 0
    ema = copy.deepcopy(model).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    style = labels["style"].clamp(min=0)
    counts = torch.bincount(style)
    share = torch.tensor(config.style_weights or [1.0] * len(counts), dtype=torch.float32)
    weights = share[style] / counts[style].float()
    losses = []
    for step in range(config.steps):
        model.train()
        index = torch.multinomial(weights, config.batch_size, replacement=True, generator=generator)
        batch_labels = guidance.drop_labels({k: v[index] for k, v in labels.items()}, config.label_dropout,
                                            p_each=config.label_dropout_each, generator=generator)
        x_batch = torch.stack([train_data[i][0] for i in index.tolist()]) if augment else x[index]
        loss = diffusion.training_loss(model, schedule, x_batch, batch_labels,
                                       prediction=model.config.prediction, generator=generator)
        for group in optimizer.param_groups:
            group["lr"] = train._lr_at(step, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        train.update_ema(ema, model, config.ema_decay if step >= config.warmup else 0.0)
        losses.append(loss.item())
    return ema, losses


@pytest.mark.parametrize("augment", [False, True])
def test_the_one_process_cpu_path_gives_the_numbers_it_gave_before(tiny, augment):
    enc, batch, config = tiny
    schedule = schedules.make_schedule("cosine", 100)
    if augment:  # the on-the-fly transposition path: items re-encoded from the dataset, its own RNG
        batch = data.WindowDataset(data.load_corpus("bach"), "valid", enc, transpose_range=3, seed=5)
    settings = train.TrainConfig(steps=6, batch_size=8, warmup=2, ema_decay=0.9, valid_every=3, threads=2,
                                 style_weights=(1.0, 2.0))
    runs = []
    for loop in ("before", "now"):
        train.seed_everything(3)
        model = models.build_model(config)
        if augment:
            batch.rng = __import__("numpy").random.default_rng(5)
        if loop == "before":
            ema, _ = _loop_before_devices(model, schedule, batch, settings)
        else:
            ema = train.train(model, schedule, batch, None, settings, progress=False, log=None)["ema"]
        runs.append((ema.state_dict(), model.state_dict()))
    for before, now in zip(*runs):
        for key in before:
            assert torch.equal(before[key], now[key]), f"{key} differs from the loop before the change"


# ---------------------------------------------------------------------- devices, resuming, styles

def test_training_refuses_mixed_precision_on_the_cpu(tiny):
    enc, batch, config = tiny
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        train.train(models.build_model(config), schedules.make_schedule("cosine", 100), batch, None,
                    train.TrainConfig(steps=1, batch_size=4), progress=False, log=None, precision="bf16")


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tiny, tmp_path):
    enc, batch, config = tiny
    schedule = schedules.make_schedule("cosine", 100)
    settings = train.TrainConfig(steps=8, batch_size=8, warmup=2, ema_decay=0.9, valid_every=4, threads=2)
    states = {}

    def run(resume=None):
        train.seed_everything(7)
        model = models.build_model(config)
        result = train.train(model, schedule, batch, batch, settings, progress=False, log=None, resume=resume,
                             on_state=lambda state: states.setdefault(state["step"], state))
        return model, result

    whole_model, whole = run()
    path = train.save_checkpoint(tmp_path / "m.resume.pt", whole["ema"], schedule, enc, train_config=settings,
                                 training_state=states[4])  # as if the run had stopped after step 4
    state = train.load_training_state(path)
    assert all(t.device.type == "cpu" for t in state["model"].values()), "resume states are saved device-free"
    resumed_model, resumed = run(resume=state)
    assert [row["step"] for row in resumed["history"]] == [4, 8]
    assert resumed["history"] == whole["history"][:1] + resumed["history"][1:]
    assert resumed["history"][-1]["valid_loss"] == whole["history"][-1]["valid_loss"]
    for a, b in [(whole["ema"], resumed["ema"]), (whole_model, resumed_model)]:
        for (key, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), f"{key} differs after resuming"
    with pytest.raises(ValueError, match="at step 8 of 8 already"):
        run(resume={**states[8], "ema": whole["ema"].state_dict()})


def test_a_checkpoint_without_training_state_cannot_be_resumed(saved):
    with pytest.raises(train.CheckpointError, match="cannot be resumed"):
        train.load_training_state(saved[0])


def test_checkpoints_are_device_free_and_name_their_styles(saved, tmp_path):
    path, model, _ = saved
    blob = torch.load(path, weights_only=True)
    assert all(t.device.type == "cpu" for t in blob["state_dict"].values())
    assert train.load_checkpoint(path).styles == ("bach", "folk")
    meta = json.loads(blob["meta"])
    del meta["styles"]  # a checkpoint written before styles were stored
    blob["meta"] = json.dumps(meta)
    torch.save(blob, tmp_path / "old.pt")
    assert train.load_checkpoint(tmp_path / "old.pt").styles == train.DEFAULT_STYLES
    own = train.save_checkpoint(tmp_path / "own.pt", model, schedules.make_schedule("linear", 50),
                                encoding.VoiceEncoding(), styles=("bach", "hymns"))
    assert train.load_checkpoint(own).styles == ("bach", "hymns")
