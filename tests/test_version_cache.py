"""The model layer's memory of committed versions stays within its bounds (issue 12.2)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from modelshelf.modelstore.records import ArtifactsRecord, FileRecord, VersionRecord
from modelshelf.modelstore.version_cache import MAX_SERVED_BYTES, VersionCache


def _record(version_id: str, files: int) -> VersionRecord:
    return VersionRecord(
        id=version_id,
        saved_at="2026-12-02T00:00:00.000Z",
        artifacts=ArtifactsRecord(topology_bytes=1, weight_specs_bytes=1, weight_data_bytes=1),
        model_json=FileRecord(path="model.json", size=1, sha256="0" * 64),
        files=[FileRecord(path=f"w{n}.bin", size=n, sha256="0" * 64) for n in range(files)],
        served_bytes=1,
    )


remembers = st.lists(
    st.tuples(
        st.integers(0, 30),  # which version
        st.integers(0, 40),  # how many weight files its record lists
        st.integers(0, 3000),  # served model.json bytes
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(remembers, st.integers(1, 10), st.integers(200, 20_000))
def test_entries_and_bytes_stay_bounded(
    steps: list[tuple[int, int, int]], max_entries: int, max_bytes: int
) -> None:
    cache = VersionCache(max_entries=max_entries, max_bytes=max_bytes)
    for number, files, served in steps:
        entry = cache.remember("m", "key", _record(f"{number:04d}", files), b"x" * served)
        assert entry.record.id == f"{number:04d}"
        assert len(cache) <= max_entries
        assert cache.bytes_held <= max_bytes
    held = [cache.get("m", f"{n:04d}") for n in range(31)]
    assert cache.bytes_held == sum(entry.weight for entry in held if entry is not None)


def test_the_newest_entries_stay_and_a_huge_served_document_is_not_held() -> None:
    cache = VersionCache(max_entries=2, max_bytes=1 << 30)
    for number in range(3):
        cache.remember("m", "key", _record(f"{number:04d}", 1), b"{}")
    assert cache.get("m", "0000") is None
    assert cache.get("m", "0002") is not None
    big = cache.remember("m", "key", _record("0003", 1), b"x" * (MAX_SERVED_BYTES + 1))
    assert big.served is None  # streamed from the store on every load instead
    assert cache.get("m", "0003") is not None and cache.bytes_held < MAX_SERVED_BYTES
