"""rx's tests: `unit/` (no sockets), `integration/` (real daemons), `support/` (the sandbox harness)."""
