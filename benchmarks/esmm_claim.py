"""ESMM's claim against the truth: pCVR over all impressions, by selection bias.

Ma et al. (SIGIR 2018): a CVR model trained only on clicked impressions
suffers sample selection bias when it scores the whole impression space;
ESMM learns pCVR through pCTCVR = pCTR x pCVR on every impression. The
synthetic log knows every impression's true conversion propensity
``true_cvr`` (the paper could not observe it). For each selection-bias
strength ``s`` (``generate_click_log(selection_bias=s)``: a hidden item appeal
in both the click and the conversion logit; ``s = 0`` is the shipped log) and
seed, this trains on the same rows

* ``naive``: a CVR-only model on the clicked rows (the shipped ESMM config's
  features, backbone and budget; one task conditioned on click),
* ``esmm``: the shipped ESMM config (shared-bottom backbone),
* ``esmm_mmoe`` and ``esmm_ple``: ESMM over MMoE / PLE,

and scores the held-out impressions, *all* of them: the AUC against labels
drawn from ``true_cvr`` (one fixed draw per seed, the same for every model),
Spearman's rank correlation with ``true_cvr``, and the calibration ratio
``mean(pCVR) / mean(true_cvr)``. ``selection_bias_report`` of each log says
how different the clicked rows are from all impressions.

Run from ``benchmarks/``::

    python esmm_claim.py --rows 200000 --seeds 2 --bias 0 1 2

Writes ``results/esmm_claim.json`` and prints the Markdown table (recorded
in ``docs/benchmarks.md``'s "ESMM's claim" section).
"""

import argparse
import dataclasses
import json
import logging
import pathlib
import sys
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

MODELS = ("naive", "esmm", "esmm_mmoe", "esmm_ple")
BACKBONES = {
    "esmm": ("shared_bottom", None),
    "esmm_mmoe": ("mmoe", {"num_experts": 4, "expert_units": [128, 64]}),
    "esmm_ple": (
        "ple",
        {
            "num_levels": 2,
            "num_shared_experts": 2,
            "num_task_experts": 1,
            "expert_units": [64],
        },
    ),
}


def model_config(base, name: str):
    """The run config of one of ``MODELS`` from the shipped ESMM config."""
    eval_config = dataclasses.replace(
        base.eval, oracle={"cvr": "true_cvr"}, plots=False
    )
    if name == "naive":
        cvr = next(t for t in base.tasks if t.get("condition"))
        return dataclasses.replace(
            base,
            name="naive-cvr",
            tasks=[dict(cvr)],
            model=dataclasses.replace(base.model, architecture="multi_task"),
            eval=eval_config,
        )
    backbone, args = BACKBONES[name]
    model = base.model
    if args is not None:
        model = dataclasses.replace(model, backbone=backbone, backbone_args=args)
    return dataclasses.replace(base, name=name, model=model, eval=eval_config)


def score(result, config, seed: int) -> dict:
    """pCVR over every held-out impression against the truth."""
    from scipy.stats import spearmanr

    from mtrec.metrics import auc
    from mtrec.training import eval_dataset
    from mtrec.training import predict_dataset

    data = predict_dataset(result.model, eval_dataset(config), ["true_cvr"])
    p, truth = data["cvr"].astype(np.float64), data["true_cvr"].astype(np.float64)
    labels = (np.random.default_rng(seed).random(truth.size) < truth).astype(float)
    return {
        "auc_vs_true_draw": auc(labels, p),
        "oracle_auc": auc(labels, truth),
        "spearman": float(spearmanr(p, truth).statistic),
        "calibration": float(p.mean() / truth.mean()),
        "rows": int(truth.size),
    }


def run(args) -> dict:
    from mtrec import shipped_config
    from mtrec.data import generate_click_log
    from mtrec.data import selection_bias_report
    from mtrec.data import write_table
    from mtrec.training import load_config
    from mtrec.training import train

    work = pathlib.Path(tempfile.mkdtemp(prefix="esmm-claim-"))
    results = []
    for bias in args.bias:
        for seed in range(args.seeds):
            frame = generate_click_log(args.rows, seed=seed, selection_bias=bias)
            bias_report = selection_bias_report(frame)
            log = work / f"log-{bias}-{seed}.parquet"
            write_table(frame, log)
            base = load_config(
                shipped_config("esmm"),
                [
                    f"data.train={log}",
                    f"runs_dir={work / 'runs'}",
                    f"seed={seed}",
                    f"train.epochs={args.epochs}",
                    "train.progress=false",
                    "export.enabled=false",
                ],
            )
            for name in args.models:
                config = model_config(base, name)
                result = train(config, run_dir=work / "runs" / f"{name}-{bias}-{seed}")
                entry = {"bias": bias, "seed": seed, "model": name}
                entry.update(score(result, config, seed))
                results.append(entry)
                logging.info("%s", entry)
            results.append({"bias": bias, "seed": seed, "model": "log", **bias_report})
    return {"rows": args.rows, "epochs": args.epochs, "results": results}


def table(report: dict) -> str:
    """Markdown: per bias and model, mean ± std over seeds."""
    rows = [r for r in report["results"] if r["model"] != "log"]
    logs = [r for r in report["results"] if r["model"] == "log"]
    lines = [
        "| selection bias | clicked/all true-CVR lift | model | AUC vs a true-CVR draw "
        "| oracle AUC | Spearman with true CVR | calibration |",
        "|---|---|---|---|---|---|---|",
    ]

    def stat(values):
        values = [v for v in values if v is not None]
        if not values:
            return "–"
        if len(values) == 1:
            return f"{values[0]:.4f}"
        return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"

    for bias in sorted({r["bias"] for r in rows}):
        lift = stat([lg.get("true_cvr_lift") for lg in logs if lg["bias"] == bias])
        for model in MODELS:
            group = [r for r in rows if r["bias"] == bias and r["model"] == model]
            if not group:
                continue
            lines.append(
                f"| {bias} | {lift} | {model} | "
                f"{stat([g['auc_vs_true_draw'] for g in group])} | "
                f"{stat([g['oracle_auc'] for g in group])} | "
                f"{stat([g['spearman'] for g in group])} | "
                f"{stat([g['calibration'] for g in group])} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--bias", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--out", default=str(HERE / "results" / "esmm_claim.json"))
    args = parser.parse_args(argv)
    if args.rows < 10_000 or args.seeds < 1 or args.epochs < 1:
        raise SystemExit(
            "Need --rows >= 10000, --seeds >= 1, --epochs >= 1. Received: "
            f"--rows {args.rows} --seeds {args.seeds} --epochs {args.epochs}"
        )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = run(args)
    pathlib.Path(args.out).write_text(json.dumps(report, indent=2))
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
