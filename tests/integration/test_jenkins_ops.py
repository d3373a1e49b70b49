"""`pysteps jenkins failed|rerun|trigger` through python-jenkins against a STAND-IN of Jenkins'
REST API on loopback (tests/jenkins_standin.py; Jenkins itself cannot be had here)."""

from __future__ import annotations

import jenkins
import pytest

from pysteps.cli import main
from pysteps.clients.jenkins import JenkinsClient, JenkinsLogin
from tests.jenkins_standin import VERSION, FakeBuild, JenkinsStandIn

pytestmark = pytest.mark.integration

STAGES = ["Checkout", "Build image", "Deploy to test", "Smoke tests", "Production"]


@pytest.fixture
def standin():
    with JenkinsStandIn() as s:
        yield s


@pytest.fixture
def env(standin, monkeypatch):
    monkeypatch.setenv("JENKINS_URL", standin.url)
    monkeypatch.setenv("JENKINS_USER", standin.user)
    monkeypatch.setenv("JENKINS_API_TOKEN", standin.token)
    return standin


def failed_build(number, failed_at="Smoke tests", params=None, timestamp=None):
    stages = []
    state = "SUCCESS"
    for name in STAGES:
        if name == failed_at:
            stages.append((name, "FAILED"))
            state = "NOT_EXECUTED"
        else:
            stages.append((name, state))
    return FakeBuild(
        number,
        "FAILURE",
        stages,
        dict(params or {}),
        timestamp=timestamp if timestamp is not None else int(__import__("time").time() * 1000),
    )


def catalog(tmp_path):
    path = tmp_path / "apps.yaml"
    path.write_text(
        "apps:\n"
        "  - {app: shop, team: team-a, repository: 'https://gitlab.example.com/team-a/shop.git',"
        " branch: main, recipients: [team-a@example.com]}\n"
    )
    return path


def test_get_version_before_login_fails_against_a_closed_jenkins_but_connect_works(standin):
    # The python-jenkins quirk, shown on the stand-in: get_version() is sent unauthenticated.
    raw = jenkins.Jenkins(standin.url, standin.user, standin.token)
    with pytest.raises(jenkins.JenkinsException):
        raw.get_version()
    client = JenkinsClient(JenkinsLogin(standin.url, standin.user, standin.token))
    assert client.connect() == VERSION


def test_a_wrong_token_is_one_line_exit_3_without_the_token(env, capsys, monkeypatch):
    monkeypatch.setenv("JENKINS_API_TOKEN", "wrong-token-value-123")
    code = main(["jenkins", "trigger", "team-a/shop/main"])
    err = capsys.readouterr().err
    assert code == 3
    assert "refused ops" in err and "JENKINS_API_TOKEN" in err
    assert "wrong-token-value-123" not in err


def test_missing_credentials_name_the_variables(monkeypatch, capsys):
    for var in ("JENKINS_URL", "JENKINS_USER", "JENKINS_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    assert main(["jenkins", "failed"]) == 2
    assert "JENKINS_URL, JENKINS_USER, JENKINS_API_TOKEN not set" in capsys.readouterr().err


def test_failed_lists_recent_failures_of_the_catalogs_branches_with_the_stage(
    env, tmp_path, capsys
):
    env.job("team-a/shop", children=["main", "feature%2Flogin"])
    main_job = env.job("team-a/shop/main", stage_names=STAGES)
    main_job.add(FakeBuild(1, "SUCCESS", [(s, "SUCCESS") for s in STAGES]))
    main_job.add(failed_build(2, "Smoke tests"))
    main_job.add(failed_build(3, "Checkout", timestamp=1_000))  # long ago
    feature = env.job("team-a/shop/feature%2Flogin", stage_names=STAGES)
    feature.add(failed_build(7, "Build image"))

    assert main(["jenkins", "failed", "--since", "24h", "--catalog", str(catalog(tmp_path))]) == 0
    out = capsys.readouterr().out.splitlines()
    failures = [line for line in out if " FAILED " in line]
    assert len(failures) == 2
    assert failures[0].startswith("team-a/shop/main #2 FAILED") and "stage Smoke tests" in out[0]
    assert "team-a@example.com" in failures[0]
    assert any(
        line.startswith("team-a/shop/feature%2Flogin #7") and "stage Build image" in line
        for line in failures
    )
    assert "  rerun: pysteps jenkins rerun team-a/shop/main 2 --stage 'Smoke tests'" in out
    assert out[-1].startswith("2 failed build(s) of 1 app(s) in the last 24h00m")


def test_failed_names_catalog_apps_the_seed_has_not_made(env, tmp_path, capsys):
    assert main(["jenkins", "failed", "--catalog", str(catalog(tmp_path))]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "team-a/shop: no such job on Jenkins; run the seed job (jobs/seed.groovy)"


def test_rerun_restarts_from_the_stage_with_the_crumb(env, capsys):
    job = env.job("team-a/shop/main", stage_names=STAGES)
    job.add(failed_build(4, "Smoke tests", {"RELEASE": "1.2"}))

    assert main(["jenkins", "rerun", "team-a/shop/main", "4", "--stage", "Smoke tests"]) == 0
    assert "restarted team-a/shop/main #4 from stage 'Smoke tests': build #5" in (
        capsys.readouterr().out
    )
    restart = [r for r in env.requests if r[1].endswith("/4/restart/restart")]
    assert len(restart) == 1 and restart[0][0] == "POST"
    assert restart[0][2]["json"] == ['{"stageName": "Smoke tests"}']
    new = job.get(5)
    assert new is not None and new.restarted_from == "Smoke tests"
    assert dict(new.stages)["Deploy to test"] == "NOT_EXECUTED"  # earlier stages not rerun


def test_rerun_defaults_to_the_last_failed_build_and_waits_for_the_result(env, capsys):
    job = env.job("team-a/shop/main", stage_names=STAGES)
    job.add(failed_build(8, "Production"))
    job.add(FakeBuild(9, "SUCCESS", [(s, "SUCCESS") for s in STAGES]))

    code = main(["jenkins", "rerun", "team-a/shop/main", "--stage", "Production", "--wait", "30"])
    out = capsys.readouterr().out
    assert code == 0
    assert "restarted team-a/shop/main #8 from stage 'Production': build #10" in out
    assert "team-a/shop/main #10 finished SUCCESS" in out


def test_rerun_of_a_stage_the_build_does_not_have_is_exit_2_naming_the_stages(env, capsys):
    job = env.job("team-a/shop/main", stage_names=STAGES)
    job.add(failed_build(4))
    assert main(["jenkins", "rerun", "team-a/shop/main", "4", "--stage", "Smoke"]) == 2
    err = capsys.readouterr().err
    assert "--stage 'Smoke'" in err and "'Smoke tests'" in err
    assert not [r for r in env.requests if r[0] == "POST"]


def test_rerun_falls_back_to_a_rebuild_with_the_same_parameters_and_says_so(env, capsys):
    # A scripted pipeline offers no restart action: rebuild with the failed build's parameters.
    job = env.job("team-a/shop/main", declarative=False, stage_names=STAGES)
    job.add(failed_build(4, "Smoke tests", {"RELEASE": "1.2", "TARGET": "test"}))

    assert main(["jenkins", "rerun", "team-a/shop/main", "4", "--stage", "Smoke tests"]) == 0
    out = capsys.readouterr().out
    assert "restart from stage 'Smoke tests' is not possible" in out
    assert "rebuilding team-a/shop/main with the parameters of #4 instead" in out
    assert "rebuild: build #5" in out
    posts = [r for r in env.requests if r[0] == "POST"]
    assert [p[1] for p in posts] == ["/job/team-a/job/shop/job/main/buildWithParameters"]
    assert job.get(5).parameters == {"RELEASE": "1.2", "TARGET": "test"}


def test_trigger_prints_the_build_number_and_url_and_waits_for_the_result(env, capsys):
    job = env.job("team-a/shop/main", stage_names=STAGES, next_result="FAILURE")
    job.next_build_number = 12
    code = main(["jenkins", "trigger", "team-a/shop/main", "-p", "RELEASE=2.0", "--wait"])
    out = capsys.readouterr()
    assert (
        out.out.splitlines()[0] == f"team-a/shop/main #12 {env.url}job/team-a/job/shop/job/main/12/"
    )
    assert code == 1
    assert "team-a/shop/main #12 finished FAILURE" in out.err
    assert job.get(12).parameters == {"RELEASE": "2.0"}


def test_posts_without_a_crumb_are_refused_by_the_standin(standin):
    # Self-test of the stand-in: the crumb rule the client must follow is really enforced.
    import requests

    standin.job("j")
    r = requests.post(standin.url + "job/j/build", auth=(standin.user, standin.token), timeout=5)
    assert r.status_code == 403 and "crumb" in r.text
