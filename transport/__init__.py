"""The wire: message codec with size limits, AEAD and signatures, the auth
handshake (all sans-IO, no zmq), and the zmq channels built on them."""
