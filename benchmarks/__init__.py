"""Benchmark scripts (run as files: ``python benchmarks/<name>.py``) and the helper modules of
``progressive_vs_full.py``; a package so its tests can import the helpers."""
