"""torch.onnx.errors: what export raises."""
from __future__ import annotations

__all__ = ["OnnxExporterError", "UnsupportedOperatorError"]


class OnnxExporterError(RuntimeError):
    """An export that cannot be completed."""


class UnsupportedOperatorError(OnnxExporterError):
    """An op with no ONNX lowering at the requested opset (torch's wording)."""

    def __init__(self, name: str, version: int, supported_version: int | None) -> None:
        if supported_version is not None:
            msg = (f"Exporting the operator '{name}' to ONNX opset version {version} is not supported. Support for "
                   f"this operator was added in version {supported_version}, try exporting with this version.")
        else:
            msg = (f"Exporting the operator '{name}' to ONNX opset version {version} is not supported. Please feel "
                   "free to request support or submit a pull request.")
        super().__init__(msg)
