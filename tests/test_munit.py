"""MUNIT: one style per large image at inference, the step's style for ŷ_x and ŷ_z in training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from satikit.checkpoint import AdapterSpec, RunConfig, TrainingSettings
from satikit.plugins import create_adapter, get_adapter_info
from satikit.stitching import stitch
from satikit.training import SATITrainer


@pytest.fixture
def munit():
    torch.manual_seed(0)
    adapter = create_adapter("munit", **get_adapter_info("munit").test_options)
    adapter.train(False)
    return adapter


def _x(shape=(2, 3, 32, 32), seed=0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) - 1.0


def test_same_style_seed_same_translation_different_seeds_differ(munit) -> None:
    x = _x()
    a, b = munit.translate(x, seed=7), munit.translate(x, seed=7)
    assert torch.equal(a, b)
    assert not torch.allclose(a, munit.translate(x, seed=8), atol=1e-4)
    # no seed: the style_seed option (0), so repeated calls agree as well
    assert torch.equal(munit.translate(x), munit.translate(x, seed=0))


def test_style_codes_from_seeds_and_reference_images(munit) -> None:
    style = munit.style_from_seed(3)
    assert style.shape == (1, munit.style_dim) and torch.equal(style, munit.style_from_seed(3))
    reference = munit.encode_style(_x(seed=4) + 1.0)  # encoded Y crops of one reference image
    assert reference.shape == (1, munit.style_dim)
    out = munit.translate(_x(), style=reference)
    assert out.shape == (2, 3, 32, 32) and not torch.equal(out, munit.translate(_x(), seed=3))
    with pytest.raises(ValueError, match="style must be"):
        munit.translate(_x(), style=torch.zeros(1, munit.style_dim + 1))


def test_sati_translation_of_a_large_image_uses_one_style_throughout(munit) -> None:
    seen: list[torch.Tensor] = []
    decoder_forward = munit.decoder_y.forward

    def spy(content, style):
        seen.append(style.detach().clone())
        return decoder_forward(content, style)

    munit.decoder_y.forward = spy
    image = _x((1, 3, 88, 72), seed=1)[0].numpy()
    out = stitch(
        image,
        lambda t: munit.translate(t, seed=11),
        tile=32,
        overlap=8,
        strategy="sati",
        batch_size=3,
        order="wavefront",
    )
    assert out.shape == image.shape and np.isfinite(out).all()
    assert len(seen) > 1  # several tile batches
    expected = munit.style_from_seed(11)
    assert all(s.shape == (1, munit.style_dim) and torch.equal(s, expected) for s in seen)
    # and the style matters: another seed gives another image
    other = stitch(
        image,
        lambda t: munit.translate(t, seed=12),
        tile=32,
        overlap=8,
        strategy="sati",
        batch_size=3,
    )
    assert not np.allclose(out, other, atol=1e-4)


def test_sati_training_decodes_y_hat_x_and_y_hat_z_with_the_steps_style(munit) -> None:
    munit.train(True)
    styles: list[torch.Tensor] = []
    decoder_forward = munit.decoder_y.forward

    def spy(content, style):
        styles.append(style.detach().clone())
        return decoder_forward(content, style)

    x, y = _x(), _x(seed=1) + 1.0
    torch.manual_seed(0)
    loss, y_hat = munit.generator_step(x, y)
    # outside the trainer: G_XY reproduces ŷ_x exactly while the step's style is set
    torch.testing.assert_close(munit.generator_xy(x), y_hat)
    munit.discriminator_step(x, y, y_hat.detach())
    assert munit.generator_xy.style is None  # the step's style ends with the step

    munit.decoder_y.forward = spy
    config = RunConfig(
        adapter=AdapterSpec("munit"),
        training=TrainingSettings(crop=32, batch_size=2, steps=3, amp=False),
    )
    trainer = SATITrainer(munit, config, device="cpu")
    trainer.train_step(x, y)
    # decoder_y calls of one step: ŷ_x = G_Y(c_x, s_y), the Y reconstruction (own style),
    # the cycle if enabled, and SATI's ŷ_z = G_XY(z) last: same sampled s_y as ŷ_x
    assert styles[0].shape == (2, munit.style_dim)
    assert torch.equal(styles[-1], styles[0])
    assert not torch.equal(styles[1], styles[0])


def test_style_batch_must_match(munit) -> None:
    munit.generator_xy.style = torch.zeros(3, munit.style_dim)
    with pytest.raises(ValueError, match="style batch 3"):
        munit.generator_xy(_x())
    munit.generator_xy.style = None


def test_style_ref_uses_the_reference_images_style_code(tmp_path, tiny_xy) -> None:
    from click.testing import CliRunner

    from satikit.checkpoint import load_adapter
    from satikit.cli import cli
    from satikit.io.images import write_image
    from satikit.translation.translate import translate_array

    info = get_adapter_info("munit")
    options = [a for k, v in info.test_options.items() for a in ("-o", k, str(v))]
    runner = CliRunner()
    munit_run = tiny_xy("--adapter", "munit", "--out", str(tmp_path / "run"), *options)
    assert runner.invoke(cli, munit_run).exit_code == 0
    refs = [tmp_path / "dark.tif", tmp_path / "bright.tif"]
    write_image(refs[0], np.full((40, 40, 3), 30, np.uint8))
    write_image(refs[1], np.full((80, 80, 3), 220, np.uint8))
    adapter, config = load_adapter(tmp_path / "run")
    seen = []

    def encode_style(y):  # a discriminative stand-in for the barely trained style encoder
        seen.append(tuple(y.shape))
        return y.mean().reshape(1, 1).expand(1, adapter.style_dim) * 20

    adapter.encode_style = encode_style
    image = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    kwargs = dict(strategy="sati", tile=32, overlap=8)
    dark = translate_array(adapter, config, image, style_ref=refs[0], **kwargs)
    again = translate_array(adapter, config, image, style_ref=refs[0], **kwargs)
    bright = translate_array(adapter, config, image, style_ref=refs[1], **kwargs)
    assert np.array_equal(dark, again) and not np.array_equal(dark, bright)
    assert seen == [(1, 3, 40, 40)] * 2 + [(1, 3, 64, 64)]  # at most one inference tile (64)
    # the CLI option reaches the same code; an adapter without styles is a one-line error
    out = tmp_path / "out.tif"
    ok = runner.invoke(
        cli,
        [
            "translate",
            str(tmp_path / "run"),
            str(tmp_path / "x" / "0.tif"),
            str(out),
            "--style-ref",
            str(refs[0]),
            "--quiet",
        ],
    )
    assert ok.exit_code == 0, ok.output
    cyclegan = "-o ngf 4 -o n_blocks 1 -o ndf 4 -o n_layers 1".split()
    assert runner.invoke(cli, tiny_xy("--out", str(tmp_path / "cg"), *cyclegan)).exit_code == 0
    bad = runner.invoke(
        cli,
        [
            "translate",
            str(tmp_path / "cg"),
            str(tmp_path / "x" / "0.tif"),
            str(tmp_path / "o2.tif"),
            "--style-ref",
            str(refs[0]),
        ],
    )
    assert bad.exit_code != 0 and "has no styles" in bad.output and "Traceback" not in bad.output


def test_kaiming_generator_init_follows_the_reference_and_leaves_the_discriminators():
    import torch

    from satikit.plugins import create_adapter

    options = dict(dims=2, in_channels=3, out_channels=3, dim=8, n_res=1, mlp_dim=16, ndf=8)
    torch.manual_seed(0)
    normal = create_adapter("munit", **options)
    torch.manual_seed(0)
    kaiming = create_adapter("munit", **options, gen_init="kaiming")
    # He-normal with fan-in: std sqrt(2 / fan_in) for the style MLP's linear layers too
    linear = kaiming.decoder_y.mlp[0]
    assert abs(float(linear.weight.detach().std()) - (2 / linear.in_features) ** 0.5) < 0.1
    assert float(normal.decoder_y.mlp[0].weight.detach().std()) < 0.3  # torch's default, untouched
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():  # the style encoder has no norm: N(0, 0.02) makes its codes vanish
        assert (
            kaiming.style_encoder_x(x).abs().mean() > 100 * normal.style_encoder_x(x).abs().mean()
        )
    for a, b in zip(normal.discriminator_y.parameters(), kaiming.discriminator_y.parameters()):
        assert torch.equal(a, b)  # drawn first, from the same seed, and left alone


def test_noise_channels_feed_the_decoders_last_conv_noise_in_training_zeros_at_inference():
    from satikit.gan.autoencoder import NoiseInput

    options = {**get_adapter_info("munit").test_options, "noise_channels": 2}
    torch.manual_seed(0)
    adapter = create_adapter("munit", **options)
    last = adapter.decoder_y.up[-1]
    assert isinstance(adapter.decoder_y.up[-2], NoiseInput)
    conv = next(m for m in last.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.in_channels == options["dim"] + 2  # the last stage's width + the noise maps
    content = torch.randn(2, adapter.content_encoder_x.out_channels, 8, 8)
    style = torch.randn(1, options["style_dim"])
    adapter.train(True)
    with torch.no_grad():
        a, b = adapter.decoder_y(content, style), adapter.decoder_y(content, style)
    assert not torch.allclose(a, b)  # fresh noise every forward while training
    adapter.train(False)
    x = _x()
    assert torch.equal(adapter.translate(x), adapter.translate(x))  # deterministic at inference
    layer = NoiseInput(3).eval()
    h = torch.randn(1, 4, 5, 5)
    assert torch.equal(layer(h), torch.cat([h, torch.zeros(1, 3, 5, 5)], 1))
    with pytest.raises(ValueError, match="noise channels must be >= 1"):
        NoiseInput(0)
