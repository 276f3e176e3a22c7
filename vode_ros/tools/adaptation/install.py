"""Export, store and hot-reload an adapted model.

Adapted models live apart from the package's models/ (which keeps the base model): one
folder per robot or place, ``<out>/<name>/`` with depth.onnx, pose.onnx, checkpoint.pt (nets
only, ``--init`` / ``adapt_checkpoint`` read it), report.json and report.png. Installing moves
the model in use (if any) to ``<name>/previous/`` first; a candidate the guard refused goes to
``<name>/rejected/`` for inspection and the model in use stays. Every file moves into place
atomically (a node reloading mid-install reads the old file or the new one, never half).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

MODEL_FILES = ("depth.onnx", "pose.onnx", "checkpoint.pt")
NODES = ("depth_node", "odometry_node")


def default_out_dir() -> Path:
    return Path.home() / ".ros" / "vode_ros" / "adapted"


def set_metadata(onnx_path: Path, updates: dict[str, str]) -> None:
    """Add / replace vode.* metadata entries of an ONNX file (atomically)."""
    import onnx

    from vode_ros.core.atomic_file import atomic_write

    model = onnx.load(str(onnx_path))
    props = {p.key: p.value for p in model.metadata_props}
    props.update({k: str(v) for k, v in updates.items()})
    del model.metadata_props[:]
    for key, value in props.items():
        e = model.metadata_props.add()
        e.key, e.value = key, value
    with atomic_write(onnx_path, binary=True) as fh:
        fh.write(model.SerializeToString())


def export_method(method, step: int, out_dir: Path, metadata: dict[str, str]) -> dict[str, Any]:
    """The method's weights -> out_dir/{depth,pose}.onnx (parity-checked) + a nets-only
    checkpoint.pt, with ``metadata`` added to both ONNX files."""
    from vode_training.checkpoint import export_nets, save_checkpoint
    from vode_training.export import export_checkpoint

    out_dir.mkdir(parents=True, exist_ok=True)
    full = save_checkpoint(out_dir / ".full_checkpoint.pt", method, None, step, method.cfg)
    try:
        report = export_checkpoint(full, out_dir)
        export_nets(full, out_dir / "checkpoint.pt")
    finally:
        full.unlink(missing_ok=True)
    for kind in report["files"]:
        set_metadata(out_dir / f"{kind}.onnx", metadata)
    return report


def _move_models(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        if (src / name).is_file():
            os.replace(src / name, dst / name)


def install(candidate: Path, place: Path, accept: bool) -> Path:
    """Move the exported ``candidate`` folder's models into ``place`` (accept) or into
    ``place/rejected`` (refused) -> the folder the candidate ended in."""
    place.mkdir(parents=True, exist_ok=True)
    if not accept:
        target = place / "rejected"
        shutil.rmtree(target, ignore_errors=True)
        _move_models(candidate, target)
        return target
    if (place / "depth.onnx").is_file():
        shutil.rmtree(place / "previous", ignore_errors=True)
        (place / "previous").mkdir()
        for name in MODEL_FILES:          # copies: the files in use stay readable until replaced
            if (place / name).is_file():
                shutil.copy2(place / name, place / "previous" / name)
    _move_models(candidate, place)
    shutil.rmtree(place / "rejected", ignore_errors=True)
    return place


def apply_to(namespace: str, model_dir: Path, timeout: float = 10.0) -> list[str]:
    """Point the running depth and odometry nodes under ``namespace`` at ``model_dir`` (their
    ``model_dir`` parameter: a change reloads the model, refused with the reason if it fails).
    -> one line per node saying what happened."""
    import rclpy
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    started = not rclpy.ok()
    if started:
        rclpy.init()
    node = rclpy.create_node("vode_adapt_apply")
    lines = []
    try:
        for name in NODES:
            client = node.create_client(SetParameters, f"{ns}/{name}/set_parameters")
            if not client.wait_for_service(timeout_sec=timeout):
                lines.append(f"{ns}/{name}: not running (no set_parameters service within {timeout:.0f} s); "
                             f"start it with model_dir:={model_dir}")
                continue
            req = SetParameters.Request(parameters=[Parameter("model_dir", value=str(model_dir)).to_parameter_msg()])
            future = client.call_async(req)
            rclpy.spin_until_future_complete(node, future, timeout_sec=max(timeout, 60.0))
            res = future.result()
            if res is None:
                lines.append(f"{ns}/{name}: no answer to set_parameters")
            elif all(r.successful for r in res.results):
                lines.append(f"{ns}/{name}: reloaded from {model_dir}")
            else:
                lines.append(f"{ns}/{name}: refused: {'; '.join(r.reason for r in res.results if not r.successful)}")
    finally:
        node.destroy_node()
        if started:
            rclpy.try_shutdown()
    return lines
