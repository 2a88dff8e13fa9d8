"""Progress bars: on a terminal (or forced), silent in CI logs."""

from mtrec.progress import progress


def test_silent_when_stderr_is_not_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("MTREC_PROGRESS", raising=False)
    assert list(progress(range(5), "counting")) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err == ""


def test_forced_on_shows_the_step_and_the_count(capsys, monkeypatch):
    monkeypatch.setenv("MTREC_PROGRESS", "1")
    assert sum(progress(range(7), "fitting vocabularies", unit="chunk")) == 21
    err = capsys.readouterr().err
    assert "fitting vocabularies" in err and "0/7" in err and "chunk/s" in err


def test_forced_off(capsys, monkeypatch):
    monkeypatch.setenv("MTREC_PROGRESS", "0")
    list(progress(range(3), "x"))
    assert capsys.readouterr().err == ""
