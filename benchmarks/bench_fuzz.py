"""The container fuzzing corpus's long form: thousands of mutated MP4, MOV, MKV, WebM, GIF, HEIC and AVIF files
(testing.container_fuzz), each run under the fuzzing limits in fresh processes, batch by batch.

Full run:   python -m pytest benchmarks/bench_fuzz.py -q -s      (FUZZ_FILES files, 5040 unless set)
Short (CI): FUZZ_BENCH=short python -m pytest benchmarks/bench_fuzz.py -q   (one file per container and mutation)

Fails on any file that does not end in a result or one clear refusal, that crashes or hangs its process, or that
passes the time or memory ceiling (testing.container_fuzz.problems); prints the outcomes per container. Its files
come from another seed than the tests' short form (tests/test_container_fuzz.py), so the two never try the same.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from testing.container_fuzz import ADDRESS_SPACE_MB, FUZZ_OPTIONS, MUTATIONS, corpus, problems, seed_files, tally
from testing.isolation import Isolated, run_isolated

SHORT = os.environ.get("FUZZ_BENCH", "full") == "short"
FILES = len(MUTATIONS) * len(seed_files()) if SHORT else int(os.environ.get("FUZZ_FILES", "5040"))
SEED = 2021
# Files per fresh process: a crash stops one batch, and a batch's time stays far under its timeout.
BATCH = 500
BATCH_TIMEOUT_S = 1800


@pytest.mark.slow
def test_fuzzing_corpus_long_form() -> None:
    cases = corpus(FILES, seed=SEED)
    started = time.perf_counter()
    found: list[str] = []
    counts: dict[str, Counter[str]] = {}
    slowest, peak_mb = 0.0, 0.0
    for first in range(0, len(cases), BATCH):
        isolated: Isolated = run_isolated(cases[first : first + BATCH], FUZZ_OPTIONS, BATCH_TIMEOUT_S, ADDRESS_SPACE_MB)
        found += problems(isolated, set())
        for container, outcomes in tally(isolated).items():
            counts[container] = counts.get(container, Counter()) + outcomes
        slowest = max(slowest, *(line["seconds"] for line in isolated.outcomes.values()))
        peak_mb = max(peak_mb, *(line["growth_mb"] for line in isolated.outcomes.values()))
    print(
        f"\n{len(cases)} mutated files in {time.perf_counter() - started:.0f} s; slowest {slowest:.2f} s, "
        f"largest growth {peak_mb:.0f} MB"
    )
    for container, outcomes in sorted(counts.items()):
        print(f"  {container}: {dict(outcomes.most_common())}")
    assert sum(sum(outcomes.values()) for outcomes in counts.values()) == len(cases)
    assert found == [], "\n".join(found[:20])
