"""The app catalog (jobs/apps.yaml) and `pysteps jobs validate`: one clear line per fault."""

from __future__ import annotations

import pytest

from pysteps.catalog import parse_catalog
from pysteps.cli import main
from pysteps.errors import InputError
from tests.conftest import REPO

GOOD = {
    "app": "shop",
    "team": "team-a",
    "repository": "https://gitlab.example.com/team-a/shop.git",
    "branch": "main",
    "recipients": ["team-a@example.com"],
}


def test_the_shipped_catalog_is_valid(capsys):
    assert main(["jobs", "validate", str(REPO / "jobs" / "apps.yaml")]) == 0
    assert "3 apps in 2 teams, valid" in capsys.readouterr().out


def test_defaults_and_job_name():
    (app,) = parse_catalog({"apps": [GOOD]})
    assert app.job == "team-a/shop"
    assert (app.script, app.credentials) == ("Jenkinsfile", "gitlab-checkout")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"app": "Shop"}, "apps[0] (Shop): app 'Shop' must be a DNS-1123 label"),
        ({"app": "$(rm -rf /)"}, "app '$(rm -rf /)' must be a DNS-1123 label"),
        ({"team": "team a"}, "team 'team a' must be a DNS-1123 label"),
        ({"repository": "https://user:pw@gitlab.example.com/a/b.git"}, "is not a git URL"),
        ({"repository": "http://gitlab.example.com/a/b.git"}, "is not a git URL"),
        ({"repository": "https://gitlab.example.com/a/b.git'; curl x"}, "is not a git URL"),
        ({"repository": "https://gitlab.example.com/a/b.git\nx"}, "is not a git URL"),
        ({"branch": "main;rm"}, "branch 'main;rm' is not a branch name"),
        ({"branch": "../x"}, "is not a branch name"),
        ({"recipients": ["not-an-address"]}, "recipients must be a list of e-mail addresses"),
        ({"script": "../Jenkinsfile"}, "script '../Jenkinsfile' must be a path"),
        ({"credentials": "a b"}, "must be a Jenkins credentials ID"),
        ({"colour": "red"}, "unknown field 'colour'"),
        ({"branch": None}, "branch is required"),
    ],
)
def test_bad_entries_are_refused_naming_entry_and_field(change, message):
    entry = {**GOOD, **change}
    entry = {k: v for k, v in entry.items() if v is not None}
    with pytest.raises(InputError) as exc:
        parse_catalog({"apps": [entry]})
    assert message in str(exc.value)
    assert "\n" not in str(exc.value).replace(repr(entry.get("repository", ""))[1:-1], "")


def test_duplicate_jobs_and_repositories_are_refused():
    with pytest.raises(InputError, match=r"apps\[1\] \(shop\): job team-a/shop is already made"):
        parse_catalog({"apps": [GOOD, {**GOOD, "repository": GOOD["repository"][:-4] + "2.git"}]})
    with pytest.raises(
        InputError, match=r"apps\[1\] \(other\): repository .* is already apps\[0\]"
    ):
        parse_catalog({"apps": [GOOD, {**GOOD, "app": "other"}]})


def test_validate_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "apps.yaml"
    bad.write_text(
        "apps:\n  - {app: shop, team: t, repository: nope, branch: main, recipients: []}\n"
    )
    assert main(["jobs", "validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pysteps jobs: apps[0] (shop): recipients is required"]


def test_validate_reports_yaml_syntax_and_shape(tmp_path, capsys):
    bad = tmp_path / "apps.yaml"
    bad.write_text("apps: [\n")
    assert main(["jobs", "validate", str(bad)]) == 2
    bad.write_text("- app: shop\n")
    assert main(["jobs", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not valid YAML" in err and "must hold a mapping with a list 'apps:'" in err
