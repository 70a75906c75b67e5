"""Write the ONNX files the ONNX tests read: the three hand-written graphs of ``tests/graph_nets.py``
(seeded, BatchNorm statistics random, in inference mode) exported by both of torch's exporters.

    python tests/data/onnx/export.py      # rewrites <net>.torchscript.onnx and <net>.dynamo.onnx here

They are stored so that every backend's own test environment (which has no PyTorch) can read them;
``tests/test_onnx.py`` re-exports them with the TorchScript exporter where torch is installed and checks
that the stored files compute the same thing, and the ``slow`` test does the same for the dynamo exporter.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import onnx
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/, for graph_nets
from graph_nets import NETS, seeded  # noqa: E402

EXPORTERS = {"torchscript": {"dynamo": False, "opset_version": 17}, "dynamo": {"dynamo": True, "opset_version": 18}}


def export(name: str, exporter: str, path: Path) -> Path:
    """Export the seeded network ``name`` with ``exporter`` to ``path``."""
    model = seeded(NETS[name])
    x = torch.zeros((1, *NETS[name].input_shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], **EXPORTERS[exporter])
    onnx.save(onnx.load(str(path)), str(path))  # the dynamo exporter stores weights beside: one file
    path.with_name(path.name + ".data").unlink(missing_ok=True)
    return path


if __name__ == "__main__":
    for net in NETS:
        for kind in EXPORTERS:
            print(export(net, kind, HERE / f"{net}.{kind}.onnx"))
