"""What torch users save besides tensors and containers, stored as data: numpy arrays, argparse.Namespace, and
whole modules (the class's import path, plain attributes, parameters, buffers and submodules).

A module is rebuilt without calling its ``__init__`` (as unpickling does) and without importing anything: its
class's module must already be imported (``import model`` before ``dtorch.load``), and the class must be an
``nn.Module``; otherwise the load is refused with a message naming the class. So a file never makes dtorch run
code it names.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

_MODULE_INTERNALS = frozenset({
    "training", "_parameters", "_buffers", "_non_persistent_buffers_set", "_modules", "_forward_hooks",
    "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks",
    "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks", "_is_full_backward_hook",
})
_PLAIN = (bool, int, float, str, type(None))


def module_class():
    """dtorch.nn's Module (imported above this layer; always loaded once ``import dtorch`` has run)."""
    mod = sys.modules.get("dtorch.nn.modules.module")
    return None if mod is None else mod.Module


def _plain(value) -> bool:
    if isinstance(value, _PLAIN):
        return True
    return isinstance(value, (tuple, list)) and all(_plain(v) for v in value)


def encode_module(m, encode: Callable, path: str) -> dict:
    cls = type(m)
    attrs = {}
    for k, v in vars(m).items():
        if k in _MODULE_INTERNALS:
            continue
        if not _plain(v):
            raise TypeError(f"dtorch.save: module {cls.__qualname__} at {path or 'the top level'!r} has attribute "
                            f"{k!r} of type {type(v).__name__}, which dtorch cannot store as data; save its "
                            "state_dict() instead and rebuild the module in code")
        attrs[k] = v
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "training": m.training,
            "attrs": encode(attrs, f"{path}.__attrs__"),
            "parameters": encode(dict(m._parameters), f"{path}.__parameters__"),
            "buffers": encode(dict(m._buffers), f"{path}.__buffers__"),
            "persistent": [k for k in m._buffers if k not in m._non_persistent_buffers_set],
            "modules": {k: None if v is None else encode_module(v, encode, f"{path}.{k}")
                        for k, v in m._modules.items()}}


def _resolve(spec: str, source: str):
    module_name, _, qualname = spec.partition(":")
    mod = sys.modules.get(module_name)
    if mod is None:
        raise ValueError(f"{source}: holds a {spec} module; import {module_name} before dtorch.load (dtorch never "
                         "imports what a file names)")
    obj = mod
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    Module = module_class()
    if not (isinstance(obj, type) and Module is not None and issubclass(obj, Module)):
        raise ValueError(f"{source}: {spec} is not an nn.Module class in the running program")
    return obj


def decode_module(body: Any, decode: Callable, source: str):
    if not (isinstance(body, dict) and isinstance(body.get("class"), str) and isinstance(body.get("modules"), dict)):
        raise ValueError(f"{source}: malformed saved module entry")
    cls = _resolve(body["class"], source)
    Module, Parameter = module_class(), sys.modules["dtorch.nn.parameter"].Parameter
    m = cls.__new__(cls)
    Module.__init__(m)
    attrs, params, buffers = (decode(body.get(k)) for k in ("attrs", "parameters", "buffers"))
    if not all(isinstance(d, dict) for d in (attrs, params, buffers)):
        raise ValueError(f"{source}: malformed saved module entry for {body['class']}")
    for k, v in attrs.items():
        object.__setattr__(m, k, v)
    m.training = bool(body.get("training", True))
    for k, t in params.items():
        m._parameters[k] = None if t is None else _as_parameter(t, Parameter)
    for k, t in buffers.items():
        m._buffers[k] = t
    m._non_persistent_buffers_set = set(buffers) - set(body.get("persistent", list(buffers)))
    for k, sub in body["modules"].items():
        m._modules[k] = None if sub is None else decode_module(sub, decode, source)
    return m


_PARAMS: dict[int, Any] = {}  # tensor id -> its Parameter during one load (a tied weight stays one object)


def _as_parameter(t, Parameter):
    p = _PARAMS.get(id(t))
    if p is None:
        p = _PARAMS[id(t)] = Parameter(t.detach(), requires_grad=bool(t.requires_grad))
    return p


def end_load() -> None:
    _PARAMS.clear()


def encode_namespace(ns: argparse.Namespace, encode: Callable, path: str) -> Any:
    return encode(dict(vars(ns)), path)


def decode_namespace(items: dict) -> argparse.Namespace:
    return argparse.Namespace(**items)
