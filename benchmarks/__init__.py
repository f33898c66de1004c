"""Benchmarks of pureclarity_gdpr: run ``python benchmarks/run.py``."""
