"""Checks on the ready-made cluster configs in cluster/ (no network, no cloud account).

The launcher configs are checked the way `ray up` checks them before it contacts a cloud:
Ray's shipped JSON schema on the file as written, then Ray's own `prepare_config` (merges
the provider's defaults.yaml) and `validate_config` on the result. The project's own rules
(token authentication, no public dashboard, GPU workers, install order) are checked by
small `check_*` functions; `test_check_catches_mutant` feeds each of them a broken copy of
a real config, so every rule is shown to fail when it should.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
LAUNCHER_CONFIGS = ["aws.yaml", "gcp.yaml", "onprem.yaml"]
CLOUD_CONFIGS = ["aws.yaml", "gcp.yaml"]
RAYJOB = "kuberay-rayjob.yaml"
TOKEN_FILE = "~/.ray/auth_token"
# Ray ports that must never be opened to the outside: GCS, dashboard / Jobs API, Ray Client.
PRIVATE_PORTS = (6379, 8265, 10001)


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((CLUSTER / name).read_text())
    assert isinstance(data, dict), f"{name}: top level is {type(data).__name__}, not a mapping"
    return data


def ray_schema() -> dict[str, Any]:
    import ray.autoscaler

    schema: dict[str, Any] = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    return schema


def prepared(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` validates: the config merged with the provider's defaults.yaml."""
    from ray.autoscaler._private.util import prepare_config

    return prepare_config(copy.deepcopy(config))


# --- the rules ------------------------------------------------------------------------


def check_schema(config: dict[str, Any]) -> None:
    """Ray's JSON schema on the file as written, and Ray's own validation after merging."""
    from ray.autoscaler._private.util import validate_config

    try:
        jsonschema.validate(config, ray_schema())
        validate_config(prepared(config))
    except (jsonschema.ValidationError, ValueError) as err:
        raise AssertionError(f"rejected by Ray's config validation: {err}") from err


def check_launcher_fields(config: dict[str, Any]) -> None:
    assert isinstance(config.get("cluster_name"), str) and config["cluster_name"], "cluster_name"
    assert isinstance(config.get("provider", {}).get("type"), str), "provider.type"
    assert isinstance(config.get("max_workers"), int) and config["max_workers"] > 0, "max_workers"
    for key in ("setup_commands", "head_start_ray_commands", "worker_start_ray_commands"):
        assert config.get(key), f"{key} missing or empty"
    full = prepared(config)
    types = full["available_node_types"]
    assert full["head_node_type"] in types, "head_node_type is not one of available_node_types"
    for name, node_type in types.items():
        assert isinstance(node_type.get("resources"), dict), f"{name}: no resources mapping"
    # Ray sets the head type's max_workers to 0; the local provider's single type serves both.
    assert any(t.get("max_workers", 0) > 0 for t in types.values()), "no node type can add workers"


def check_cloud_node_types(config: dict[str, Any]) -> None:
    """Cloud configs: head + a CPU worker type + a GPU worker type, autoscaled from zero."""
    types = config.get("available_node_types") or {}
    assert config.get("head_node_type") in types, "head_node_type is not declared"
    workers = {n: t for n, t in types.items() if n != config["head_node_type"]}
    cpu = [n for n, t in workers.items() if t["resources"].get("CPU", 0) > 0 and not t["resources"].get("GPU")]
    gpu = [n for n, t in workers.items() if t["resources"].get("GPU", 0) >= 1]
    assert cpu, "no CPU-only worker type with CPU resources"
    assert gpu, "no worker type declaring GPU resources"
    for name, node_type in workers.items():
        lo, hi = node_type.get("min_workers", 0), node_type.get("max_workers", 0)
        assert 0 <= lo < hi <= config["max_workers"], f"{name}: min_workers/max_workers {lo}/{hi} do not autoscale"


def check_gpu_hardware(config: dict[str, Any]) -> None:
    """The GPU worker type asks the cloud for a GPU, not just Ray for a GPU resource."""
    provider = config["provider"]["type"]
    gpu_types = [t for t in config["available_node_types"].values() if t["resources"].get("GPU", 0) >= 1]
    assert gpu_types, "no GPU worker type"
    for node_type in gpu_types:
        node_config = node_type["node_config"]
        if provider == "aws":
            assert re.match(r"(g|p)\d", node_config.get("InstanceType", "")), (
                f"GPU type uses non-GPU instance type {node_config.get('InstanceType')!r}"
            )
        elif provider == "gcp":
            accelerators = node_config.get("guestAccelerators") or []
            assert sum(a.get("acceleratorCount", 0) for a in accelerators) >= node_type["resources"]["GPU"], (
                "guestAccelerators do not provide the declared GPUs"
            )
            assert node_config.get("scheduling", {}).get("onHostMaintenance") == "TERMINATE", (
                "GCE instances with GPUs need scheduling.onHostMaintenance: TERMINATE"
            )


def check_token_auth(config: dict[str, Any]) -> None:
    full = prepared(config)
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in full[key] if "ray start" in c]
        assert starts, f"{key}: no `ray start`"
        for command in starts:
            assert re.search(r"\bRAY_AUTH_MODE=token\b", command), f"{key}: `ray start` without RAY_AUTH_MODE=token"
    mounts = full.get("file_mounts", {})
    assert mounts.get(TOKEN_FILE) == TOKEN_FILE, f"the token file {TOKEN_FILE} is not copied to the nodes"
    assert any("RAY_AUTH_MODE=token" in c for c in full["setup_commands"]), (
        "setup_commands do not export RAY_AUTH_MODE=token for `ray exec` / job shells"
    )


def check_dashboard_private(config: dict[str, Any]) -> None:
    full = prepared(config)  # a head_start_ray_commands left out would bring Ray's 0.0.0.0 back
    commands = [c for key, value in full.items() if key.endswith("_commands") for c in value]
    for command in commands:
        assert "0.0.0.0" not in command, f"command binds a public address: {command!r}"
    head = " ".join(full["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head, "head `ray start` does not bind the dashboard to 127.0.0.1"
    for rule in full["provider"].get("security_group", {}).get("IpPermissions", []):
        low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
        for port in PRIVATE_PORTS:
            assert not (low == -1 or low <= port <= high), f"security group opens port {port}: {rule}"


def check_install_order(config: dict[str, Any]) -> None:
    """torch==2.13.0 is installed first, then raytuner from the mounted working copy."""
    setup = config["setup_commands"]
    torch = [i for i, c in enumerate(setup) if re.search(r"pip install\b.*\btorch==2\.13\.0\b", c)]
    project = [i for i, c in enumerate(setup) if re.search(r"pip install\b.*(~|\$HOME)/raytuner\b(?!-)", c)]
    assert torch, "no `pip install torch==2.13.0`"
    assert project, "no pip install of the working copy ~/raytuner"
    assert torch[0] < project[0], "raytuner is installed before torch"
    assert config.get("file_mounts", {}).get("~/raytuner") == ".", "the working copy is not mounted at ~/raytuner"


def check_aws_image(config: dict[str, Any]) -> None:
    """Ray's fallback AMI (empty ImageId or latest_dlami) is Ubuntu 18.04: too old here."""
    for name, node_type in config["available_node_types"].items():
        image = str(node_type["node_config"].get("ImageId", "")).lower()
        assert image not in ("", "latest_dlami"), f"{name}: ImageId falls back to Ray's Ubuntu 18.04 AMI"


def check_onprem(config: dict[str, Any]) -> None:
    provider = config["provider"]
    assert provider["type"] == "local", "provider.type is not local"
    assert isinstance(provider.get("head_ip"), str) and provider["head_ip"], "provider.head_ip"
    assert provider.get("worker_ips"), "provider.worker_ips is empty"
    assert provider["head_ip"] not in provider["worker_ips"], "the head is also listed as a worker"
    # Ray aborts `ray up` on a local-provider config that declares node types.
    assert "available_node_types" not in config, "local provider configs must not set available_node_types"
    assert config.get("auth", {}).get("ssh_user"), "auth.ssh_user"


def check_rayjob(doc: dict[str, Any]) -> None:
    assert doc.get("apiVersion") == "ray.io/v1", f"apiVersion {doc.get('apiVersion')!r}"
    assert doc.get("kind") == "RayJob", f"kind {doc.get('kind')!r}"
    assert doc.get("metadata", {}).get("name"), "metadata.name"
    spec = doc.get("spec") or {}
    entrypoint = spec.get("entrypoint") or ""
    assert re.search(r"\braytuner run \S+\.yaml\b", entrypoint), f"entrypoint does not run a spec: {entrypoint!r}"
    assert "--address auto" in entrypoint, "entrypoint does not join the RayJob's cluster (--address auto)"
    assert re.search(r"--storage (s3|gs)://\S+", entrypoint), "entrypoint does not send results to object storage"
    cluster = spec.get("rayClusterSpec") or {}
    head = cluster.get("headGroupSpec") or {}
    assert head.get("template", {}).get("spec", {}).get("containers"), "headGroupSpec.template has no containers"
    assert head.get("serviceType", "ClusterIP") == "ClusterIP", "head service exposed outside the cluster"
    groups = cluster.get("workerGroupSpecs") or []
    assert groups, "no workerGroupSpecs"
    for group in groups:
        assert group.get("groupName"), "worker group without groupName"
        assert group.get("template", {}).get("spec", {}).get("containers"), f"{group.get('groupName')}: no containers"
        assert 0 <= group.get("minReplicas", 0) <= group.get("maxReplicas", 0), f"{group['groupName']}: replicas"
    assert cluster.get("authOptions", {}).get("mode") == "token", "rayClusterSpec.authOptions.mode is not token"


# --- tests on the real files ----------------------------------------------------------


def test_expected_files_exist() -> None:
    names = {p.name for p in CLUSTER.iterdir()}
    missing = {*LAUNCHER_CONFIGS, RAYJOB, "README.md"} - names
    assert not missing, f"missing from cluster/: {sorted(missing)}"


@pytest.mark.parametrize("path", sorted(CLUSTER.glob("*.y*ml")), ids=lambda p: p.name)
def test_every_yaml_parses(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text()), dict)


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_is_valid_for_ray(name: str) -> None:
    check_schema(load(name))


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_has_required_fields(name: str) -> None:
    check_launcher_fields(load(name))


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_cloud_config_has_cpu_and_gpu_workers(name: str) -> None:
    config = load(name)
    check_cloud_node_types(config)
    check_gpu_hardware(config)


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_uses_token_auth(name: str) -> None:
    check_token_auth(load(name))


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_keeps_dashboard_private(name: str) -> None:
    check_dashboard_private(load(name))


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_installs_torch_then_raytuner(name: str) -> None:
    check_install_order(load(name))


def test_aws_sets_a_current_image() -> None:
    check_aws_image(load("aws.yaml"))


def test_onprem_lists_fixed_hosts() -> None:
    check_onprem(load("onprem.yaml"))


def test_rayjob_manifest() -> None:
    check_rayjob(load(RAYJOB))


def check_readme_mentions(readme: str, names: list[str]) -> None:
    assert names, "cluster/ holds no configs"
    missing = [name for name in names if f"cluster/{name}" not in readme]
    assert not missing, f"cluster/README.md does not mention: {missing}"


def check_readme_content(readme: str) -> None:
    for command in ("raytuner submit", "raytuner jobs"):
        assert command in readme, f"README never mentions `{command}`"
        first = readme.index(command)
        context = readme[max(0, first - 400) : first + 400]
        assert "planned" not in context, f"`{command}` exists now but is still marked planned where it first appears"
    for needed in (
        "ray up cluster/aws.yaml",
        "ray dashboard cluster/aws.yaml",
        "RAY_AUTH_MODE=token",
        "RAY_AUTH_TOKEN",
        "~/.ray/auth_token",
        "raytuner run",
        "--address",
        "s3://",
        "ray down",
    ):
        assert needed in readme, f"README does not cover {needed!r}"


def readme_text() -> str:
    return (CLUSTER / "README.md").read_text()


def config_files() -> list[str]:
    return sorted(p.name for p in CLUSTER.iterdir() if p.is_file() and p.name != "README.md")


def test_readme_mentions_every_file() -> None:
    check_readme_mentions(readme_text(), config_files())


def test_readme_covers_the_workflow_honestly() -> None:
    check_readme_content(readme_text())


def test_readme_checks_can_fail() -> None:
    readme = readme_text()
    check_readme_mentions(readme, config_files())
    with pytest.raises(AssertionError):
        check_readme_mentions(readme, [*config_files(), "azure.yaml"])
    with pytest.raises(AssertionError):
        check_readme_mentions(readme.replace("cluster/onprem.yaml", "the on-prem file"), config_files())
    check_readme_content(readme)
    with pytest.raises(AssertionError):
        check_readme_content(readme.replace("raytuner submit", "raytuner submit (planned)", 1))
    with pytest.raises(AssertionError):
        check_readme_content(readme.replace("ray dashboard cluster/aws.yaml", "ray dashboard"))


# --- every rule must be able to fail ----------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def mutate(config: dict[str, Any]) -> None:
        target = config
        for key in keys[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value

    return mutate


_DELETE = object()


def _replace_in_commands(key: str, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def mutate(config: dict[str, Any]) -> None:
        config[key] = [c.replace(old, new) for c in config[key]]

    return mutate


def _swap_install_order(config: dict[str, Any]) -> None:
    setup = config["setup_commands"]
    i = next(i for i, c in enumerate(setup) if "torch==" in c)
    j = next(i for i, c in enumerate(setup) if "$HOME/raytuner[" in c)
    setup[i], setup[j] = setup[j], setup[i]


MUTANTS = [
    # (check, file, mutation, description)
    (check_schema, "aws.yaml", _set("available_node_types.gpu_worker.resources.GPU", 0.5), "fractional resource"),
    (check_schema, "gcp.yaml", _set("head_node", {}), "unknown top-level key"),
    (check_schema, "aws.yaml", _set("available_node_types.cpu_worker.min_workers", 11), "min_workers > max_workers"),
    (check_launcher_fields, "aws.yaml", _set("cluster_name", _DELETE), "no cluster_name"),
    (check_launcher_fields, "gcp.yaml", _set("max_workers", _DELETE), "no max_workers"),
    (check_launcher_fields, "aws.yaml", _set("available_node_types.cpu_worker.resources", None), "no resources"),
    (check_launcher_fields, "onprem.yaml", _set("worker_start_ray_commands", []), "no worker start"),
    (check_launcher_fields, "onprem.yaml", _set("max_workers", 0), "no workers"),
    (check_cloud_node_types, "gcp.yaml", _set("available_node_types.gpu_worker.max_workers", 0), "GPU cannot scale"),
    (check_cloud_node_types, "aws.yaml", _set("available_node_types.gpu_worker.resources", {"CPU": 4}), "no GPU"),
    (check_cloud_node_types, "gcp.yaml", _set("available_node_types.cpu_worker.min_workers", 8), "no autoscaling"),
    (
        check_gpu_hardware,
        "aws.yaml",
        _set("available_node_types.gpu_worker.node_config.InstanceType", "m5.xlarge"),
        "GPU type on a CPU instance",
    ),
    (
        check_gpu_hardware,
        "gcp.yaml",
        _set("available_node_types.gpu_worker.node_config.guestAccelerators", []),
        "GPU type without accelerators",
    ),
    (
        check_token_auth,
        "aws.yaml",
        _replace_in_commands("worker_start_ray_commands", "RAY_AUTH_MODE=token", ""),
        "worker started without token auth",
    ),
    (check_token_auth, "gcp.yaml", _set("file_mounts", {"~/raytuner": "."}), "token file not mounted"),
    (check_dashboard_private, "aws.yaml", _set("head_start_ray_commands", _DELETE), "Ray's default start (0.0.0.0)"),
    (
        check_dashboard_private,
        "onprem.yaml",
        _replace_in_commands("head_start_ray_commands", "--dashboard-host=127.0.0.1", ""),
        "dashboard host unset",
    ),
    (
        check_dashboard_private,
        "aws.yaml",
        _set(
            "provider.security_group.IpPermissions",
            [{"FromPort": 8265, "ToPort": 8265, "IpProtocol": "tcp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        ),
        "security group opens 8265",
    ),
    (check_install_order, "gcp.yaml", _swap_install_order, "raytuner before torch"),
    (check_install_order, "onprem.yaml", _replace_in_commands("setup_commands", "torch==2.13.0", "torch"), "unpinned"),
    (check_aws_image, "aws.yaml", _set("available_node_types.head.node_config.ImageId", "latest_dlami"), "old AMI"),
    (
        check_onprem,
        "onprem.yaml",
        _set("available_node_types", {"x": {"resources": {}, "node_config": {}}}),
        "node types on local provider",
    ),
    (check_onprem, "onprem.yaml", _set("provider.worker_ips", []), "no workers"),
    (check_rayjob, RAYJOB, _set("apiVersion", "ray.io/v1alpha1"), "old apiVersion"),
    (check_rayjob, RAYJOB, _set("spec.entrypoint", "raytuner run experiments/quickstart.yaml"), "no address/storage"),
    (check_rayjob, RAYJOB, _set("spec.rayClusterSpec.workerGroupSpecs", []), "no worker groups"),
    (check_rayjob, RAYJOB, _set("spec.rayClusterSpec.headGroupSpec.serviceType", "LoadBalancer"), "public head"),
    (check_rayjob, RAYJOB, _set("spec.rayClusterSpec.authOptions", _DELETE), "no token auth"),
]


@pytest.mark.parametrize("check, name, mutate, what", MUTANTS, ids=[f"{m[0].__name__}-{m[3].replace(' ', '_')}" for m in MUTANTS])
def test_check_catches_mutant(
    check: Callable[[dict[str, Any]], None], name: str, mutate: Callable[[dict[str, Any]], None], what: str
) -> None:
    config = copy.deepcopy(load(name))
    check(config)  # the real file passes ...
    mutate(config)
    with pytest.raises(AssertionError):  # ... and the broken copy does not
        check(config)
