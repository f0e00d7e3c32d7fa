"""The release path's gate step: a registered candidate's evaluation, checked to be of this run's test split,
gated against the champion (or the HOG baseline) by registry.compare, its decision written to a folder and
recorded in an "evaluations" record of the candidate, so keep decisions are on record too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelopsx.data.hashing import dataset_version_hash
from modelopsx.gate.decision import Decision, decision_digest
from modelopsx.gate.evidence import EvidenceError
from modelopsx.gate.policy import GatePolicy
from modelopsx.model.layout import DETECTIONS_JSON, read_evaluation_json
from modelopsx.registry.compare import compare_with_champion
from modelopsx.registry.log import Registry
from modelopsx.registry.records import EvaluationRecord, Lineage


@dataclass(frozen=True)
class GatedCandidate:
    decision: Decision
    evaluation_seq: int  # the candidate's "evaluations" record that holds the decision


def gate_candidate(
    registry: Registry,
    evaluation_dir: Path,
    data_dir: Path,
    model_name: str,
    model_version: int,
    evaluation_dvc_hash: str,
    policy: GatePolicy,
    out_dir: Path,
) -> GatedCandidate:
    """Gate the candidate against the champion (or, with none yet, the HOG baseline) on the same test split.

    The decision goes to out_dir (decision.json, .md) and into an "evaluations" record of the candidate.
    Evidence that cannot be trusted (a missing or malformed evaluation or detections file, metrics out of
    range, no operating threshold, an evaluation of another test split) is an error: nothing is recorded."""
    evaluation, data = Path(evaluation_dir), Path(data_dir)
    candidate = read_evaluation_json(evaluation, EvidenceError)
    test_hash = dataset_version_hash(data / "test")
    if candidate.get("test_hash") != test_hash:
        raise EvidenceError(
            f"the candidate's evaluation is of test split {str(candidate.get('test_hash'))[:12]}, "
            f"not of this run's test split {test_hash[:12]}",
            hint="evaluate and compare must read the same split artifact",
        )
    model_record = registry.get("models", model_name, model_version)
    decision = compare_with_champion(
        registry,
        model_name,
        candidate["metrics"],
        data / "test",
        test_hash,
        policy,
        candidate_detections=evaluation / DETECTIONS_JSON,
        candidate_score_threshold=candidate.get("score_threshold"),
        candidate_info={
            "model_name": model_name,
            "model_version": model_version,
            "model_dvc_hash": model_record.get("dvc_hash"),
            "test_split_hash": test_hash,
            "score_threshold": candidate.get("score_threshold"),
            "initial_weights": (model_record.get("lineage") or {}).get("initial_weights"),
        },
        val_dir=data / "val",
    )
    decision.write(Path(out_dir))
    record = EvaluationRecord(
        model_name=model_name,
        model_version=model_version,
        test_split_hash=test_hash,
        metrics=candidate["metrics"],
        undefined=candidate.get("undefined", {}),
        score_threshold=candidate.get("score_threshold"),
        lineage=Lineage.from_dict(model_record.get("lineage")),
    ).to_dict()
    record.update(
        {
            "decision": decision.to_json(),
            "decision_sha256": decision_digest(decision.to_json()),  # deploy matches its file against it
            "artifacts_dvc_hash": evaluation_dvc_hash,
        }
    )
    return GatedCandidate(decision, registry.append("evaluations", model_name, record))
