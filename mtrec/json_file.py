"""JSON result files written whole or not at all."""

import json
import os
import pathlib


def write_json(path: str | os.PathLike, data) -> None:
    """Writes ``data`` as indented JSON, atomically.

    The text goes to ``<name>.tmp`` beside ``path``, which is then renamed over
    ``path`` (``os.replace``), so a reader sees the old file or the new one,
    never a half-written one, even when the writer is killed mid-write. The
    text ends with a newline.

    Args:
      path: the file to write; its directory must exist.
      data: anything ``json.dumps`` takes.

    Example:

    >>> import tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.json"
    >>> write_json(path, {"epoch": 3})
    >>> json.loads(path.read_text())
    {'epoch': 3}
    >>> sorted(p.name for p in path.parent.iterdir())
    ['state.json']
    """
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
