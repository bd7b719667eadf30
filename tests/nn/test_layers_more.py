"""Layers used by the well-known example programs: padding, upsampling, pixel/channel shuffle, instance norm,
distances, fold/unfold, embedding bags; each against torch (values, gradients, repr, state dict keys)."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F
from tests.oracle import F32_TOL, check_grads, check_op, load_from_torch, rand, raises_like_torch

F32 = dtorch.float32

# (class name, constructor args, constructor kwargs, input shape)
MODULES = [
    ("ReflectionPad1d", (2,), {}, (2, 3, 5)),
    ("ReflectionPad2d", ((1, 2, 0, 3),), {}, (2, 3, 4, 5)),
    ("ReflectionPad3d", (1,), {}, (1, 2, 3, 3, 3)),
    ("ReplicationPad1d", ((3, 1),), {}, (3, 4)),
    ("ReplicationPad2d", (2,), {}, (1, 2, 3, 4)),
    ("ReplicationPad3d", ((1, 0, 2, 1, 0, 1),), {}, (1, 2, 2, 3, 3)),
    ("ZeroPad1d", ((1, 2),), {}, (2, 3, 4)),
    ("ZeroPad2d", ((1, 2, 3, 0),), {}, (2, 3, 4, 5)),
    ("ZeroPad3d", (1,), {}, (1, 2, 2, 2, 2)),
    ("ConstantPad1d", (2, 3.5), {}, (2, 3, 4)),
    ("ConstantPad2d", ((1, 0, 2, 1), -1.0), {}, (2, 3, 4, 4)),
    ("ConstantPad3d", (1, 0.5), {}, (1, 2, 2, 2, 2)),
    ("CircularPad1d", (2,), {}, (2, 3, 4)),
    ("CircularPad2d", ((1, 2, 2, 1),), {}, (1, 2, 3, 4)),
    ("CircularPad3d", (1,), {}, (1, 1, 2, 3, 3)),
    ("Upsample", (), dict(scale_factor=2), (2, 3, 3, 4)),
    ("Upsample", (), dict(size=7, mode="linear"), (2, 3, 4)),
    ("Upsample", (), dict(scale_factor=(1.5, 2.0), mode="bilinear", align_corners=False), (1, 2, 4, 3)),
    ("Upsample", (), dict(size=(5, 6), mode="bilinear", align_corners=True), (1, 2, 3, 4)),
    ("UpsamplingNearest2d", (), dict(scale_factor=3), (1, 2, 2, 3)),
    ("UpsamplingBilinear2d", (), dict(size=(4, 5)), (1, 2, 3, 3)),
    ("PixelShuffle", (2,), {}, (2, 8, 3, 4)),
    ("PixelShuffle", (3,), {}, (9, 2, 2)),
    ("PixelUnshuffle", (2,), {}, (2, 3, 4, 6)),
    ("ChannelShuffle", (2,), {}, (2, 6, 3, 3)),
    ("InstanceNorm1d", (3,), {}, (2, 3, 5)),
    ("InstanceNorm1d", (3,), dict(affine=True), (3, 6)),
    ("InstanceNorm2d", (3,), dict(affine=True, track_running_stats=True), (2, 3, 4, 4)),
    ("InstanceNorm3d", (2,), dict(eps=1e-3, momentum=0.3, track_running_stats=True), (2, 2, 3, 3, 3)),
    ("Fold", ((4, 5), 2), {}, (2, 12, 12)),
    ("Unfold", ((2, 3),), dict(padding=1, stride=2), (2, 3, 4, 5)),
    ("RMSNorm", (4,), {}, (2, 3, 4)),
    ("RMSNorm", ((3, 4),), dict(eps=1e-3, elementwise_affine=False), (2, 3, 4)),
    ("LocalResponseNorm", (3,), dict(alpha=0.1, beta=0.5, k=2.0), (2, 5, 3, 2)),
    ("LocalResponseNorm", (2,), {}, (2, 4, 3)),
    ("LPPool1d", (2, 3), dict(stride=2), (2, 3, 7)),
    ("LPPool2d", (2.0, (2, 3)), dict(ceil_mode=True), (1, 2, 5, 7)),
    ("LPPool3d", (1, 2), {}, (1, 2, 4, 4, 4)),
]


def _ids(case) -> str:
    name, args, kw, _ = case
    return name + "-" + "-".join(map(str, args)) + "-" + ",".join(f"{k}={v}" for k, v in kw.items())


def _pair(torch, name, args, kw):
    ours, theirs = getattr(dtorch.nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    if ours.state_dict():
        with torch.no_grad():
            for p in theirs.parameters():
                p.normal_()
        load_from_torch(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("case", MODULES, ids=[_ids(c) for c in MODULES])
def test_module_matches_torch(case, torch) -> None:
    name, args, kw, shape = case
    ours, theirs = _pair(torch, name, args, kw)
    ours.double(), theirs.double()
    for train in (True, False):
        ours.train(train), theirs.train(train)
        check_op(ours, theirs, [shape], params=(list(ours.parameters()), list(theirs.parameters())))
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, err_msg=k)


@pytest.mark.parametrize("fn,args", [
    (F.pixel_shuffle, (2,)), (F.pixel_unshuffle, (2,)), (F.channel_shuffle, (2,)),
    (lambda x: F.pad(x, (1, 2, 2, 1), mode="reflect"), ()),
    (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), ()),
])
def test_gradcheck_rearrangements(fn, args) -> None:
    x = rand(1, 4, 4, 4)
    check_grads(lambda x: fn(x, *args), x)


@pytest.mark.parametrize("dim", [1, -1, 0])
def test_cosine_similarity_and_distances(dim, torch) -> None:
    check_op(lambda lib, a, b: lib.nn.functional.cosine_similarity(a, b, dim=dim), shapes=[(3, 4), (3, 4)])
    check_op(lambda lib, a, b: lib.nn.CosineSimilarity(dim, eps=1e-6)(a, b), shapes=[(2, 3, 4), (1, 3, 4)])
    for p in (1.0, 2.0, 3.0):
        check_op(lambda lib, a, b, p=p: lib.nn.PairwiseDistance(p, keepdim=dim == 0)(a, b), shapes=[(5, 4), (5, 4)])
    check_op(lambda lib, a: lib.nn.functional.pdist(a, p=1.5 + dim), shapes=[(5, 3)])
    check_grads(lambda a, b: F.cosine_similarity(a, b, dim=dim), rand(3, 4), rand(3, 4))


def test_shuffle_and_distance_errors(torch) -> None:
    tf = torch.nn.functional
    raises_like_torch(lambda x: F.pixel_shuffle(x, 2), lambda x: tf.pixel_shuffle(x, 2), rand(2, 3))
    raises_like_torch(lambda x: F.pixel_shuffle(x, 2), lambda x: tf.pixel_shuffle(x, 2), rand(1, 5, 2, 2))
    raises_like_torch(lambda x: F.pixel_shuffle(x, 0), lambda x: tf.pixel_shuffle(x, 0), rand(1, 4, 2, 2))
    raises_like_torch(lambda x: F.pixel_unshuffle(x, 2), lambda x: tf.pixel_unshuffle(x, 2), rand(1, 4, 3, 2))
    raises_like_torch(lambda x: F.pixel_unshuffle(x, 2), lambda x: tf.pixel_unshuffle(x, 2), rand(1, 4, 4, 3))
    raises_like_torch(lambda x: F.channel_shuffle(x, 2), lambda x: tf.channel_shuffle(x, 2), rand(1, 5, 2))
    raises_like_torch(lambda x: F.channel_shuffle(x, 0), lambda x: tf.channel_shuffle(x, 0), rand(1, 4, 2))
    raises_like_torch(F.pdist, torch.pdist, rand(3, 4, 2))
    raises_like_torch(F.cosine_similarity, tf.cosine_similarity, rand(3, 4), rand(3, 5))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        dtorch.nn.CircularPad1d(1)(rand(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 2D input\)"):
        dtorch.nn.InstanceNorm2d(3)(rand(3, 4))
    with pytest.raises(ValueError, match="to match num_features"):
        dtorch.nn.InstanceNorm1d(4, affine=True)(rand(2, 3, 5))
    with pytest.warns(UserWarning, match="does not match num_features"):
        dtorch.nn.InstanceNorm1d(4)(rand(2, 3, 5))


def test_instance_norm_running_stats_eval_and_training(torch) -> None:
    ours, theirs = _pair(torch, "InstanceNorm2d", (3,), dict(affine=True, track_running_stats=True))
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32) * 2 + 1
        ours(dtorch.tensor(x)), theirs(torch.tensor(x))
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    ours.eval(), theirs.eval()
    check_op(ours, theirs, inputs=[rand(2, 3, 4, 4, dtype=F32)], params=(list(ours.parameters()),
                                                                         list(theirs.parameters())), **F32_TOL)


BAGS = [dict(mode="sum"), dict(mode="mean"), dict(mode="max"), dict(mode="mean", padding_idx=2),
        dict(mode="max", padding_idx=0), dict(mode="sum", include_last_offset=True), dict(mode="sum", max_norm=1.0)]


@pytest.mark.parametrize("kw", BAGS, ids=[",".join(f"{k}={v}" for k, v in kw.items()) for kw in BAGS])
def test_embedding_bag_matches_torch(kw, torch) -> None:
    ours, theirs = _pair(torch, "EmbeddingBag", (10, 3), kw)
    idx = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0, 2])
    offsets = np.array([0, 3, 3, 7, 10]) if kw.get("include_last_offset") else np.array([0, 3, 3, 7])
    params = (list(ours.parameters()), list(theirs.parameters()))
    check_op(lambda i, o: ours(i, o), lambda i, o: theirs(i, o),
             inputs=[dtorch.tensor(idx), dtorch.tensor(offsets)], params=params, **F32_TOL)
    check_op(lambda i: ours(i), lambda i: theirs(i), inputs=[dtorch.tensor(idx[:9].reshape(3, 3))], params=params,
             **F32_TOL)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-6)


def test_embedding_bag_per_sample_weights_and_errors(torch) -> None:
    w = rand(6, 4)
    idx, off = dtorch.tensor([0, 5, 2, 2, 1]), dtorch.tensor([0, 2])
    psw = rand(5)
    check_op(lambda w, i, o, s: F.embedding_bag(i, w, o, mode="sum", per_sample_weights=s),
             lambda w, i, o, s: torch.nn.functional.embedding_bag(i, w, o, mode="sum", per_sample_weights=s),
             inputs=[w, idx, off, psw])
    check_grads(lambda w, s: F.embedding_bag(idx, w, off, mode="sum", per_sample_weights=s), w, psw)
    tf = torch.nn.functional
    for kw in (dict(mode="mean", per_sample_weights=psw), dict(mode="max", scale_grad_by_freq=True),
               dict(mode="avg"), dict()):
        check_op(lambda w, i, kw=kw: F.embedding_bag(i, w, off if kw else None, **kw),
                 lambda w, i, kw=kw: tf.embedding_bag(i, w, torch.tensor([0, 2]) if kw else None,
                                               **{k: (torch.tensor(v.detach().numpy()) if k == "per_sample_weights"
                                                      else v) for k, v in kw.items()}),
                 inputs=[w, idx], errors=True)
    with pytest.raises(ValueError, match="if input is 2D, then offsets has to be None"):
        F.embedding_bag(idx.reshape(1, 5), w, off)
    assert repr(dtorch.nn.EmbeddingBag.from_pretrained(w.detach(), mode="max")) == \
        repr(torch.nn.EmbeddingBag.from_pretrained(torch.zeros(6, 4), mode="max"))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_unpool_matches_torch(n, torch) -> None:
    shape = (2, 3) + (4, 6, 4)[:n]
    x = rand(*shape)
    pool = f"max_pool{n}d"
    out, idx = getattr(F, pool)(x.detach(), 2, return_indices=True)
    _, tidx = getattr(torch.nn.functional, pool)(torch.tensor(x.detach().numpy()), 2, return_indices=True)
    assert np.array_equal(idx.numpy(), tidx.numpy())
    name = f"MaxUnpool{n}d"
    ours, theirs = _pair(torch, name, (2,), {})
    size = [s + 1 for s in shape[2:]]
    check_op(lambda o, i: ours(o, i), lambda o, i: theirs(o, i), inputs=[out.detach().requires_grad_(), idx])
    check_op(lambda o, i: ours(o, i, output_size=size), lambda o, i: theirs(o, i, output_size=size),
             inputs=[out.detach().requires_grad_(), idx])
    with pytest.raises(ValueError, match="invalid output_size"):
        ours(out, idx, output_size=[s + 3 for s in shape[2:]])


def test_rrelu_and_alpha_dropout(torch) -> None:
    x = rand(4000)
    rr = dtorch.nn.RReLU(0.1, 0.3)
    assert repr(rr) == repr(torch.nn.RReLU(0.1, 0.3))
    y = rr(x)
    neg = x.detach().numpy() < 0
    slope = y.detach().numpy()[neg] / x.detach().numpy()[neg]
    assert 0.1 <= slope.min() < 0.12 and 0.28 < slope.max() <= 0.3
    assert np.array_equal(y.detach().numpy()[~neg], x.detach().numpy()[~neg])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[neg], slope)
    rr.eval()
    check_op(rr, torch.nn.RReLU(0.1, 0.3).eval(), inputs=[x])
    selu = dtorch.nn.functional.selu(rand(200, 100, requires_grad=False))
    for cls in ("AlphaDropout", "FeatureAlphaDropout"):
        drop = getattr(dtorch.nn, cls)(0.2)
        assert repr(drop) == repr(getattr(torch.nn, cls)(0.2))
        out = drop(selu.reshape(200, 100, 1)).numpy()
        assert abs(out.mean() - selu.numpy().mean()) < 0.05 and abs(out.std() - selu.numpy().std()) < 0.05
        assert np.isclose(out, -1.7580993408473766 * (1 / np.sqrt((1.7580993408473766 ** 2 * 0.2 + 1) * 0.8))
                          + 1.7580993408473766 * (1 / np.sqrt((1.7580993408473766 ** 2 * 0.2 + 1) * 0.8)) * 0.2).any()
        drop.eval()
        assert drop(selu) is selu
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        F.alpha_dropout(selu, 1.5, True)


def test_rms_norm_functional(torch) -> None:
    check_op(lambda lib, x, w: lib.nn.functional.rms_norm(x, (4,), w), shapes=[(3, 4), (4,)], gradgrad=True)
    check_op(lambda lib, x: lib.nn.functional.rms_norm(x, [2, 4], eps=0.1), shapes=[(3, 2, 4)])
    check_op(lambda lib, x: lib.nn.functional.rms_norm(x, [4]), shapes=[(3, 4)], dtype=F32, **F32_TOL)
    raises_like_torch(lambda x: F.rms_norm(x, 4), lambda x: torch.nn.functional.rms_norm(x, 4), rand(2, 4),
                      exc=TypeError)
    raises_like_torch(lambda x: F.rms_norm(x, (3,)), lambda x: torch.nn.functional.rms_norm(x, (3,)), rand(2, 4))
    check_grads(lambda x: F.local_response_norm(x, 3, alpha=0.5), rand(1, 4, 3))


@pytest.mark.parametrize("mode,align", [("nearest-exact", None), ("area", None), ("bicubic", False),
                                        ("bicubic", True)])
@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(size=(3, 4)), dict(scale_factor=(1.7, 0.6))], ids=str)
def test_interpolate_more_modes(mode, align, kw, torch) -> None:
    check_op(lambda lib, x: lib.nn.functional.interpolate(x, mode=mode, align_corners=align, **kw),
             shapes=[(2, 3, 5, 7)])


def test_interpolate_more_modes_1d_gradcheck_and_errors(torch) -> None:
    for mode in ("nearest-exact", "area"):
        check_op(lambda lib, x, mode=mode: lib.nn.Upsample(size=8, mode=mode)(x), shapes=[(2, 3, 5)])
    check_grads(lambda x: F.interpolate(x, scale_factor=1.5, mode="bicubic"), rand(1, 2, 3, 3))
    check_op(lambda lib, x: lib.nn.functional.interpolate(x, size=6, mode="bicubic"), shapes=[(2, 3, 4)],
             errors=True)
    check_op(lambda lib, x: lib.nn.functional.interpolate(x, size=6, mode="area", align_corners=False),
             shapes=[(2, 3, 4)], errors=True)
