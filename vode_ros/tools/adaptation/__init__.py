"""Online self-supervised adaptation of the running depth (and pose) nets.

The depth node (parameter ``adapt``) hands every processed frame to an :class:`OnlineAdapter`.
The adapter

- keeps a bounded replay buffer of recent frames at the network's resolution (grey or RGB as
  the model; the right image too when the node runs in stereo mode), as uint8 (:class:`FrameStore`);
- holds every n-th frame out (``holdout_every``): a held-out frame is never part of a training
  snippet, it is the target of a held-out snippet (its neighbours as sources) used only to judge;
- takes gradient steps of the model's own training method (rebuilt from a torch checkpoint with
  ``vode_training.checkpoint.method_from_checkpoint``: same nets, same loss terms) in a background
  thread, at most ``max_steps_per_second``, with ``threads`` torch threads and a lowered
  scheduling priority (``nice``), so the inference thread keeps its CPU;
- every ``check_every`` steps compares the photometric loss on the held-out snippets of the
  candidate (the weights being trained) with the accepted weights (those in production): a
  candidate that is not better is rolled back (the accepted state is restored, Adam's moments are
  reset; logged, counted, WARN on /diagnostics); a better one is accepted, exported to ONNX
  (``vode_training.export``, parity-checked), moved atomically into ``<save_dir>/live/`` and handed
  to ``on_accept(live_dir)``, which builds the new ONNX Runtime session in this thread and swaps
  the node's model reference under its model_lock. Inference never waits on training;
- writes the accepted weights on request (:meth:`OnlineAdapter.save`): depth.onnx + pose.onnx
  (metadata ``vode.trained_on`` = "<original> + online adaptation (N steps)", ``vode.adaptation``
  a JSON summary) and a nets-only ``checkpoint.pt``, each moved into place with os.replace.
  ``model_dir:=<save_dir>`` loads them at the next start (and, with adapt on, adaptation continues
  from that folder's checkpoint.pt).

Snippets never span a break in the stream: a stamp going backwards (a bag looping) or a gap
longer than ``MAX_GAP_S`` starts a new segment.

Modules: replay (buffer), settings (settings, counters, error), files (checkpoints, atomic
moves), adapter (steps, judging, rollback, export, thread, diagnostics), guard (the held-out rule
both adapters judge by). Offline, ``vode adapt`` (offline.py) from a recorded bag: bag_data
(frames, depth topic, odometry), split (in time), finetune (time budget, base replay, L2-SP),
score (held-out photometric / depth / pose), install (export, folders, hot reload), report
(JSON + figure), demo_adapt (``vode demo --adapt``). The gradient step is
``vode_training.optim.gradient_step``, the trainer's own. Importing this package does not import
torch (the run time without ``adapt`` stays torch-free); the :class:`OnlineAdapter` constructor does.
"""
from __future__ import annotations

from .adapter import OnlineAdapter
from .files import atomic_copy
from .replay import MAX_GAP_S, FrameStore, Snippet, StoredFrame
from .settings import ADAPTED_NOTE, AdaptationError, AdaptSettings, AdaptStats

__all__ = ["ADAPTED_NOTE", "MAX_GAP_S", "AdaptSettings", "AdaptStats", "AdaptationError", "FrameStore", "OnlineAdapter",
           "Snippet", "StoredFrame", "atomic_copy"]
