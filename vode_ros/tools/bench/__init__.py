"""`vode bench`: speed of the depth / pose nets and of the real nodes, from one run on one machine.

1. Nets (randomly initialised: speed does not depend on the weights) - the SfMLearner DispNet
   baseline, the small DepthNet, LiteDepthNet, PoseNet, LitePoseNet - plus, with a models dir,
   the shipped depth.onnx / pose.onnx, each in torch (eval, inference mode), ONNX Runtime fp32
   and ONNX Runtime int8 (static QDQ quantisation, calibrated on KITTI clip frames preprocessed
   by ``OnnxModel.preprocess``, the run time's own code). All candidates are timed round-robin
   in several rounds, so load that comes and goes hits them alike; the ratio column is FPS over
   the FPS of DispNet in ORT fp32 measured in the same run.
2. Nodes: DepthNode + OdometryNode (real rclpy, one in-process executor) on the lite fp32
   models (and the models dir's), fed KITTI frames (1226x370 mono8) by a publisher thread at
   maximum rate and at 30 Hz (``pub_hz``; the nodes keep the newest frame); output rates vs the
   raw ``OnnxModel.run`` rate of the same files, and latency from the image header stamp (wall
   time at publish) to receipt of depth / odometry.
3. int8 accuracy of a trained depth model (``--depth-model``, else the models dir's, else the
   shipped one): Abs Rel of int8 vs fp32 depth on the clip, and of both vs SGBM stereo pseudo-GT.
4. GPU rows when ONNX Runtime offers CUDA / TensorRT, else one line saying they were skipped.

One concern per module: config, sessions, random_nets (export), calibration, int8 (graph
surgery), timing, node_runs, accuracy, gpu, report, run (the whole run). Needs torch (the
training extras) for the random nets; ``run_bench`` returns the JSON report.
"""
from .calibration import calibration_batches, clip_inputs, spaced
from .config import BASELINE, DEFAULT_DATA, OPSET, BenchConfig
from .gpu import gpu_candidates
from .int8 import quantize_int8
from .random_nets import NetSpec, export_random, random_nets
from .report import format_report, to_json
from .run import run_bench

__all__ = ["BASELINE", "DEFAULT_DATA", "OPSET", "BenchConfig", "NetSpec", "calibration_batches", "clip_inputs",
           "export_random", "format_report", "gpu_candidates", "quantize_int8", "random_nets", "run_bench", "spaced",
           "to_json"]
