"""Sections of ``docs/benchmarks.md`` that each benchmark rewrites.

A section is the text between ``<!-- begin: NAME -->`` and
``<!-- end: NAME -->``; the rest of the file is left as it is. Run from
``benchmarks/`` (the scripts put it on ``sys.path``).
"""

import pathlib


def update_doc_section(
    path: str | pathlib.Path, name: str, text: str, new_doc: str = "# Benchmarks\n"
) -> None:
    """Replaces section ``name`` of the Markdown file ``path``.

    The section is appended (markers included) when the file lacks it; a
    missing file starts as ``new_doc``.
    """
    path = pathlib.Path(path)
    doc = path.read_text() if path.is_file() else new_doc
    begin, end = f"<!-- begin: {name} -->", f"<!-- end: {name} -->"
    if begin not in doc or end not in doc:
        doc = doc.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{begin}\n{text.strip()}\n{end}{tail}")
