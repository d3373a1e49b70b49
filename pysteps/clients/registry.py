"""Docker Registry HTTP API v2: what a registry holds, asked directly (no Docker Engine needed).

Two login flows, chosen by the registry's `WWW-Authenticate` challenge: Basic (the
distribution registry with htpasswd) and Bearer tokens from a token service (Harbor's
`/service/token`, Docker Hub, GitLab). Credentials are only ever sent to the registry they
belong to (and its token service), in headers, and never appear in a message or a repr.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from pysteps import names
from pysteps.errors import InputError, ServiceError

# What we accept from GET/HEAD manifests: single-platform and multi-platform, Docker and OCI.
MANIFEST_MEDIA_TYPES: tuple[str, ...] = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)

# Docker's reference grammar: one copy, in pysteps.names.
_PATH_COMPONENT = re.compile(names.IMAGE_PATH_COMPONENT)
_TAG = re.compile(names.IMAGE_TAG)
_DIGEST = re.compile(names.IMAGE_DIGEST)
_HOST = re.compile(names.IMAGE_HOST)
_AUTH_PARAM = re.compile(r'([A-Za-z_]+)=(?:"([^"]*)"|([^,\s]*))')

MASK = "***"
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class RegistryAuth:
    """Where the registry is and who we are there. The password never shows in a repr."""

    registry: str
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        shown = None if self.password is None else MASK
        return (
            f"RegistryAuth(registry={self.registry!r}, username={self.username!r}, "
            f"password={shown!r})"
        )

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RegistryAuth:
        """PYSTEPS_REGISTRY, PYSTEPS_REGISTRY_USERNAME, PYSTEPS_REGISTRY_PASSWORD (both or none)."""
        env = os.environ if environ is None else environ
        registry = env.get("PYSTEPS_REGISTRY", "").strip()
        if not registry:
            raise InputError(
                "PYSTEPS_REGISTRY is not set: set it to the registry's host[:port], "
                "e.g. harbor.example.com"
            )
        registry_host(registry)  # validates
        username = env.get("PYSTEPS_REGISTRY_USERNAME") or None
        password = env.get("PYSTEPS_REGISTRY_PASSWORD") or None
        if (username is None) != (password is None):
            missing = (
                "PYSTEPS_REGISTRY_PASSWORD" if password is None else "PYSTEPS_REGISTRY_USERNAME"
            )
            raise InputError(
                f"{missing} is not set: set both PYSTEPS_REGISTRY_USERNAME and "
                "PYSTEPS_REGISTRY_PASSWORD (withCredentials), or neither for anonymous access"
            )
        return cls(registry=registry, username=username, password=password)

    @property
    def host(self) -> str:
        """The registry as it appears in image references: host[:port], no scheme."""
        return registry_host(self.registry)

    @property
    def base_url(self) -> str:
        """scheme://host[:port]: an explicit scheme wins; loopback means http, else https."""
        explicit = urlsplit(self.registry).scheme if "://" in self.registry else ""
        if explicit:
            return f"{explicit}://{self.host}"
        return f"{'http' if is_loopback(self.host) else 'https'}://{self.host}"

    def credentials_for(self, host: str) -> tuple[str, str] | None:
        """Our credentials when HOST is our registry; None for any other (never leak them)."""
        if self.username is None or self.password is None or host != self.host:
            return None
        return self.username, self.password

    def scrub(self, text: str) -> str:
        """TEXT with the password masked: defence in depth for messages from outside."""
        if self.password:
            text = text.replace(self.password, MASK)
        return text


def registry_host(registry: str) -> str:
    """host[:port] of a PYSTEPS_REGISTRY value ('http://h:5000', 'h:5000', 'h')."""
    value = registry.strip()
    shown = _without_userinfo(value)
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or parts.path.strip("/") or not parts.netloc:
            raise InputError(
                f"PYSTEPS_REGISTRY {shown!r} is not a registry address: "
                "use host[:port] (or http://host[:port] for a plain-HTTP registry)"
            )
        value = parts.netloc
    value = value.rstrip("/")
    if "@" in value or not _HOST.fullmatch(value):
        raise InputError(f"PYSTEPS_REGISTRY {shown!r} is not a registry address: use host[:port]")
    return value


def _without_userinfo(value: str) -> str:
    """VALUE with any 'user:password@' masked: it may hold a secret put in the wrong place."""
    return re.sub(r"^((?:[a-z]+://)?)[^/]*@", r"\1***@", value)


def is_loopback(host: str) -> bool:
    """HOST[:port] names this machine (engines talk plain HTTP to those without being told)."""
    name = host
    if name.startswith("["):
        name = name[1 : name.index("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def split_repository(repository: str) -> tuple[str, str]:
    """('127.0.0.1:25000', 'team/hello') from '127.0.0.1:25000/team/hello'; InputError if bad.

    As in Docker, the first component is a registry host only when it has a '.' or ':' or is
    'localhost'; otherwise the repository lives on Docker Hub.
    """
    first, sep, rest = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, repository
        if "/" not in path:
            path = f"library/{path}"
    if not path or not all(_PATH_COMPONENT.fullmatch(c) for c in path.split("/")):
        raise InputError(
            f"image repository {repository!r} is not valid: use registry/path in lowercase "
            "letters, digits and . _ - (e.g. harbor.example.com/team/app)"
        )
    if len(path) > 255:
        raise InputError(f"image repository {repository!r} is longer than 255 characters")
    return host, path


def is_valid_tag(tag: str) -> bool:
    """Docker's tag grammar: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'."""
    return bool(_TAG.fullmatch(tag))


def is_digest(value: str) -> bool:
    return bool(_DIGEST.fullmatch(value))


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """('bearer', {'realm': ..., 'service': ..., 'scope': ...}) from a WWW-Authenticate header."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _AUTH_PARAM.finditer(rest)
    }
    return scheme.lower(), params


class RegistryClient:
    """Manifests of one registry over its HTTP API v2, logged in when it asks for a login."""

    def __init__(
        self,
        auth: RegistryAuth,
        *,
        timeout: float = 15.0,
        retry_delays: Sequence[float] = (0.5, 1.5),
        session: requests.Session | None = None,
    ) -> None:
        self.auth = auth
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays)
        self._session = session or requests.Session()
        # Authorization header per scope (Bearer tokens are scoped), reused until refused;
        # a Basic login answers every scope, so it is kept once for all.
        self._authorization: dict[str, str] = {}
        self._basic: str | None = None

    # -- public --------------------------------------------------------------------------

    def ping(self) -> None:
        """Reach the registry and log in: ServiceError when it is down or refuses us."""
        self._request("GET", "/v2/", scope="")

    def manifest_digest(self, path: str, reference: str) -> str | None:
        """The digest of PATH:REFERENCE (tag or digest), None when the registry lacks it."""
        r = self._request(
            "HEAD", f"/v2/{path}/manifests/{reference}", scope=f"repository:{path}:pull"
        )
        if r is None:
            return None
        digest = r.headers.get("Docker-Content-Digest")
        if digest and is_digest(digest):
            return digest
        # Some registries omit the header on HEAD: the digest is the manifest's sha256.
        got = self.manifest(path, reference)
        return None if got is None else got[2]

    def manifest(self, path: str, reference: str) -> tuple[bytes, str, str] | None:
        """(body, media type, digest) of PATH:REFERENCE, None when absent."""
        r = self._request(
            "GET", f"/v2/{path}/manifests/{reference}", scope=f"repository:{path}:pull"
        )
        if r is None:
            return None
        body = r.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        media_type = r.headers.get("Content-Type", "").split(";")[0].strip()
        return body, media_type, digest

    def put_manifest(self, path: str, tag: str, body: bytes, media_type: str) -> str:
        """Store BODY as PATH:TAG (a tag for a manifest the registry already has)."""
        r = self._request(
            "PUT",
            f"/v2/{path}/manifests/{tag}",
            scope=f"repository:{path}:pull,push",
            data=body,
            headers={"Content-Type": media_type},
        )
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if r is not None:
            digest = r.headers.get("Docker-Content-Digest", digest)
        return digest

    # -- the one place that talks HTTP --------------------------------------------------

    def _request(
        self,
        method: str,
        api_path: str,
        *,
        scope: str,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response | None:
        """Send, log in on a 401 challenge, retry transient failures; None on 404."""
        hdrs = {"Accept": ", ".join(MANIFEST_MEDIA_TYPES), **(headers or {})}
        logged_in = False
        while True:
            authorization = self._authorization.get(scope) or self._basic
            if authorization:
                hdrs["Authorization"] = authorization
            r = self._send(method, self.auth.base_url + api_path, hdrs, data)
            if r.status_code == 401 and not logged_in:
                authorization = self._login(r.headers.get("WWW-Authenticate", ""), scope)
                if authorization.startswith("Basic "):
                    self._basic = authorization
                else:
                    self._authorization[scope] = authorization
                logged_in = True
                continue
            break
        what = f"{method} {api_path}"
        if r.status_code == 401:
            self._authorization.pop(scope, None)
            self._basic = None
            raise ServiceError(self._refused_message())
        if r.status_code == 403:
            raise ServiceError(
                f"registry {self.auth.host} denied {self._who()} access ({what}): "
                "check the account's permissions on that project"
            )
        if r.status_code == 404:
            return None
        if r.status_code >= 300:
            raise ServiceError(
                f"registry {self.auth.host} answered {r.status_code} to {what}: "
                f"{self.auth.scrub(_error_summary(r))}"
            )
        return r

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], data: bytes | None
    ) -> requests.Response:
        """One request, retried on connection errors and 429/5xx answers."""
        last = ""
        for attempt in range(len(self.retry_delays) + 1):
            if attempt:
                time.sleep(self.retry_delays[attempt - 1])
            try:
                r = self._session.request(
                    method,
                    url,
                    headers=dict(headers),
                    data=data,
                    timeout=self.timeout,
                    allow_redirects=True,
                )
            except requests.ConnectionError as e:
                last = _connection_reason(e)
                continue
            except requests.Timeout:
                last = f"no answer within {self.timeout:g}s"
                continue
            if r.status_code == 429 or r.status_code >= 500:
                last = f"HTTP {r.status_code}"
                continue
            return r
        raise ServiceError(
            f"registry {self.auth.host} is unreachable ({last}): is it up, and is "
            "PYSTEPS_REGISTRY right?"
        )

    def _login(self, challenge: str, scope: str) -> str:
        """The Authorization header that answers CHALLENGE (Basic, or a Bearer token)."""
        creds = self.auth.credentials_for(self.auth.host)
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if creds is None:
                raise ServiceError(self._needs_login_message())
            return _basic(*creds)
        if scheme == "bearer" and params.get("realm"):
            return "Bearer " + self._token(params, scope, creds)
        raise ServiceError(
            f"registry {self.auth.host} asked for an unsupported login ({scheme or 'no challenge'})"
        )

    def _token(self, params: Mapping[str, str], scope: str, creds: tuple[str, str] | None) -> str:
        """A Bearer token from the registry's token service (Harbor: /service/token)."""
        realm = params["realm"]
        realm_parts = urlsplit(realm)
        if realm_parts.scheme not in ("http", "https"):
            raise ServiceError(f"registry {self.auth.host} named a bad token service: {realm!r}")
        # Our password goes to the token service only over TLS or on the registry's own host.
        same_host = realm_parts.hostname == urlsplit(self.auth.base_url).hostname
        if creds is not None and realm_parts.scheme != "https" and not same_host:
            creds = None
        query: dict[str, str] = {}
        if params.get("service"):
            query["service"] = params["service"]
        wanted = scope or params.get("scope", "")
        if wanted:
            query["scope"] = wanted
        headers = {"Authorization": _basic(*creds)} if creds else {}
        try:
            r = self._session.get(realm, params=query, headers=headers, timeout=self.timeout)
        except requests.RequestException as e:
            raise ServiceError(
                f"token service of registry {self.auth.host} is unreachable "
                f"({_connection_reason(e)})"
            ) from None
        if r.status_code == 401:
            raise ServiceError(self._refused_message() if creds else self._needs_login_message())
        if r.status_code != 200:
            raise ServiceError(
                f"token service of registry {self.auth.host} answered {r.status_code}"
            )
        try:
            body: Any = r.json()
        except ValueError:
            body = {}
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ServiceError(f"token service of registry {self.auth.host} returned no token")
        return token

    def _who(self) -> str:
        return f"user {self.auth.username!r}" if self.auth.username else "anonymous access"

    def _refused_message(self) -> str:
        return (
            f"registry {self.auth.host} refused the login of {self._who()}: check "
            "PYSTEPS_REGISTRY_USERNAME and PYSTEPS_REGISTRY_PASSWORD"
        )

    def _needs_login_message(self) -> str:
        return (
            f"registry {self.auth.host} wants a login: set PYSTEPS_REGISTRY_USERNAME and "
            "PYSTEPS_REGISTRY_PASSWORD (withCredentials)"
        )


def _basic(username: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _connection_reason(e: BaseException) -> str:
    """A short reason ('connection refused') instead of urllib3's nested repr."""
    text = str(e)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("timed out", "timed out"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed"),
        ("SSLError", "TLS error"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
        ("wrong version number", "TLS spoken to a plain-HTTP server"),
    ):
        if needle in text:
            return reason
    return type(e).__name__


def _error_summary(r: requests.Response) -> str:
    """The registry's first error ('MANIFEST_INVALID: ...') or the start of the body."""
    try:
        body = r.json()
        first = body["errors"][0]
        return f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return r.text.strip().splitlines()[0][:200] if r.text.strip() else r.reason or ""
