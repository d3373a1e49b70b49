"""The app catalog (jobs/apps.yaml): which pipeline jobs the Job DSL seed makes, one per app.

Validated here, once, for both `pysteps jobs validate` and `pysteps jenkins failed`: every
fault is one line naming the entry and the field, and saying the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pysteps.errors import InputError
from pysteps.names import is_dns_label

# https://host[:port]/group[/subgroup...]/name.git or git@host:group/name.git; no credentials,
# no spaces, nothing a shell or Jenkins' SCM field could read as more than one URL.
_HTTPS_REPO_RE = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9_.-]+){2,}\.git")
_SSH_REPO_RE = re.compile(r"git@[A-Za-z0-9.-]+:[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\.git")
_BRANCH_RE = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_SCRIPT_RE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_CREDENTIALS_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FIELDS = ("app", "team", "repository", "branch", "recipients", "script", "credentials")
_REQUIRED = ("app", "team", "repository", "branch", "recipients")


@dataclass(frozen=True)
class CatalogApp:
    """One app of the catalog: the seed makes the multibranch job TEAM/APP for it."""

    app: str
    team: str
    repository: str
    branch: str
    recipients: tuple[str, ...]
    script: str = "Jenkinsfile"
    credentials: str = "gitlab-checkout"

    @property
    def job(self) -> str:
        """The Jenkins job's full name, as the seed makes it."""
        return f"{self.team}/{self.app}"


def _are_addresses(values: list[Any]) -> bool:
    """The same e-mail rule as the app spec's mail.to."""
    from pydantic import ValidationError

    from pysteps.spec import MailSpec

    try:
        MailSpec(to=values)
    except ValidationError:
        return False
    return True


def _entry(index: int, raw: Any) -> CatalogApp:
    where = f"apps[{index}]"
    if not isinstance(raw, dict):
        raise InputError(
            f"{where}: must be a mapping with app, team, repository, branch, recipients"
        )
    name = raw.get("app")
    if isinstance(name, str):
        where = f"apps[{index}] ({name})"
    for key in raw:
        if key not in _FIELDS:
            raise InputError(f"{where}: unknown field {key!r}; the fields are {', '.join(_FIELDS)}")
    for key in _REQUIRED:
        if raw.get(key) in (None, "", []):
            raise InputError(f"{where}: {key} is required")
    for key in ("app", "team"):
        value = raw[key]
        if not isinstance(value, str) or not is_dns_label(value):
            raise InputError(
                f"{where}: {key} {value!r} must be a DNS-1123 label (lowercase letters, digits "
                "and '-', at most 63 characters)"
            )
    repo = raw["repository"]
    if not isinstance(repo, str) or not (
        _HTTPS_REPO_RE.fullmatch(repo) or _SSH_REPO_RE.fullmatch(repo)
    ):
        raise InputError(
            f"{where}: repository {repo!r} is not a git URL such as "
            "https://gitlab.example.com/team/app.git or git@gitlab.example.com:team/app.git "
            "(no credentials in the URL)"
        )
    branch = raw["branch"]
    if not isinstance(branch, str) or not _BRANCH_RE.fullmatch(branch) or ".." in branch:
        raise InputError(f"{where}: branch {branch!r} is not a branch name such as main")
    recipients = raw["recipients"]
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list) or not _are_addresses(recipients):
        raise InputError(f"{where}: recipients must be a list of e-mail addresses")
    script = raw.get("script", "Jenkinsfile")
    if not isinstance(script, str) or not _SCRIPT_RE.fullmatch(script) or ".." in script.split("/"):
        raise InputError(f"{where}: script {script!r} must be a path in the repository")
    credentials = raw.get("credentials", "gitlab-checkout")
    if not isinstance(credentials, str) or not _CREDENTIALS_RE.fullmatch(credentials):
        raise InputError(f"{where}: credentials {credentials!r} must be a Jenkins credentials ID")
    return CatalogApp(raw["app"], raw["team"], repo, branch, tuple(recipients), script, credentials)


def parse_catalog(data: Any, source: str = "catalog") -> list[CatalogApp]:
    """The catalog's apps, validated; InputError on the first fault."""
    if not isinstance(data, dict) or not isinstance(data.get("apps"), list):
        raise InputError(f"{source}: must hold a mapping with a list 'apps:'")
    apps = [_entry(i, raw) for i, raw in enumerate(data["apps"])]
    seen: dict[str, int] = {}
    for i, app in enumerate(apps):
        if app.job in seen:
            raise InputError(
                f"apps[{i}] ({app.app}): job {app.job} is already made by apps[{seen[app.job]}]; "
                "give each app of a team a distinct name"
            )
        seen[app.job] = i
    repos: dict[str, int] = {}
    for i, app in enumerate(apps):
        if app.repository in repos:
            raise InputError(
                f"apps[{i}] ({app.app}): repository {app.repository} is already apps"
                f"[{repos[app.repository]}]'s; one job per repository"
            )
        repos[app.repository] = i
    return apps


def load_catalog(path: Path) -> list[CatalogApp]:
    """Read and validate jobs/apps.yaml."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; pass the catalog, e.g. jobs/apps.yaml") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise InputError(f"{path}{where}: not valid YAML; fix the syntax") from None
    return parse_catalog(data, str(path))
