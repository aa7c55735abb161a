"""Side-by-side benchmark of chainops against dbmate, yoyo and the psql floors.

Run `python -m bench` (or `inv bench`); results are recorded in docs/benchmarks.md.
"""
