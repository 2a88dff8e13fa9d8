"""Helpers of the dataset loader tests: the shared samples and edited copies."""

import pathlib

import pytest
from shared_data import SHARED_DATA


def requires(folder: str):
    """Skip unless ``../shared/data/<folder>`` exists (with the reason)."""
    path = SHARED_DATA / folder
    return pytest.mark.skipif(
        not path.is_dir(), reason=f"shared sample folder not found at {path}"
    )


def edited_copy(
    source: pathlib.Path, target: pathlib.Path, line: int, edit
) -> pathlib.Path:
    """A copy of ``source`` whose 1-based ``line`` is replaced by ``edit(fields)``.

    ``edit`` receives the line's comma-separated fields (a list it may change)
    and returns the new fields.
    """
    lines = source.read_text().splitlines()
    fields = lines[line - 1].split(",")
    lines[line - 1] = ",".join(edit(fields))
    target.write_text("\n".join(lines) + "\n")
    return target
