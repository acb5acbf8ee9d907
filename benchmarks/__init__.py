"""Benchmarks of labelbridge, each writing its section of ``benchmarks/results.md``.

Run each one as a module from the repository root, e.g. ``python -m benchmarks.u1_camvid_idd
--help``; their shared helpers live in :mod:`benchmarks.common`.
"""
