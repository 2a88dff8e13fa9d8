"""The evaluation report as a table a person reads (the CLI prints it)."""


def format_metrics(report: dict) -> str:
    """A table of per-output metrics (AUC next to the oracle AUC).

    Args:
      report: ``metrics.json``'s ``eval`` entry (``evaluate_model``'s report).

    Example:

    >>> table = format_metrics({"ctr": {"rows": 10, "label_mean": 0.2,
    ...     "auc": 0.75, "oracle_auc": 0.8, "logloss": 0.4, "calibration": 1.0,
    ...     "label": "click", "condition": None}})
    >>> table.splitlines()[0].split()[:4]
    ['output', 'rows', 'pos', 'rate']
    >>> table.splitlines()[2].split()[:8]
    ['ctr', '10', '0.2000', '0.7500', '0.8000', '0.0500', '0.4000', '1.000']
    """
    header = (
        f"{'output':<8} {'rows':>9} {'pos rate':>9} {'AUC':>7} {'oracle':>7} "
        f"{'gap':>7} {'logloss':>8} {'calib':>6}  rows used"
    )
    lines = [header, "-" * len(header)]

    def num(value, width, digits=4):
        return (
            f"{value:>{width}.{digits}f}"
            if isinstance(value, (int, float))
            else f"{'-':>{width}}"
        )

    for output, m in report.items():
        oracle = m.get("oracle_auc")
        gap = (
            oracle - m["auc"]
            if oracle is not None and m.get("auc") is not None
            else None
        )
        rows = (
            f"{m['label']} where {m['condition']}=1"
            if m.get("condition")
            else f"{m['label']}, all impressions"
        )
        lines.append(
            f"{output:<8} {m['rows']:>9d} {num(m.get('label_mean'), 9)} "
            f"{num(m.get('auc'), 7)} {num(oracle, 7)} {num(gap, 7)} "
            f"{num(m.get('logloss'), 8)} {num(m.get('calibration'), 6, 3)}  {rows}"
        )
    for output, m in report.items():
        if m.get("auc_undefined"):
            lines.append(f"WARNING {output}: {m['auc_undefined']}")
    return "\n".join(lines)
