"""Byte sizes of keys, nonces and signatures on the wire, and the jobs' freshness window (here, not in crypto
or messages, so that parsing messages does not load the crypto library, and the CLI's parser does not load the
message classes: the CLI starts faster)."""

KEY_BYTES = 32
NONCE_BYTES = 12
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64

JOB_WINDOW = 300.0
"""Minions refuse a job older than this by the master's clock (stale); no job's expiry is later."""
