"""prune.compact's shrinking: drop the all-zero output channels of Linear/Conv layers in nn.Sequential.

A producer's output channel whose weights are all zero is a constant (its bias through the
elementwise layers after it); that constant's contribution goes into the consumer's bias and the
channel leaves both layers. A channel the consumer ignores (all-zero input weights) leaves too.
"""
from __future__ import annotations

from ..._device import xp_of
from ...autograd.grad_mode import no_grad
from ...tensor import _make
from ..modules.activation import (
    CELU, ELU, GELU, SELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSigmoid, Mish, ReLU, Sigmoid, SiLU,
    Softplus, Softsign, Tanh, Tanhshrink,
)
from ..modules.container import Sequential
from ..modules.conv import _ConvNd, _ConvTransposeNd
from ..modules.dropout import _DropoutNd
from ..modules.flatten import Flatten, Identity
from ..modules.linear import Linear
from ..modules.module import Module
from ..parameter import Parameter

_ELEMENTWISE = (CELU, ELU, GELU, SELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSigmoid, Mish, ReLU, Sigmoid,
                SiLU, Softplus, Softsign, Tanh, Tanhshrink, Identity)
_PASSTHROUGH = _ELEMENTWISE + (_DropoutNd, Flatten)


def _is_dense(m: Module) -> bool:
    """A Linear, or a plain (not transposed, one group) convolution."""
    if isinstance(m, Linear):
        return True
    return isinstance(m, _ConvNd) and not isinstance(m, _ConvTransposeNd) and m.groups == 1


def shrink_sequentials(model: Module) -> None:
    """Shrink every producer/consumer pair inside each nn.Sequential of ``model`` (in place)."""
    with no_grad():
        for seq in list(model.modules()):
            if isinstance(seq, Sequential):
                _shrink_sequence(list(seq._modules.values()))


def _shrink_sequence(layers: list) -> None:
    for i, producer in enumerate(layers):
        if not _is_dense(producer):
            continue
        between = []
        for consumer in layers[i + 1:]:
            if _is_dense(consumer):
                _shrink_pair(producer, between, consumer)
                break
            if not isinstance(consumer, _PASSTHROUGH):
                break
            between.append(consumer)


def _shrink_pair(producer: Module, between: list, consumer: Module) -> None:
    w1 = producer.weight._data
    xp = xp_of(w1)
    n_out = w1.shape[0]
    w2 = consumer.weight._data
    if isinstance(consumer, Linear):
        if consumer.in_features % n_out:
            return
        block = consumer.in_features // n_out
        w2_blocks = w2.reshape(w2.shape[0], n_out, block)  # (out2, channel, columns of that channel)
        spatial_ok = True
    else:
        if consumer.in_channels != n_out:
            return
        w2_blocks = w2.reshape(w2.shape[0], n_out, -1)
        spatial_ok = all(p == 0 for p in consumer.padding) if not isinstance(consumer.padding, str) \
            else consumer.padding == "valid"
    dead_out = ~xp.any(w1.reshape(n_out, -1) != 0, axis=1)
    dead_in = ~xp.any(w2_blocks != 0, axis=(0, 2))
    const = _channel_constants(producer, between, xp)
    foldable = dead_out & ((const == 0) | spatial_ok)
    remove = dead_in | foldable
    keep = ~remove
    if not bool(keep.any()):
        keep[0] = True
        remove[0] = False
    if not bool(remove.any()):
        return
    fold = remove & ~dead_in & (const != 0)
    if bool(fold.any()):
        extra = (w2_blocks[:, fold, :].sum(axis=2) * const[fold]).sum(axis=1)
        if consumer.bias is None:
            consumer.bias = Parameter(_make(xp.zeros(w2.shape[0], dtype=w2.dtype)))
        consumer.bias._data = consumer.bias._data + extra.astype(w2.dtype)
    _set_param(producer, "weight", w1[keep])
    if producer.bias is not None:
        _set_param(producer, "bias", producer.bias._data[keep])
    w2_kept = w2_blocks[:, keep, :].reshape((w2.shape[0], -1) + w2.shape[2:])
    _set_param(consumer, "weight", w2_kept)
    n_keep = int(keep.sum())
    if isinstance(producer, Linear):
        producer.out_features = n_keep
    else:
        producer.out_channels = n_keep
    if isinstance(consumer, Linear):
        consumer.in_features = w2_kept.shape[1]
    else:
        consumer.in_channels = n_keep


def _channel_constants(producer: Module, between: list, xp):
    """Each output channel's value when its weights are zero: the bias through the elementwise layers."""
    n_out = producer.weight.shape[0]
    if producer.bias is None:
        return xp.zeros(n_out, dtype=producer.weight._data.dtype)
    value = producer.bias.detach().clone()
    for m in between:
        if isinstance(m, _ELEMENTWISE):
            value = m(value)
    return value._data


def _set_param(module: Module, name: str, arr) -> None:
    old = module._parameters[name]
    module._parameters[name] = Parameter(_make(arr.copy()), requires_grad=old.requires_grad)
