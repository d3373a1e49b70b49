"""The app spec: merge order, defaults, one-line errors that name the field and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pysteps.errors import InputError
from pysteps.spec import json_schema, load_spec, parse_set

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deploy.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_platform_defaults(tmp_path):
    spec = load_spec(write(tmp_path, "name: hello\nimage: reg:5000/team/hello\n"))
    assert (spec.resources.limits.cpu, spec.resources.limits.memory) == ("500m", "2000Mi")
    assert (spec.resources.requests.cpu, spec.resources.requests.memory) == ("10m", "100Mi")
    assert (spec.kind, spec.mode, spec.namespace, spec.replicas) == (
        "Deployment",
        "image",
        "default",
        1,
    )
    assert spec.rendered_domains() == ["hello.ctest.example.com"]


def test_merge_order_file_then_step_map_then_set(tmp_path):
    spec_file = write(tmp_path, "name: hello\nimage: reg/team/hello\nreplicas: 1\nenv: {A: file}\n")
    overrides = tmp_path / "o.json"
    overrides.write_text(json.dumps({"replicas": 2, "env": {"B": "step"}, "namespace": "team-a"}))
    spec = load_spec(spec_file, overrides, ["replicas=3", "resources.limits.cpu=1"])
    assert spec.replicas == 3
    assert spec.env == {"A": "file", "B": "step"}
    assert spec.namespace == "team-a"
    assert spec.resources.limits.cpu == "1" and spec.resources.limits.memory == "2000Mi"


@pytest.mark.parametrize(
    ("text", "sets", "message"),
    [
        ("name: Hello\nimage: r/a\n", [], "spec field 'name': must be a DNS-1123 label"),
        ("name: a\n", [], "spec field 'image': required in image mode"),
        ("name: a\nmode: code\n", [], "spec field 'runtime_image': required in code mode"),
        ("name: a\nimage: r/a\nreplicas: -1\n", [], "spec field 'replicas'"),
        ("name: a\nimage: r/a\nreplica: 2\n", [], "spec field 'replica' is unknown"),
        ("name: a\nimage: r/a:latest\n", [], "spec field 'image': must be an image repository"),
        ("name: a\nimage: r/a\n", ["kind=Job"], "spec field 'kind'"),
        ("name: a\nimage: r/a\n", ["domains=[x;rm -rf.com]"], "spec field 'domains'"),
        ("name: a\nimage: r/a\n", ["env={'bad name': x}"], "spec field 'env'"),
        ("name: a\nimage: r/a\n", ["build.context=../etc"], "spec field 'build.context'"),
        ("name: a\nimage: r/a\n", ["code.path=/etc"], "spec field 'code.path'"),
        ("name: a\nimage: r/a\n", ["mail.to=[not-an-address]"], "spec field 'mail.to'"),
        ("name: a\nimage: r/a\n", ["readiness.path=nope"], "spec field 'readiness.path'"),
        ("name: a\nimage: r/a\n", ["ports.http=70000"], "spec field 'ports.http'"),
        ("name: [\n", [], "not valid YAML"),
        ("- a\n- b\n", [], "must hold a mapping"),
        ("name: a\nimage: r/a\n", ["nokey"], "write it as key=value"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(tmp_path, text, sets, message):
    with pytest.raises(InputError) as err:
        load_spec(write(tmp_path, text), None, sets)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_set_values_are_typed():
    assert parse_set(["replicas=3", "env.A=x", "readiness=null"]) == {
        "replicas": 3,
        "env": {"A": "x"},
        "readiness": None,
    }


def test_shipped_schema_is_current():
    shipped = json.loads((REPO / "resources" / "deploy.schema.json").read_text())
    assert shipped == json.loads(json.dumps(json_schema())), (
        "resources/deploy.schema.json is stale: pysteps schema > resources/deploy.schema.json"
    )


def test_examples_are_valid():
    for name in ("deploy.yaml", "deploy-code.yaml"):
        spec = load_spec(REPO / "examples" / "hello" / name)
        assert spec.name.startswith("hello")


def test_node_selector_and_tolerations_place_pods_on_a_dedicated_node(tmp_path):
    spec = load_spec(
        write(
            tmp_path,
            "name: a\nimage: r/a\nnode_selector: {pysteps.testbed/real-node: true}\n"
            "tolerations:\n- {key: pysteps.testbed/real-node, value: 'true', effect: NoSchedule}\n"
            "- {operator: Exists}\n",
        )
    )
    assert spec.node_selector == {"pysteps.testbed/real-node": "true"}
    assert [t.model_dump(exclude_none=True) for t in spec.tolerations] == [
        {
            "key": "pysteps.testbed/real-node",
            "operator": "Equal",
            "value": "true",
            "effect": "NoSchedule",
        },
        {"operator": "Exists"},
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("node_selector: {'bad key!': x}", "spec field 'node_selector': 'bad key!' is not a label"),
        ("node_selector: {role: 'a b'}", "spec field 'node_selector': 'a b' is not a label value"),
        ('node_selector: {role: "x\\n"}', "is not a label value"),
        ("node_selector: {'-x/y': z}", "is not a label key"),
        ("tolerations: [{key: 'k;rm', effect: NoSchedule}]", "spec field 'tolerations.0.key'"),
        ("tolerations: [{key: k, effect: Sometimes}]", "spec field 'tolerations.0.effect'"),
        ("tolerations: [{key: k, operator: Exists, value: v}]", "must be empty when operator"),
        ("tolerations: [{value: v}]", "key: required when operator is Equal"),
        ("tolerations: [{key: k, seconds: 3}]", "'tolerations.0.seconds' is unknown"),
    ],
)
def test_bad_node_placement_is_one_line_naming_the_field(tmp_path, extra, message):
    with pytest.raises(InputError) as err:
        load_spec(write(tmp_path, f"name: a\nimage: r/a\n{extra}\n"))
    assert message in str(err.value)
    assert "\n" not in str(err.value)
