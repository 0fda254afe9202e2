"""Errors raised on bad input. Every message names the file, the line or record, and what was expected."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A data file does not match its official format.

    `location` is a 1-based line number for line formats (IOB, TSV, JSONL, PubTator) or a
    record description ("record 17", "document 1234567") for whole-file JSON.
    """

    def __init__(self, path: str | Path, location: str | int | None, expected: str, found: str | None = None):
        self.path = str(path)
        self.location = location
        self.expected = expected
        self.found = found
        where = self.path
        if location is not None:
            where += f", line {location}" if isinstance(location, int) else f", {location}"
        message = f"{where}: expected {expected}"
        if found is not None:
            message += f"; found {found}"
        super().__init__(message)


class DataNotFoundError(FileNotFoundError):
    """A set's files are not where the data directory layout says they should be."""


class ConfigError(ValueError):
    """A recipe, baseline config or command-line combination is invalid."""
