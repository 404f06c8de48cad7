"""checkout's fraud engine: features from checkout's own data, a transparent logistic score,
rules, and the decision (ALLOW, CHALLENGE, REVIEW, BLOCK).

    features.py   Signals (what the caller and Stripe's PaymentMethod tell) + History
                  (aggregates over checkout's tables, each with a defined window)
                  -> named feature values. Pure.
    model.py      FraudModel (weights, bias, thresholds, lists, hard limits; loaded from JSON,
                  the shipped default is default_model.json) and `assess()`: score, each
                  feature's contribution, rules fired, decision. Pure and deterministic.
                  `with_radar()` joins Stripe Radar's verdict after authorisation.
    backtest.py   `python -m checkout.fraud.backtest --candidate rules.json`: replay stored
                  decisions against a candidate model.

The queries behind History live in adapters/fraud_history.py; decisions are stored by
adapters/fraud_store.py with every feature's value and contribution.

The learned engine (issue 14; the live wiring comes with the service kit):

    facts.py         PaymentFacts: the payment and the seven entities it names.
    entity_state.py  EntityState: one entity's history kept incrementally (day and hour
                     buckets, recent times, links), JSON round-trip. Pure.
    pipeline.py      FeaturePipeline: features (FEATURES) from the states, record, label;
                     the hand-set model's History from the same states; the evidence the
                     verification reads. Pure; O(1) per payment.
    labels.py        fraud labels from disputes, early fraud warnings, reviews and refunds,
                     with their label time and the maturity window.
    learned.py       LearnedModel: the LightGBM artefact (text dump + signed manifest),
                     loaded with an integrity check; assess() with TreeSHAP contributions.
    calibration.py   Platt calibration and its reliability table.
    train.py         `python -m checkout.fraud.train`: time-split training -> artefact.
    verify.py        the verification step for REVIEW decisions: approve, challenge,
                     reject or human, with reasons. Pure, deterministic.
    registry.py      champion and shadow (challenger), every change audited.
    evaluate.py      `python -m checkout.fraud.evaluate`: the handbook benchmark.
    handbook.py, replay.py, dataset.py, metrics.py, simulate.py
                     the benchmark's file format, the time-ordered replay, feature rows,
                     the handbook's metrics and protocol, a small generator for tests.
"""
