"""The deploy mail: who gets it (triggers read from the deploy history) and what it says.

Pure: a `DeployReport` (built by the engine at the end of a deploy) becomes a `MailMessage`
with a plain-text and an HTML part rendered from the same sections, so both say the same
things. Everything passes the project's one secret masker before it is rendered.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Union

from pysteps.clients.git import Changes, CommitInfo
from pysteps.clients.mail import MailMessage
from pysteps.history import FAILURES, INTERRUPTED, OK, TIMED_OUT, DeployAttempt
from pysteps.masking import Masker, secrets_from_env
from pysteps.rollout import FailureReport

# Triggers, as the spec's mail.on names them (Jenkins email-ext's vocabulary).
ALWAYS = "always"
SUCCESS = "success"
FAILURE = "failure"
FIRST_FAILURE = "first-failure"
STILL_FAILING = "still-failing"
FIXED = "fixed"
TRIGGERS = (ALWAYS, SUCCESS, FAILURE, FIRST_FAILURE, STILL_FAILING, FIXED)


def triggers_met(previous: Sequence[DeployAttempt], current: DeployAttempt) -> frozenset[str]:
    """The triggers CURRENT fires, given the attempts before it (oldest first). Pure.

    Attempts that changed nothing (a rerun with nothing to do) neither fix nor fail anything,
    so "the previous deploy" is the last one that did something.
    """
    before = next((a for a in reversed(previous) if a.changed), None)
    before_failed = before is not None and before.failed
    if current.failed:
        return frozenset({ALWAYS, FAILURE, STILL_FAILING if before_failed else FIRST_FAILURE})
    return frozenset({ALWAYS, SUCCESS} | ({FIXED} if before_failed else set()))


@dataclass(frozen=True)
class RecipientList:
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    on: tuple[str, ...] = (ALWAYS,)


def recipients(
    lists: Iterable[RecipientList], met: frozenset[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(to, cc) of every list whose triggers MET includes; each address once, in order."""
    to: list[str] = []
    cc: list[str] = []
    for lst in lists:
        if met.intersection(lst.on):
            to.extend(a for a in lst.to if a not in to)
            cc.extend(a for a in lst.cc if a not in cc and a not in to)
    return tuple(to), tuple(c for c in cc if c not in to)


# The input ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    failed: bool = False


@dataclass(frozen=True)
class DeployReport:
    """Everything the mail says about one deploy attempt."""

    namespace: str
    name: str
    mode: str
    kind: str
    commit: str
    result: str  # ok | failed | timed-out | interrupted (pysteps.history)
    exit_code: int = 0
    error: str | None = None
    image: str | None = None
    code_release: str | None = None
    replicas_ready: int | None = None
    replicas_desired: int | None = None
    urls: tuple[str, ...] = ()
    build_url: str | None = None
    started_by: str | None = None
    phases: tuple[Phase, ...] = ()
    total_seconds: float = 0.0
    changes: Changes | None = None
    failed_step: str | None = None
    not_reached: tuple[str, ...] = ()
    failure: FailureReport | None = None
    rollback: str | None = None  # what happened to the app after a failure, one line
    rerun_command: str | None = None
    rerun_url: str | None = None
    triggers: frozenset[str] = field(default_factory=frozenset)

    @property
    def failed(self) -> bool:
        return self.result in FAILURES

    @property
    def version(self) -> str:
        return self.commit[:12]


# Sections: what both parts say ---------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    href: str | None = None
    mono: bool = False  # a command or an id: shown in a fixed-width font


@dataclass(frozen=True)
class Facts:
    items: tuple[Fact, ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Code:
    caption: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Timeline:
    phases: tuple[Phase, ...]
    total: float


Block = Union[Facts, Bullets, Code, Timeline]


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


def result_word(report: DeployReport) -> str:
    word = {OK: "ok", TIMED_OUT: "TIMED OUT", INTERRUPTED: "INTERRUPTED"}.get(
        report.result, "FAILED"
    )
    if FIXED in report.triggers:
        return f"{word} (fixed)"
    if STILL_FAILING in report.triggers:
        return f"{word} (still failing)"
    return word


def subject(report: DeployReport) -> str:
    """Result, app, environment (namespace) and version, in that order."""
    tail = ""
    if report.failed and report.rollback:
        tail = " - rolled back" if report.rollback.startswith("rolled back") else ""
    return (
        f"[pysteps] {result_word(report)}: {report.namespace}/{report.name} "
        f"at {report.version}{tail}"
    )


def headline(report: DeployReport) -> str:
    if not report.failed:
        return f"{report.namespace}/{report.name} now runs {report.version}"
    return report.error or f"the deploy of {report.version} failed"


def _seconds(value: float) -> str:
    if value >= 60:
        return f"{int(value // 60)}m {value % 60:04.1f}s"
    if value < 1:
        return f"{round(value * 1000)}ms"
    return f"{value:.1f}s"


def sections(report: DeployReport) -> list[Section]:
    """The mail's content, in the order on-call reads it."""
    out: list[Section] = []
    summary = [
        Fact(
            "Result", result_word(report) + (f", exit {report.exit_code}" if report.failed else "")
        ),
        Fact("App", f"{report.name} ({report.mode} mode, {report.kind})"),
        Fact("Environment", report.namespace),
        Fact("Version", report.commit, mono=True),
    ]
    if report.image:
        summary.append(Fact("Image", report.image, mono=True))
    if report.code_release:
        summary.append(Fact("Code release", f"releases/{report.code_release}", mono=True))
    if report.replicas_desired is not None:
        summary.append(
            Fact("Replicas ready", f"{report.replicas_ready or 0}/{report.replicas_desired}")
        )
    summary.extend(Fact("URL", u, u) for u in report.urls)
    if report.build_url:
        summary.append(Fact("Build", report.build_url, report.build_url))
    if report.started_by:
        summary.append(Fact("Started by", report.started_by))
    summary.append(Fact("Duration", _seconds(report.total_seconds)))
    out.append(Section("Summary", (Facts(tuple(summary)),)))

    if report.failed:
        what = []
        if report.failed_step:
            what.append(Fact("Failed step", report.failed_step))
        if report.error:
            what.append(Fact("Error", report.error))
        what.append(Fact("Rollback", report.rollback or "not needed: the cluster was not changed"))
        if report.rerun_url:
            what.append(Fact("Rerun in Jenkins", report.rerun_url, report.rerun_url))
        if report.rerun_command:
            what.append(Fact("Rerun command", report.rerun_command, mono=True))
        blocks: list[Block] = [Facts(tuple(what))]
        if report.not_reached:
            blocks.append(Code("Not reached", report.not_reached))
        out.append(Section("What failed", tuple(blocks)))
        fr = report.failure
        if fr is not None:
            if fr.problems:
                out.append(
                    Section("Failing pods", (Bullets(tuple(p.line() for p in fr.problems)),))
                )
            if fr.events:
                out.append(Section("Events", (Bullets(tuple(fr.events)),)))
            for where, text in fr.logs:
                lines = tuple(text.splitlines()[-20:]) or ("(empty)",)
                out.append(Section(f"Last log lines of {where}", (Code("", lines),)))

    if report.phases:
        out.append(Section("Timeline", (Timeline(report.phases, report.total_seconds),)))

    out.append(Section("What changed", _change_blocks(report.changes)))
    return out


def _change_blocks(changes: Changes | None) -> tuple[Block, ...]:
    if changes is None:
        return (Bullets(("unknown: no git checkout was given",)),)
    blocks: list[Block] = []
    if changes.since:
        blocks.append(Facts((Fact("Since", changes.since, mono=True),)))
    if changes.note:
        blocks.append(Bullets((changes.note,)))

    def line(c: CommitInfo) -> str:
        return f"{c.short} {c.subject} ({c.author} <{c.email}>, {c.date[:10]})"

    if changes.added:
        items = [line(c) for c in changes.added]
        if changes.more_added:
            items.append(f"and {changes.more_added} more")
        blocks.append(Bullets(tuple(items)))
    if changes.removed:
        items = [line(c) for c in changes.removed]
        if changes.more_removed:
            items.append(f"and {changes.more_removed} more")
        blocks.append(Facts((Fact("Going back", "these commits are no longer deployed"),)))
        blocks.append(Bullets(tuple(items)))
    if not blocks:
        blocks.append(Bullets(("no commits",)))
    return tuple(blocks)


# Rendering -----------------------------------------------------------------------------

_BAR_WIDTH = 30


def render_text(report: DeployReport, parts: Sequence[Section]) -> str:
    lines = [f"{result_word(report)}: {report.namespace}/{report.name} at {report.version}"]
    lines.append(headline(report))
    for section in parts:
        lines.append("")
        lines.append(f"== {section.title} ==")
        for block in section.blocks:
            lines.extend(_text_block(block))
    lines.append("")
    lines.append("-- pysteps")
    return "\n".join(lines) + "\n"


def _text_block(block: Block) -> list[str]:
    if isinstance(block, Facts):
        width = max(len(f.label) for f in block.items) + 1
        return [f"{(f.label + ':').ljust(width)} {f.value}" for f in block.items]
    if isinstance(block, Bullets):
        return [f"- {item}" for item in block.items]
    if isinstance(block, Code):
        head = [f"{block.caption}:"] if block.caption else []
        return head + [f"    {line}" for line in block.lines]
    width = max(len(p.name) for p in block.phases)
    out = []
    for p in block.phases:
        bar = "#" * max(1, round(_BAR_WIDTH * p.seconds / block.total)) if block.total else ""
        mark = " FAILED" if p.failed else ""
        out.append(f"{p.name.ljust(width)} {_seconds(p.seconds).rjust(8)} {bar}{mark}")
    out.append(f"{'total'.ljust(width)} {_seconds(block.total).rjust(8)}")
    return out


_OK_COLOR, _FAIL_COLOR = "#1a7f37", "#cf222e"
_FONT = "font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif"
_MONO = "font-family:SFMono-Regular,Menlo,Consolas,monospace;font-size:12px"


def render_html(report: DeployReport, parts: Sequence[Section]) -> str:
    color = _FAIL_COLOR if report.failed else _OK_COLOR
    e = html.escape
    body = [
        f'<div style="{_FONT};max-width:680px;margin:0 auto;color:#1f2328;font-size:14px">',
        f'<div style="background:{color};color:#ffffff;padding:14px 18px;'
        'border-radius:6px 6px 0 0">',
        f'<div style="font-size:18px;font-weight:600">{e(result_word(report))}: '
        f"{e(report.namespace)}/{e(report.name)} at {e(report.version)}</div>",
        f'<div style="margin-top:4px">{e(headline(report))}</div>',
        "</div>",
        '<div style="border:1px solid #d0d7de;border-top:0;padding:4px 18px 14px;'
        'border-radius:0 0 6px 6px">',
    ]
    for section in parts:
        body.append(
            '<h3 style="font-size:15px;margin:18px 0 6px;border-bottom:1px solid #d0d7de;'
            f'padding-bottom:4px">{e(section.title)}</h3>'
        )
        for block in section.blocks:
            body.append(_html_block(block, color))
    body.append(f'<p style="color:#656d76;font-size:12px;margin-top:18px">{e("-- pysteps")}</p>')
    body.append("</div></div>")
    title = e(subject(report))
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{title}</title></head>'
        '<body style="margin:0;padding:16px;background:#f6f8fa">'
        + "\n".join(body)
        + "</body></html>"
    )


def _html_block(block: Block, color: str) -> str:
    e = html.escape
    if isinstance(block, Facts):
        rows = []
        for f in block.items:
            value = e(f.value)
            if f.href and f.href.startswith(("http://", "https://")):
                value = f'<a href="{e(f.href, quote=True)}" style="color:#0969da">{value}</a>'
            if f.mono:
                value = f'<code style="{_MONO}">{value}</code>'
            rows.append(
                '<tr><th style="text-align:left;vertical-align:top;padding:3px 12px 3px 0;'
                f'white-space:nowrap;color:#656d76;font-weight:500">{e(f.label)}:</th>'
                f'<td style="padding:3px 0;overflow-wrap:anywhere">{value}</td></tr>'
            )
        return '<table style="border-collapse:collapse;width:100%">' + "".join(rows) + "</table>"
    if isinstance(block, Bullets):
        items = "".join(f'<li style="margin:2px 0">{e(i)}</li>' for i in block.items)
        return f'<ul style="margin:4px 0;padding-left:20px">{items}</ul>'
    if isinstance(block, Code):
        head = f'<div style="margin-top:6px">{e(block.caption)}:</div>' if block.caption else ""
        text = "\n".join(e(line) for line in block.lines)
        return (
            f'{head}<pre style="{_MONO};background:#f6f8fa;border:1px solid #d0d7de;'
            f'border-radius:6px;padding:8px;margin:4px 0;white-space:pre-wrap">{text}</pre>'
        )
    rows = []
    for p in block.phases:
        pct = 100 * p.seconds / block.total if block.total else 0
        pct = max(pct, 0.5)
        bar_color = _FAIL_COLOR if p.failed else "#54aeff"
        mark = ' <b style="color:#cf222e">FAILED</b>' if p.failed else ""
        rows.append(
            f'<tr><td style="padding:3px 10px 3px 0;white-space:nowrap">{e(p.name)}{mark}</td>'
            '<td style="width:100%;padding:3px 0"><div style="background:#eaeef2;'
            'border-radius:3px;height:14px">'
            f'<div style="background:{bar_color};width:{pct:.1f}%;height:14px;'
            'border-radius:3px"></div></div></td>'
            f'<td style="padding:3px 0 3px 10px;text-align:right;white-space:nowrap;{_MONO}">'
            f"{e(_seconds(p.seconds))}</td></tr>"
        )
    rows.append(
        '<tr><td style="padding:3px 10px 3px 0;font-weight:600">total</td><td></td>'
        f'<td style="padding:3px 0 3px 10px;text-align:right;{_MONO};font-weight:600">'
        f"{e(_seconds(block.total))}</td></tr>"
    )
    return '<table style="border-collapse:collapse;width:100%">' + "".join(rows) + "</table>"


# The message ---------------------------------------------------------------------------


def mail_masker(base: Masker, spec_env: Mapping[str, object] | None = None) -> Masker:
    """The project's one masker (BASE: the console's), plus the spec's secret env values."""
    plain = {k: v for k, v in (spec_env or {}).items() if isinstance(v, str)}
    return Masker([*base.secrets, *secrets_from_env(plain)])


def compose(
    report: DeployReport, to: Sequence[str], cc: Sequence[str], masker: Masker
) -> MailMessage:
    """The mail for REPORT: subject, text and HTML, every string masked before and after."""
    safe = _masked_report(report, masker)
    parts = sections(safe)
    return MailMessage(
        to=tuple(to),
        cc=tuple(cc),
        subject=masker(subject(safe)),
        body=masker(render_text(safe, parts)),
        html=masker(render_html(safe, parts)),
    )


def _masked_report(report: DeployReport, masker: Masker) -> DeployReport:
    """REPORT with every string masked before HTML escaping could hide a secret from the mask."""

    def m(v: str | None) -> str | None:
        return None if v is None else masker(v)

    failure = report.failure
    if failure is not None:
        failure = FailureReport.from_dict(masker.deep(failure.to_dict()))
    changes = report.changes
    if changes is not None:
        changes = replace(
            changes,
            note=m(changes.note),
            added=tuple(_masked_commit(c, masker) for c in changes.added),
            removed=tuple(_masked_commit(c, masker) for c in changes.removed),
        )
    return replace(
        report,
        error=m(report.error),
        image=m(report.image),
        urls=tuple(masker(u) for u in report.urls),
        build_url=m(report.build_url),
        started_by=m(report.started_by),
        failed_step=m(report.failed_step),
        not_reached=tuple(masker(s) for s in report.not_reached),
        rollback=m(report.rollback),
        rerun_command=m(report.rerun_command),
        rerun_url=m(report.rerun_url),
        failure=failure,
        changes=changes,
    )


def _masked_commit(c: CommitInfo, masker: Masker) -> CommitInfo:
    return replace(c, subject=masker(c.subject), author=masker(c.author), email=masker(c.email))
