"""Benchmarks of the gateway: `python -m bench` (`make bench`) runs `bench.connect_many` with its defaults."""
