"""torch.ao.quantization.quantize: quantize_dynamic and the qconfig propagation / module swap it uses."""
from __future__ import annotations

import copy

from ..._dtype import dtype, float16, qint8
from ...nn.modules.module import Module
from .qconfig import default_dynamic_qconfig, float16_dynamic_qconfig
from .quantization_mappings import DEFAULT_DYNAMIC_QCONFIG_TYPES, get_default_dynamic_quant_module_mappings

__all__ = ["quantize_dynamic", "propagate_qconfig_", "convert", "swap_module"]

_DEFAULT_QCONFIG = {qint8: default_dynamic_qconfig, float16: float16_dynamic_qconfig}


def quantize_dynamic(model: Module, qconfig_spec=None, dtype: dtype = qint8, mapping: dict | None = None,
                     inplace: bool = False) -> Module:
    """Replace the float submodules ``qconfig_spec`` names by their dynamic quantized versions.

    ``qconfig_spec``: None (every Linear, and the recurrent layers with a quantized version), a set of
    module types or names (quantized with ``dtype``'s default qconfig), or a dict from types or
    submodule names to QConfigs. ``dtype``: ``dtorch.qint8`` or ``dtorch.float16``.
    """
    if qconfig_spec is None:
        if dtype not in _DEFAULT_QCONFIG:
            raise ValueError(f"Don't know how to quantize with default settings for {dtype}. "
                             "Provide full qconfig please")
        qconfig_spec = dict.fromkeys(DEFAULT_DYNAMIC_QCONFIG_TYPES, _DEFAULT_QCONFIG[dtype])
    elif isinstance(qconfig_spec, set):
        if dtype not in _DEFAULT_QCONFIG:
            raise RuntimeError("Unknown dtype specified for quantize_dynamic: ", str(dtype))
        qconfig_spec = dict.fromkeys(qconfig_spec, _DEFAULT_QCONFIG[dtype])
    if mapping is None:
        mapping = get_default_dynamic_quant_module_mappings()
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    propagate_qconfig_(model, qconfig_spec)
    convert(model, mapping, inplace=True)
    _remove_qconfig(model)
    return model


def propagate_qconfig_(module: Module, qconfig_dict: dict | None = None, prepare_custom_config_dict=None) -> None:
    """Give every submodule a ``qconfig``: its type's or name's entry, else its parent's."""
    _propagate(module, qconfig_dict or {}, None, "")


def _propagate(module: Module, qconfig_dict: dict, parent_qconfig, prefix: str) -> None:
    qconfig = qconfig_dict.get(type(module), parent_qconfig)
    qconfig = qconfig_dict.get(prefix, qconfig)
    qconfig = getattr(module, "qconfig", qconfig)
    module.qconfig = qconfig
    for name, child in module.named_children():
        _propagate(child, qconfig_dict, qconfig, f"{prefix}.{name}" if prefix else name)


def convert(module: Module, mapping: dict | None = None, inplace: bool = False, **kwargs) -> Module:
    """Swap, below ``module``, each submodule with a qconfig whose type ``mapping`` names."""
    if mapping is None:
        mapping = get_default_dynamic_quant_module_mappings()
    if not inplace:
        module = copy.deepcopy(module)
    swapped = {}
    for name, mod in module.named_children():
        convert(mod, mapping, inplace=True)
        swapped[name] = swap_module(mod, mapping)
    for name, new in swapped.items():
        module._modules[name] = new
    return module


def swap_module(mod: Module, mapping: dict, custom_module_class_mapping: dict | None = None) -> Module:
    """``mapping[type(mod)].from_float(mod)`` when ``mod`` has a qconfig, keeping its forward hooks."""
    if getattr(mod, "qconfig", None) is None or type(mod) not in mapping:
        return mod
    new = mapping[type(mod)].from_float(mod)
    for hook in mod._forward_pre_hooks.values():
        new.register_forward_pre_hook(hook)
    for hook in mod._forward_hooks.values():
        new.register_forward_hook(hook)
    return new


def _remove_qconfig(module: Module) -> None:
    for m in module.modules():
        if "qconfig" in m.__dict__:
            del m.__dict__["qconfig"]
