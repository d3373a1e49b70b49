"""Pure parts of the Jenkins ops client and command: names to URLs, login from env, flags."""

from __future__ import annotations

import argparse

import pytest

from pysteps.clients.jenkins import JenkinsLogin, _build_from, job_url_path
from pysteps.commands.jenkins import parameter, since_seconds
from pysteps.errors import InputError


@pytest.mark.parametrize(
    ("job", "path"),
    [
        ("shop", "job/shop/"),
        ("team-a/shop/main", "job/team-a/job/shop/job/main/"),
        # A multibranch job's branch feature/login is named feature%2Flogin in Jenkins.
        ("team-a/shop/feature%2Flogin", "job/team-a/job/shop/job/feature%252Flogin/"),
    ],
)
def test_job_names_become_url_paths(job, path):
    assert job_url_path(job) == path


def test_a_name_with_url_characters_is_quoted():
    assert job_url_path("team a/sh?p#1") == "job/team%20a/job/sh%3Fp%231/"


@pytest.mark.parametrize("bad", ["/", "a/../b", "./x"])
def test_an_empty_or_climbing_job_name_is_refused(bad):
    with pytest.raises(InputError, match="JOB: give the job's full name"):
        job_url_path(bad)


def test_login_from_env_names_what_is_missing_and_hides_the_token():
    with pytest.raises(InputError, match="JENKINS_USER, JENKINS_API_TOKEN not set"):
        JenkinsLogin.from_env({"JENKINS_URL": "http://127.0.0.1:8080"})
    with pytest.raises(InputError, match="give the http"):
        JenkinsLogin.from_env(
            {"JENKINS_URL": "127.0.0.1", "JENKINS_USER": "u", "JENKINS_API_TOKEN": "t0k3n"}
        )
    login = JenkinsLogin.from_env(
        {"JENKINS_URL": "http://127.0.0.1:8080", "JENKINS_USER": "u", "JENKINS_API_TOKEN": "t0k3n"}
    )
    assert login.url == "http://127.0.0.1:8080/"
    assert "t0k3n" not in repr(login)


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("24h", 86400), ("7d", 604800)])
def test_since(text, seconds):
    assert since_seconds(text) == seconds


@pytest.mark.parametrize("bad", ["24", "h", "-1h", "1w", "24h; rm"])
def test_bad_since_is_refused(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        since_seconds(bad)


def test_parameters_keep_their_value_verbatim():
    assert parameter("RELEASE=1.2=rc") == ("RELEASE", "1.2=rc")
    assert parameter("MSG=$(rm -rf /)") == ("MSG", "$(rm -rf /)")
    with pytest.raises(argparse.ArgumentTypeError):
        parameter("no-equals")


def test_build_json_gives_its_parameters():
    build = _build_from(
        "team-a/shop/main",
        {
            "number": 4,
            "url": "http://127.0.0.1/job/x/4/",
            "result": "FAILURE",
            "building": False,
            "timestamp": 5,
            "actions": [
                {"_class": "hudson.model.CauseAction"},
                {
                    "_class": "hudson.model.ParametersAction",
                    "parameters": [{"name": "RELEASE", "value": "1.2"}],
                },
                {},
            ],
        },
    )
    assert build.failed and build.parameters == {"RELEASE": "1.2"}
