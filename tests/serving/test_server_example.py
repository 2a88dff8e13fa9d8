"""The ModelServer docstring example runs against a real export."""

import doctest
import os

import mtrec.serving.server as server_module


def test_model_server_docstring_example_runs(run, tmp_path, monkeypatch):
    # The example serves "exports/esmm": make that the trained run's export base.
    (tmp_path / "exports").mkdir()
    os.symlink(run.export_path.parent, tmp_path / "exports" / "esmm")
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(
        server_module,
        globs=dict(vars(server_module)),
        optionflags=doctest.ELLIPSIS,
    )
    assert result.attempted == 2
    assert result.failed == 0
