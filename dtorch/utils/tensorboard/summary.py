"""The Summary protocol buffers SummaryWriter writes: scalars, histograms, text and hparams, as torch builds them
(``torch.utils.tensorboard.summary``), so TensorBoard shows them the same way."""
from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import struct_pb2
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams.api_pb2 import DataType, Experiment, HParamInfo, MetricInfo, MetricName, Status
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionEndInfo, SessionStartInfo
from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData


def make_np(x: Any) -> np.ndarray:
    """A numpy array of a tensor (dtorch's, on any device), an array or a Python number."""
    if isinstance(x, np.ndarray):
        return x
    if np.isscalar(x):
        return np.array([x])
    if hasattr(x, "detach"):
        return np.asarray(x.detach().cpu().numpy())
    raise NotImplementedError(f"Got {type(x)}, but numpy array or torch tensor are expected.")


def scalar(name: str, value: Any, new_style: bool = False, double_precision: bool = False) -> Summary:
    arr = make_np(value).squeeze()
    if arr.ndim != 0:
        raise AssertionError(f"Tensor should contain one element (0 dimensions). Was given size: {arr.size} and "
                             f"{arr.ndim} dimensions.")
    v = float(arr)
    if not new_style:
        return Summary(value=[Summary.Value(tag=name, simple_value=v)])
    tensor = TensorProto(double_val=[v], dtype="DT_DOUBLE") if double_precision else TensorProto(
        float_val=[v], dtype="DT_FLOAT")
    smd = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    return Summary(value=[Summary.Value(tag=name, tensor=tensor, metadata=smd)])


def default_bins() -> list[float]:
    """TensorFlow's histogram buckets: +-1e-12 growing by 10% to 1e20, and 0."""
    v, pos = 1e-12, []
    while v < 1e20:
        pos.append(v)
        v *= 1.1
    return [-b for b in reversed(pos)] + [0] + pos


def histogram(name: str, values: Any, bins: Any, max_bins: int | None = None) -> Summary:
    values = make_np(values).astype(float).reshape(-1)
    if values.size == 0:
        raise ValueError("The input has no element.")
    counts, limits = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        sub = len(counts) // max_bins
        if len(counts) % sub:
            counts = np.pad(counts, [[0, sub - len(counts) % sub]])
        counts = counts.reshape(-1, sub).sum(axis=-1)
        limits = np.concatenate([limits[:-1:sub], limits[-1:]])
    # keep the support (first to last non-empty bucket); TensorBoard reads right edges, so one empty bucket
    # before the first holds its left edge
    nonzero = np.flatnonzero(counts)
    if nonzero.size == 0:
        raise ValueError("The histogram is empty, please file a bug report.")
    start, end = int(nonzero[0]), int(nonzero[-1]) + 1
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    return Summary(value=[Summary.Value(tag=name, histo=HistogramProto(
        min=values.min(), max=values.max(), num=len(values), sum=values.sum(), sum_squares=values.dot(values),
        bucket_limit=limits.tolist(), bucket=counts.tolist()))])


def text(tag: str, text_string: str) -> Summary:
    smd = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
        plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
    tensor = TensorProto(dtype="DT_STRING", string_val=[text_string.encode("utf_8")],
                         tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    return Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=smd, tensor=tensor)])


# torch's order: a bool is an int, so it is logged as a number
_HPARAM_KINDS = (((int, float), "number_value", "DATA_TYPE_FLOAT64"), (str, "string_value", "DATA_TYPE_STRING"))


def _hparam_info(ssi: SessionStartInfo, name: str, value: Any, discrete: list | None) -> HParamInfo:
    if hasattr(value, "detach"):
        value = float(make_np(value).reshape(-1)[0])
    for kind, field, data_type in _HPARAM_KINDS:
        if isinstance(value, kind):
            setattr(ssi.hparams[name], field, value)
            domain = struct_pb2.ListValue(values=[struct_pb2.Value(**{field: d}) for d in discrete]) if (
                discrete is not None) else None
            return HParamInfo(name=name, type=DataType.Value(data_type), domain_discrete=domain)
    raise ValueError("value should be one of int, float, str, bool, or torch.Tensor")


def _plugin_summary(tag: str, **content: Any) -> Summary:
    data = HParamsPluginData(version=hparams_metadata.PLUGIN_DATA_VERSION, **content)
    smd = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
        plugin_name=hparams_metadata.PLUGIN_NAME, content=data.SerializeToString()))
    return Summary(value=[Summary.Value(tag=tag, metadata=smd)])


def hparams(hparam_dict: dict, metric_dict: dict, hparam_domain_discrete: dict | None = None,
            ) -> tuple[Summary, Summary, Summary]:
    """The hparams plugin's experiment, session-start and session-end summaries."""
    if not isinstance(hparam_dict, dict):
        raise TypeError("parameter: hparam_dict should be a dictionary, nothing logged.")
    if not isinstance(metric_dict, dict):
        raise TypeError("parameter: metric_dict should be a dictionary, nothing logged.")
    discrete = hparam_domain_discrete or {}
    if not isinstance(discrete, dict):
        raise TypeError("parameter: hparam_domain_discrete should be a dictionary, nothing logged.")
    for k, v in discrete.items():
        if k not in hparam_dict or not isinstance(v, list) or not all(isinstance(d, type(hparam_dict[k])) for d in v):
            raise TypeError(f"parameter: hparam_domain_discrete[{k}] should be a list of same type as "
                            f"hparam_dict[{k}].")
    ssi = SessionStartInfo()
    infos = [_hparam_info(ssi, k, v, discrete.get(k)) for k, v in hparam_dict.items() if v is not None]
    experiment = Experiment(hparam_infos=infos, metric_infos=[MetricInfo(name=MetricName(tag=k)) for k in metric_dict])
    return (_plugin_summary(hparams_metadata.EXPERIMENT_TAG, experiment=experiment),
            _plugin_summary(hparams_metadata.SESSION_START_INFO_TAG, session_start_info=ssi),
            _plugin_summary(hparams_metadata.SESSION_END_INFO_TAG,
                            session_end_info=SessionEndInfo(status=Status.Value("STATUS_SUCCESS"))))
