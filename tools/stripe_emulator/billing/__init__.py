"""Stripe Billing's engine, under the resources that expose it.

calendar   period boundaries from a billing cycle anchor
amounts    what a price costs for a quantity; prorations; discounts and taxes of an invoice
timeline   test clocks: objects bound to one live and are woken on its time
invoicing  invoice life: lines, totals, finalization, payment attempts, void, dunning
lifecycle  subscription life: creation, renewals, trials, changes, cancellation, pause
usage      billing meters: events, dedupe, adjustments, aggregation by period
"""
