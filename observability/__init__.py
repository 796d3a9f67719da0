"""What operators see: the correlation id every request carries (correlation.py), log lines as JSON (logs.py) and
Prometheus metrics (metrics.py). `correlation` imports nothing of ours, so any layer may read it."""
