"""Benchmarks that print figures (see `python -m bench`)."""
