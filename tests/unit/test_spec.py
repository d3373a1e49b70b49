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
        ("name: a\nimage: r/a\n", ["domains=[x;rm -rf.com]"], "spec field 'domains.0'"),
        ("name: a\nimage: r/a\n", ["env={'bad name': x}"], "spec field 'env'"),
        ("name: a\nimage: r/a\n", ["build.context=../etc"], "spec field 'build.context'"),
        ("name: a\nimage: r/a\n", ["code.path=/etc"], "spec field 'code.path'"),
        ("name: a\nimage: r/a\n", ["mail.to=[not-an-address]"], "spec field 'mail.to.0'"),
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


BASE = {"name": "shop", "namespace": "team-a", "image": "reg:5000/team/shop"}
CODE = {**BASE, "mode": "code", "runtime_image": "reg:5000/runtime/java:17"}

# Every field that reaches a manifest, a path on a node or the volume, or nginx: hostile values.
HOSTILE = [
    ("name", BASE, {"name": "shop\n"}),
    ("namespace", BASE, {"namespace": "team-a\n"}),
    ("namespace", BASE, {"namespace": "../etc"}),
    ("image", BASE, {"image": "reg/shop\n"}),
    ("image", BASE, {"image": "reg/shop;rm -rf /"}),
    ("runtime_image", CODE, {"runtime_image": "reg/java:17\n"}),
    ("command.0", BASE, {"command": ["sh\x00"]}),
    ("build.context", BASE, {"build": {"context": "../x"}}),
    ("build.context", BASE, {"build": {"context": "/etc"}}),
    ("build.context", BASE, {"build": {"context": "app\n"}}),
    ("build.dockerfile", BASE, {"build": {"dockerfile": "a/../../Dockerfile"}}),
    ("build.args", BASE, {"build": {"args": {"A B": "x"}}}),
    ("build.extra_tags.0", BASE, {"build": {"extra_tags": ["-latest"]}}),
    ("build.extra_tags.0", BASE, {"build": {"extra_tags": ["latest\n"]}}),
    ("env", BASE, {"env": {"A\n": "x"}}),
    ("env", BASE, {"env": {"DB_PASSWORD": "literal"}}),
    ("env.A.secret_env", BASE, {"env": {"A": {"secret_env": "X;Y"}}}),
    ("readiness.path", BASE, {"readiness": {"path": "/\nx"}}),
    ("code.volume", CODE, {"code": {"volume": "../../etc"}}),
    ("code.volume", CODE, {"code": {"volume": "a;b"}}),
    ("code.volume", CODE, {"code": {"volume": "a b"}}),
    ("code.volume", CODE, {"code": {"volume": "gv0\n"}}),
    ("code.host_mount_root", CODE, {"code": {"host_mount_root": "/"}}),
    ("code.host_mount_root", CODE, {"code": {"host_mount_root": "/etc"}}),
    ("code.host_mount_root", CODE, {"code": {"host_mount_root": "/mnt/../etc"}}),
    ("code.host_mount_root", CODE, {"code": {"host_mount_root": "/mnt//x"}}),
    ("code.host_mount_root", CODE, {"code": {"host_mount_root": "/mnt/"}}),
    ("code.host_mount_root", CODE, {"code": {"host_mount_root": "/mnt\n"}}),
    ("code.path", CODE, {"code": {"path": "team-b/shop"}}),
    ("code.path", CODE, {"code": {"path": "team-a"}}),
    ("code.path", CODE, {"code": {"path": "team-a/../x"}}),
    ("code.path", CODE, {"code": {"path": "team-a/shop\n"}}),
    ("code.claim_name", CODE, {"code": {"mount": "pvc", "claim_name": "a/b"}}),
    ("domains.0", BASE, {"domains": ["*.example.com"]}),
    ("domains.0", BASE, {"domains": ["shop.example.com\n"]}),
    ("domains", BASE, {"domains": ["a" * 64 + ".example.com"]}),
    ("domains", BASE, {"domains": ["{name}" + "x" * 60 + ".example.com"]}),
    ("domains", BASE, {"name": "n" * 63, "domains": ["{name}.{name}.{name}.{name}"]}),
    ("domains.0", BASE, {"domains": [("a" * 60 + ".") * 5 + "com"]}),
    ("mail.to.0", BASE, {"mail": {"to": ["ops@example.com\nBcc: x@evil.test"]}}),
    ("resources.limits.cpu", BASE, {"resources": {"limits": {"cpu": "1\n"}}}),
    ("rollout.max_surge", BASE, {"rollout": {"max_surge": "25%\n"}}),
    ("rollout.max_surge", BASE, {"rollout": {"max_surge": "250%"}}),
    ("rollout.max_surge", BASE, {"rollout": {"max_surge": "0", "max_unavailable": "0"}}),
]


@pytest.mark.parametrize(("field", "base", "value"), HOSTILE, ids=lambda v: repr(v)[:40])
def test_hostile_values_are_refused_naming_the_field(field, base, value):
    from pysteps.spec import build_spec

    with pytest.raises(InputError) as err:
        build_spec(base, value)
    message = str(err.value)
    assert message.startswith(f"spec field {field!r}"), message
    assert "\n" not in message


def test_dollar_anchored_python_patterns_are_gone():
    # Python's `$` matches before a trailing newline: `re.match("^a$", "a\n")` succeeds.
    # Every grammar is written unanchored and applied with fullmatch (pysteps.names); no
    # module keeps a `^...$` pattern, on one line or split over several.
    import ast

    found = []
    for path in sorted((REPO / "pysteps").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if text.startswith("^") and text.rstrip().endswith("$") and len(text) > 2:
                    found.append(f"{path.name}:{node.lineno}: {text[:60]}")
    assert found == []


def test_build_paths_that_leave_the_checkout_through_a_symlink_are_refused(tmp_path):
    from pysteps.spec import build_spec, check_build_paths

    outside = tmp_path / "outside"
    outside.mkdir()
    checkout = tmp_path / "app"
    checkout.mkdir()
    (checkout / "ctx").symlink_to(outside)
    (checkout / "Dockerfile").symlink_to(outside / "Dockerfile")
    (checkout / "inside").mkdir()
    check_build_paths(build_spec(BASE, {"build": {"context": "inside"}}), checkout)
    with pytest.raises(InputError, match=r"spec field 'build.context': leaves the checkout"):
        check_build_paths(build_spec(BASE, {"build": {"context": "ctx"}}), checkout)
    with pytest.raises(InputError, match=r"spec field 'build.dockerfile': leaves the checkout"):
        check_build_paths(build_spec(BASE), checkout)


def test_secret_env_values_come_from_the_environment_and_are_masked():
    from pysteps.masking import mask
    from pysteps.spec import build_spec

    spec = build_spec(BASE, {"env": {"KEY": {"secret_env": "CI_KEY_VAR"}}})
    with pytest.raises(InputError, match=r"spec field 'env.KEY': environment variable CI_KEY_VAR"):
        spec.with_secrets({})
    value = "v-" + "51c0ffee"
    with_values = spec.with_secrets({"CI_KEY_VAR": value})
    assert with_values.secret_values == {"KEY": value}
    assert value not in with_values.secret_digest
    assert mask(f"connect {value}") == "connect ********"


def test_surge_given_as_a_number_is_a_number_of_pods():
    from pysteps.spec import build_spec

    spec = build_spec(BASE, {"rollout": {"max_surge": 2, "max_unavailable": 0}})
    assert (spec.rollout.max_surge, spec.rollout.max_unavailable) == ("2", "0")


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
        ("tolerations: [{value: v}]", "'tolerations.0.key': required when operator is Equal"),
        ("tolerations: [{key: k, seconds: 3}]", "'tolerations.0.seconds' is unknown"),
    ],
)
def test_bad_node_placement_is_one_line_naming_the_field(tmp_path, extra, message):
    with pytest.raises(InputError) as err:
        load_spec(write(tmp_path, f"name: a\nimage: r/a\n{extra}\n"))
    assert message in str(err.value)
    assert "\n" not in str(err.value)
