"""Benchmarks: ``make bench`` (= ``python -m bench``) times the scoring core against a plain POT baseline."""
