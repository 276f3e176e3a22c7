"""vode_ros.runtime.recurrent: an exported recurrent model (RNN-MVOD) run frame by frame with its state
carried in ONNX Runtime equals the torch model unrolled over the same frames; reset and time jumps."""
import json

import numpy as np
import pytest
import torch

from vode_ros.runtime.recurrent import RecurrentSession, is_recurrent, state_spec

pytestmark = [pytest.mark.slow]

torch.set_num_threads(1)   # 2 threads on shared, busy cores run ~10x slower (OpenMP spinning)
TINY_NETS = ["model.depth_enc_channels=[8, 8, 16, 16, 16]", "model.depth_dec_channels=[8, 8, 8, 16, 16]",
             "model.pose_channels=[8, 8, 16, 16, 16, 16]", "model.depth_lstm_stages=[1, 2, 4]",
             "model.pose_lstm_stages=[0, 3, 5]"]
T = 6


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from vode_training.data.synthetic import write_kitti_layout

    root = tmp_path_factory.mktemp("rec")
    return write_kitti_layout(root / "street", frames=T, width=128, height=64, seed=5)


def _export(scene, out, export_pose):
    from vode_training.config import load_config
    from vode_training.export import export_checkpoint
    from vode_training.methods import build_method
    from vode_training.checkpoint import save_checkpoint

    torch.manual_seed(1)
    cfg = load_config(None, ["method=rnn_mvod", f"data.path={scene}", "data.width=128", "data.height=64",
                             "data.stereo=false", "data.offsets=[1]", f"model.export_pose={export_pose}",
                             "model.pose_trans_scale=1.0", "model.pose_scale=0.1"] + TINY_NETS)
    method = build_method(cfg, 1).eval()
    # make the recurrent paths matter: random (not near-zero) head and LSTM weights
    with torch.no_grad():
        for p in method.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ckpt = save_checkpoint(out / "checkpoint.pt", method, None, 0, cfg)
    report = export_checkpoint(ckpt, out / "models")
    return method, report


def _frames(scene):
    from vode_training.data.kitti_snippets import KittiSnippets

    ds = KittiSnippets(scene, 128, 64, "gray", offsets=(1,))
    return ds.left.float() / 255.0                       # (T, 1, H, W) [0, 1]


@pytest.mark.parametrize("export_pose", ["bundled", "inv_depth_input"])
def test_onnx_step_by_step_equals_torch_unrolled(scene, tmp_path, export_pose):
    method, report = _export(scene, tmp_path, export_pose)
    frames = _frames(scene)
    with torch.no_grad():
        disps, poses = method.unroll(frames[None])            # torch: the whole sequence at once
    norm = ((frames - 0.45) / 0.225).numpy()
    depth_sess = RecurrentSession(report["files"]["depth"]["path"])
    pose_sess = RecurrentSession(report["files"]["pose"]["path"])
    assert depth_sess.recurrent and pose_sess.recurrent
    assert pose_sess.data_inputs == (["image"] if export_pose == "bundled" else ["image", "inv_depth"])
    ort_poses, ort_inv = [], []
    for k in range(T):
        inv = depth_sess.step(norm[k:k + 1])["inv_depth"]
        feeds = {"image": norm[k:k + 1]} if export_pose == "bundled" else {"image": norm[k:k + 1], "inv_depth": inv}
        out = pose_sess.step(feeds)
        ort_poses.append(out["pose"][0])
        ort_inv.append(inv[0, 0])
        if export_pose == "bundled":
            assert np.abs(out["inv_depth"] - inv).max() < 1e-5
    ort_poses = np.stack(ort_poses)
    torch_poses = poses[0].numpy()
    assert pose_sess.steps == T
    assert np.abs(ort_poses - torch_poses).max() < 1e-5, np.abs(ort_poses - torch_poses).max()
    assert np.abs(np.stack(ort_inv) - torch.stack([d[0][0, 0] for d in disps]).numpy()).max() < 1e-4
    # the state matters: the same frame gives another pose later in the sequence
    assert np.abs(torch_poses[1:] - torch_poses[:1]).max() > 1e-4
    # without carrying the state, frame k would not reproduce the unrolled pose
    fresh = RecurrentSession(report["files"]["pose"]["path"])
    if export_pose == "bundled":
        p3 = fresh.step({"image": norm[3:4]})["pose"][0]
        assert np.abs(p3 - torch_poses[3]).max() > 1e-4
    # reset: the sequence starts over
    pose_sess.reset()
    depth_sess.reset()
    inv0 = depth_sess.step(norm[:1])["inv_depth"]
    again = pose_sess.step({"image": norm[:1]} if export_pose == "bundled" else {"image": norm[:1], "inv_depth": inv0})
    assert pose_sess.steps == 1 and np.abs(again["pose"][0] - torch_poses[0]).max() < 1e-5


def test_metadata_time_jumps_and_errors(scene, tmp_path):
    import onnx

    _, report = _export(scene, tmp_path, "bundled")
    path = report["files"]["pose"]["path"]
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    spec = state_spec(meta)
    assert is_recurrent(meta) and meta["vode.recurrent"] == "true"
    assert [s["input"] for s in spec][:2] == ["depth_h0_in", "depth_c0_in"]
    assert all(s["output"] == s["input"][:-3] + "_out" for s in spec)
    assert json.loads(meta["vode.pose_inputs"]) == ["image"]

    sess = RecurrentSession(path, max_gap_s=1.0)
    x = np.zeros((1, 1, 64, 128), np.float32)
    first = sess.step(x, stamp=10.0)["pose"]
    second = sess.step(x, stamp=10.1)["pose"]
    assert sess.steps == 2 and sess.resets == 0 and not np.allclose(first, second)
    again = sess.step(x, stamp=5.0)["pose"]                  # bag loop: time went back
    assert sess.resets == 1 and sess.steps == 1 and "back" in sess.last_reset_reason
    assert np.allclose(again, first, atol=1e-6)
    sess.step(x, stamp=5.1)
    sess.step(x, stamp=9.0)                                  # 3.9 s gap > max_gap_s
    assert sess.resets == 2 and sess.steps == 1 and "gap" in sess.last_reset_reason
    with pytest.raises(ValueError, match="missing model input"):
        sess.step({"frames": x})


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_plain_model_runs_without_state(tmp_path):
    conv = torch.nn.Conv2d(1, 2, 3, padding=1).eval()
    path = tmp_path / "plain.onnx"
    torch.onnx.export(conv, (torch.zeros(1, 1, 8, 8),), str(path), input_names=["image"], output_names=["out"],
                      opset_version=17, dynamo=False)
    sess = RecurrentSession(path)
    x = np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)
    out = sess.step(x)["out"]
    with torch.no_grad():
        assert np.abs(out - conv(torch.from_numpy(x)).numpy()).max() < 1e-5
    assert not sess.recurrent and not is_recurrent({"vode.kind": "pose"})
