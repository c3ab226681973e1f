"""5. Sinks: push computed progress out to the OKR stores teams keep.

enqueue.py builds a measurement's deliveries before its transaction and writes them into
the outbox inside it (superseding older undelivered ones where the sink keeps only the latest);
delivery.py sends what is pending afterwards (retries, order per KR and sink, a bounded
pool) through senders.py, the table of one sender module per sink type (webhook.py,
okr_tracker.py); transport.py is their one bounded HTTP client and sorts the answers.
"""
