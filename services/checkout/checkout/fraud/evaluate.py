"""The benchmark: the engine's own pipeline and models over a transactions file in time
order, under the Fraud Detection Handbook's protocol, beside the handbook's published table.

    python -m checkout.fraud.evaluate --transactions FILE \
        [--train-from 2018-07-25 --train-to 2018-07-31] \
        [--test-from 2018-08-08 --test-to 2018-08-14] [--delay-days 7] \
        [--extra-train-from 2018-06-01] [--out DIR] [--model DIR]

One replay, as the live service would live it (replay.py): payments in time order, each
one's features from the entity states before it is recorded, fraud labels applied
`delay` days after their payment. When the replay reaches the test window's first day the
model is trained (train.fit) on the training window with the labels known then, written as
an artefact and loaded back through its integrity check; then every test payment is decided
as live: features, the trained model's score and explanation (LearnedModel.assess), and,
when that decision is REVIEW, the verification step (verify.py). The hand-set model
(default_model.json, model.assess) decides the same payments from the hand-set features
(features.compute_features) that the same states give (pipeline.legacy_history).

Protocol (the handbook's chapter 3): the file's customer_id is the customer and the card,
terminal_id the seller; on each test day, cards with a fraud from the training start up to
day - delay - 1 are known compromised and left out; AUC ROC, average precision and Card
Precision@100 over what is left. fraud_scenario is read for the per-scenario recall only.

"+ verification" ranks the payments by the decision the engine would take: what the
verification rejects (and what the score blocks) first, what it approves last, the rest by
score. `--extra-train-from` adds a row for a model trained on a longer window (ending at the
same day, labelled the same way), clearly marked as not the protocol's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dataset import _Builder
from .entity_state import StateConfig
from .features import compute_features
from .handbook import parse_day, read_transactions
from .learned import LearnedModel, Thresholds, write_artefact
from .metrics import auc_roc, average_precision, card_precision_at_k, protocol_mask
from .model import DEFAULT_MODEL_PATH, Decision, FraudModel, assess
from .pipeline import FeaturePipeline
from .replay import replay
from .train import DEFAULT_THRESHOLDS, fit
from .verify import Verdict, verify

__all__ = ["PUBLISHED", "main", "run"]

DAY = 86_400
PUBLISHED = (
    ("logistic regression", 0.871, 0.606, 0.291),
    ("decision tree, depth 2", 0.763, 0.496, 0.241),
    ("decision tree, unlimited", 0.788, 0.309, 0.243),
    ("random forest", 0.867, 0.658, 0.287),
    ("XGBoost", 0.862, 0.639, 0.273),
)


@dataclass
class _Test:
    """What the evaluation keeps per test payment."""

    day: list[int] = field(default_factory=list)
    card: list[str] = field(default_factory=list)
    fraud: list[int] = field(default_factory=list)
    scenario: list[int] = field(default_factory=list)
    hand: list[float] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    decided: list[float] = field(default_factory=list)  # ranking after verification
    extra: list[float] = field(default_factory=list)
    decision: list[str] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)
    reason: list[str] = field(default_factory=list)  # the verdict's first reason, its kind
    cpu_ns: list[int] = field(default_factory=list)  # features + score + explanation
    verify_ns: list[int] = field(default_factory=list)


def _rank_after_verification(score: float, decision: Decision, verdict: str) -> float:
    """Tiers: rejected or blocked (2), the rest (1), approved by verification (0); by score
    inside a tier."""
    if verdict == Verdict.REJECT or decision is Decision.BLOCK:
        return 2.0 + score
    if verdict == Verdict.APPROVE:
        return score
    return 1.0 + score


def _train(
    rows: _Builder,
    start: float,
    end: float,
    as_of: float,
    cfg: StateConfig,
    calibration_days: int,
    thresholds: Thresholds,
    out: Path,
) -> LearnedModel:
    data = rows.rows()
    labels = data.labels_as_of(as_of, cfg.maturity_days)
    fitted = fit(
        data,
        labels,
        end - calibration_days * DAY,
        state_config=cfg,
        thresholds=thresholds,
        window=(start, end, as_of),
        refit=True,
    )
    write_artefact(out, fitted.model_text, fitted.manifest)
    return LearnedModel.load(out)  # what is used is what was written, integrity checked


def _pct(xs: list[int], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] / 1e6


def run(
    path: str,
    train_from: float,
    train_to: float,
    test_from: float,
    test_to: float,
    *,
    delay_days: int = 7,
    calibration_days: int = 2,
    extra_train_from: float | None = None,
    out: Path,
    model_dir: str | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> str:
    """train_to and test_to exclusive (unix seconds). Returns the report."""
    cfg = StateConfig(delay_days=delay_days, maturity_days=delay_days)
    pipeline = FeaturePipeline(config=cfg)
    hand = FraudModel.load(DEFAULT_MODEL_PATH)
    starts = [train_from] + ([extra_train_from] if extra_train_from is not None else [])
    since = min(starts) - (cfg.retention_days + 1) * DAY
    train_rows, extra_rows = _Builder(), _Builder()
    test = _Test()
    model: LearnedModel | None = LearnedModel.load(model_dir) if model_dir else None
    extra: LearnedModel | None = None
    trained = model is not None and extra_train_from is None
    fraud_days: dict[int, set[str]] = {}
    wall = time.monotonic()
    replayed = 0
    train_note = ""
    for txn in replay(read_transactions(path, since=since, until=test_to), pipeline, delay_days):
        replayed += 1
        facts, at = txn.facts, txn.facts.at
        if txn.fraud:
            fraud_days.setdefault(int(at // DAY), set()).add(facts.card)
        if not trained and at >= test_from:
            t0 = time.monotonic()
            if model is None:
                model = _train(
                    train_rows,
                    train_from,
                    train_to,
                    test_from,
                    cfg,
                    calibration_days,
                    thresholds,
                    out / "protocol",
                )
            if extra_train_from is not None:
                extra = _train(
                    extra_rows,
                    extra_train_from,
                    train_to,
                    test_from,
                    cfg,
                    calibration_days,
                    thresholds,
                    out / "extra",
                )
            trained = True
            train_note = f"trained in {time.monotonic() - t0:.1f} s"
        in_train = train_from <= at < train_to and model is None
        in_extra = extra_train_from is not None and extra_train_from <= at < train_to
        if in_train or in_extra:
            vec = pipeline.features(facts)
            for b, use in ((train_rows, in_train), (extra_rows, in_extra)):
                if use:
                    b.add(txn, vec, delay_days)
            continue
        if not test_from <= at < test_to or model is None:
            continue
        # -- a test payment, decided as live --
        c0 = time.process_time_ns()
        vec = pipeline.features(facts)
        a = model.assess(facts, vec)
        c1 = time.process_time_ns()
        verdict = reason = ""
        if a.decision is Decision.REVIEW:
            v = verify(facts, pipeline.evidence(facts))
            verdict, reason = v.verdict.value, v.reasons[0].split(":")[0]
            test.verify_ns.append(time.process_time_ns() - c1)
        test.cpu_ns.append(c1 - c0)
        signals = facts.signals()
        legacy = compute_features(signals, pipeline.legacy_history(facts), at)
        test.hand.append(assess(hand, signals, legacy).score)
        test.day.append(int(at // DAY))
        test.card.append(facts.card)
        test.fraud.append(txn.fraud)
        test.scenario.append(txn.scenario)
        test.score.append(a.score)
        test.decision.append(a.decision.value)
        test.verdict.append(verdict)
        test.reason.append(reason)
        test.decided.append(_rank_after_verification(a.score, a.decision, verdict))
        if extra is not None:
            test.extra.append(float(extra.scores(np.asarray([vec]))[0]))
    if model is None:
        raise ValueError("the file has no payment on or after the test window's start")
    return _report(
        test,
        model,
        extra,
        fraud_days,
        train_from,
        delay_days,
        replayed,
        time.monotonic() - wall,
        train_note,
        len(pipeline.store),
    )


def _report(
    test: _Test,
    model: LearnedModel,
    extra: LearnedModel | None,
    fraud_days: dict[int, set[str]],
    train_from: float,
    delay_days: int,
    replayed: int,
    wall: float,
    train_note: str,
    entities: int,
) -> str:
    days = np.asarray(test.day, dtype=np.int64)
    keep = protocol_mask(days, test.card, fraud_days, int(train_from // DAY), delay_days)
    y = np.asarray(test.fraud, dtype=np.int8)[keep]
    d = days[keep]
    cards = [c for c, k in zip(test.card, keep, strict=True) if k]
    scen = np.asarray(test.scenario)[keep]

    def row(name: str, scores: list[float]) -> str:
        s = np.asarray(scores, dtype=np.float64)[keep]
        return (
            f"| {name} | {auc_roc(y, s):.3f} | {average_precision(y, s):.3f} | "
            f"{card_precision_at_k(d, cards, y, s):.3f} |"
        )

    tm = model.manifest["training"]
    lines = [
        f"test set: {int(keep.sum())} payments ({int(y.sum())} fraud) of {len(keep)} in the "
        f"window after leaving out known compromised cards; replayed {replayed} payments "
        f"through {entities} entity states in {wall:.0f} s ({train_note})",
        "",
        "| model | AUC ROC | AP | Card Precision@100 |",
        "| --- | --- | --- | --- |",
        *(f"| handbook: {n} | {auc:.3f} | {ap:.3f} | {cp:.3f} |" for n, auc, ap, cp in PUBLISHED),
        row(f"payplane hand-set logistic ({DEFAULT_MODEL_PATH.name})", test.hand),
        row(
            f"payplane gbdt {model.version} (train {tm['from'][:10]}..{tm['to'][:10]})", test.score
        ),
        row("payplane gbdt + verification", test.decided),
    ]
    if extra is not None:
        te = extra.manifest["training"]
        lines.append(
            row(
                f"extra, not the protocol: gbdt trained {te['from'][:10]}..{te['to'][:10]}",
                test.extra,
            )
        )
    flagged = np.asarray(test.score)[keep] >= model.thresholds.review
    recall = ", ".join(
        f"{k}: {int((flagged & (scen == k)).sum())}/{int((scen == k).sum())}" for k in (1, 2, 3)
    )
    lines += [
        "",
        f"fraud flagged at the review threshold ({model.thresholds.review}) by "
        f"scenario (analysis only): {recall}",
    ]
    # -- decisions and the verification step (every test payment, as decided live) --
    dec = Counter(test.decision)
    fraud_all = np.asarray(test.fraud)
    verdicts = np.asarray(test.verdict)
    reviewed = verdicts != ""
    n_rev = int(reviewed.sum())
    lines += [
        "",
        "decisions over the test window: "
        + ", ".join(f"{k} {dec.get(k.value, 0)}" for k in Decision),
    ]
    if n_rev:
        settled = reviewed & (verdicts != Verdict.HUMAN.value)
        lines.append(
            f"verification of the {n_rev} REVIEW decisions: {int(settled.sum())} settled "
            f"automatically ({100 * settled.sum() / n_rev:.1f} %), {n_rev - int(settled.sum())} "
            "left to a human"
        )
        for v in Verdict:
            m = verdicts == v.value
            n, f = int(m.sum()), int(fraud_all[m].sum())
            if v is Verdict.APPROVE:
                note = f"human would disagree (fraud approved): {f}"
            elif v is Verdict.REJECT:
                note = f"human would disagree (genuine rejected): {n - f}"
            elif v is Verdict.CHALLENGE:
                note = (
                    f"3-D Secure asked of {n - f} genuine (friction) and {f} fraud "
                    "(stopped, if the fraudster cannot authenticate)"
                )
            else:
                note = "a reviewer decides"
            lines.append(f"  {v.value:<9} {n:>6}  ({f} fraud)  {note}")
            why = Counter(r for r, vv in zip(test.reason, test.verdict, strict=True) if vv == v)
            bad = Counter(
                r
                for r, vv, y in zip(test.reason, test.verdict, test.fraud, strict=True)
                if vv == v and y == (1 if v is Verdict.APPROVE else 0)
            )
            if v in (Verdict.APPROVE, Verdict.REJECT):
                lines.append(
                    "            by first reason: "
                    + ", ".join(f"{r} {k} ({bad[r]} disagreed)" for r, k in why.most_common())
                )
        wrong = int(
            ((verdicts == "approve") & (fraud_all == 1)).sum()
            + ((verdicts == "reject") & (fraud_all == 0)).sum()
        )
        if settled.sum():
            lines.append(
                f"  settled automatically and wrong by the ground truth: {wrong} of "
                f"{int(settled.sum())} ({100 * wrong / settled.sum():.1f} %; a "
                "challenge counts as right)"
            )
    lines += [
        "",
        f"decision CPU per payment (features + score + TreeSHAP explanation, one at a time, "
        f"{len(test.cpu_ns)} payments, up to {entities} entities in memory): "
        f"p50 {_pct(test.cpu_ns, 0.5):.3f} ms, p99 {_pct(test.cpu_ns, 0.99):.3f} ms, "
        f"mean {statistics.fmean(test.cpu_ns) / 1e6:.3f} ms",
    ]
    if test.verify_ns:
        lines.append(
            f"verification CPU per reviewed payment: p50 "
            f"{_pct(test.verify_ns, 0.5):.3f} ms, p99 {_pct(test.verify_ns, 0.99):.3f}"
            " ms"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m checkout.fraud.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--transactions", required=True, help="a CSV in the handbook's format")
    ap.add_argument("--train-from", default="2018-07-25")
    ap.add_argument("--train-to", default="2018-07-31", help="inclusive")
    ap.add_argument("--test-from", default="2018-08-08")
    ap.add_argument("--test-to", default="2018-08-14", help="inclusive")
    ap.add_argument("--delay-days", type=int, default=7)
    ap.add_argument("--calibration-days", type=int, default=2)
    ap.add_argument("--extra-train-from", help="also report a model trained from this day")
    ap.add_argument("--thresholds", default="0.1,0.3,0.9", help="challenge,review,block")
    ap.add_argument("--model", help="evaluate this artefact instead of training one")
    ap.add_argument("--out", help="where the trained artefacts go (default: a temp dir)")
    args = ap.parse_args(argv)
    c, r, b = (float(x) for x in args.thresholds.split(","))
    with tempfile.TemporaryDirectory(prefix="fraud-eval-") as tmp:
        try:
            report = run(
                args.transactions,
                parse_day(args.train_from),
                parse_day(args.train_to) + DAY,
                parse_day(args.test_from),
                parse_day(args.test_to) + DAY,
                delay_days=args.delay_days,
                calibration_days=args.calibration_days,
                extra_train_from=parse_day(args.extra_train_from)
                if args.extra_train_from
                else None,
                out=Path(args.out or tmp),
                model_dir=args.model,
                thresholds=Thresholds(c, r, b),
            )
        except (OSError, ValueError) as exc:
            print(f"evaluate: {exc}", file=sys.stderr)
            return 2
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
