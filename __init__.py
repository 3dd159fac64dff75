"""rx: remote execution over ZeroMQ — a master publishes signed, encrypted jobs to minions."""

__version__ = "0.1.0"
