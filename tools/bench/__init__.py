"""`make bench`: the Stripe emulator's throughput and memory against localstripe's.

Both servers run as their own processes on loopback; this process drives them through the
official stripe-python SDK (async API, one HTTP client for both) and prints one table.
"""
