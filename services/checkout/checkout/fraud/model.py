"""The scoring model and the decision: transparent, deterministic, pure.

    logit = bias + sum(weight[f] * value[f] for f in FEATURES)      (each term is stored)
    score = 1 / (1 + exp(-logit))

The score alone decides ALLOW < challenge_at <= CHALLENGE < review_at <= REVIEW < block_at <=
BLOCK. Rules come first: a block list match BLOCKs; otherwise an allow list match ALLOWs;
otherwise every hard limit that fires can only raise the decision (ALLOW < CHALLENGE < REVIEW
< BLOCK). After authorisation, `with_radar` joins Stripe Radar's verdict.

A model file (JSON; the shipped default is default_model.json):

    {"version": "...", "bias": -4.0, "weights": {"velocity_card_1h": 0.6, ...},
     "thresholds": {"challenge": 0.5, "review": 0.75, "block": 0.92},
     "lists": {"allow": {"email": [...]}, "block": {"card_fingerprint": [...]}},
     "limits": [{"name": "card_burst", "feature": "velocity_card_10m", "at_least": 5,
                 "action": "block"},
                {"name": "big_usd", "feature": "amount", "currency": "usd",
                 "at_least": 500000, "action": "review"}]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from .features import FEATURES, Signals

__all__ = [
    "DEFAULT_MODEL_PATH",
    "Assessment",
    "Contribution",
    "Decision",
    "FraudModel",
    "Limit",
    "ModelError",
    "assess",
    "logistic",
    "with_radar",
]

DEFAULT_MODEL_PATH = Path(__file__).with_name("default_model.json")
LIST_FIELDS = frozenset(
    {"customer_ref", "card_fingerprint", "card_country", "ip_address", "ip_country", "email",
     "shipping_country"}
)  # fmt: skip


class ModelError(ValueError):
    """A model file is malformed (names the problem)."""


class Decision(StrEnum):
    ALLOW = "allow"
    CHALLENGE = "challenge"
    REVIEW = "review"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Decision.ALLOW: 0, Decision.CHALLENGE: 1, Decision.REVIEW: 2, Decision.BLOCK: 3}


def _max(a: Decision, b: Decision) -> Decision:
    return a if a.severity >= b.severity else b


@dataclass(frozen=True)
class Limit:
    name: str
    feature: str  # a feature name, or "amount" (minor units of `currency`)
    at_least: float
    action: Decision
    currency: str = ""  # for "amount": the limit applies to this currency only

    def fires(self, signals: Signals, features: Mapping[str, float]) -> bool:
        if self.feature == "amount":
            if self.currency and self.currency != signals.currency:
                return False
            return signals.amount >= self.at_least
        return features.get(self.feature, 0.0) >= self.at_least


@dataclass(frozen=True)
class FraudModel:
    version: str
    bias: float
    weights: Mapping[str, float]
    challenge_at: float
    review_at: float
    block_at: float
    allow: Mapping[str, frozenset[str]]
    block: Mapping[str, frozenset[str]]
    limits: tuple[Limit, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FraudModel:
        problems: list[str] = []
        weights = {str(k): float(v) for k, v in dict(data.get("weights", {})).items()}
        unknown = sorted(set(weights) - set(FEATURES))
        if unknown:
            problems.append(f"weights: unknown features {unknown}")
        th = dict(data.get("thresholds", {}))
        challenge = float(th.get("challenge", 0.5))
        review = float(th.get("review", 0.75))
        block = float(th.get("block", 0.92))
        if not 0 < challenge <= review <= block <= 1:
            problems.append("thresholds: need 0 < challenge <= review <= block <= 1")
        lists: dict[str, dict[str, frozenset[str]]] = {"allow": {}, "block": {}}
        for kind in ("allow", "block"):
            for fld, values in dict(dict(data.get("lists", {})).get(kind, {})).items():
                if fld not in LIST_FIELDS:
                    problems.append(f"lists.{kind}.{fld}: not one of {sorted(LIST_FIELDS)}")
                    continue
                norm = {str(v).lower() if fld == "email" else str(v) for v in values}
                if fld.endswith("country"):
                    norm = {v.upper() for v in norm}
                lists[kind][fld] = frozenset(norm)
        limits = []
        for i, raw in enumerate(data.get("limits", [])):
            try:
                limit = Limit(
                    name=str(raw["name"]),
                    feature=str(raw["feature"]),
                    at_least=float(raw["at_least"]),
                    action=Decision(str(raw["action"])),
                    currency=str(raw.get("currency", "")).lower(),
                )
            except (KeyError, ValueError) as exc:
                problems.append(f"limits[{i}]: {exc}")
                continue
            if limit.feature != "amount" and limit.feature not in FEATURES:
                problems.append(f"limits[{i}]: unknown feature {limit.feature!r}")
            limits.append(limit)
        version = str(data.get("version", ""))
        if not version:
            problems.append("version: required")
        if problems:
            raise ModelError("; ".join(problems))
        return cls(
            version=version,
            bias=float(data.get("bias", 0.0)),
            weights=weights,
            challenge_at=challenge,
            review_at=review,
            block_at=block,
            allow=lists["allow"],
            block=lists["block"],
            limits=tuple(limits),
        )

    @classmethod
    def load(cls, path: str | Path) -> FraudModel:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path}: {exc}") from exc
        return cls.from_dict(data)


@dataclass(frozen=True)
class Contribution:
    name: str
    value: float
    weight: float
    contribution: float


@dataclass(frozen=True)
class Assessment:
    decision: Decision
    score: float
    logit: float
    bias: float
    contributions: tuple[Contribution, ...]
    rules_fired: tuple[str, ...]
    model_version: str
    score_decision: Decision

    def features(self) -> dict[str, float]:
        return {c.name: c.value for c in self.contributions}


def logistic(logit: float) -> float:
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    e = math.exp(logit)
    return e / (1.0 + e)


def _explain(model: FraudModel, features: Mapping[str, float]) -> tuple[Contribution, ...]:
    out = []
    for name in FEATURES:
        value = float(features.get(name, 0.0))
        weight = model.weights.get(name, 0.0)
        out.append(Contribution(name, value, weight, weight * value))
    return tuple(out)


def assess(model: FraudModel, signals: Signals, features: Mapping[str, float]) -> Assessment:
    """The decision for one payment: a function of (model, signals, features) only."""
    contributions = _explain(model, features)
    logit = model.bias + math.fsum(c.contribution for c in contributions)
    score = logistic(logit)
    if score >= model.block_at:
        by_score = Decision.BLOCK
    elif score >= model.review_at:
        by_score = Decision.REVIEW
    elif score >= model.challenge_at:
        by_score = Decision.CHALLENGE
    else:
        by_score = Decision.ALLOW
    subject = signals.subject()
    blocked = [f"block_list:{f}" for f in sorted(model.block) if subject.get(f) in model.block[f]]
    allowed = [f"allow_list:{f}" for f in sorted(model.allow) if subject.get(f) in model.allow[f]]
    fired: list[str]
    if blocked:
        decision, fired = Decision.BLOCK, blocked
    elif allowed:
        decision, fired = Decision.ALLOW, allowed
    else:
        decision, fired = by_score, []
        for limit in model.limits:
            if limit.fires(signals, features):
                fired.append(f"limit:{limit.name}")
                decision = _max(decision, limit.action)
    return Assessment(
        decision=decision,
        score=score,
        logit=logit,
        bias=model.bias,
        contributions=contributions,
        rules_fired=tuple(fired),
        model_version=model.version,
        score_decision=by_score,
    )


def with_radar(decision: Decision, risk_level: str, outcome_type: str) -> Decision:
    """Radar's verdict after authorisation: elevated moves ALLOW/CHALLENGE to REVIEW; highest
    risk or a Radar block is respected (BLOCK); nothing Radar says lowers a decision."""
    if outcome_type == "blocked" or risk_level == "highest":
        return Decision.BLOCK
    if risk_level == "elevated" or outcome_type == "manual_review":
        return _max(decision, Decision.REVIEW)
    return decision
