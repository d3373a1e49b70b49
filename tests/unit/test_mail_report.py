"""The deploy mail's triggers (a pure decision table) and its content (text and HTML alike)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from pysteps.clients.git import Changes, CommitInfo
from pysteps.history import DeployAttempt
from pysteps.mail_report import (
    TRIGGERS,
    DeployReport,
    Phase,
    RecipientList,
    compose,
    recipients,
    triggers_met,
)
from pysteps.masking import MASK, Masker
from pysteps.rollout import FailureReport, PodProblem


def attempt(result: str, changed: bool = True) -> DeployAttempt:
    return DeployAttempt(
        "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "a" * 40, result, 0, changed=changed
    )


def fired(results: list[str]) -> dict[str, list[int]]:
    """For a sequence of deploy results: which attempt fires which trigger (1/0)."""
    out: dict[str, list[int]] = {t: [] for t in TRIGGERS}
    history: list[DeployAttempt] = []
    for r in results:
        current = attempt(r)
        met = triggers_met(history, current)
        for t in TRIGGERS:
            out[t].append(int(t in met))
        history.append(current)
    return out


def test_triggers_over_ok_fail_fail_ok():
    assert fired(["ok", "failed", "failed", "ok"]) == {
        "always": [1, 1, 1, 1],
        "success": [1, 0, 0, 1],
        "failure": [0, 1, 1, 0],
        "first-failure": [0, 1, 0, 0],
        "still-failing": [0, 0, 1, 0],
        "fixed": [0, 0, 0, 1],
    }


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        ([], "ok", {"always", "success"}),
        ([], "failed", {"always", "failure", "first-failure"}),
        (["failed"], "ok", {"always", "success", "fixed"}),
        (["failed"], "timed-out", {"always", "failure", "still-failing"}),
        (["interrupted"], "ok", {"always", "success", "fixed"}),
        (["ok"], "interrupted", {"always", "failure", "first-failure"}),
        (["failed", "ok"], "ok", {"always", "success"}),
        (["ok", "failed"], "failed", {"always", "failure", "still-failing"}),
    ],
)
def test_trigger_table(previous, current, expected):
    assert triggers_met([attempt(r) for r in previous], attempt(current)) == expected


def test_a_rerun_with_nothing_to_do_neither_fixes_nor_fails():
    history = [attempt("failed"), attempt("ok", changed=False)]
    assert "fixed" in triggers_met(history, attempt("ok"))
    assert "still-failing" in triggers_met(history, attempt("failed"))


def test_recipients_per_list_each_address_once():
    lists = [
        RecipientList(("team@x.test",), ("lead@x.test",), ("always",)),
        RecipientList(("oncall@x.test", "team@x.test"), (), ("failure", "fixed")),
        RecipientList(("boss@x.test",), (), ("still-failing",)),
    ]
    assert recipients(lists, frozenset({"always", "success"})) == (
        ("team@x.test",),
        ("lead@x.test",),
    )
    assert recipients(lists, frozenset({"always", "failure", "still-failing"})) == (
        ("team@x.test", "oncall@x.test", "boss@x.test"),
        ("lead@x.test",),
    )
    assert recipients(lists[1:], frozenset({"always", "success"})) == ((), ())


# Content ---------------------------------------------------------------------------------

C_OLD, C_NEW = "1" * 40, "2" * 40


def failed_report(**extra) -> DeployReport:
    fields = dict(
        namespace="team-a",
        name="shop",
        mode="image",
        kind="Deployment",
        commit=C_NEW,
        result="failed",
        exit_code=1,
        error="team-a/shop: progress deadline exceeded; rolled back",
        image="127.0.0.1:25000/team/shop@sha256:" + "ab" * 32,
        replicas_ready=2,
        replicas_desired=3,
        urls=("http://shop.example.test/",),
        build_url="https://ci.example.test/job/shop/42/",
        started_by="alice",
        phases=(
            Phase("observe and plan", 0.4),
            Phase("build image", 12.0),
            Phase("rolling update", 30.2, failed=True),
        ),
        total_seconds=42.6,
        changes=Changes(
            C_OLD,
            (
                CommitInfo(
                    C_NEW,
                    "Bob Builder",
                    "bob@x.test",
                    "2026-01-02T03:04:05+00:00",
                    "Make checkout <faster> & safer",
                ),
            ),
        ),
        failed_step="roll out Deployment shop",
        not_reached=("register route devnginx/team-a/shop",),
        failure=FailureReport(
            (PodProblem("shop-abc", "shop", "CrashLoopBackOff", "back-off 10s", 3),),
            ("Warning BackOff pod/shop-abc: Back-off restarting failed container",),
            (("shop-abc/shop", "starting\npanic: boom"),),
        ),
        rollback="rolled back: the previous revision runs again",
        rerun_command="pysteps deploy --repo . --commit " + C_NEW,
        rerun_url="https://ci.example.test/job/shop/42/restart",
        triggers=frozenset({"always", "failure", "still-failing"}),
    )
    fields.update(extra)
    return DeployReport(**fields)  # type: ignore[arg-type]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.hrefs: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("title", "style"):
            self._skip += 1
        self.hrefs.extend(v for k, v in attrs if k == "href")

    def handle_endtag(self, tag):
        if tag in ("title", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.chunks.append(data)


def visible_text(html: str) -> str:
    p = _Text()
    p.feed(html)
    return " ".join(p.chunks)


def words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z0-9][A-Za-z0-9_.@/:<>&+-]*[A-Za-z0-9]|[A-Za-z0-9]", text))


@pytest.mark.parametrize("result", ["failed", "ok"])
def test_text_and_html_say_the_same_things(result):
    report = (
        failed_report()
        if result == "failed"
        else failed_report(
            result="ok",
            exit_code=0,
            error=None,
            failure=None,
            rollback=None,
            failed_step=None,
            not_reached=(),
            rerun_command=None,
            rerun_url=None,
            triggers=frozenset({"always"}),
        )
    )
    mail = compose(report, ["oncall@x.test"], [], Masker())
    assert mail.html is not None
    html_words = words(visible_text(mail.html))
    text_words = words(mail.body)
    assert html_words == text_words, html_words ^ text_words
    for fact in (
        "team-a",
        "shop",
        C_NEW,
        "2/3",
        "http://shop.example.test/",
        "alice",
        "https://ci.example.test/job/shop/42/",
        "Bob Builder",
        "bob@x.test",
    ):
        assert fact in mail.body and fact in visible_text(mail.html), fact


def test_failure_mail_has_what_on_call_needs():
    mail = compose(failed_report(), ["oncall@x.test"], ["lead@x.test"], Masker())
    assert mail.subject == (
        "[pysteps] FAILED (still failing): team-a/shop at 222222222222 - rolled back"
    )
    body = mail.body
    for needle in (
        "CrashLoopBackOff (restarts 3)",
        "panic: boom",
        "Warning BackOff pod/shop-abc",
        "Rollback:",
        "rolled back: the previous revision runs again",
        "pysteps deploy --repo . --commit " + C_NEW,
        "https://ci.example.test/job/shop/42/restart",
        "register route devnginx/team-a/shop",
        "rolling update",
        "FAILED",
        "sha256:" + "ab" * 32,
    ):
        assert needle in body, needle
    # the timeline: one bar per phase, the longest phase the longest bar
    bars = {line.split()[0]: line.count("#") for line in body.splitlines() if "#" in line}
    assert bars["rolling"] > bars["build"] > bars["observe"]
    assert "width:70.9%" in (mail.html or "")  # 30.2 of 42.6 s
    # HTML escaped, not injected
    assert "Make checkout &lt;faster&gt; &amp; safer" in (mail.html or "")
    assert "<faster>" not in (mail.html or "")


def test_success_mail_has_no_failure_sections():
    mail = compose(
        failed_report(
            result="ok",
            exit_code=0,
            error=None,
            failure=None,
            rollback=None,
            triggers=frozenset({"always", "success", "fixed"}),
        ),
        ["oncall@x.test"],
        [],
        Masker(),
    )
    assert mail.subject == "[pysteps] ok (fixed): team-a/shop at 222222222222"
    assert "== What failed ==" not in mail.body and "Failing pods" not in mail.body
    assert "team-a/shop now runs 222222222222" in mail.body


def test_every_part_of_the_mail_is_masked():
    secret = "pw-" + "x7" * 6  # not a word any template contains
    amp_secret = "a&b<c>" + "z9" * 4  # would hide from a mask applied after HTML escaping
    report = failed_report(
        error=f"login failed with {secret}",
        build_url=f"https://ci.example.test/job/{secret}/1/",
        failure=FailureReport((), (f"event {amp_secret}",), (("p/c", f"DB_PASSWORD={secret}"),)),
        changes=Changes(
            C_OLD, (CommitInfo(C_NEW, amp_secret, "e@x.test", "2026-01-01", f"rotate {secret}"),)
        ),
    )
    mail = compose(report, ["oncall@x.test"], [], Masker([secret, amp_secret]))
    everything = mail.subject + mail.body + (mail.html or "")
    for s in (secret, amp_secret, "a&amp;b&lt;c&gt;"):
        assert s not in everything
    assert MASK in mail.body and MASK in (mail.html or "")
