"""A prediction task: which label an output is trained and evaluated against."""

import dataclasses

TASK_KINDS = ("binary", "regression")


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of a multi-task ranker.

    Attributes:
      name: output name (``ctr``, ``cvr``, ...), also the tower name.
      label: label column.
      kind: ``"binary"`` (sigmoid output, log loss, default) or
        ``"regression"`` (linear output, mean squared error).
      weight: weight of the task's loss in the total. Default 1.
      condition: a binary label column; when set, the task is defined only on
        rows where it is 1 (a CVR head conditioned on ``click``): its loss is
        masked to those rows and it is evaluated on them. ESMM reads it
        differently: the conditioned task is learned through the product.
    """

    name: str
    label: str
    kind: str = "binary"
    weight: float = 1.0
    condition: str | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(
                "Task `name` must be an identifier such as 'ctr'. "
                f"Received: `name={self.name!r}`"
            )
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(
                f"Task {self.name!r}: `label` must be a column name. "
                f"Received: {self.label!r}"
            )
        if self.kind not in TASK_KINDS:
            raise ValueError(
                f"Task {self.name!r}: `kind` must be one of {TASK_KINDS}. "
                f"Received: `kind={self.kind!r}`"
            )
        if not float(self.weight) >= 0.0:
            raise ValueError(
                f"Task {self.name!r}: `weight` must be >= 0. "
                f"Received: `weight={self.weight!r}`"
            )
        if self.condition == self.label:
            raise ValueError(
                f"Task {self.name!r}: `condition` must differ from `label`."
            )

    @classmethod
    def from_dict(cls, entry: dict, where: str = "tasks") -> "Task":
        valid = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(entry, dict):
            raise ValueError(
                f"{where}: each task must be a mapping. Received: {entry!r}"
            )
        unknown = sorted(set(entry) - valid)
        if unknown:
            raise ValueError(
                f"{where}: unknown task field(s) {unknown};"
                f" valid fields: {sorted(valid)}"
            )
        try:
            return cls(**entry)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from err

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class EvalTarget:
    """An output scored against a label on the rows where ``condition`` is 1."""

    output: str
    label: str
    kind: str = "binary"
    condition: str | None = None
