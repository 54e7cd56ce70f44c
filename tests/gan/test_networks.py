"""DCGAN generator / discriminator / critic: shapes, conditioning, initialisation."""

from __future__ import annotations

import itertools

import pytest
import torch

from transfigure.gan.networks import (
    SUPPORTED_IMAGE_SIZES,
    ClassBatchNorm2d,
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    init_dcgan_weights,
)

COMBOS = list(itertools.product(SUPPORTED_IMAGE_SIZES, (1, 3), (0, 3), ("transpose", "nearest")))


@pytest.mark.parametrize(("size", "channels", "n_classes", "upsample"), COMBOS)
def test_generator_and_discriminator_shapes(size, channels, n_classes, upsample):
    torch.manual_seed(0)
    # width 2 keeps the 128/256-pixel cases cheap
    g = Generator(
        GeneratorConfig(
            latent_dim=8,
            image_size=size,
            channels=channels,
            width=2,
            n_classes=n_classes,
            upsample=upsample,
        )
    )
    labels = torch.tensor([0, n_classes - 1]) if n_classes else None
    x = g(torch.randn(2, 8), labels)
    assert x.shape == (2, channels, size, size)
    assert x.min() >= -1.0 and x.max() <= 1.0  # tanh output
    for norm in ("batch", "layer"):
        d = Discriminator(
            DiscriminatorConfig(
                image_size=size, channels=channels, width=2, n_classes=n_classes, norm=norm
            )
        )
        out = d(x, labels)
        assert out.shape == (2,)
        assert torch.isfinite(out).all()


def test_dcgan_64_matches_the_reference_architecture():
    # pytorch/examples dcgan at nz=100, ngf=ndf=64, nc=3 has these parameter counts
    # (our discriminator's final conv adds one bias because it emits logits for BCEWithLogits)
    g = Generator(GeneratorConfig())
    d = Discriminator(DiscriminatorConfig())
    assert sum(p.numel() for p in g.parameters()) == 3_576_704
    assert sum(p.numel() for p in d.parameters()) == 2_765_568 + 1
    convs = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 3]


def test_nearest_upsampling_uses_no_transposed_convolution_after_projection():
    g = Generator(GeneratorConfig(image_size=32, width=4, upsample="nearest"))
    convt = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    ups = [m for m in g.modules() if isinstance(m, torch.nn.Upsample)]
    assert len(convt) == 1  # only the 1×1 → 4×4 projection
    assert len(ups) == 3  # 4 → 8 → 16 → 32


def test_init_is_normal_0_02():
    g = Generator(GeneratorConfig(), generator=torch.Generator().manual_seed(1))
    d = Discriminator(DiscriminatorConfig(), generator=torch.Generator().manual_seed(2))
    for net in (g, d):
        w = torch.cat(
            [
                m.weight.flatten()
                for m in net.modules()
                if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
            ]
        )
        assert w.mean().item() == pytest.approx(0.0, abs=5e-4)
        assert w.std().item() == pytest.approx(0.02, rel=0.01)
        bn = torch.cat([m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)])
        assert bn.mean().item() == pytest.approx(1.0, abs=5e-3)
        assert bn.std().item() == pytest.approx(0.02, rel=0.15)
        biases = [m.bias for m in net.modules() if getattr(m, "bias", None) is not None]
        assert all(torch.count_nonzero(b) == 0 for b in biases)


def test_init_is_reproducible_with_a_generator():
    cfg = GeneratorConfig(image_size=16, width=4)
    a = Generator(cfg, generator=torch.Generator().manual_seed(7)).state_dict()
    b = Generator(cfg, generator=torch.Generator().manual_seed(7)).state_dict()
    c = Generator(cfg, generator=torch.Generator().manual_seed(8)).state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert not torch.equal(a["net.0.weight"], c["net.0.weight"])


def test_init_dcgan_weights_covers_layer_and_instance_norm():
    d = Discriminator(DiscriminatorConfig(image_size=16, width=8, norm="instance"))
    init_dcgan_weights(d, std=0.5, generator=torch.Generator().manual_seed(0))
    inorm = [m for m in d.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert inorm and inorm[0].weight.std().item() > 0.1  # re-drawn with the larger std


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_label_changes_the_generated_image_and_the_score(conditioning):
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(latent_dim=8, image_size=16, width=4, n_classes=4)).eval()
    d = Discriminator(
        DiscriminatorConfig(
            image_size=16, width=4, n_classes=4, norm="none", conditioning=conditioning
        )
    )
    z = torch.randn(1, 8).expand(2, 8)
    x = g(z, torch.tensor([0, 1]))
    assert not torch.allclose(x[0], x[1])
    s = d(x[:1].expand(2, -1, -1, -1), torch.tensor([0, 3]))
    assert not torch.allclose(s[0], s[1])


@pytest.mark.parametrize("size", [16, 28, 64])
def test_projection_discriminator_adds_the_class_embedding_to_the_unconditional_logit(size):
    # Miyato & Koyama (2018), eq. 3: logit = ψ(φ(x)) + ⟨embed(y), Σ φ(x)⟩ — the label never
    # enters the image path, so with the embedding zeroed every label scores the same
    torch.manual_seed(0)
    d = Discriminator(
        DiscriminatorConfig(
            image_size=size, width=4, n_classes=3, norm="none", conditioning="projection"
        )
    )
    assert d.net[0].in_channels == 3  # the image only, no label channels
    x = torch.randn(2, 3, size, size)
    features = d.net[:-1](x)  # (2, W, base, base)
    labels = torch.tensor([2, 0])
    expected = d.net[-1](features).view(-1) + (d.embed.weight[labels] * features.sum((2, 3))).sum(1)
    torch.testing.assert_close(d(x, labels), expected)
    with torch.no_grad():
        d.embed.weight.zero_()
    torch.testing.assert_close(d(x, torch.tensor([0, 0])), d(x, torch.tensor([1, 2])))


def test_auxiliary_discriminator_predicts_the_label_without_seeing_it():
    torch.manual_seed(0)
    d = Discriminator(
        DiscriminatorConfig(
            image_size=16, channels=1, width=4, n_classes=5, norm="none", conditioning="auxiliary"
        )
    )
    assert d.net[0].in_channels == 1  # the image only
    x = torch.randn(3, 1, 16, 16)
    logits, classes = d(x, classes=True)
    assert logits.shape == (3,) and classes.shape == (3, 5)
    torch.testing.assert_close(d(x), logits)  # no labels needed, and they change nothing
    torch.testing.assert_close(d(x, torch.tensor([0, 1, 2])), logits)
    torch.testing.assert_close(classes, d.classifier(d.net[:-1](x)).flatten(1))
    with pytest.raises(ValueError, match="auxiliary"):
        Discriminator(DiscriminatorConfig(image_size=16, width=4, n_classes=5))(
            torch.randn(1, 3, 16, 16), torch.tensor([0]), classes=True
        )


def test_minibatch_std_lets_the_discriminator_see_a_collapsed_batch():
    torch.manual_seed(0)
    cfg = DiscriminatorConfig(image_size=16, channels=1, width=4, norm="layer", minibatch_std=True)
    d = Discriminator(cfg)
    assert d.net[-1].in_channels == 8 + 1  # the last features and the spread map
    assert Discriminator(DiscriminatorConfig(image_size=16, width=4)).net[-1].in_channels == 8
    varied = torch.randn(6, 1, 16, 16)
    collapsed = varied[:1].expand(6, -1, -1, -1)
    # the same image scores differently in a varied batch and in a batch of copies of itself
    assert not torch.allclose(d(varied)[:1], d(collapsed)[:1])
    # the spread is exactly the mean over features of their batch standard deviation
    features = d.net[:-1](varied)
    spread = features.std(0, unbiased=False).mean()
    head = torch.cat([features, spread.expand(6, 1, 4, 4)], dim=1)
    torch.testing.assert_close(d(varied), d.net[-1](head).view(-1))
    torch.testing.assert_close(
        d(collapsed),
        d.net[-1](torch.cat([d.net[:-1](collapsed), torch.zeros(6, 1, 4, 4)], dim=1)).view(-1),
    )
    assert torch.isfinite(d(varied[:1])).all()  # a batch of one: spread 0, not NaN


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_packed_discriminator_scores_packs_of_consecutive_samples(conditioning):
    torch.manual_seed(0)
    cfg = DiscriminatorConfig(
        image_size=16, channels=1, width=4, n_classes=3, norm="layer", pack=2,
        conditioning=conditioning,
    )  # fmt: skip
    d = Discriminator(cfg)
    assert d.net[0].in_channels == 2 * (1 + (3 if conditioning == "concat" else 0))
    x, labels = torch.randn(6, 1, 16, 16), torch.tensor([0, 0, 2, 2, 1, 1])
    scores = d(x, labels)
    assert scores.shape == (3,)
    # pack i is samples 2i and 2i + 1: changing sample 3 moves only the second pack's score
    y = x.clone()
    y[3] = torch.randn(1, 16, 16)
    moved = d(y, labels) != scores
    assert moved.tolist() == [False, True, False]
    # a pack is judged as a whole: its two members in the other order score differently
    swapped = x[[1, 0, 2, 3, 4, 5]]
    assert d(swapped, labels)[0] != scores[0]
    # projection reads one label per pack, its first member's; concat each member's own
    same = d(x, torch.tensor([0, 1, 2, 0, 1, 2]))[0] == scores[0]
    assert same == (conditioning == "projection")
    with pytest.raises(ValueError, match="packs of 2"):
        d(x[:5], labels[:5])


def test_first_bias_lets_a_layer_norm_critic_see_contrast():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    contrast = torch.tensor([1.0, 0.2, 0.5])[:, None, None, None]
    cfg = DiscriminatorConfig(image_size=16, channels=1, width=4, norm="layer", first_bias=True)
    d = Discriminator(cfg)
    init_dcgan_weights(d, std=0.5)
    with torch.no_grad():
        d.net[0].bias.normal_(0.0, 0.5)
    assert d.net[0].bias is not None and d.net[2].bias is None  # only the input layer
    assert not torch.allclose(d(x), d(contrast * x), atol=1e-3)


def test_class_batch_norm_generator_draws_per_class_and_starts_as_batch_norm():
    torch.manual_seed(0)
    cfg = GeneratorConfig(
        latent_dim=8, image_size=16, width=4, n_classes=3, conditioning="batchnorm"
    )
    g = Generator(cfg)
    assert g.net[0].in_channels == 8  # z only: the label enters through the norms
    cbn = [m for m in g.modules() if isinstance(m, ClassBatchNorm2d)]
    assert len(cbn) == 2  # 4×4 and 8×8
    z = torch.randn(1, 8).expand(3, 8)
    x = g.eval()(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(x[0], x[1])
    # with the embeddings zeroed it is the plain DCGAN batch norm (γ = 1, β = 0): labels are ignored
    with torch.no_grad():
        for m in cbn:
            m.scale.weight.zero_()
            m.shift.weight.zero_()
    y = g(z, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(y[0], y[1])
    torch.testing.assert_close(y[0], y[2])


def test_concat_is_the_default_and_keeps_the_model_file_layout():
    # model files written before the conditioning fields rebuild with concat: same keys, shapes
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(latent_dim=8, image_size=16, channels=1, width=4, n_classes=4))
    assert g.config.conditioning == "concat"
    assert g.net[0].in_channels == 8 + 4
    assert not any(isinstance(m, ClassBatchNorm2d) for m in g.modules())
    d = Discriminator(DiscriminatorConfig(image_size=16, channels=1, width=4, n_classes=4))
    assert d.config.conditioning == "concat"
    assert d.net[0].in_channels == 1 + 4
    assert all(k.startswith("net.") for k in d.state_dict())
    p = Discriminator(
        DiscriminatorConfig(
            image_size=16, channels=1, width=4, n_classes=4, conditioning="projection"
        )
    )
    assert p.embed.weight.shape == (4, 8)  # one vector per class, as wide as the last features
    assert p.embed.weight.std().item() == pytest.approx(0.02, rel=0.5)  # the DCGAN init
    unconditional = Discriminator(
        DiscriminatorConfig(image_size=16, width=4, conditioning="projection")
    )
    assert unconditional.embed is None


@pytest.mark.parametrize("norm", ["layer", "instance", "spectral", "none"])
def test_critic_scores_samples_independently(norm):
    # the gradient penalty needs per-sample gradients: no cross-sample coupling (no batch norm)
    torch.manual_seed(0)
    d = Discriminator(DiscriminatorConfig(image_size=16, channels=1, width=4, norm=norm))
    x = torch.randn(5, 1, 16, 16)
    d(x)
    d.eval()  # a training forward moves spectral norm's power iteration on: compare in eval
    torch.testing.assert_close(d(x)[:2], d(x[:2]))


def test_batch_norm_discriminator_couples_samples():
    torch.manual_seed(0)
    d = Discriminator(DiscriminatorConfig(image_size=16, channels=1, width=4, norm="batch"))
    x = torch.randn(5, 1, 16, 16)
    assert not torch.allclose(d(x)[:2], d(x[:2]))


@pytest.mark.parametrize("conditioning", ["concat", "projection", "auxiliary"])
def test_spectral_norm_bounds_every_layer_of_the_discriminator(conditioning):
    torch.manual_seed(0)
    cfg = DiscriminatorConfig(
        image_size=16, channels=1, width=4, n_classes=3, norm="spectral", conditioning=conditioning
    )
    d = Discriminator(cfg)
    x, labels = torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 0])
    for _ in range(30):  # one power iteration per training-mode forward
        d(x, labels)
    layers = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Embedding))]
    assert len(layers) == 3 + (conditioning != "concat")  # 16 → 8 → 4 → logit (+ embed/head)
    for m in layers:
        assert not any(isinstance(n, torch.nn.GroupNorm) for n in d.modules())
        # the raw weights are DCGAN-initialised; the ones used have spectral norm 1
        raw = m.parametrizations.weight.original
        assert torch.linalg.matrix_norm(raw.flatten(1), ord=2) < 0.9
        sigma = torch.linalg.matrix_norm(m.weight.flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=1e-2)
    d.eval()  # eval forwards reuse the stored vectors: deterministic
    torch.testing.assert_close(d(x, labels), d(x, labels), rtol=0, atol=0)


def test_layer_norm_critic_is_blind_to_contrast_and_spectral_norm_is_not():
    # why a layer-norm D lets G collapse to one colour pair: scaling one image's contrast scales
    # every bias-free conv and LeakyReLU output of that image, and the norm divides it out again
    # (exactly, once the weights are large enough for the norm's epsilon not to matter)
    torch.manual_seed(0)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    contrast = torch.tensor([1.0, 0.2, 0.5])[:, None, None, None]
    for norm, blind in (("layer", True), ("spectral", False)):
        d = Discriminator(DiscriminatorConfig(image_size=16, channels=1, width=4, norm=norm))
        if norm == "layer":
            init_dcgan_weights(d, std=0.5)  # trained-like scale
        same = torch.allclose(d(x), d(contrast * x), atol=1e-3)
        assert same is blind, norm


def test_dropout_layers_present_when_asked():
    d = Discriminator(DiscriminatorConfig(image_size=32, width=4, dropout=0.3))
    assert sum(isinstance(m, torch.nn.Dropout) for m in d.modules()) == 3


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (GeneratorConfig, {"image_size": 48}, "image_size"),
        (GeneratorConfig, {"channels": 2}, "channels"),
        (GeneratorConfig, {"upsample": "bilinear"}, "upsample"),
        (GeneratorConfig, {"latent_dim": 0}, "latent_dim"),
        (GeneratorConfig, {"conditioning": "projection"}, "conditioning"),
        (DiscriminatorConfig, {"norm": "group"}, "norm"),
        (DiscriminatorConfig, {"dropout": 1.0}, "dropout"),
        (DiscriminatorConfig, {"n_classes": -1}, "n_classes"),
        (DiscriminatorConfig, {"conditioning": "film"}, "conditioning"),
        (DiscriminatorConfig, {"pack": 0}, "pack"),
        (DiscriminatorConfig, {"pack": 2, "n_classes": 3, "conditioning": "auxiliary"}, "pack"),
    ],
)
def test_bad_configs_are_rejected(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_bad_inputs_are_rejected():
    g = Generator(GeneratorConfig(latent_dim=8, image_size=16, width=2, n_classes=3))
    with pytest.raises(ValueError, match="pass labels"):
        g(torch.randn(2, 8))
    with pytest.raises(ValueError, match="shape"):
        g(torch.randn(2, 9), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer"):
        g(torch.randn(2, 8), torch.tensor([0.0, 1.0]))
    d = Discriminator(DiscriminatorConfig(image_size=16, channels=3, width=2))
    with pytest.raises(ValueError, match="shape"):
        d(torch.randn(2, 1, 16, 16))


def test_conditioning_variants_rebuild_from_their_model_files(tmp_path):
    from transfigure.checkpoint import load_model, save_model

    torch.manual_seed(0)
    g = Generator(
        GeneratorConfig(latent_dim=8, image_size=16, width=4, n_classes=3, conditioning="batchnorm")
    ).eval()
    d = Discriminator(
        DiscriminatorConfig(image_size=16, width=4, n_classes=3, conditioning="projection")
    ).eval()
    a = Discriminator(
        DiscriminatorConfig(
            image_size=16, width=4, n_classes=3, conditioning="auxiliary", minibatch_std=True
        )
    )
    s = Discriminator(DiscriminatorConfig(image_size=16, width=4, n_classes=3, norm="spectral"))
    p = Discriminator(
        DiscriminatorConfig(
            image_size=16, width=4, n_classes=3, norm="layer", pack=3, first_bias=True
        )
    ).eval()
    x = torch.randn(3, 3, 16, 16)
    a(x), s(x, torch.tensor([0, 1, 2]))  # a training step's power iteration, to be kept
    a, s = a.eval(), s.eval()
    save_model(g, tmp_path / "g.safetensors", kind="gan-generator", config=g.config)
    save_model(d, tmp_path / "d.safetensors", kind="gan-discriminator", config=d.config)
    save_model(a, tmp_path / "a.safetensors", kind="gan-discriminator", config=a.config)
    save_model(s, tmp_path / "s.safetensors", kind="gan-discriminator", config=s.config)
    save_model(p, tmp_path / "p.safetensors", kind="gan-discriminator", config=p.config)
    g2, _ = load_model(tmp_path / "g.safetensors", kind="gan-generator")
    d2, _ = load_model(tmp_path / "d.safetensors", kind="gan-discriminator")
    a2, _ = load_model(tmp_path / "a.safetensors", kind="gan-discriminator")
    s2, _ = load_model(tmp_path / "s.safetensors", kind="gan-discriminator")
    p2, _ = load_model(tmp_path / "p.safetensors", kind="gan-discriminator")
    z, labels = torch.randn(3, 8), torch.tensor([0, 1, 2])
    torch.testing.assert_close(s2.eval()(x, labels), s(x, labels), rtol=0, atol=0)
    assert (p2.config.pack, p2.config.first_bias) == (3, True)
    torch.testing.assert_close(p2.eval()(x, labels), p(x, labels), rtol=0, atol=0)
    torch.testing.assert_close(g2.eval()(z, labels), g(z, labels), rtol=0, atol=0)
    torch.testing.assert_close(d2.eval()(x, labels), d(x, labels), rtol=0, atol=0)
    for got, want in zip(a2.eval()(x, classes=True), a(x, classes=True), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
