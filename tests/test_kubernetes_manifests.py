"""docs/kubernetes: the example manifests parse and run real mtrec commands.

Every container runs a command the ``mtrec`` parser accepts, with a
``TF_CONFIG`` whose cluster the command's strategy accepts; every address of
the cluster is a Service of the manifest selecting the Pod of that task; the
mounted config loads.
"""

import pathlib

import pytest
import yaml

from mtrec.cli import build_parser
from mtrec.training import cluster_spec
from mtrec.training import load_config
from mtrec.training import parse_tf_config

MANIFESTS = sorted(
    (pathlib.Path(__file__).parents[1] / "docs" / "kubernetes").glob("*.yaml")
)


def _pod_specs(doc: dict) -> tuple[dict, dict]:
    """``(labels, pod spec)`` of a Pod or of a Job's template."""
    if doc["kind"] == "Pod":
        return doc["metadata"].get("labels", {}), doc["spec"]
    template = doc["spec"]["template"]
    return template["metadata"].get("labels", {}), template["spec"]


def _config_maps(docs: list[dict]) -> dict[str, dict]:
    return {
        doc["metadata"]["name"]: doc["data"]
        for doc in docs
        if doc["kind"] == "ConfigMap"
    }


def _mounted_config(path: str, spec: dict, config_maps: dict) -> dict:
    """The config file ``path`` as a container of ``spec`` sees it."""
    container = spec["containers"][0]
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            config_map = volumes[mount["name"]]["configMap"]["name"]
            return yaml.safe_load(config_maps[config_map][path.removeprefix(prefix)])
    raise AssertionError(f"{path} is not on a mounted ConfigMap")


def test_the_manifests_are_there():
    assert [path.name for path in MANIFESTS] == [
        "multi-worker-mirrored.yaml",
        "parameter-server.yaml",
    ]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.stem)
def test_every_task_runs_a_real_mtrec_command_on_its_cluster(path):
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    config_maps = _config_maps(docs)
    services = {
        doc["metadata"]["name"]: doc["spec"] for doc in docs if doc["kind"] == "Service"
    }
    tasks_seen = set()
    cluster = None
    for doc in docs:
        if doc["kind"] not in ("Pod", "Job"):
            continue
        labels, spec = _pod_specs(doc)
        (container,) = spec["containers"]
        command = container["command"]
        assert command[0] == "mtrec", command
        args = build_parser().parse_args(command[1:])  # SystemExit if not real
        env = {item["name"]: item["value"] for item in container["env"]}
        task = parse_tf_config(env["TF_CONFIG"])
        if cluster is None:
            cluster = task.cluster
        assert task.cluster == cluster, "every task must see the same cluster"
        task_label = f"{task.task_type}-{task.task_index}"
        assert labels["mtrec-task"].endswith(task_label), (labels, task_label)
        tasks_seen.add((task.task_type, task.task_index))
        if args.command == "cluster-server":
            assert task.task_type in ("ps", "worker")
            assert spec["restartPolicy"] == "Always"  # a lost server comes back
        elif args.command == "train":
            raw = _mounted_config(args.config, spec, config_maps)
            config = load_config(raw, in_memory=True)
            strategy = config.train.distribution.strategy
            assert cluster_spec(strategy, env) is not None
            replicas = len(cluster.get("worker", [])) if "ps" not in cluster else 1
            assert config.train.batch_size % replicas == 0
        else:
            assert args.command == "resume"
            assert task.task_type == "chief"
    for role, addresses in cluster.items():
        for index, address in enumerate(addresses):
            assert (role, index) in tasks_seen, f"no Pod or Job runs {role} {index}"
            host, port = address.rsplit(":", 1)
            service = services[host]
            assert service["selector"]["mtrec-task"].endswith(f"{role}-{index}")
            assert int(port) in [entry["port"] for entry in service["ports"]]


def test_the_run_directories_match_between_train_and_resume():
    docs = [
        doc
        for doc in yaml.safe_load_all(
            (MANIFESTS[0].parent / "parameter-server.yaml").read_text()
        )
        if doc and doc["kind"] == "Job"
    ]
    commands = {
        doc["metadata"]["name"]: _pod_specs(doc)[1]["containers"][0]["command"]
        for doc in docs
    }
    train = build_parser().parse_args(commands["mtrec-chief"][1:])
    resume = build_parser().parse_args(commands["mtrec-chief-resume"][1:])
    assert train.run_dir == resume.run_dir == "/runs/esmm-ps"
