"""Tests of the atomic JSON writer."""

import json

import pytest

from mtrec.json_file import write_json


def test_writes_indented_json_ending_in_a_newline(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"auc": {"ctr": 0.75}, "steps": [1, 2]})
    text = path.read_text()
    assert (
        text
        == '{\n  "auc": {\n    "ctr": 0.75\n  },\n  "steps": [\n    1,\n    2\n  ]\n}\n'
    )
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_replaces_an_existing_file_whole(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("x" * 10_000)
    write_json(path, {"epoch": 2})
    assert json.loads(path.read_text()) == {"epoch": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_unserialisable_data_leaves_the_old_file(tmp_path):
    path = tmp_path / "state.json"
    write_json(path, {"epoch": 1})
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json(path, {"epoch": object()})
    assert json.loads(path.read_text()) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_missing_directory_raises_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_json(tmp_path / "absent" / "state.json", {})
    assert list(tmp_path.iterdir()) == []
