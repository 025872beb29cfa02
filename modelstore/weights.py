"""Checking, while it streams, that weight data matches its specs byte for byte (§2.3, §12.6).

TF.js never checks the size on load: extra bytes are ignored and missing ones fail
obscurely, so a save must be refused when the bytes and the specs disagree. String
tensors have no fixed size: their u32 little-endian length prefixes are walked.
"""

from __future__ import annotations

from modelshelf.modelstore.errors import WeightSizeMismatchError
from modelshelf.modelstore.manifest import WeightEntry

STRING_LENGTH_BYTES = 4


class WeightStreamChecker:
    """Consumes the weight stream chunk by chunk and knows which tensor each byte belongs to."""

    def __init__(self, entries: list[WeightEntry]) -> None:
        self._entries = entries
        self._expected = _fixed_total(entries)
        self.total = 0
        self._index = -1
        self._offset = 0
        self._remaining = 0
        self._strings_left = 0
        self._length_prefix = bytearray()
        self._string_left = 0
        self._advance()

    def feed(self, chunk: bytes | memoryview) -> None:
        """Account for the next bytes; raises WeightSizeMismatchError on bytes past the end."""
        view = memoryview(chunk)
        position = 0
        while position < len(view):
            if self._index >= len(self._entries):
                raise WeightSizeMismatchError(self._too_long_message(self.total + position))
            if self._entries[self._index].size is None:
                position = self._feed_string(view, position)
            else:
                position = self._feed_fixed(len(view), position)
        self.total += len(view)

    def finish_group(self, group: int) -> None:
        """The files of ``group`` are complete: its tensors must end exactly here (§2.3)."""
        current = self._entries[self._index] if self._index < len(self._entries) else None
        if current is not None and current.group <= group:
            raise WeightSizeMismatchError(
                f"the files of weightsManifest group {group} end inside weight "
                f"{current.name!r}: {self._short_message()}"
            )
        if current is not None and self._offset > 0:
            raise WeightSizeMismatchError(
                f"the files of weightsManifest group {group} hold bytes of the next group's "
                f"weight {current.name!r}; each group's files must hold exactly its own weights"
            )

    def finish(self) -> None:
        """The stream is complete: every tensor must have all its bytes."""
        if self._index < len(self._entries):
            current = self._entries[self._index]
            raise WeightSizeMismatchError(
                f"weight {current.name!r} is incomplete: {self._short_message()}"
            )

    def _feed_fixed(self, end: int, position: int) -> int:
        taken = min(self._remaining, end - position)
        self._remaining -= taken
        self._offset += taken
        if self._remaining == 0:
            self._advance()
        return position + taken

    def _feed_string(self, view: memoryview, position: int) -> int:
        if self._string_left > 0:
            taken = min(self._string_left, len(view) - position)
            self._string_left -= taken
            self._offset += taken
            if self._string_left == 0:
                self._string_done()
            return position + taken
        part = view[position : position + STRING_LENGTH_BYTES - len(self._length_prefix)]
        self._length_prefix += part
        self._offset += len(part)
        if len(self._length_prefix) == STRING_LENGTH_BYTES:
            self._string_left = int.from_bytes(self._length_prefix, "little")
            self._length_prefix.clear()
            if self._string_left == 0:
                self._string_done()
        return position + len(part)

    def _string_done(self) -> None:
        self._strings_left -= 1
        if self._strings_left == 0:
            self._advance()

    def _advance(self) -> None:
        self._index += 1
        self._offset = 0
        while self._index < len(self._entries) and _is_empty(self._entries[self._index]):
            self._index += 1
        if self._index < len(self._entries):
            entry = self._entries[self._index]
            self._remaining = entry.size or 0
            self._strings_left = entry.elements if entry.size is None else 0

    def _too_long_message(self, end: int) -> str:
        expected = f" ({self._expected} bytes)" if self._expected is not None else ""
        return (
            f"the weight data is longer than its weight specs describe{expected}: "
            f"extra bytes start at byte {end}"
        )

    def _short_message(self) -> str:
        expected = (
            f"the specs need {self._expected}"
            if self._expected is not None
            else ("the specs need more")
        )
        return f"the weight data ends after {self.total} bytes and {expected}"


def _is_empty(entry: WeightEntry) -> bool:
    return entry.size == 0 or (entry.size is None and entry.elements == 0)


def _fixed_total(entries: list[WeightEntry]) -> int | None:
    sizes = [entry.size for entry in entries]
    return None if None in sizes else sum(size or 0 for size in sizes)
