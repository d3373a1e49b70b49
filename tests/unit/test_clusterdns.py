"""Cluster DNS: config validation, pure rendering (Corefile, kube-dns) and the ConfigMap apply.

Tables, no servers: the apply tests use the in-memory FakeKube. CoreDNS itself runs the rendered
Corefile in tests/integration/test_cluster_dns.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from pysteps.cli import main
from pysteps.clients.kube import Conflict
from pysteps.clusterdns.apply import apply_dns_data, plan_configmap
from pysteps.clusterdns.config import (
    ServerAddress,
    merge_flags,
    parse_dns_config,
    parse_zone,
)
from pysteps.clusterdns.render import (
    coredns_data,
    kube_dns_data,
    render_corefile,
    render_kube_dns_configmap,
)
from pysteps.errors import InputError
from tests.unit.fakes import FakeKube

# ----------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "text, corefile, kube_dns",
    [
        ("10.0.0.53", "10.0.0.53:53", "10.0.0.53"),
        ("10.0.0.53:5353", "10.0.0.53:5353", "10.0.0.53:5353"),
        ("10.0.0.53:53", "10.0.0.53:53", "10.0.0.53"),
        ("fd00::53", "[fd00::53]:53", "fd00::53"),
        ("[fd00::53]", "[fd00::53]:53", "fd00::53"),
        ("[fd00::53]:5353", "[fd00::53]:5353", "[fd00::53]:5353"),
        ("FD00:0:0::53", "[fd00::53]:53", "fd00::53"),
        ("::ffff:10.0.0.1", "[::ffff:a00:1]:53", "::ffff:a00:1"),
    ],
)
def test_server_addresses_render_in_each_servers_form(text, corefile, kube_dns):
    address = ServerAddress.parse(text, "upstreams[0]")
    assert address.host_port() == corefile
    assert address.kube_dns() == kube_dns


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.300",
        "10.0.0",
        "dns.example.com",  # names are refused: a name would need DNS to find DNS
        "10.0.0.53:0",
        "10.0.0.53:65536",
        "10.0.0.53:",
        "10.0.0.53:dns",
        "[10.0.0.53]:53",
        "fd00::53:5353:",
        "[fd00::53",
        "fe80::1%eth0",
        " 10.0.0.53",
        "10.0.0.53 ",
        "0.0.0.0",
        "::",
        "",
        ":53",
        "10.0.0.53;rm -rf /",
        "10.0.0.53\n}",
    ],
)
def test_malformed_addresses_are_refused_naming_the_field(text):
    with pytest.raises(InputError) as err:
        ServerAddress.parse(text, "upstreams[1]")
    assert str(err.value).startswith("dns config field 'upstreams[1]': ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("value", [53, None, ["10.0.0.1"]])
def test_non_string_addresses_are_refused(value):
    with pytest.raises(InputError, match="is not a string"):
        ServerAddress.parse(value, "upstreams[0]")


# ----------------------------------------------------------------------- zones


@pytest.mark.parametrize(
    "text, zone",
    [
        ("corp.example", "corp.example"),
        ("corp.example.", "corp.example"),
        ("Corp.Example", "corp.example"),
        ("corp", "corp"),
        ("10.in-addr.arpa", "10.in-addr.arpa"),
        ("a-b.c-d.example", "a-b.c-d.example"),
    ],
)
def test_zone_names_are_normalised(text, zone):
    assert parse_zone(text, "company_zones") == zone


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "corp..example",
        ".corp.example",
        "-corp.example",
        "corp-.example",
        "corp_ad.example",
        "corp example",
        "corp.example/24",
        "*.corp.example",
        "a" * 64 + ".example",
        ".".join(["abcdefghij"] * 24),  # 263 characters
        "corp.example\n}",
        "corp{x}.example",
    ],
)
def test_malformed_zones_are_refused(text):
    with pytest.raises(InputError) as err:
        parse_zone(text, "company_zones[x]")
    assert str(err.value).startswith("dns config field 'company_zones[x]': ")


# ----------------------------------------------------------------------- whole config


def test_defaults_are_kubeadms():
    config = parse_dns_config({"upstreams": ["192.0.2.1"]})
    assert config.cluster_domain == "cluster.local"
    assert config.cache_ttl == 30
    assert config.company_zones == ()
    assert config.coredns.port == 53
    assert str(config.coredns.health) == ":8080"
    assert str(config.coredns.ready) == ":8181"
    assert str(config.coredns.metrics) == ":9153"


@pytest.mark.parametrize(
    "raw, field, fix",
    [
        ({}, "upstreams", "no default is taken from /etc/resolv.conf"),
        ({"upstreams": []}, "upstreams", "required"),
        (
            {"upstreams": ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]},
            "upstreams",
            "4 servers given, at most 3 allowed",
        ),
        ({"upstreams": ["192.0.2.1", "192.0.2.1:53"]}, "upstreams[1]", "listed twice"),
        ({"upstreams": ["192.0.2.1", "x"]}, "upstreams[1]", "'x' is not an address"),
        ({"upstreams": "192.0.2.1", "cache_ttl": True}, "cache_ttl", "whole number of seconds"),
        ({"upstreams": "192.0.2.1", "cache_ttl": -1}, "cache_ttl", "0 to 3600"),
        ({"upstreams": "192.0.2.1", "cache_ttl": 3601}, "cache_ttl", "0 to 3600"),
        ({"upstreams": "192.0.2.1", "cluster_domain": "cluster..local"}, "cluster_domain", ""),
        ({"upstreams": "192.0.2.1", "upstream": ["192.0.2.2"]}, "upstream", "unknown field"),
        ({"upstreams": "192.0.2.1", "company_zones": ["corp"]}, "company_zones", "map each"),
        (
            {"upstreams": "192.0.2.1", "company_zones": {"corp.example": []}},
            "company_zones[corp.example]",
            "1 to 15 server addresses",
        ),
        (
            {"upstreams": "192.0.2.1", "company_zones": {"corp.example": ["10.0.0.1"] * 16}},
            "company_zones[corp.example]",
            "at most 15",
        ),
        (
            {"upstreams": "192.0.2.1", "company_zones": {"corp.example": ["10.0.0.1", "1.2.3"]}},
            "company_zones[corp.example][1]",
            "'1.2.3' is not an address",
        ),
        (
            {
                "upstreams": "192.0.2.1",
                "company_zones": {"a.example": "10.0.0.1", "A.example.": []},
            },
            "company_zones[a.example]",
            "listed twice",
        ),
        (
            {"upstreams": "192.0.2.1", "company_zones": {"local": "10.0.0.1"}},
            "company_zones[local]",
            "overlaps the cluster domain cluster.local",
        ),
        (
            {"upstreams": "192.0.2.1", "company_zones": {"svc.cluster.local": "10.0.0.1"}},
            "company_zones[svc.cluster.local]",
            "overlaps the cluster domain",
        ),
        (
            {"upstreams": "192.0.2.1", "company_zones": {".": "10.0.0.1"}},
            "company_zones[.]",
            "root zone",
        ),
        ({"upstreams": "192.0.2.1", "coredns": {"port": 0}}, "coredns.port", "a port"),
        ({"upstreams": "192.0.2.1", "coredns": {"bind": ["lo"]}}, "coredns.bind[0]", "not an IP"),
        ({"upstreams": "192.0.2.1", "coredns": {"health": "8080"}}, "coredns.health", "[HOST]"),
        ({"upstreams": "192.0.2.1", "coredns": {"ready": "x:1"}}, "coredns.ready", "not an"),
        (
            {"upstreams": "192.0.2.1", "coredns": {"kubeconfig": "/tmp/a b"}},
            "coredns.kubeconfig",
            "absolute path",
        ),
        (
            {"upstreams": "192.0.2.1", "coredns": {"kubeconfig": "kubeconfig"}},
            "coredns.kubeconfig",
            "absolute path",
        ),
        ({"upstreams": "192.0.2.1", "coredns": {"context": "a"}}, "coredns.context", "needs"),
        (
            {"upstreams": "192.0.2.1", "coredns": {"kubeconfig": "/k", "context": "a b"}},
            "coredns.context",
            "not a context name",
        ),
        ({"upstreams": "192.0.2.1", "coredns": {"log": True}}, "coredns.log", "unknown field"),
    ],
)
def test_bad_config_is_one_line_naming_field_and_fix(raw, field, fix):
    with pytest.raises(InputError) as err:
        parse_dns_config(raw)
    message = str(err.value)
    assert message.startswith(f"dns config field {field!r}: "), message
    assert fix in message
    assert "\n" not in message


def test_flags_override_the_file():
    raw = {
        "upstreams": ["192.0.2.1"],
        "company_zones": {"Corp.Example": ["10.0.0.1"], "lab.example": ["10.0.0.2"]},
        "cache_ttl": 10,
    }
    merged = merge_flags(raw, "k8s.local", ["corp.example=10.0.0.9,10.0.0.10"], ["192.0.2.7"], 0)
    config = parse_dns_config(merged)
    assert [s.host_port() for s in config.upstreams] == ["192.0.2.7:53"]
    zones = {z.zone: [s.host_port() for s in z.servers] for z in config.company_zones}
    assert zones == {
        "corp.example": ["10.0.0.9:53", "10.0.0.10:53"],
        "lab.example": ["10.0.0.2:53"],
    }
    assert config.cluster_domain == "k8s.local"
    assert config.cache_ttl == 0
    assert raw["upstreams"] == ["192.0.2.1"]  # the file's mapping is not changed


@pytest.mark.parametrize("flag", ["corp.example", "=10.0.0.1", "corp.example="])
def test_malformed_zone_flag_says_the_form(flag):
    with pytest.raises(InputError, match=r"write ZONE=SERVER\[,SERVER...\]"):
        merge_flags({}, zones=[flag])


# ----------------------------------------------------------------------- rendering

FULL = {
    "cluster_domain": "cluster.local",
    "company_zones": {"corp.example": ["10.0.0.53", "10.0.0.54:5353"], "lab.example": "fd00::53"},
    "upstreams": ["192.0.2.1", "[2001:db8::1]:5353"],
    "cache_ttl": 60,
}

FULL_COREFILE = """\
# Rendered by `pysteps dns render`: change the DNS config and render again, not this file.
.:53 {
    errors
    health :8080 {
        lameduck 5s
    }
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    forward . 192.0.2.1:53 [2001:db8::1]:5353 {
        max_concurrent 1000
    }
    cache 60
    loop
    reload
    loadbalance
}
corp.example:53 {
    errors
    prometheus :9153
    forward . 10.0.0.53:53 10.0.0.54:5353
    cache 60
    loop
}
lab.example:53 {
    errors
    prometheus :9153
    forward . [fd00::53]:53
    cache 60
    loop
}
"""


def test_corefile_for_a_full_config():
    assert render_corefile(parse_dns_config(FULL)) == FULL_COREFILE


def _block_of(corefile: str, head: str) -> list[str]:
    lines = corefile.splitlines()
    start = lines.index(f"{head} {{")
    end = lines.index("}", start)
    return [line.strip() for line in lines[start + 1 : end]]


@pytest.mark.parametrize(
    "raw, head, present, absent",
    [
        ({"upstreams": "192.0.2.1"}, ".:53", ["forward . 192.0.2.1:53 {", "cache 30"], []),
        ({"upstreams": "192.0.2.1", "cache_ttl": 0}, ".:53", [], ["cache 30", "cache 0"]),
        (
            {"upstreams": "192.0.2.1", "cluster_domain": "k8s.corp"},
            ".:53",
            ["kubernetes k8s.corp in-addr.arpa ip6.arpa {"],
            ["kubernetes cluster.local in-addr.arpa ip6.arpa {"],
        ),
        (
            {
                "upstreams": "127.0.0.1:5300",
                "coredns": {
                    "port": 5353,
                    "bind": ["127.0.0.1", "::1"],
                    "health": "127.0.0.1:18080",
                    "ready": None,
                    "metrics": "",
                    "kubeconfig": "/etc/k/admin.kubeconfig",
                    "context": "admin@testbed",
                },
            },
            ".:5353",
            [
                "bind 127.0.0.1 ::1",
                "health 127.0.0.1:18080 {",
                "kubeconfig /etc/k/admin.kubeconfig admin@testbed",
            ],
            ["ready :8181", "prometheus :9153"],
        ),
        (
            {"upstreams": "192.0.2.1", "company_zones": {"corp": "10.0.0.1"}},
            "corp:53",
            ["forward . 10.0.0.1:53", "errors"],
            ["kubernetes", "health", "ready :8181", "reload"],  # once per process, in `.` only
        ),
    ],
)
def test_corefile_blocks(raw, head, present, absent):
    corefile = render_corefile(parse_dns_config(raw))
    block = _block_of(corefile, head)
    for line in present:
        assert line in block, (line, block)
    for line in absent:
        assert not any(b.startswith(line) for b in block), (line, block)


@pytest.mark.parametrize("raw", [FULL, {"upstreams": "192.0.2.1"}])
def test_corefile_never_falls_back_to_the_nodes_resolver(raw):
    corefile = render_corefile(parse_dns_config(raw))
    assert "resolv.conf" not in corefile
    forwards = [line.split()[2:] for line in corefile.splitlines() if "forward ." in line]
    targets = [t for f in forwards for t in f if t != "{"]
    assert targets and all(t[0].isdigit() or t.startswith("[") for t in targets)


def test_kube_dns_data_for_a_full_config():
    data = kube_dns_data(parse_dns_config(FULL))
    assert json.loads(data["stubDomains"]) == {
        "corp.example": ["10.0.0.53", "10.0.0.54:5353"],
        "lab.example": ["fd00::53"],
    }
    assert json.loads(data["upstreamNameservers"]) == ["192.0.2.1", "[2001:db8::1]:5353"]


def test_kube_dns_data_without_zones_clears_stub_domains():
    data = kube_dns_data(parse_dns_config({"upstreams": "192.0.2.1"}))
    assert data == {"stubDomains": "{}", "upstreamNameservers": '["192.0.2.1"]'}


def test_kube_dns_configmap_is_a_manifest():
    manifest = yaml.safe_load(render_kube_dns_configmap(parse_dns_config(FULL), "dn-x"))
    assert manifest["kind"] == "ConfigMap" and manifest["apiVersion"] == "v1"
    assert manifest["metadata"]["name"] == "kube-dns"
    assert manifest["metadata"]["namespace"] == "dn-x"
    assert manifest["data"] == kube_dns_data(parse_dns_config(FULL))


# ----------------------------------------------------------------------- plan and apply

DESIRED = {"Corefile": ".:53 {\n    forward . 192.0.2.1:53\n}\n"}


def _cm(data: dict[str, str], rv: str = "7") -> dict[str, Any]:
    meta = {"name": "coredns", "namespace": "kube-system", "resourceVersion": rv}
    return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta, "data": data}


@pytest.mark.parametrize(
    "live, action, changed",
    [
        (None, "create", ["Corefile"]),
        (_cm(dict(DESIRED)), "unchanged", []),
        (_cm({**DESIRED, "other": "kept"}), "unchanged", []),
        (_cm({"Corefile": ".:53 {}\n"}), "update", ["Corefile"]),
        (_cm({}), "update", ["Corefile"]),
        ({"metadata": {"name": "coredns"}}, "update", ["Corefile"]),  # no data at all
    ],
)
def test_plan_configmap(live, action, changed):
    plan = plan_configmap("kube-system", "coredns", DESIRED, live)
    assert plan.action == action
    assert [c.key for c in plan.changes] == changed


def test_plan_describes_the_change_as_a_diff():
    plan = plan_configmap("ns", "coredns", DESIRED, _cm({"Corefile": ".:53 {\n}\n"}))
    lines = plan.describe()
    assert lines[0] == "ConfigMap ns/coredns: change Corefile"
    assert "+    forward . 192.0.2.1:53" in lines


def _fake_with_namespace(name: str = "kube-system") -> FakeKube:
    kube = FakeKube()
    kube.create({"kind": "Namespace", "metadata": {"name": name}})
    kube.requests.clear()
    return kube


def test_apply_creates_then_does_nothing_when_unchanged():
    kube = _fake_with_namespace()
    said: list[str] = []
    first = apply_dns_data(kube, "kube-system", "coredns", DESIRED, False, said.append)
    assert first.action == "create"
    assert kube.get("ConfigMap", "kube-system", "coredns")["data"] == DESIRED
    kube.requests.clear()
    second = apply_dns_data(kube, "kube-system", "coredns", DESIRED, False, said.append)
    assert second.action == "unchanged"
    assert kube.requests == [("get", "ConfigMap")]  # read, no write
    assert said[-1] == "ConfigMap kube-system/coredns: unchanged (Corefile)"


def test_apply_updates_only_its_keys_and_keeps_the_rest():
    kube = _fake_with_namespace()
    live = _cm({"Corefile": "old\n", "other": "kept"})
    live["metadata"]["labels"] = {"k8s-app": "kube-dns"}
    kube.create(live)
    apply_dns_data(kube, "kube-system", "coredns", DESIRED, False, lambda _: None)
    now = kube.get("ConfigMap", "kube-system", "coredns")
    assert now["data"] == {**DESIRED, "other": "kept"}
    assert now["metadata"]["labels"] == {"k8s-app": "kube-dns"}


def test_dry_run_writes_nothing_and_says_so():
    kube = _fake_with_namespace()
    kube.create(_cm({"Corefile": "old\n"}))
    kube.requests.clear()
    said: list[str] = []
    plan = apply_dns_data(kube, "kube-system", "coredns", DESIRED, True, said.append)
    assert plan.action == "update"
    assert kube.requests == [("get", "ConfigMap")]
    assert kube.get("ConfigMap", "kube-system", "coredns")["data"] == {"Corefile": "old\n"}
    assert said[0].endswith("(dry run: nothing written)")


def test_apply_into_a_missing_namespace_is_a_precondition():
    kube = FakeKube()
    with pytest.raises(Exception, match="namespace dn-none does not exist"):
        apply_dns_data(kube, "dn-none", "coredns", DESIRED, False, lambda _: None)
    assert kube.get("ConfigMap", "dn-none", "coredns") is None


class RacingKube(FakeKube):
    """Someone else changes the ConfigMap between our read and our write, once."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = False

    def replace(self, obj: Any) -> dict[str, Any]:
        if not self.raced:
            self.raced = True
            live = self.objects[("ConfigMap", "kube-system", "coredns")]
            live["data"]["other"] = "theirs"
            live["metadata"]["resourceVersion"] = "999"
        return super().replace(obj)


def test_a_concurrent_change_is_read_again_not_overwritten():
    kube = RacingKube()
    kube.create(_cm({"Corefile": "old\n"}))
    apply_dns_data(kube, "kube-system", "coredns", DESIRED, False, lambda _: None)
    now = kube.get("ConfigMap", "kube-system", "coredns")
    assert now["data"] == {**DESIRED, "other": "theirs"}


def test_a_configmap_that_keeps_changing_gives_up_with_a_clear_error():
    class AlwaysConflict(FakeKube):
        def replace(self, obj: Any) -> dict[str, Any]:
            raise Conflict("the object has been modified")

    kube = AlwaysConflict()
    kube.create(_cm({"Corefile": "old\n"}))
    with pytest.raises(Exception, match="kept changing under us"):
        apply_dns_data(kube, "kube-system", "coredns", DESIRED, False, lambda _: None)


# ----------------------------------------------------------------------- command line


def test_render_writes_the_corefile(tmp_path, capsys):
    out = tmp_path / "Corefile"
    assert main(["dns", "render", "--upstream", "192.0.2.1", "-o", str(out)]) == 0
    assert out.read_text() == render_corefile(parse_dns_config({"upstreams": ["192.0.2.1"]}))
    assert [p.name for p in tmp_path.iterdir()] == ["Corefile"]  # no temporary file left


def test_render_kube_dns_to_stdout(tmp_path, capsys):
    config = tmp_path / "dns.json"
    config.write_text(json.dumps(FULL))
    assert main(["dns", "render", "--config", str(config), "--flavor", "kube-dns"]) == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    assert manifest["data"] == kube_dns_data(parse_dns_config(FULL))


@pytest.mark.parametrize(
    "args, field",
    [
        ([f"--upstream=192.0.2.{i}" for i in range(1, 5)], "upstreams"),
        (["--upstream", "192.0.2.1", "--cache-ttl", "-1"], "cache_ttl"),
        (["--upstream", "192.0.2.1", "--cluster-domain", "cluster local"], "cluster_domain"),
        (["--upstream", "192.0.2.300"], "upstreams[0]"),
        (["--upstream", "192.0.2.1", "--zone", "corp_x=10.0.0.1"], "company_zones[corp_x]"),
        (["--upstream", "192.0.2.1", "--zone", "corp=10.0.0.1:99999"], "company_zones[corp][0]"),
    ],
)
def test_bad_render_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, field):
    out = tmp_path / "Corefile"
    out.write_text("previous\n")
    assert main(["dns", "render", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"field {field!r}" in err[0], err
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["Corefile"]


def test_apply_validates_before_touching_the_cluster(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    args = ["dns", "apply", "--upstream", "1.1.1.1"] + ["--upstream", "1.1.1.2"] * 3
    assert main(args) == 2
    assert "at most 3 allowed" in capsys.readouterr().err  # not the missing kubeconfig


def test_coredns_data_is_the_corefile():
    config = parse_dns_config(FULL)
    assert coredns_data(config) == {"Corefile": render_corefile(config)}


def test_render_killed_while_writing_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    out = tmp_path / "Corefile"
    out.write_text("previous\n")

    def killed(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # what SIGTERM becomes in the CLI

    monkeypatch.setattr("pysteps.commands.dns.os.replace", killed)
    assert main(["dns", "render", "--upstream", "192.0.2.1", "-o", str(out)]) == 130
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["Corefile"]


def test_render_to_a_missing_directory_is_one_line(tmp_path, capsys):
    out = tmp_path / "no-such-dir" / "Corefile"
    assert main(["dns", "render", "--upstream", "192.0.2.1", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write there" in err[0], err


@pytest.mark.parametrize(
    "text, fix",
    [
        ("upstreams: [192.0.2.1\n", "line 2: not valid YAML or JSON"),
        ("- 192.0.2.1\n", "must hold a mapping"),
    ],
)
def test_unreadable_config_files_are_one_line(tmp_path, capsys, text, fix):
    config = tmp_path / "dns.yaml"
    config.write_text(text)
    assert main(["dns", "render", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fix in err[0], err


def test_kube_dns_with_another_cluster_domain_warns_about_its_flag(capsys):
    args = ["dns", "render", "--flavor", "kube-dns", "--upstream", "192.0.2.1"]
    assert main([*args, "--cluster-domain", "k8s.corp"]) == 0
    assert "set it to k8s.corp" in capsys.readouterr().err
    assert main(args) == 0
    assert "--domain" not in capsys.readouterr().err
