"""Byte sizes of keys, nonces and signatures on the wire (here, not in crypto, so that parsing
messages does not load the crypto library: the CLI starts faster)."""

KEY_BYTES = 32
NONCE_BYTES = 12
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
