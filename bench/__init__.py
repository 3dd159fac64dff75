"""Benchmarks and the minion swarm (not installed; run from the checkout: `python -m bench`)."""
