"""5. Sinks: push computed progress out to the OKR stores teams keep (webhooks first).

enqueue.py writes a measurement's deliveries into the outbox in the measurement's own
transaction; delivery.py sends what is pending afterwards (retries, order per KR and
sink, a bounded pool); webhook.py is the one bounded HTTP sender and its signature.
"""
