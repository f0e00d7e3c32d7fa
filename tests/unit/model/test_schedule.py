"""The training schedule: the learning rate under a time budget and under a time cap."""

from __future__ import annotations

import pytest


def test_a_time_cap_leaves_the_learning_rate_to_the_steps() -> None:
    """Under a time *budget* the decay follows the clock (cpu_default); under a *cap* (the local preset that
    `make run` trains) it never does, so a loaded machine gives the same model as a quiet one."""
    import time

    from modelopsx.model.config import TrainConfig
    from modelopsx.model.schedule import EpochState, budget_schedule

    def lr_long_after_the_budget(config: TrainConfig) -> float:
        schedule = budget_schedule(config, EpochState(time.perf_counter(), 8), 0, 6, 50, 0.01, quiet=True)
        schedule.phase_budget, schedule.phase_start = 10.0, time.perf_counter() - 1000.0  # clock: all spent
        return float(schedule._lr(150))  # halfway through the steps

    cap = TrainConfig.local_default()
    budget = TrainConfig(**{**cap.to_json(), "input_size": cap.input_size, "lr_follows_clock": True})
    assert lr_long_after_the_budget(cap) > 0.004  # step progress ~0.39: still well up the cosine
    assert lr_long_after_the_budget(budget) == pytest.approx(0.01 * 0.02)  # the clock ended the decay
