"""Who is who among several workers, sharding, and failing clearly instead of hanging
(modelopsx.model.distributed; the training itself: test_distributed_training.py)."""

from __future__ import annotations

import json

import pytest

from modelopsx.errors import ModelError
from modelopsx.model import distributed


@pytest.mark.parametrize("bad", [0, -2, "two", 2.5, "2.5", True, None])
def test_a_bad_worker_count_is_refused(bad: object) -> None:
    with pytest.raises(ModelError, match="train_workers"):
        distributed.parse_worker_count(bad)


def test_tf_config_names_workers_only() -> None:
    one = json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}})
    assert distributed.cluster_from_env({"TF_CONFIG": one}) is None  # one worker trains as before
    assert distributed.cluster_from_env({}) is None
    with pytest.raises(ModelError, match="not a valid cluster"):
        distributed.cluster_from_env({"TF_CONFIG": "{not json"})
    ps = json.dumps({"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}})
    with pytest.raises(ModelError, match="workers only"):
        distributed.cluster_from_env({"TF_CONFIG": ps})
    with pytest.raises(ModelError, match="JOB_COMPLETION_INDEX"):
        distributed.cluster_from_env({distributed.JOBSET_NAME_ENV: "tj", distributed.WORKERS_ENV: "2"})


def test_a_chief_that_never_answers_is_a_clear_failure_not_a_hang() -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = distributed.Cluster((f"127.0.0.1:{port}", "127.0.0.1:1"), 1)
    with pytest.raises(ModelError, match=r"worker 1 could not reach the chief 127\.0\.0\.1:\d+ within 1s"):
        distributed.wait_for_peers(cluster, timeout_s=1.0)


def test_shards_are_disjoint_and_cover_the_ids() -> None:
    ids = list(range(101, 124))
    shards = [distributed.shard_ids(ids, i, 4) for i in range(4)]
    assert sorted(i for s in shards for i in s) == sorted(ids)
    assert sum(len(s) for s in shards) == len(set().union(*map(set, shards)))
    sizes = distributed.shard_sizes(23, 4)
    assert sizes == [len(s) for s in shards]
    batch = distributed.even_batch(sizes, 4)
    assert len({-(-s // batch) for s in sizes}) == 1
