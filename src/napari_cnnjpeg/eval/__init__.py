"""Metrics, Bjontegaard deltas, the benchmarks and the demo: everything that measures the codec.

Imports the codec and the layers below it.
"""
