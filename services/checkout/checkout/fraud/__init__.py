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
"""
