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


@pytest.mark.parametrize(("given", "kept"), [("1", "1"), ("'2'", "2"), ("25%", "25%")])
def test_max_surge_as_a_number_of_pods_is_accepted(tmp_path, given, kept):
    text = f"name: hello\nimage: reg/team/hello\nrollout:\n  max_surge: {given}\n"
    assert load_spec(write(tmp_path, text)).rollout.max_surge == kept


@pytest.mark.parametrize("bad", ["true", '"1\\n"', "-1", "1.5", "abc"])
def test_max_surge_that_is_neither_is_refused(tmp_path, bad):
    text = f"name: hello\nimage: reg/team/hello\nrollout:\n  max_surge: {bad}\n"
    with pytest.raises(InputError, match="max_surge"):
        load_spec(write(tmp_path, text))
