"""Every notebook in notebooks/ runs top to bottom."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
NOTEBOOKS = sorted(
    (pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")
)


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ has no notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    needs = notebook.metadata.get("mtrec", {}).get("needs_shared_data")
    if needs and not (SHARED_DATA / needs).is_dir():
        pytest.skip(f"{path.name} reads {SHARED_DATA / needs}, which is absent")
    NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    errors = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors
