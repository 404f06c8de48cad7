"""The trained model: a versioned artefact on disk, loaded with an integrity check, scoring
and explaining one payment the way the live decision will.

An artefact is a directory of two files, no pickle anywhere:

    model.txt       LightGBM's own text dump of the boosted trees
    manifest.json   {"format": "payplane-fraud-model/1", "version", "feature_set",
                     "features": [...], "state_config", "calibration": {Platt a, b, and the
                     reliability table}, "thresholds": {challenge, review, block},
                     "training": {window, label time, rows, frauds, parameters, iterations},
                     "metrics", "model_sha256", "sha256"}

`sha256` covers the manifest's canonical JSON without itself; `model_sha256` covers
model.txt. `load` refuses (ArtefactError, naming what is wrong) a missing file, a digest
that does not match (a corrupt or hand-edited artefact), another format, or a feature list
that differs from the code's pipeline (a model trained on other features would read the
wrong columns).

Explanations are TreeSHAP contributions (LightGBM's pred_contrib): per feature, in the
calibrated logit's units, so bias + sum(contributions) = the logit the score comes from.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray

from .calibration import Platt
from .entity_state import StateConfig
from .facts import PaymentFacts
from .model import Assessment, Contribution, Decision, ModelError, logistic
from .pipeline import FEATURE_SET, FEATURES

__all__ = [
    "FORMAT",
    "ArtefactError",
    "LearnedModel",
    "Thresholds",
    "canonical_digest",
    "write_artefact",
]

FORMAT = "payplane-fraud-model/1"
MODEL_FILE = "model.txt"
MANIFEST_FILE = "manifest.json"


class ArtefactError(ModelError):
    """A model artefact cannot be trusted or used (names the problem)."""


@dataclass(frozen=True)
class Thresholds:
    challenge: float
    review: float
    block: float

    def decision(self, score: float) -> Decision:
        if score >= self.block:
            return Decision.BLOCK
        if score >= self.review:
            return Decision.REVIEW
        if score >= self.challenge:
            return Decision.CHALLENGE
        return Decision.ALLOW


def canonical_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def write_artefact(directory: str | Path, model_text: str, manifest: dict[str, Any]) -> str:
    """Write model.txt and manifest.json (with their digests); return the version."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    data = model_text.encode()
    manifest = dict(manifest, format=FORMAT, model_sha256=hashlib.sha256(data).hexdigest())
    manifest["sha256"] = canonical_digest(manifest)
    (out / MODEL_FILE).write_bytes(data)
    (out / MANIFEST_FILE).write_text(
        json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
    )
    return str(manifest["version"])


class LearnedModel:
    def __init__(self, booster: lgb.Booster, manifest: dict[str, Any]) -> None:
        self.booster = booster
        self.manifest = manifest
        self.version = str(manifest["version"])
        self.features: tuple[str, ...] = tuple(manifest["features"])
        self.calibration = Platt.from_json(manifest["calibration"])
        th = manifest["thresholds"]
        self.thresholds = Thresholds(
            float(th["challenge"]), float(th["review"]), float(th["block"])
        )
        self.state_config = StateConfig(**manifest["state_config"])

    @classmethod
    def load(cls, directory: str | Path) -> LearnedModel:
        where = Path(directory)
        try:
            raw_manifest = (where / MANIFEST_FILE).read_text()
            data = (where / MODEL_FILE).read_bytes()
        except OSError as exc:
            raise ArtefactError(f"{where}: cannot read the artefact: {exc}") from exc
        try:
            manifest = json.loads(raw_manifest)
        except json.JSONDecodeError as exc:
            raise ArtefactError(f"{where / MANIFEST_FILE}: not JSON ({exc})") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ArtefactError(f"{where}: not a {FORMAT} artefact")
        if canonical_digest(manifest) != manifest.get("sha256"):
            raise ArtefactError(
                f"{where / MANIFEST_FILE}: sha256 mismatch: the manifest is corrupt or was "
                "edited; refusing to load it"
            )
        if hashlib.sha256(data).hexdigest() != manifest.get("model_sha256"):
            raise ArtefactError(
                f"{where / MODEL_FILE}: sha256 mismatch with the manifest: the model is "
                "corrupt or was replaced; refusing to load it"
            )
        if manifest.get("feature_set") != FEATURE_SET or tuple(manifest["features"]) != FEATURES:
            raise ArtefactError(
                f"{where}: trained on feature set {manifest.get('feature_set')!r}, this "
                f"engine computes {FEATURE_SET!r} (features differ): retrain"
            )
        try:
            booster = lgb.Booster(model_str=data.decode())
        except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
            raise ArtefactError(f"{where / MODEL_FILE}: not a LightGBM model: {exc}") from exc
        if booster.num_feature() != len(FEATURES):
            raise ArtefactError(f"{where}: the model reads {booster.num_feature()} features")
        return cls(booster, manifest)

    # -- scoring -------------------------------------------------------------------------

    def logits(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """Calibrated logits for a batch (the evaluation's fast path; same trees)."""
        raw = np.asarray(
            self.booster.predict(rows, raw_score=True, num_threads=1), dtype=np.float64
        )
        return self.calibration.logit(raw)

    def scores(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        z = np.clip(self.logits(rows), -50, 50)
        out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-z))
        return out

    def explain(self, vector: Sequence[float]) -> tuple[float, float, list[float]]:
        """(logit, bias, contributions in FEATURES order) for one payment, calibrated:
        bias + sum(contributions) == logit."""
        row = np.asarray(vector, dtype=np.float64).reshape(1, -1)
        contrib = np.asarray(
            self.booster.predict(row, pred_contrib=True, num_threads=1), dtype=np.float64
        )[0]
        a, b = self.calibration.a, self.calibration.b
        parts = [float(a * c) for c in contrib[:-1]]
        bias = float(a * contrib[-1] + b)
        return bias + math.fsum(parts), bias, parts

    def assess(self, facts: PaymentFacts, vector: Sequence[float]) -> Assessment:
        """The decision for one payment, in the shape every decision is stored in.
        Trees have no weight per feature: `weight` is 0 and `contribution` is TreeSHAP's."""
        logit, bias, parts = self.explain(vector)
        score = logistic(logit)
        decision = self.thresholds.decision(score)
        return Assessment(
            decision=decision,
            score=score,
            logit=logit,
            bias=bias,
            contributions=tuple(
                Contribution(name, float(v), 0.0, c)
                for name, v, c in zip(FEATURES, vector, parts, strict=True)
            ),
            rules_fired=(),
            model_version=self.version,
            score_decision=decision,
        )
