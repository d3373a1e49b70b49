"""The objects pysteps asks for: platform defaults, stable fields only, code mounted read-only."""

from __future__ import annotations

from pysteps import manifests
from pysteps.manifests import Release
from pysteps.spec import build_spec


def code_spec(**extra):
    return build_spec(
        {"name": "shop", "mode": "code", "runtime_image": "reg/runtime/java:17", **extra}
    )


def test_pod_template_has_platform_defaults():
    spec = build_spec({"name": "hello", "image": "reg/team/hello"})
    t = manifests.pod_template(spec, "reg/team/hello@sha256:" + "a" * 64, None, None)
    c = t["spec"]["containers"][0]
    assert t["spec"]["dnsPolicy"] == "ClusterFirst"
    assert c["resources"] == {
        "limits": {"cpu": "500m", "memory": "2000Mi"},
        "requests": {"cpu": "10m", "memory": "100Mi"},
    }
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/", "port": "http"}


def test_code_is_mounted_read_only_from_the_volume():
    t = manifests.pod_template(code_spec(), "reg/runtime/java:17", "c" * 40, "gv0")
    c = t["spec"]["containers"][0]
    # pinned: the pod mounts its own release where unpinned pods find `current`
    assert c["volumeMounts"] == [{"name": "code", "mountPath": "/apps/current", "readOnly": True}]
    assert c["workingDir"] == "/apps/current"
    assert c["workingDir"] == "/apps/current"
    assert t["spec"]["volumes"] == [
        {
            "name": "code",
            "hostPath": {"path": f"/mnt/gv0/default/shop/releases/{'c' * 40}", "type": "Directory"},
        }
    ]
    assert t["metadata"]["annotations"] == {"pysteps.io/code-commit": "c" * 40}


def test_code_over_a_claim_uses_the_apps_subpath():
    spec = code_spec(code={"mount": "pvc", "claim_name": "apps", "path": "default/shop"})
    t = manifests.pod_template(spec, "reg/runtime/java:17", "c" * 40, "gv0")
    mount = t["spec"]["containers"][0]["volumeMounts"][0]
    assert mount["subPath"] == f"default/shop/releases/{'c' * 40}"
    assert t["spec"]["volumes"] == [
        {"name": "code", "persistentVolumeClaim": {"claimName": "apps"}}
    ]


def test_apps_that_reload_themselves_are_not_restarted_for_code():
    t = manifests.pod_template(code_spec(code={"restart": "none"}), "img:1", "c" * 40, "gv0")
    assert "annotations" not in t["metadata"]
    # they follow `current`: the whole app directory is mounted, not one release
    c = t["spec"]["containers"][0]
    assert c["volumeMounts"] == [{"name": "code", "mountPath": "/apps", "readOnly": True}]
    assert c["workingDir"] == "/apps/current"
    assert t["spec"]["volumes"][0]["hostPath"]["path"] == "/mnt/gv0/default/shop"


def test_replication_controller_selects_one_revision():
    spec = build_spec({"name": "hello", "image": "reg/team/hello", "kind": "ReplicationController"})
    t = manifests.pod_template(spec, "img@sha256:" + "b" * 64, None, None)
    meta = manifests.workload_metadata(spec, Release("d" * 40), "hash")
    rc = manifests.replication_controller("default", "hello", t, 3, 0, meta, 2)
    assert rc["metadata"]["name"] == "hello-r3"
    assert rc["spec"]["selector"]["pysteps.io/revision"] == "3"
    assert rc["spec"]["template"]["metadata"]["labels"]["pysteps.io/revision"] == "3"
    assert rc["metadata"]["annotations"]["pysteps.io/desired-replicas"] == "2"
    assert "pysteps.io/revision" not in t["metadata"]["labels"]  # the template is not mutated


def test_change_cause_carries_no_credentials_of_the_build_url():
    from pysteps.masking import add_secrets

    add_secrets(["job-" + "c0ffee77"])
    release = manifests.Release("c" * 40, "https://ci:tok3n@ci.example.com/job-c0ffee77/5/")
    assert release.change_cause() == (
        "pysteps deploy cccccccccccc (https://ci.example.com/********/5/)"
    )


def test_node_selector_and_tolerations_reach_the_pod_template():
    spec = build_spec(
        {
            "name": "hello",
            "image": "reg/team/hello",
            "node_selector": {"pysteps.testbed/real-node": "true"},
            "tolerations": [{"key": "pysteps.testbed/real-node", "operator": "Exists"}],
        }
    )
    pod = manifests.pod_template(spec, "reg/team/hello:1", None, None)["spec"]
    assert pod["nodeSelector"] == {"pysteps.testbed/real-node": "true"}
    assert pod["tolerations"] == [{"key": "pysteps.testbed/real-node", "operator": "Exists"}]
    plain = build_spec({"name": "hello", "image": "reg/team/hello"})
    plain_pod = manifests.pod_template(plain, "reg/team/hello:1", None, None)["spec"]
    assert "nodeSelector" not in plain_pod and "tolerations" not in plain_pod
