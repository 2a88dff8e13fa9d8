"""UCI Census-Income (KDD): its columns, the MMoE paper's tasks and the inputs.

The MMoE paper (Ma et al., KDD 2018) builds two multi-task problems from this
data set by turning two of its columns into labels and removing them from the
inputs:

- group 1: ``income_50k`` (``income == "50000+."``) and ``never_married``
  (``marital_stat == "Never married"``);
- group 2: ``education_college`` (education at least college, see
  :data:`COLLEGE_EDUCATION`) and ``never_married``.

:func:`census_input_columns` names an input set's columns and
:func:`census_features` gives their mtrec feature specs; the file is read by
``mtrec.data.census`` and split by ``mtrec.data.census_split``.

Example:

>>> len(census_features()), len(census_features(inputs="peers"))
(38, 40)
>>> census_features()[1]
{'name': 'class_worker', 'kind': 'categorical', 'embedding_dim': 4}
"""

#: The 42 columns of the raw file, in file order (no header in the file).
CENSUS_COLUMNS: tuple[str, ...] = (
    "age",
    "class_worker",
    "det_ind_code",
    "det_occ_code",
    "education",
    "wage_per_hour",
    "hs_college",
    "marital_stat",
    "major_ind_code",
    "major_occ_code",
    "race",
    "hisp_origin",
    "sex",
    "union_member",
    "unemp_reason",
    "full_or_part_emp",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
    "tax_filer_stat",
    "region_prev_res",
    "state_prev_res",
    "det_hh_fam_stat",
    "det_hh_summ",
    "instance_weight",
    "mig_chg_msa",
    "mig_chg_reg",
    "mig_move_reg",
    "mig_same",
    "mig_prev_sunbelt",
    "num_emp",
    "fam_under_18",
    "country_father",
    "country_mother",
    "country_self",
    "citizenship",
    "own_or_self",
    "vet_question",
    "vet_benefits",
    "weeks_worked",
    "year",
    "income_50k",
)

#: Continuous columns (UCI: "continuous"), parsed as float64. The integer codes
#: ``det_ind_code``, ``det_occ_code``, ``own_or_self``, ``vet_benefits`` and
#: ``year`` are nominal in the UCI description and stay strings.
NUMERIC_COLUMNS: tuple[str, ...] = (
    "age",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
    "instance_weight",
    "num_emp",
    "weeks_worked",
)

#: Heavy-tailed (mostly zero, up to 99,999) numeric inputs that get ``log1p``;
#: so does ``instance_weight`` (37 to 18,656) in the ``peers`` input set.
LOG1P_COLUMNS: tuple[str, ...] = (
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
    "instance_weight",
)

#: Columns that are never model inputs: the two label sources the paper removes
#: (``education``, ``marital_stat``), the income label and the sampling weight.
REMOVED_COLUMNS: tuple[str, ...] = (
    "education",
    "marital_stat",
    "income_50k",
    "instance_weight",
)

#: Input sets of :func:`census_input_columns`: the :data:`REMOVED_COLUMNS` each
#: one puts back.
#:
#: - ``paper`` (default, both groups): none; the 38 inputs left when both
#:   groups' label sources and the sampling weight are removed, the same for
#:   both groups.
#: - ``education`` (group 1 only): ``education`` (39 inputs). Education is the
#:   source of group 2's label only; group 1 may use it.
#: - ``peers`` (group 1 only): ``education`` and ``instance_weight`` (40
#:   inputs): every column but the two label sources, what the public MMoE
#:   census examples feed their models (keras-mmoe's ``census_income_demo.py``,
#:   DeepCTR's ``examples/run_mtl.py``). UCI's description of the data says the
#:   weight should not be used in classifiers; this set exists to compare with
#:   numbers measured that way.
CENSUS_INPUT_SETS: dict[str, tuple[str, ...]] = {
    "paper": (),
    "education": ("education",),
    "peers": ("education", "instance_weight"),
}

#: ``education`` values counted as "at least college": every completed
#: post-secondary degree (associate, bachelor, master, professional, doctorate),
#: 19,456 of 99,762 rows (0.1950) in ``census-income.test``. Not counted: "Some
#: college but no degree" (attended, no degree), "High school graduate", the
#: grade levels ("Less than 1st grade" ... "12th grade no diploma") and
#: "Children".
COLLEGE_EDUCATION: frozenset[str] = frozenset(
    {
        "Associates degree-occup /vocational",
        "Associates degree-academic program",
        "Bachelors degree(BA AB BS)",
        "Masters degree(MA MS MEng MEd MSW MBA)",
        "Prof school degree (MD DDS DVM LLB JD)",
        "Doctorate degree(PhD EdD)",
    }
)

#: ``income_50k`` value of the positive class (the other one is ``"- 50000."``).
INCOME_POSITIVE = "50000+."
#: ``marital_stat`` value of the positive class of ``never_married``.
NEVER_MARRIED = "Never married"

#: Label columns of each task group of the MMoE paper (main task first).
TASK_GROUPS: dict[int, tuple[str, str]] = {
    1: ("income_50k", "never_married"),
    2: ("education_college", "never_married"),
}


def census_input_columns(inputs: str = "paper", *, group: int = 1) -> list[str]:
    """The model inputs of an input set, in file order.

    Args:
      inputs: a key of :data:`CENSUS_INPUT_SETS`: ``paper`` (default; every column but
        :data:`REMOVED_COLUMNS`, 38), ``education`` (39) or ``peers`` (40).
      group: the task group (:data:`TASK_GROUPS`) the inputs are for; group 2
        takes only ``paper``, since ``education`` is its label's source.

    Raises:
      ValueError: an unknown ``inputs`` or ``group``, or an input set that
        feeds a group its own label.
    """
    if inputs not in CENSUS_INPUT_SETS:
        raise ValueError(
            f"`inputs` must be one of {sorted(CENSUS_INPUT_SETS)}. "
            f"Received: `inputs={inputs!r}`"
        )
    check_census_group(group)
    if group == 2 and "education" in CENSUS_INPUT_SETS[inputs]:
        raise ValueError(
            f"Input set {inputs!r} holds `education`, the source of group 2's "
            "label `education_college`; group 2 takes `inputs='paper'`. Received: "
            f"`inputs={inputs!r}`, `group={group}`"
        )
    kept = set(CENSUS_INPUT_SETS[inputs])
    return [c for c in CENSUS_COLUMNS if c not in REMOVED_COLUMNS or c in kept]


def check_census_group(group: int) -> None:
    """Raises ``ValueError`` unless ``group`` is a key of :data:`TASK_GROUPS`."""
    if group not in TASK_GROUPS:
        raise ValueError(
            f"`group` must be one of {sorted(TASK_GROUPS)}. Received: `group={group!r}`"
        )


#: How :func:`census_features` encodes the numeric columns: ``value_and_buckets``
#: (default) feeds each as its z-score and as the embedding of its quantile
#: bucket (:data:`CENSUS_NUMERIC_BUCKETS` at most, zero a bucket of its own);
#: ``value`` as its z-score alone, the inputs of the public MMoE census examples
#: and of every run before ``value_and_buckets`` (the DeepCTR comparison keeps
#: it, so both libraries read the same inputs).
CENSUS_NUMERIC_ENCODINGS: tuple[str, ...] = ("value_and_buckets", "value")

#: The most quantile buckets per numeric column under ``value_and_buckets``.
CENSUS_NUMERIC_BUCKETS = 64


def census_features(
    embedding_dim: int = 4,
    *,
    inputs: str = "paper",
    group: int = 1,
    numeric: str = "value_and_buckets",
) -> list[dict]:
    """mtrec feature specs of an input set's census inputs (38 by default).

    Categorical (string) features for the nominal columns, vocabularies fitted
    on the train split; dense features for the numeric columns, after a signed
    ``log1p`` for the heavy-tailed :data:`LOG1P_COLUMNS`, each fed as its
    z-score and the embedding of its quantile bucket (``numeric=
    "value_and_buckets"``, ``keep_value``: an amount such as a capital gain
    says most at thresholds that only high incomes cross) or as its z-score
    alone (``numeric="value"``). With the default ``inputs="paper"`` the
    :data:`REMOVED_COLUMNS` (education, marital status, income, instance
    weight) are not features, whatever the task group.

    On the 80/10/10 split of ``benchmarks/default_recipe.py`` (3 seeds) the
    buckets take the MMoE's income AUC with the training defaults from 0.9430
    to 0.9492 on the ``paper`` inputs and from 0.9474 to 0.9527 with
    ``education``.

    Args:
      embedding_dim: width of every categorical and bucket embedding. Default
        4: the largest vocabulary has 52 values.
      inputs, group: the input set and task group, as in
        :func:`census_input_columns`.
      numeric: a key of :data:`CENSUS_NUMERIC_ENCODINGS`.

    Raises:
      ValueError: as :func:`census_input_columns`, or an unknown ``numeric``.

    Example:

    >>> [s for s in census_features(inputs="paper") if s["name"] == "age"]
    [{'name': 'age', 'kind': 'dense', 'log1p': False, 'normalization': 'zscore', \
'num_buckets': 64, 'keep_value': True, 'embedding_dim': 4}]
    """
    if numeric not in CENSUS_NUMERIC_ENCODINGS:
        raise ValueError(
            f"`numeric` must be one of {list(CENSUS_NUMERIC_ENCODINGS)}. "
            f"Received: `numeric={numeric!r}`"
        )
    buckets = {}
    if numeric == "value_and_buckets":
        buckets = {
            "num_buckets": CENSUS_NUMERIC_BUCKETS,
            "keep_value": True,
            "embedding_dim": embedding_dim,
        }
    specs = []
    for column in census_input_columns(inputs, group=group):
        if column in NUMERIC_COLUMNS:
            specs.append(
                {
                    "name": column,
                    "kind": "dense",
                    "log1p": column in LOG1P_COLUMNS,
                    "normalization": "zscore",
                    **buckets,
                }
            )
        else:
            specs.append(
                {"name": column, "kind": "categorical", "embedding_dim": embedding_dim}
            )
    return specs
