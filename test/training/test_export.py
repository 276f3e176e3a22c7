"""Export a freshly initialised small model: files, ONNX Runtime parity, metadata, atomicity."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vode_training.config import load_config
from vode_training.methods import build_method
from vode_training.checkpoint import save_checkpoint

pytestmark = [pytest.mark.slow]

torch.set_num_threads(2)
DATA = Path(__file__).resolve().parents[2] / "data" / "kitti_odometry_06_0000-0050"
SMALL = [f"data.path={DATA}", "data.width=128", "data.height=64",
         "model.depth_enc_channels=[8, 16, 16, 32, 32]", "model.depth_dec_channels=[8, 8, 16, 16, 32]",
         "model.pose_channels=[8, 16, 16, 32, 32, 32, 32]"]
KEYS = ["vode.kind", "vode.method", "vode.input_width", "vode.input_height", "vode.channels", "vode.color",
        "vode.mean", "vode.std", "vode.metric_scale", "vode.min_depth", "vode.max_depth", "vode.trained_on",
        "vode.train_steps", "vode.created", "vode.onnx_parity_max_abs"]


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    cfg = load_config(None, SMALL)
    method = build_method(cfg, channels=1)
    return save_checkpoint(tmp_path / "checkpoint.pt", method, None, 0, cfg)


def test_export_parity_and_metadata(checkpoint, tmp_path):
    import onnx
    import onnxruntime as ort

    from vode_training.export import export_checkpoint

    report = export_checkpoint(checkpoint, tmp_path / "models")
    assert report["real_input"] == DATA.is_dir()
    assert report["files"]["depth"]["parity_max_abs"] <= 1e-4
    assert report["files"]["pose"]["parity_max_abs"] <= 1e-5
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["depth.onnx", "pose.onnx"]
    for kind, (in_name, in_shape, out_name, out_shape) in {
            "depth": ("image", [1, 1, 64, 128], "inv_depth", [1, 1, 64, 128]),
            "pose": ("frames", [1, 2, 64, 128], "pose", [1, 6])}.items():
        path = tmp_path / "models" / f"{kind}.onnx"
        model = onnx.load(str(path))
        meta = {p.key: p.value for p in model.metadata_props}
        assert all(k in meta for k in KEYS), set(KEYS) - set(meta)
        assert meta["vode.kind"] == kind and meta["vode.method"] == "sfmlearner"
        assert (meta["vode.input_width"], meta["vode.input_height"], meta["vode.channels"]) == ("128", "64", "1")
        assert meta["vode.color"] == "gray" and meta["vode.metric_scale"] == "true"
        assert json.loads(meta["vode.mean"]) == [0.45] and json.loads(meta["vode.std"]) == [0.225]
        assert float(meta["vode.min_depth"]) == 0.1 and float(meta["vode.max_depth"]) == 100.0
        assert meta["vode.train_steps"] == "0" and meta["vode.trained_on"] == DATA.name
        assert float(meta["vode.onnx_parity_max_abs"]) == pytest.approx(report["files"][kind]["parity_max_abs"], rel=1e-2)
        assert model.opset_import[0].version == 17
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] == out_shape
        (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
        assert (inp.name, inp.shape, out.name, out.shape) == (in_name, in_shape, out_name, out_shape)
        y = sess.run(None, {in_name: np.zeros(in_shape, np.float32)})[0]
        assert y.dtype == np.float32 and np.isfinite(y).all()
        if kind == "depth":
            assert (y >= 0.01 - 1e-6).all() and (y <= 10.0 + 1e-6).all()


def test_failed_parity_leaves_nothing(checkpoint, tmp_path, monkeypatch):
    from vode_training import export

    out = tmp_path / "models"
    out.mkdir()
    (out / "depth.onnx").write_bytes(b"previous good model")
    monkeypatch.setattr(export, "POSE_TOLERANCE", -1.0)   # force the pose check to fail
    with pytest.raises(export.ExportParityError, match="pose.onnx"):
        export.export_checkpoint(checkpoint, out)
    assert sorted(p.name for p in out.iterdir()) == ["depth.onnx"]
    assert (out / "depth.onnx").read_bytes() == b"previous good model"


def test_cli_modules_do_not_import_torch():
    code = ("import sys, argparse; import vode_ros.cli.train as t, vode_ros.cli.export as e; "
            "p = argparse.ArgumentParser(); s = p.add_subparsers(); t.register(s); e.register(s); "
            "a = p.parse_args(['train', '--config', 'x.yaml', '--set', 'train.steps=5']); "
            "assert a.overrides == ['train.steps=5'] and a.func is t.run; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_export_runs(checkpoint, tmp_path):
    import argparse

    from vode_ros.cli import export as cli_export

    args = argparse.Namespace(checkpoint=str(checkpoint), out=str(tmp_path / "cli"))
    assert cli_export.run(args) == 0
    assert (tmp_path / "cli" / "depth.onnx").is_file() and (tmp_path / "cli" / "pose.onnx").is_file()
    args = argparse.Namespace(checkpoint=str(tmp_path / "missing.pt"), out=str(tmp_path / "cli2"))
    assert cli_export.run(args) == 2


def test_export_relative_records_no_metres(checkpoint, tmp_path):
    """--relative: a model whose training had a scale source is recorded as relative depth, said why."""
    import onnxruntime as ort

    from vode_training.export import export_checkpoint

    export_checkpoint(checkpoint, tmp_path / "metric")
    export_checkpoint(checkpoint, tmp_path / "relative", relative=True)

    def meta(folder):
        return ort.InferenceSession(str(folder / "depth.onnx"), providers=["CPUExecutionProvider"]
                                    ).get_modelmeta().custom_metadata_map

    assert meta(tmp_path / "metric")["vode.metric_scale"] == "true"
    assert meta(tmp_path / "relative")["vode.metric_scale"] == "false"
    assert "held-out" in meta(tmp_path / "relative")["vode.scale_note"]


def test_only_cameras_with_a_scale_source_set_the_trusted_field_of_view(tmp_path):
    """A mixed set: a stereo folder, a mono folder with poses (pose supervision) and a mono folder
    without poses at another field of view. The last taught no metres, so vode.train_hfov_deg
    (what the run time trusts the model's metres within) leaves it out."""
    from vode_training.data import training_cameras
    from vode_training.data.synthetic import write_kitti_layout
    from vode_training.export import _camera_metadata

    write_kitti_layout(tmp_path / "stereo", frames=4, width=128, height=64, color="gray")
    write_kitti_layout(tmp_path / "posed", frames=4, width=128, height=64, color="gray")
    (tmp_path / "posed" / "image_1").rename(tmp_path / "posed_right")
    unposed = write_kitti_layout(tmp_path / "unposed", frames=4, width=128, height=64, color="gray")
    (unposed / "poses.txt").unlink()
    (unposed / "image_1").rename(tmp_path / "unposed_right")
    calib = (unposed / "calib.txt").read_text().splitlines()
    p0 = calib[0].split()
    p0[1] = str(float(p0[1]) * 2)                 # twice the focal length: a narrower camera
    (unposed / "calib.txt").write_text("\n".join([" ".join(p0)] + calib[1:]) + "\n")
    cfg = load_config(None, [f"data.root={tmp_path}", "data.paths=[stereo, posed, unposed]", "data.width=64",
                             "data.height=32", "data.stereo=true", "loss.pose_weight=1.0"])
    cams = {c["name"]: c for c in training_cameras(cfg)}
    assert [cams[n]["metric"] for n in ("stereo", "posed", "unposed")] == [True, True, False]
    assert cams["unposed"]["hfov_deg"] < cams["stereo"]["hfov_deg"] - 10
    lo, hi = json.loads(_camera_metadata(list(cams.values()), "mixed")["vode.train_hfov_deg"])
    assert lo == pytest.approx(cams["stereo"]["hfov_deg"], abs=0.01) and hi == pytest.approx(lo, abs=0.01)
    cfg["loss"]["pose_weight"] = 0.0              # now the posed folder has no scale source either
    assert [c["metric"] for c in training_cameras(cfg)] == [True, False, False]
