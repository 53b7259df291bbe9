"""Style/mode classifiers: shapes and errors, training on a separable toy set, checkpoints, guidance, the bundled ones."""
import pytest
import torch

from course_lib import classifiers as c
from course_lib import data, guidance, schedules
from course_lib.encoding import VoiceEncoding

torch.set_num_threads(1)
SMALL = dict(in_channels=6, channels=16, channel_mults=(1, 2), time_dim=16, dropout=0.0)


def toy_data(n=512, seed=0):
    """x (n, 6, 16): style is whether channel 0 is on, mode the sign of channel 3; both readable at low noise."""
    g = torch.Generator().manual_seed(seed)
    style = torch.randint(0, 2, (n,), generator=g)
    mode = torch.randint(0, 2, (n,), generator=g)
    x = 0.3 * torch.randn(n, 6, 16, generator=g)
    x[:, 0] += torch.where(style == 1, 1.0, -1.0)[:, None]
    x[:, 3] += torch.where(mode == 1, 1.0, -1.0)[:, None]
    return x.clamp(-1, 1), {"style": style, "mode": mode, "density": torch.rand(n, generator=g)}


def test_forward_shapes_and_heads():
    clean = c.build_classifier(c.ClassifierConfig(**SMALL))
    out = clean(torch.randn(3, 6, 16))
    assert set(out) == {"style", "mode"} and out["style"].shape == (3, 2) and out["mode"].shape == (3, 2)
    noisy = c.build_classifier(c.ClassifierConfig(**SMALL, noisy=True, heads=("mode",)))
    assert noisy(torch.randn(3, 6, 16), 5)["mode"].shape == (3, 2)  # an int t is broadcast
    assert noisy.head("mode")(torch.randn(3, 6, 16), torch.tensor([0, 10, 99])).shape == (3, 2)


def test_bad_input_says_what_to_do():
    noisy = c.build_classifier(c.ClassifierConfig(**SMALL, noisy=True))
    with pytest.raises(ValueError, match="needs its timestep"):
        noisy(torch.randn(2, 6, 16))
    with pytest.raises(ValueError, match=r"\(B, 6, L\)"):
        noisy(torch.randn(6, 16), 3)
    with pytest.raises(ValueError, match="integer tensor"):
        noisy(torch.randn(2, 6, 16), torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="not 'density'"):
        noisy.head("density")
    with pytest.raises(ValueError, match="subset"):
        c.ClassifierConfig(heads=("tempo",))
    with pytest.raises(ValueError, match="divisible"):
        c.ClassifierConfig(channels=12)
    with pytest.raises(ValueError, match="schedule"):
        c.train_classifier(noisy, toy_data(8), config=c.ClassifierTrainConfig(steps=1), progress=False)


def test_balanced_weights_give_every_cell_the_same_share():
    labels = {"style": torch.tensor([0, 0, 0, 0, 1, 1, 1, 0]), "mode": torch.tensor([0, 0, 0, 1, 0, 1, 1, 0])}
    w = c.balanced_weights(labels, ("style", "mode"))
    cells = labels["style"] * 2 + labels["mode"]
    shares = torch.stack([w[cells == k].sum() for k in range(4)])
    assert torch.allclose(shares, torch.ones(4))


def test_clean_training_learns_and_is_reproducible():
    config = c.ClassifierTrainConfig(steps=40, batch_size=32, lr=3e-3, valid_every=40)
    runs, weights = [], []
    for _ in range(2):
        torch.manual_seed(0)
        clf = c.build_classifier(c.ClassifierConfig(**SMALL))
        history = c.train_classifier(clf, toy_data(), toy_data(256, seed=1), config, progress=False, log=None)
        runs.append([{k: v for k, v in row.items() if k != "seconds"} for row in history])
        weights.append(torch.cat([p.detach().flatten() for p in clf.parameters()]))
    assert runs[0] == runs[1] and torch.equal(weights[0], weights[1])  # seeded: the same run
    assert runs[0][-1]["valid_style"] > 0.95 and runs[0][-1]["valid_mode"] > 0.95
    assert not clf.training  # handed back in eval mode


def test_noisy_training_is_accurate_at_low_noise_and_near_chance_at_high_noise():
    schedule = schedules.make_schedule("cosine", 100)
    torch.manual_seed(0)
    clf = c.build_classifier(c.ClassifierConfig(**SMALL, noisy=True))
    c.train_classifier(clf, toy_data(), config=c.ClassifierTrainConfig(steps=100, batch_size=32, lr=3e-3),
                       schedule=schedule, progress=False, log=None)
    x, labels = toy_data(512, seed=2)
    low = c.accuracy(clf, x, labels, t=0, schedule=schedule)
    high = c.accuracy(clf, x, labels, t=99, schedule=schedule)
    assert low["style"] > 0.95 and low["mode"] > 0.95
    assert high["style"] < 0.75 and high["mode"] < 0.75  # ᾱ ≈ 0: x_t is nearly pure noise


def test_accuracy_skips_null_labels():
    clf = c.build_classifier(c.ClassifierConfig(**SMALL))
    x, labels = toy_data(16)
    labels["mode"] = torch.full((16,), -1)
    result = c.accuracy(clf, x, labels)
    assert 0.0 <= result["style"] <= 1.0 and result["mode"] != result["mode"]  # NaN: nothing to score


def test_gradient_for_guidance_raises_the_log_probability():
    schedule = schedules.make_schedule("cosine", 100)
    torch.manual_seed(0)
    clf = c.build_classifier(c.ClassifierConfig(**SMALL, noisy=True)).eval()  # untrained: any classifier has a gradient
    x, t = torch.randn(4, 6, 16, generator=torch.Generator().manual_seed(3)), torch.full((4,), 20)
    head = clf.head("mode")
    gradient = guidance.classifier_gradient(head, 1, scale=1.0)(x, t)
    assert gradient.shape == x.shape

    def log_p(z):
        return torch.log_softmax(head(z, t), -1)[:, 1]
    with torch.no_grad():
        assert bool((log_p(x + 0.05 * gradient) > log_p(x)).all())  # a small step up the gradient


def test_checkpoint_round_trip_and_errors(tmp_path):
    schedule = schedules.make_schedule("cosine", 100)
    clf = c.build_classifier(c.ClassifierConfig(**SMALL, noisy=True))
    path = c.save_classifier(tmp_path / "clf.pt", clf, VoiceEncoding(), schedule=schedule, card={"steps": 0})
    loaded = c.load_classifier(path)
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        assert torch.equal(loaded.classifier(x, 7)["mode"], clf.eval()(x, 7)["mode"])
    assert loaded.meta["card"] == {"steps": 0} and loaded.schedule.to_dict() == schedule.to_dict()
    c.check_schedule(loaded, schedule)
    with pytest.raises(ValueError, match="same t would mean"):
        c.check_schedule(loaded, schedules.make_schedule("linear", 100))
    with pytest.raises(FileNotFoundError, match="train-classifier"):
        c.load_classifier(tmp_path / "missing.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="damaged"):
        c.load_classifier(tmp_path / "broken.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a classifier checkpoint"):
        c.load_classifier(tmp_path / "other.pt")
    clean = c.save_classifier(tmp_path / "clean.pt", c.build_classifier(c.ClassifierConfig(**SMALL)), VoiceEncoding())
    with pytest.raises(ValueError, match="noisy one"):
        c.check_schedule(c.load_classifier(clean), schedule)


def test_model_card_names_the_command_and_the_accuracy():
    card = {"kind": "clean", "command": "python -m course_lib train-classifier --kind clean --out x.pt",
            "steps": 10, "batch_size": 64, "train_seconds": 1.5, "cpu_seconds": 1.4, "machine": "1 CPU thread",
            "data": {"train_windows": 100, "valid_windows": 10, "test_windows": 10, "corpora": ["bach"]},
            "parameters": 1000, "history": [], "test_accuracy": {"style": 0.99, "mode": 0.875}}
    text = c.model_card(card)
    assert "python -m course_lib train-classifier --kind clean --out x.pt" in text and "0.875" in text


@pytest.mark.parametrize("kind", ["clean", "noisy"])
def test_bundled_classifiers(kind):
    path = c.BUNDLED[kind]
    assert path.stat().st_size < 2_000_000, f"{path} must stay under 2 MB"
    card = path.with_suffix(".md").read_text()
    assert "train-classifier" in card and "test" in card
    ckpt = c.load_bundled(kind)
    assert ckpt.classifier.config.noisy == (kind == "noisy") and not ckpt.classifier.training
    card = ckpt.meta["card"]
    if kind == "noisy":  # the lesson's model is cosine, T = 1000; accuracy at t = 0 and averaged over t
        assert ckpt.schedule.to_dict() == schedules.make_schedule("cosine", 1000).to_dict()
        assert card["test_accuracy_by_t"]["0"]["mode"] > 0.75 and card["test_accuracy"]["mode"] > 0.65, card
    else:
        assert card["test_accuracy"]["style"] > 0.95 and card["test_accuracy"]["mode"] > 0.8, card
    # and live, on real Bach test windows: four voices, so style is certain; mode mostly right
    test = data.WindowDataset(data.load_corpus("bach"), "test", VoiceEncoding())
    x, labels = c._as_tensors(test)
    live = c.accuracy(ckpt.classifier, x[:96], {k: v[:96] for k, v in labels.items()}, t=0, schedule=ckpt.schedule)
    assert live["style"] == 1.0 and live["mode"] > 0.7, live


def test_cli_trains_saves_and_writes_the_model_card(tmp_path, capsys):
    from course_lib import cli
    out = tmp_path / "noisy.pt"
    assert cli.main(["train-classifier", "--kind", "noisy", "--out", str(out), "--steps", "3", "--corpora", "bach",
                     "--timesteps", "100", "--threads", "1", "--quiet"]) == 0
    loaded = c.load_classifier(out)
    assert loaded.classifier.config.noisy and loaded.schedule.timesteps == 100
    card = out.with_suffix(".md").read_text()
    assert f"--kind noisy --out {out} --voice-ranges data --steps 3" in card and "x_t at t = 0" in card
    assert "saved" in capsys.readouterr().out
