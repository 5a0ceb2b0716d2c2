"""Tests of the benchmark scripts: small versions that check what they produce, never timings."""
