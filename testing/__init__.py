"""What the tests and the benchmarks share: real-photo fixtures with known faces, synthetic media, measures.

Both ``tests/`` and ``benchmarks/`` import from here and never from each other, so a benchmark does not depend on
a test module and no test module is imported for its helpers.
"""
