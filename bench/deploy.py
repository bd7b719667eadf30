"""Deployment benchmark: inference of the digits MLP and a 784-1024-1024-10 MLP at 1 thread, batch 64.

Per model: dtorch float, dtorch dynamic int8 (``quantize_dynamic``), ONNX Runtime on dtorch's float and
int8 exports (when onnx/onnxruntime are installed), torch float and torch ``quantize_dynamic`` (when torch is
installed), in batches per second (median of single batches run
in turn), the saved state_dict sizes, and for the large MLP the 50% ``ln_structured``-pruned model
after ``prune.compact`` against the unpruned one. Then a word-language-model LSTM (2 layers, 256 wide, 35 steps
of a batch of 20): dtorch float, dtorch ``quantize_dynamic`` and torch float / ``quantize_dynamic``. numpy has no
int8 GEMM, so dtorch's quantized layers save memory, not time (each step also quantizes its activations).
One JSON line on stdout.

    python bench/deploy.py [--rounds 5] [--steps 40]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import copy  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import dtorch  # noqa: E402
from bench._interleave import steps_per_s  # noqa: E402
from dtorch.nn.utils import prune  # noqa: E402

MODELS = {"digits": (64, 128, 128, 10), "mlp784": (784, 1024, 1024, 10)}
BATCH = 64
LSTM_SHAPE = {"input": 256, "hidden": 256, "layers": 2, "seq": 35, "batch": 20}


class Infer:
    """``step`` runs one batch through the model without gradients."""

    def __init__(self, lib, model) -> None:
        self.lib, self.model = lib, model

    def step(self, x, y) -> float:
        with self.lib.no_grad():
            out = self.model(x)
            out = out[0] if isinstance(out, tuple) else out  # a recurrent layer's (output, hidden)
            return float(out.reshape(-1)[0])


def _mlp(lib, sizes: tuple, weights: list):
    layers = []
    for w, b in weights:
        lin = lib.nn.Linear(w.shape[1], w.shape[0])
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(w))
            lin.bias.copy_(lib.tensor(b))
        layers += [lin, lib.nn.ReLU()]
    return lib.nn.Sequential(*layers[:-1]).eval()


def _weights(sizes: tuple, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [((rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32), (rng.standard_normal(o) * 0.1)
             .astype(np.float32)) for i, o in zip(sizes[:-1], sizes[1:])]


def _size(lib, model) -> int:
    if lib is dtorch:
        with tempfile.TemporaryDirectory() as d:
            dtorch.save(model.state_dict(), os.path.join(d, "m.pt"))
            return os.path.getsize(os.path.join(d, "m.pt"))
    buf = io.BytesIO()
    lib.save(model.state_dict(), buf)
    return buf.tell()


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


class OrtInfer:
    """``step`` runs one batch through an ONNX Runtime session (1 thread) on a model dtorch exported."""

    def __init__(self, model, x) -> None:
        import onnxruntime as ort

        buf = io.BytesIO()
        dtorch.onnx.export(model, (dtorch.tensor(x),), buf, input_names=["x"], output_names=["y"])
        self.bytes = len(buf.getvalue())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])

    def step(self, x, y) -> float:
        return float(self.sess.run(None, {"x": x})[0][0, 0])


def _ort_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def bench_model(name: str, sizes: tuple, torch, rounds: int, steps: int) -> dict:
    weights = _weights(sizes)
    x = np.random.default_rng(1).random((BATCH, sizes[0]), dtype=np.float32)
    impls, models = {}, {}
    for lib_name, lib in (("dtorch", dtorch), ("torch", torch)):
        if lib is None:
            continue
        float_model = _mlp(lib, sizes, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q_model = lib.ao.quantization.quantize_dynamic(float_model, {lib.nn.Linear}, dtype=lib.qint8)
        models[f"{lib_name}_float"], models[f"{lib_name}_qint8"] = (lib, float_model), (lib, q_model)
        xx = lib.tensor(x)
        impls[f"{lib_name}_float"] = (Infer(lib, float_model), xx, None)
        impls[f"{lib_name}_qint8"] = (Infer(lib, q_model), xx, None)
    onnx_bytes = {}
    if _ort_available():
        for kind in ("float", "qint8"):
            infer = OrtInfer(models[f"dtorch_{kind}"][1], x)
            impls[f"ort_{kind}"] = (infer, x, None)
            onnx_bytes[f"onnx_{kind}_bytes"] = infer.bytes
    if name == "mlp784":
        pruned = _mlp(dtorch, sizes, weights)
        for layer in (pruned[0], pruned[2]):
            prune.ln_structured(layer, "weight", amount=0.5, n=2, dim=0)
        impls["dtorch_pruned_masked"] = (Infer(dtorch, pruned), dtorch.tensor(x), None)
        compact = prune.compact(copy.deepcopy(pruned))
        impls["dtorch_pruned_compact"] = (Infer(dtorch, compact), dtorch.tensor(x), None)
        models["dtorch_pruned_compact"] = (dtorch, compact)
    rates = steps_per_s(impls, rounds, steps)
    out = {k.removesuffix("_steps_per_s") + "_batches_per_s": v for k, v in rates.items() if k.endswith("_per_s")}
    out.update({f"{k}_bytes": _size(lib, m) for k, (lib, m) in models.items()})
    out.update(onnx_bytes)
    out["dtorch_qint8_over_float_speed"] = _ratio(out, "dtorch_qint8_batches_per_s", "dtorch_float_batches_per_s")
    if onnx_bytes:
        out["ort_qint8_over_dtorch_float"] = _ratio(out, "ort_qint8_batches_per_s", "dtorch_float_batches_per_s")
        out["ort_qint8_over_ort_float"] = _ratio(out, "ort_qint8_batches_per_s", "ort_float_batches_per_s")
    out["dtorch_float_over_qint8_bytes"] = _ratio(out, "dtorch_float_bytes", "dtorch_qint8_bytes")
    if torch is not None:
        out["dtorch_float_over_torch_float"] = _ratio(out, "dtorch_float_batches_per_s", "torch_float_batches_per_s")
        out["dtorch_qint8_over_torch_qint8"] = _ratio(out, "dtorch_qint8_batches_per_s", "torch_qint8_batches_per_s")
    if name == "mlp784":
        out["compact_over_unpruned_speed"] = _ratio(out, "dtorch_pruned_compact_batches_per_s",
                                                    "dtorch_float_batches_per_s")
        with dtorch.no_grad():
            xt = dtorch.tensor(x)
            out["compact_max_abs_diff"] = float((compact(xt) - pruned(xt)).abs().max())
    return out


def bench_lstm(torch, rounds: int, steps: int) -> dict:
    """The word-language-model LSTM, float and dynamic int8, dtorch and torch on the same weights."""
    sh = LSTM_SHAPE
    ref = dtorch.nn.LSTM(sh["input"], sh["hidden"], sh["layers"])
    x = np.random.default_rng(2).standard_normal((sh["seq"], sh["batch"], sh["input"])).astype(np.float32)
    impls, models = {}, {}
    for lib_name, lib in (("dtorch", dtorch), ("torch", torch)):
        if lib is None:
            continue
        lstm = lib.nn.LSTM(sh["input"], sh["hidden"], sh["layers"])
        lstm.load_state_dict({k: lib.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
        float_model = lib.nn.Sequential(lstm).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q_model = lib.ao.quantization.quantize_dynamic(float_model, {lib.nn.LSTM}, dtype=lib.qint8)
        for kind, m in (("float", float_model), ("qint8", q_model)):
            models[f"{lib_name}_{kind}"] = (lib, m)
            impls[f"{lib_name}_{kind}"] = (Infer(lib, m), lib.tensor(x), None)
    rates = steps_per_s(impls, rounds, steps)
    out = {"shape": sh}
    out.update({k.removesuffix("_steps_per_s") + "_batches_per_s": v for k, v in rates.items() if k.endswith("_per_s")})
    out.update({f"{k}_bytes": _size(lib, m) for k, (lib, m) in models.items()})
    out["dtorch_qint8_over_float_speed"] = _ratio(out, "dtorch_qint8_batches_per_s", "dtorch_float_batches_per_s")
    out["dtorch_float_over_qint8_bytes"] = _ratio(out, "dtorch_float_bytes", "dtorch_qint8_bytes")
    if torch is not None:
        out["dtorch_qint8_over_torch_qint8"] = _ratio(out, "dtorch_qint8_batches_per_s", "torch_qint8_batches_per_s")
        out["torch_qint8_over_float_speed"] = _ratio(out, "torch_qint8_batches_per_s", "torch_float_batches_per_s")
        with dtorch.no_grad():
            yd = models["dtorch_qint8"][1](dtorch.tensor(x))[0].numpy()
        yt = models["torch_qint8"][1](torch.tensor(x))[0].detach().numpy()
        out["qint8_max_abs_diff_vs_torch"] = float(np.abs(yd - yt).max())
    return out


def _ratio(out: dict, a: str, b: str) -> float:
    return round(out[a] / out[b], 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    torch = _torch()
    result = {"bench": "deploy", "threads": 1, "batch": BATCH}
    for name, sizes in MODELS.items():
        result[name] = bench_model(name, sizes, torch, args.rounds, args.steps)
    result["lstm_lm"] = bench_lstm(torch, args.rounds, max(args.steps // 4, 2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
