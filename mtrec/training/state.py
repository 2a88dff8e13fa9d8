"""``TrainingState``: how far a run got, saved as JSON after every epoch."""

import dataclasses
import json
import os
import pathlib

from mtrec.json_file import write_json
from mtrec.training.config import ConfigError


@dataclasses.dataclass(frozen=True)
class SelectionState:
    """Where the per-epoch model selection stands (``train.selection``).

    Attributes:
      best: the best selection score so far (``None`` before the first epoch).
      best_epoch: the 1-based epoch that scored it.
      wait: epochs since the last improvement.
      stopped_early: early stopping ended training.
    """

    best: float | None = None
    best_epoch: int | None = None
    wait: int = 0
    stopped_early: bool = False


@dataclasses.dataclass(frozen=True)
class MidEpochState:
    """Where an epoch stood at its last step checkpoint
    (``train.checkpoint_every_steps``).

    Attributes:
      batches: batches of epoch ``epochs_done + 1`` done when it was written.
      checkpoint: its name under ``checkpoints/`` (``mid/ckpt-<step>``).
      optimizer_steps: the optimiser's step count then.
    """

    batches: int
    checkpoint: str
    optimizer_steps: int


@dataclasses.dataclass
class TrainingState:
    """How far a run's training got; ``fit`` updates it after every epoch.

    Saved atomically as ``training_state.json`` beside the checkpoint it names,
    so ``resume_run`` continues a killed run from its last complete epoch.

    Attributes:
      epochs_done: complete epochs.
      optimizer_steps: the optimiser's step count at the end of the last epoch
        (the JSON key is ``iterations``, as in runs made before this class).
      train_rows: rows of the train split (one epoch).
      train_rows_dropped: train rows dropped for ``label_requires`` violations.
      history: per-epoch value of every logged metric (``loss``, ``ctr_loss``,
        ``weight_ctr``, ``val_ctr_auc``, ...).
      selection: the model selection's state, with ``train.selection``.
      checkpoint: name of the last epoch's checkpoint under ``checkpoints/``.
      finished: the run was evaluated (and exported) after training.
      mid_epoch: the step checkpoint written within the epoch after
        ``epochs_done`` (``train.checkpoint_every_steps``), or ``None``;
        ``resume_run`` continues from it at the next batch.

    Example:

    >>> state = TrainingState(epochs_done=1, optimizer_steps=19, train_rows=4800)
    >>> TrainingState.from_dict(state.to_dict()) == state
    True
    """

    epochs_done: int = 0
    optimizer_steps: int = 0
    train_rows: int = 0
    train_rows_dropped: int = 0
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    selection: SelectionState | None = None
    checkpoint: str | None = None
    finished: bool = False
    mid_epoch: MidEpochState | None = None

    def to_dict(self) -> dict:
        """The JSON form (the ``training_state.json`` format of every version)."""
        data = {
            "epochs_done": self.epochs_done,
            "iterations": self.optimizer_steps,
            "train_rows": self.train_rows,
            "train_rows_dropped": self.train_rows_dropped,
            "history": {k: list(v) for k, v in self.history.items()},
            "finished": self.finished,
        }
        if self.checkpoint is not None:
            data["checkpoint"] = self.checkpoint
        if self.selection is not None:
            data["selection"] = dataclasses.asdict(self.selection)
        if self.mid_epoch is not None:
            data["mid_epoch"] = dataclasses.asdict(self.mid_epoch)
        return data

    @classmethod
    def from_dict(cls, data: dict, where: str = "training state") -> "TrainingState":
        """Reads the JSON form, also as written by earlier versions.

        Early versions left out ``iterations``, ``checkpoint``, ``selection``
        and ``finished`` until they were known; they take their defaults.

        Raises:
          ConfigError: not a mapping, an unknown key or a value of the wrong
            type, naming ``where`` and the key.
        """
        _check_keys(data, where)
        history = _read_history(data.get("history", {}), where)
        selection = _read_selection(data.get("selection"), where)
        mid_epoch = _read_mid_epoch(data.get("mid_epoch"), where)
        return cls(
            epochs_done=data["epochs_done"],
            optimizer_steps=data.get("iterations") or 0,
            train_rows=data.get("train_rows") or 0,
            train_rows_dropped=data.get("train_rows_dropped") or 0,
            history=history,
            selection=selection,
            checkpoint=data.get("checkpoint"),
            finished=bool(data.get("finished", False)),
            mid_epoch=mid_epoch,
        )

    def save(self, path: str | os.PathLike) -> None:
        """Writes the JSON form atomically (a temporary file renamed over it)."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainingState":
        """Reads a ``training_state.json``.

        Raises:
          FileNotFoundError: no such file.
          ConfigError: the file is not valid JSON or not a training state; the
            message names the file.
        """
        path = pathlib.Path(path)
        text = path.read_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: "
                f"{err.msg})"
            ) from None
        return cls.from_dict(data, where=str(path))


#: The keys of the JSON form and the type of each value.
_KEYS = {
    "epochs_done": int,
    "iterations": int,
    "train_rows": int,
    "train_rows_dropped": int,
    "history": dict,
    "selection": dict,
    "checkpoint": str,
    "finished": bool,
    "mid_epoch": dict,
}

#: Keys whose value may be ``null``.
_NULLABLE = ("selection", "checkpoint", "mid_epoch")


def _check_keys(data, where: str) -> None:
    """Checks the JSON form is a mapping of known keys with values of their types.

    Raises:
      ConfigError: not a mapping, an unknown key, a value of the wrong type or
        no ``epochs_done``, naming ``where`` and the key.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown}; a training state has {sorted(_KEYS)}"
        )
    for key, kind in _KEYS.items():
        value = data.get(key)
        wrong = (kind is int and isinstance(value, bool)) or not isinstance(value, kind)
        nullable = key in _NULLABLE and value is None
        if key in data and wrong and not nullable:
            raise ConfigError(
                f"{where}: '{key}' must be {kind.__name__}. Received: {value!r}"
            )
    if "epochs_done" not in data:
        raise ConfigError(f"{where}: missing key 'epochs_done'")


def _read_history(history: dict, where: str) -> dict[str, list[float]]:
    """``history`` as ``{metric: [float, ...]}``.

    Raises:
      ConfigError: a metric's value is not a list of numbers, naming it.
    """
    checked = {}
    for key, values in history.items():
        if not isinstance(values, list) or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) for v in values
        ):
            raise ConfigError(
                f"{where}: 'history.{key}' must be a list of numbers. "
                f"Received: {values!r}"
            )
        checked[key] = [float(v) for v in values]
    return checked


def _read_selection(selection: dict | None, where: str) -> SelectionState | None:
    """``selection`` as a :class:`SelectionState` (missing fields default).

    Raises:
      ConfigError: an unknown key, named as ``selection.<key>``.
    """
    if selection is None:
        return None
    fields = {f.name for f in dataclasses.fields(SelectionState)}
    extra = sorted(set(selection) - fields)
    if extra:
        raise ConfigError(
            f"{where}: unknown key(s) {[f'selection.{k}' for k in extra]}"
        )
    return SelectionState(**selection)


def _read_mid_epoch(mid_epoch: dict | None, where: str) -> MidEpochState | None:
    """``mid_epoch`` as a :class:`MidEpochState`.

    Raises:
      ConfigError: its keys are not exactly the fields of ``MidEpochState``.
    """
    if mid_epoch is None:
        return None
    fields = {f.name for f in dataclasses.fields(MidEpochState)}
    if set(mid_epoch) != fields:
        raise ConfigError(
            f"{where}: 'mid_epoch' must have the keys {sorted(fields)}. "
            f"Received: {sorted(mid_epoch)}"
        )
    return MidEpochState(**mid_epoch)
