"""Resumable, distributed-aware batch order.

:class:`ResumableBatchSampler` yields batches of dataset indices forever, epoch after epoch. Each
epoch draws from its own generator (seeded with ``train.seed``) exactly what
``DataLoader(shuffle=True, drop_last=True, generator=Generator().manual_seed(seed))`` drew per
epoch (one int64 for the workers' base seed, ``randperm(n)``, and a second ``randperm(n)`` that
RandomSampler draws when it is exhausted), so a single process sees the same batches as the
trainer did before resume support existed.

Distributed: every rank draws the same permutation, pads it by wrapping to a multiple of the
world size and takes every world_size-th index from its rank on (DistributedSampler's split), then
cuts batches of ``batch_size`` (the rest of an epoch is dropped).

Resume: :meth:`state` gives {epoch, position (batches consumed in the epoch), generator state at
the epoch's start}; :meth:`load_state` makes the next iteration redraw that epoch's permutation
and skip the consumed batches, so the batch order continues exactly.
"""
from __future__ import annotations

from typing import Iterator

import torch


class ResumableBatchSampler:
    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if n < 1 or batch_size < 1:
            raise ValueError(f"need a non-empty dataset and batch_size >= 1 (n={n}, batch_size={batch_size})")
        self.n, self.batch_size, self.rank, self.world_size = int(n), int(batch_size), int(rank), int(world_size)
        self.generator = torch.Generator()
        self.generator.manual_seed(int(seed))
        self.epoch = 0
        self._skip = 0
        self._epoch_states: dict[int, torch.Tensor] = {}

    def per_rank(self) -> int:
        return -(-self.n // self.world_size)           # ceil: padded like DistributedSampler

    def batches_per_epoch(self) -> int:
        return self.per_rank() // self.batch_size

    def _epoch_batches(self) -> list[list[int]]:
        self._epoch_states[self.epoch] = self.generator.get_state()
        for old in [e for e in self._epoch_states if e < self.epoch - 4]:
            del self._epoch_states[old]
        # What DataLoader(shuffle=True, drop_last=True) drew per epoch: its base seed, RandomSampler's
        # permutation, and (when the exhausted sampler ran past its loop) a second, unused permutation.
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        perm = torch.randperm(self.n, generator=self.generator).tolist()
        torch.randperm(self.n, generator=self.generator)
        if self.world_size > 1:
            total = self.per_rank() * self.world_size
            perm = (perm * (total // len(perm) + 1))[:total]
            perm = perm[self.rank:total:self.world_size]
        nb = len(perm) // self.batch_size
        return [perm[i * self.batch_size:(i + 1) * self.batch_size] for i in range(nb)]

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            batches = self._epoch_batches()
            start, self._skip = self._skip, 0
            for b in batches[start:]:
                yield b
            self.epoch += 1

    def state(self, consumed: int, start_epoch: int, start_position: int) -> dict:
        """State after ``consumed`` batches since the iteration started at (start_epoch, start_position)."""
        per = self.batches_per_epoch()
        absolute = start_position + consumed
        epoch = start_epoch + absolute // per
        position = absolute % per
        if epoch not in self._epoch_states:            # the epoch starts with the next batch
            self._epoch_states[epoch] = self.generator.get_state()
        return {"epoch": int(epoch), "position": int(position), "generator": self._epoch_states[epoch].clone(),
                "n": self.n, "batch_size": self.batch_size, "world_size": self.world_size}

    def load_state(self, state: dict) -> None:
        if (int(state["n"]), int(state["batch_size"]), int(state["world_size"])) != (
                self.n, self.batch_size, self.world_size):
            raise ValueError(f"resume: the data order was for {state['n']} snippets, batch {state['batch_size']}, "
                             f"{state['world_size']} process(es); now {self.n}, {self.batch_size}, {self.world_size}")
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self._skip = int(state["position"])
