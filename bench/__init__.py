"""Benchmarks: commands that print figures and write them to bench/results/*.json."""
