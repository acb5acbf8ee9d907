"""Helpers shared by the benchmarks (``python -m benchmarks.NAME`` from the repository root).

* :mod:`~benchmarks.common.paths`: the repository, ``../shared`` data and weights, and the
  check that they are there;
* :mod:`~benchmarks.common.results`: the command line, the run header and one section of
  ``benchmarks/results.md``;
* :mod:`~benchmarks.common.profiles`: the profiles, shared training settings and command
  line of the real-data benchmarks U1 and U2;
* :mod:`~benchmarks.common.runs`: one U1/U2 run (start, cached JSON, seeds in processes,
  results section and JSON);
* :mod:`~benchmarks.common.evaluation`: evaluation sets and scores of a model on them;
* :mod:`~benchmarks.common.tables`: seed statistics, the Markdown tables and the results
  section;
* :mod:`~benchmarks.common.figures`: preview panels;
* :mod:`~benchmarks.common.layouts`: tiny fixture datasets in each published layout and a
  tiny learnable dataset (shared with the tests);
* :mod:`~benchmarks.common.reliability`: the bad-input, bad-configuration, resource-fault
  and kill-and-resume cases of ``python -m benchmarks.reliability`` (shared with the tests).
"""
