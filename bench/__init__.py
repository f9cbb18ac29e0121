"""make bench: python -m bench.bench."""
