"""Mutated video and picture containers (testing.container_fuzz) in a fresh process, under the fuzzing limits: every
file ends in a result or one clear refusal, none crashes the process, hangs, or passes the time and memory ceiling.

This is the short form, run with the tests; benchmarks/bench_fuzz.py runs the long one.
"""

from __future__ import annotations

import pytest

from testing.container_fuzz import (
    ADDRESS_SPACE_MB,
    FUZZ_OPTIONS,
    MUTATIONS,
    corpus,
    problems,
    seed_files,
    tally,
)
from testing.isolation import run_isolated
from testing.media import PHONE_TAGS, make_clip

# Six files of each kind of mutation of each of the seven containers: about 15 s.
COUNT = 6 * len(MUTATIONS) * 7
TIMEOUT_S = 300


@pytest.mark.slow
def test_mutated_containers_end_in_a_result_or_one_clear_refusal() -> None:
    seeds = {f"{name}-unmutated": data for name, data in seed_files().items()}
    cases = [*seeds.items(), *corpus(COUNT)]
    assert len({data for _, data in cases}) > 0.9 * len(cases), "the mutations must change the files"
    isolated = run_isolated(cases, FUZZ_OPTIONS, TIMEOUT_S, ADDRESS_SPACE_MB)
    assert sorted(isolated.outcomes) == sorted(name for name, _ in cases)
    assert problems(isolated, set(seeds)) == []
    for container, outcomes in tally(isolated).items():
        assert outcomes["ok"] < sum(outcomes.values()), f"no {container} mutation was refused: the corpus is toothless"


def with_keys_count(clip: bytes, count: int) -> bytes:
    """A phone clip whose QuickTime metadata "keys" box claims ``count`` keys (the box itself holds a few)."""
    keys = clip.index(b"keys")
    return clip[: keys + 8] + count.to_bytes(4, "big") + clip[keys + 12 :]


@pytest.mark.slow
def test_a_count_that_asks_ffmpeg_for_half_a_gigabyte_is_refused_without_it() -> None:
    """A mutation the long form found: 4 bytes of a 31-byte metadata box made FFmpeg allocate and clear 512 MB
    before reading what the box holds."""
    clip = make_clip(tags=PHONE_TAGS)
    cases = [("phone-clip", clip), ("keys-count-lies", with_keys_count(clip, 0x0400_0000))]
    isolated = run_isolated(cases, FUZZ_OPTIONS, TIMEOUT_S, ADDRESS_SPACE_MB)
    assert isolated.outcomes["phone-clip"]["outcome"] == "ok"
    lied = isolated.outcomes["keys-count-lies"]
    assert lied["outcome"] == "CorruptMediaError"
    assert lied["growth_mb"] < 64
