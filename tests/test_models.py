"""Denoisers: shapes, labels and their nulls, clear errors, configs, and a short training run."""
import json

import pytest
import torch

from course_lib import diffusion
from course_lib.models import (KIND_DEFAULTS, LabelEmbedding, ModelConfig, SinusoidalTimeEmbedding, TinyMLP,
                               UNet1d, UNet2d, build_model, n_parameters)
from course_lib.schedules import make_schedule

torch.set_num_threads(1)

SMALL = {  # small enough to run in milliseconds, with every feature switched on
    "mlp": ModelConfig("mlp", channels=32, time_dim=32),
    "unet1d": ModelConfig("unet1d", in_channels=6, channels=16, channel_mults=(1, 2), time_dim=32, dropout=0.1),
    "unet2d": ModelConfig("unet2d", in_channels=8, channels=16, channel_mults=(1, 2), time_dim=32),
}
SHAPES = {"mlp": (5, 2), "unet1d": (5, 6, 16), "unet2d": (5, 8, 12, 16)}
LABELED = dict(n_styles=3, use_mode=True, use_density=True)


def with_labels(kind):
    return ModelConfig.from_dict({**SMALL[kind].to_dict(), **LABELED})


def labels():
    return {"style": torch.tensor([0, 2, -1, 1, 0]), "mode": torch.tensor([1, 0, -1, 1, -1]),
            "density": torch.tensor([0.2, float("nan"), 0.5, 0.9, 0.0])}


def randomize(model):
    """Zero-initialized output layers would hide what the rest computes."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("kind", ["mlp", "unet1d", "unet2d"])
def test_output_has_the_input_shape(kind):
    model = build_model(with_labels(kind))
    x, t = torch.randn(SHAPES[kind]), torch.randint(0, 1000, (5,))
    assert model(x, t, labels()).shape == x.shape
    assert model(x, 7).shape == x.shape  # one int t for the whole batch, no labels
    assert isinstance(model.config, ModelConfig) and model.config.kind == kind


def test_default_configs_build_the_documented_models():
    assert isinstance(build_model(ModelConfig("mlp")), TinyMLP)
    unet = build_model(ModelConfig())  # the default: the compact voice encoding's U-Net
    assert isinstance(unet, UNet1d) and 1e6 <= n_parameters(unet) <= 3e6
    with torch.no_grad():
        assert unet(torch.randn(2, 60, 64), torch.tensor([0, 999])).shape == (2, 60, 64)
    roll_net = build_model(ModelConfig("unet2d"))
    with torch.no_grad():
        assert isinstance(roll_net, UNet2d) and roll_net(torch.randn(1, 8, 48, 64), 500).shape == (1, 8, 48, 64)


@pytest.mark.parametrize("kind", ["mlp", "unet1d", "unet2d"])
def test_missing_labels_mean_null_and_labels_matter(kind):
    model = randomize(build_model(with_labels(kind))).eval()
    x, t = torch.randn(SHAPES[kind]), torch.full((5,), 300)
    nulls = {"style": torch.full((5,), -1), "mode": torch.full((5,), -1), "density": torch.full((5,), float("nan"))}
    with torch.no_grad():
        none, explicit_null, conditioned = model(x, t), model(x, t, nulls), model(x, t, labels())
        only_style = model(x, t, {"style": torch.tensor([0, 2, -1, 1, 0])})
    assert torch.allclose(none, explicit_null)
    assert not torch.allclose(none[0], conditioned[0], atol=1e-4)  # sample 0 has every label
    assert torch.allclose(none[2], only_style[2])  # sample 2's style is null
    assert not torch.allclose(none[1], only_style[1], atol=1e-4)


def test_label_embedding_null_rows_and_density():
    emb = LabelEmbedding(8, n_styles=2, use_mode=True, use_density=True)
    out = emb({"style": torch.tensor([-1, 1]), "density": torch.tensor([float("nan"), 0.3])}, 2, "cpu")
    assert out.shape == (2, 8) and not out.isnan().any()
    assert torch.allclose(out[0], emb.style.weight[2] + emb.mode.weight[2] + emb.density_null)
    with pytest.raises(ValueError, match=r"-1\.\.1 \(-1 = null\), got \[2\]"):
        emb({"style": torch.tensor([2, 0])}, 2, "cpu")
    with pytest.raises(ValueError, match="unknown label keys"):
        emb({"genre": torch.tensor([0, 0])}, 2, "cpu")
    with pytest.raises(ValueError, match=r"expected \(2,\)"):
        emb({"mode": torch.tensor([0])}, 2, "cpu")
    assert LabelEmbedding(8)({"style": torch.tensor([5, 5])}, 2, "cpu") == 0.0  # labels a model lacks are ignored


def test_time_embedding():
    emb = SinusoidalTimeEmbedding(16)
    out = emb(torch.tensor([0, 1, 999]))
    assert out.shape == (3, 16) and torch.allclose(out[0, 8:], torch.ones(8))  # cos(0) = 1
    assert not torch.allclose(out[1], out[2])
    with pytest.raises(ValueError, match="even"):
        SinusoidalTimeEmbedding(15)


@pytest.mark.parametrize("kind, bad, match", [
    ("mlp", (5, 3), "channels"),
    ("unet1d", (6, 16), r"\(B, C, L\).*x\[None\]"),
    ("unet1d", (5, 7, 16), "6 channels"),
    ("unet1d", (5, 6, 15), "multiples of 2"),
    ("unet2d", (5, 8, 16), r"\(B, C, H, W\)"),
    ("unet2d", (5, 8, 11, 16), "multiples of 2"),
])
def test_bad_input_shape_gives_a_clear_error(kind, bad, match):
    with pytest.raises(ValueError, match=match):
        build_model(SMALL[kind])(torch.randn(bad), 3)


def test_bad_t_gives_a_clear_error():
    with pytest.raises(ValueError, match="integer tensor of shape"):
        build_model(SMALL["mlp"])(torch.randn(5, 2), torch.rand(5))


def test_config_round_trip_and_errors():
    config = with_labels("unet1d")
    d = json.loads(json.dumps(config.to_dict()))
    assert ModelConfig.from_dict(d) == config
    model = build_model(d)
    assert model.config == config
    assert ModelConfig("unet2d").channel_mults == KIND_DEFAULTS["unet2d"]["channel_mults"]
    assert ModelConfig("unet1d", channels=32, in_channels=32).channels == 32  # explicit values win
    with pytest.raises(ValueError, match="choose one of"):
        ModelConfig("transformer")
    with pytest.raises(ValueError, match="squeeze"):
        ModelConfig("unet1d", in_channels=384, channels=128)
    with pytest.raises(ValueError, match="prediction"):
        ModelConfig("mlp", prediction="score")
    with pytest.raises(ValueError, match="divisible by groups"):
        ModelConfig("unet2d", channels=12)
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({"kind": "mlp", "width": 3})


def test_every_parameter_learns():
    model = build_model(with_labels("unet1d"))
    schedule = make_schedule("cosine", 100)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # Zero-initialized layers (conv_out, each block's conv2) pass no gradient back until they have
    # taken a step: step 1 wakes conv_out, step 2 the blocks' conv2, step 3 reaches everything.
    for _ in range(3):
        optimizer.zero_grad()
        diffusion.training_loss(model, schedule, torch.randn(5, 6, 16), labels()).backward()
        optimizer.step()
    dead = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead


def test_tiny_mlp_learns_2d_toy_data():
    torch.manual_seed(0)
    schedule = make_schedule("cosine", 200)
    model = build_model(ModelConfig("mlp", channels=64, n_res_blocks=2, time_dim=64))
    angles = torch.arange(8) * (2 * torch.pi / 8)
    centres = 0.8 * torch.stack([angles.cos(), angles.sin()], dim=1)  # 8 points on a circle
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(200):
        x0 = centres[torch.randint(0, 8, (256,), generator=g)] + 0.02 * torch.randn(256, 2, generator=g)
        loss = diffusion.training_loss(model, schedule, x0, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.75 * first, (first, last)
