"""The training schedule: the phases (a frozen-backbone warm-up when the weights are pretrained, then all
layers), the learning rate per batch (linear warm-up, cosine decay) and the time budget or cap that may end
training early."""

from __future__ import annotations

import math
import time
from typing import Any

from modelopsx.model.config import TrainConfig


def training_phases(
    config: TrainConfig, pretrained: bool, global_batch: int
) -> list[tuple[int, int, bool, float]]:
    """(first epoch, last epoch, backbone trainable, base learning rate) of each phase."""
    warmup_epochs = min(config.warmup_epochs, config.epochs - 1) if pretrained else 0
    base_lr = config.scaled_learning_rate(global_batch)
    phases = [(0, warmup_epochs, False, base_lr)] if warmup_epochs > 0 else []
    tune_lr = base_lr * (config.fine_tune_lr_factor if pretrained else 1.0)
    phases.append((warmup_epochs, config.epochs, True, tune_lr))
    return phases


class EpochState:
    """Shared across phases: start time (for the time budget) and per-epoch durations (throughput)."""

    def __init__(self, started: float, images_per_epoch: int) -> None:
        self.started = started
        self.images_per_epoch = images_per_epoch
        self.epoch_seconds: list[float] = []  # whole epochs, validation included (time budget)
        self.train_seconds: list[float] = []  # training steps only (throughput)
        self.time_limit_hit = False  # the time budget, not the epoch count, ended training


def budget_schedule(
    config: TrainConfig,
    state: EpochState,
    first: int,
    last: int,
    steps_per_epoch: int,
    base_lr: float,
    quiet: bool,
) -> Any:
    """Linear warm-up then cosine decay over the phase, set per batch. With a time budget the decay follows
    the clock after the first epoch (progress = the larger of the step and the time fraction), so slow epochs
    on a busy machine shorten the run without restarting the decay, and training stops when another epoch
    would not fit. The first epoch is left out of the clock: it also traces the graph and fills the input
    cache, which would otherwise spend a short budget's decay on a handful of steps."""
    import keras

    class BudgetCosine(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = first
            self.epoch_start = 0.0
            self.phase_start = 0.0
            self.phase_budget = 0.0
            self.phase_offset = 0.0

        def _lr(self, step: int) -> float:
            total = max((last - first) * steps_per_epoch, 1)
            warmup = min(config.lr_warmup_steps, total // 4) if first == 0 else 0
            if step < warmup:
                return base_lr * (0.05 + 0.95 * step / warmup)
            progress = (step - warmup) / max(total - warmup, 1)
            if self.phase_budget > 0 and config.lr_follows_clock:
                clock = (time.perf_counter() - self.phase_start) / self.phase_budget
                progress = max(progress, self.phase_offset + (1.0 - self.phase_offset) * clock)
            progress = min(progress, 1.0)
            return base_lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch
            self.epoch_start = time.perf_counter()

        def on_test_begin(self, logs: Any = None) -> None:
            state.train_seconds.append(time.perf_counter() - self.epoch_start)

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            step = (self.epoch - first) * steps_per_epoch + batch
            self.model.optimizer.learning_rate.assign(self._lr(step))

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            state.epoch_seconds.append(time.perf_counter() - self.epoch_start)
            if logs is not None:
                logs["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())
            limit = config.time_limit_s
            if limit is None:
                return
            if self.phase_budget == 0.0:
                # the clock starts now, from the step progress reached, for the budget that is left
                self.phase_start = time.perf_counter()
                self.phase_budget = max(limit - (self.phase_start - state.started), 1e-3)
                self.phase_offset = min((epoch + 1 - first) / max(last - first, 1), 1.0)
            remaining = limit - (time.perf_counter() - state.started)
            # the first epoch also traces the graph and warms the input pipeline: plan from later ones
            later = state.epoch_seconds[1:][-3:] or state.epoch_seconds
            if remaining < sum(later) / len(later) and epoch + 1 < last:
                state.time_limit_hit = True
                if not quiet:
                    print(f"time budget {limit:.0f}s: training ends after epoch {epoch + 1}", flush=True)
                self.model.stop_training = True

    return BudgetCosine()


def phase_of(phases: list[tuple[int, int, bool, float]], epoch: int) -> int:
    for index, (first, last, _, _) in enumerate(phases):
        if first <= epoch < last:
            return index
    return len(phases) - 1
