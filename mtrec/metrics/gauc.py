"""Group AUC: the AUC within each group (user), averaged over groups."""

import numpy as np
import pandas as pd


def group_auc(labels, scores, groups) -> dict:
    """AUC within each group, averaged over the groups that have both classes.

    For group ``u`` with ``n_u`` rows, ``AUC_u`` is the probability that a
    positive row of ``u`` outscores a negative row of ``u`` (ties count one
    half), from average ranks: ``AUC_u = (R_u⁺ - P_u (P_u + 1) / 2) / (P_u N_u)``
    with ``R_u⁺`` the sum of the positives' ranks within the group. Over the
    set ``U`` of groups with at least one positive and one negative row:

    - ``gauc``: impression-weighted, ``Σ_{u∈U} n_u AUC_u / Σ_{u∈U} n_u``
      (the definition of Zhou et al., "Deep Interest Network", KDD 2018);
    - ``gauc_mean``: the plain mean ``(1/|U|) Σ_{u∈U} AUC_u``;
    - ``gauc_groups``: ``|U|``; ``gauc_rows``: ``Σ_{u∈U} n_u``.

    Args:
      labels: 0/1 labels ``(n,)``.
      scores: predicted scores ``(n,)``.
      groups: group ids ``(n,)`` (any hashable values, e.g. user ids).

    Returns:
      The dict above; ``gauc`` and ``gauc_mean`` are ``None`` if no group has
      both classes.
    """
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    if not labels.size == scores.size == groups.size:
        raise ValueError(
            "labels, scores and groups must have the same length. Received: "
            f"{labels.size}, {scores.size}, {groups.size}"
        )
    empty = {"gauc": None, "gauc_mean": None, "gauc_groups": 0, "gauc_rows": 0}
    if labels.size == 0:
        return empty
    frame = pd.DataFrame({"g": groups, "y": labels, "s": scores})
    frame["rank"] = frame.groupby("g", sort=False)["s"].rank(method="average")
    frame["pos_rank"] = frame["rank"] * frame["y"]
    per = frame.groupby("g", sort=False).agg(
        n=("y", "size"), pos=("y", "sum"), pos_rank=("pos_rank", "sum")
    )
    per["neg"] = per["n"] - per["pos"]
    per = per[(per["pos"] > 0) & (per["neg"] > 0)]
    if per.empty:
        return empty
    aucs = (per["pos_rank"] - per["pos"] * (per["pos"] + 1) / 2) / (
        per["pos"] * per["neg"]
    )
    n = per["n"].to_numpy(dtype=np.float64)
    return {
        "gauc": float(np.sum(n * aucs.to_numpy()) / np.sum(n)),
        "gauc_mean": float(aucs.mean()),
        "gauc_groups": int(len(per)),
        "gauc_rows": int(n.sum()),
    }
