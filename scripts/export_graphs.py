"""Export the ONNX graphs (without weights) that ONNX Runtime runs the shipped models with.

Usage: python scripts/export_graphs.py     (needs the ``onnx`` package; run after a new architecture)

For each architecture and size the zoo uses, the torch network is exported once with
dynamic batch and tile sides, and every weight is marked as external data: the graph
ships in ``src/napari_cnnjpeg/graphs/`` and the hash-checked safetensors weights are
handed to ONNX Runtime in memory at run time (``napari_cnnjpeg.nn.inference.OrtNet``).
"""

import hashlib
import io
import json
import warnings
from pathlib import Path

import onnx
import torch
from onnx import external_data_helper

from napari_cnnjpeg.nn.inference import graph_key
from napari_cnnjpeg.nn.models import registry
from napari_cnnjpeg.nn.nets import build

OUT = Path(__file__).resolve().parents[1] / "src" / "napari_cnnjpeg" / "graphs"


def export(net) -> bytes:
    buf = io.BytesIO()
    x, cond = torch.rand(1, 3, 64, 64), torch.rand(1, 129)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (x, cond), buf, input_names=["x", "cond"], output_names=["y"],
                          dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "cond": {0: "n"}, "y": {0: "n", 2: "h", 3: "w"}},
                          dynamo=False, do_constant_folding=False, opset_version=17)
    model = onnx.load_from_string(buf.getvalue())
    weights = set(net.state_dict())
    names = {i.name for i in model.graph.initializer}
    if not weights <= names:
        raise SystemExit(f"export renamed weights: {sorted(weights - names)[:4]}")
    for init in model.graph.initializer:
        if init.name in weights:
            external_data_helper.set_external_data(init, location="safetensors")
            init.ClearField("raw_data")
    return model.SerializeToString()


def main() -> None:
    OUT.mkdir(exist_ok=True)
    index = []
    specs = {json.dumps(s, sort_keys=True) for info in registry().values() for s in (info.encoder, info.decoder) if s}
    for spec in sorted(specs):
        spec = json.loads(spec)
        net = build(spec["arch"], spec.get("config"))
        key = graph_key(net)
        name = f"{key['arch']}-{key['ch1']}-{key['ch2']}-{key['blocks']}.onnx"
        data = export(net)
        (OUT / name).write_bytes(data)
        index.append({"key": key, "file": name, "sha256": hashlib.sha256(data).hexdigest()})
        print(name, len(data), "bytes")
    (OUT / "index.json").write_text(json.dumps(sorted(index, key=lambda e: e["file"]), indent=1) + "\n")


if __name__ == "__main__":
    main()
