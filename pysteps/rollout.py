"""Judging rollouts honestly: kubectl's rules, plus failing fast on pods that cannot succeed.

The judging functions are pure (dicts in, verdicts out); the waiting loops do the polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pysteps.clients.kube import KubeApi
from pysteps.state import RolloutStatus

# Waiting reasons that no amount of waiting cures (krane calls such pods "doomed").
DOOMED_REASONS = {
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
# Marks pysteps writes on a revision (ReplicaSet or ReplicationController): it became
# available (rollbacks return only to such), or it was judged failed and left (--no-rollback).
ANN_ROLLED_OUT = "pysteps.io/rolled-out"
ANN_ROLLOUT_FAILED = "pysteps.io/rollout-failed"
_WORKLOAD_KINDS = {"Pod", "ReplicaSet", "Deployment", "ReplicationController"}

Log = Callable[[str], None]


class PollSchedule:
    """Poll quickly while a rollout is young, then settle at the steady interval.

    Most rollouts finish within a second or two; a fixed 1 s poll would double their time.
    """

    def __init__(self, steady: float, first: float = 0.1, factor: float = 1.25) -> None:
        self.interval = min(first, steady)
        self.steady = steady
        self.factor = factor

    def sleep(self) -> None:
        time.sleep(self.interval)
        self.interval = min(self.steady, self.interval * self.factor)


@dataclass(frozen=True)
class Verdict:
    state: str  # "done" | "waiting" | "failed"
    message: str


@dataclass(frozen=True)
class PodProblem:
    pod: str
    container: str
    reason: str
    message: str
    restarts: int

    def line(self) -> str:
        extra = f": {self.message}" if self.message else ""
        where = f"pod {self.pod} container {self.container}"
        return f"{where}: {self.reason} (restarts {self.restarts}){extra}"


@dataclass(frozen=True)
class FailureReport:
    """What on-call needs to act: why the pods fail, recent events, last log lines."""

    problems: tuple[PodProblem, ...] = ()
    events: tuple[str, ...] = ()
    logs: tuple[tuple[str, str], ...] = ()  # (pod/container, text)

    def lines(self) -> list[str]:
        out = [p.line() for p in self.problems]
        if self.events:
            out.append("recent events:")
            out.extend(f"  {e}" for e in self.events)
        for where, text in self.logs:
            out.append(f"last log lines of {where}:")
            out.extend(f"  {line}" for line in (text.splitlines() or ["(empty)"]))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailureReport:
        """The report back from `to_dict` (as the result file holds it)."""
        return cls(
            tuple(PodProblem(**p) for p in data.get("problems") or ()),
            tuple(data.get("events") or ()),
            tuple((x["container"], x["text"]) for x in data.get("logs") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "problems": [p.__dict__ for p in self.problems],
            "events": list(self.events),
            "logs": [{"container": w, "text": t} for w, t in self.logs],
        }


@dataclass
class RolloutOutcome:
    ok: bool
    message: str
    timed_out: bool = False
    report: FailureReport = field(default_factory=FailureReport)
    # Set by rollouts that undo themselves on failure (ReplicationControllers).
    rolled_back: bool = False


def deployment_verdict(dep: dict[str, Any]) -> Verdict:
    """kubectl rollout status's rules for an apps/v1 Deployment."""
    spec = dep.get("spec", {})
    status = dep.get("status", {})
    meta = dep.get("metadata", {})
    if meta.get("generation", 0) > status.get("observedGeneration", 0):
        return Verdict("waiting", "waiting for the deployment spec update to be observed")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Verdict("failed", f"progress deadline exceeded: {cond.get('message', '')}")
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    replicas = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < want:
        return Verdict("waiting", f"{updated} of {want} new replicas updated")
    if replicas > updated:
        return Verdict("waiting", f"{replicas - updated} old replicas pending termination")
    if available < updated:
        return Verdict("waiting", f"{available} of {updated} updated replicas available")
    return Verdict("done", f"{available} of {want} replicas available")


def deployment_status(
    dep: dict[str, Any], newest_rs: dict[str, Any] | None, rs_known: bool = True
) -> RolloutStatus:
    """How far a Deployment's live revision got, from the Deployment and its newest ReplicaSet.

    RS_KNOWN False (a listing without ReplicaSets) leaves the marks unknown: taken as present.
    """
    verdict = deployment_verdict(dep)
    marks = _marks(newest_rs)
    rolled_out = ANN_ROLLED_OUT in marks or not rs_known
    failed_note = marks.get(ANN_ROLLOUT_FAILED)
    if verdict.state == "failed":
        return RolloutStatus("failed", verdict.message, rolled_out)
    if verdict.state == "waiting":
        if failed_note:
            return RolloutStatus("failed", f"{failed_note} (now {verdict.message})", rolled_out)
        return RolloutStatus("progressing", verdict.message, rolled_out)
    return RolloutStatus("done", verdict.message, rolled_out)


def controllers_status(
    rcs: list[dict[str, Any]], revision_of: Callable[[dict[str, Any]], int], want: int
) -> RolloutStatus:
    """How far a client-side ReplicationController rollout got; RCS oldest revision first.

    Done means the newest controller holds every desired replica and no older one holds any.
    Its readiness was checked before pysteps marked it rolled out; without that mark the
    status field (which lags) must show every replica ready.
    """
    live = rcs[-1]
    marks = _marks(live)
    rolled_out = ANN_ROLLED_OUT in marks
    revision = revision_of(live)
    have = int(live["spec"].get("replicas", 0))
    ready = int(live.get("status", {}).get("readyReplicas", 0) or 0)
    old = sum(int(rc["spec"].get("replicas", 0)) for rc in rcs[:-1])
    if have == want and old == 0 and (rolled_out or ready >= want):
        return RolloutStatus(
            "done", f"{want} of {want} replicas on revision {revision}", rolled_out
        )
    message = (
        f"revision {revision} has {have} of {want} replicas ({ready} ready), "
        f"older revisions still have {old}"
    )
    failed_note = marks.get(ANN_ROLLOUT_FAILED)
    if failed_note:
        return RolloutStatus("failed", f"{failed_note} (now {message})", rolled_out)
    return RolloutStatus("progressing", message, rolled_out)


def _marks(obj: dict[str, Any] | None) -> dict[str, str]:
    if obj is None:
        return {}
    return dict(obj.get("metadata", {}).get("annotations") or {})


def pod_problems(pods: Iterable[dict[str, Any]]) -> list[PodProblem]:
    """Containers of PODS that are stuck in a state waiting cannot cure."""
    problems = []
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status", {})
        for cs in (status.get("initContainerStatuses") or []) + (
            status.get("containerStatuses") or []
        ):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason", "")
            if reason in DOOMED_REASONS:
                problems.append(
                    PodProblem(
                        name,
                        cs.get("name", "?"),
                        reason,
                        str(waiting.get("message", ""))[:300],
                        int(cs.get("restartCount", 0)),
                    )
                )
        if status.get("phase") == "Failed":
            problems.append(
                PodProblem(name, "-", status.get("reason", "Failed"), status.get("message", ""), 0)
            )
    return problems


def pod_ready(pod: dict[str, Any]) -> bool:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def newest_replicaset(kube: KubeApi, dep: dict[str, Any]) -> dict[str, Any] | None:
    """The ReplicaSet of the deployment's current revision."""
    revision = dep["metadata"].get("annotations", {}).get(REVISION_ANNOTATION)
    for rs in owned_replicasets(kube, dep):
        if rs["metadata"].get("annotations", {}).get(REVISION_ANNOTATION) == revision:
            return rs
    return None


def owned_replicasets(kube: KubeApi, dep: dict[str, Any]) -> list[dict[str, Any]]:
    """The deployment's ReplicaSets, oldest revision first."""
    ns = dep["metadata"]["namespace"]
    selector = dep["spec"]["selector"]["matchLabels"]
    owned = [rs for rs in kube.list("ReplicaSet", ns, selector) if _owned_by(rs, dep)]
    return sorted(owned, key=rs_revision)


def rs_revision(rs: dict[str, Any]) -> int:
    try:
        return int(rs["metadata"].get("annotations", {}).get(REVISION_ANNOTATION, "0"))
    except ValueError:
        return 0


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = owner["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def collect_report(
    kube: KubeApi, namespace: str, pods: list[dict[str, Any]], related: Iterable[str] = ()
) -> FailureReport:
    """Reasons, recent events and last log lines of the failing PODS (best effort)."""
    problems = pod_problems(pods)
    names = {p["metadata"]["name"] for p in pods} | set(related)
    events = []
    try:
        for ev in kube.list("Event", namespace):
            obj = ev.get("involvedObject", {})
            # Warnings about the pods, and every event about the workload itself; not the
            # Service's endpoint bookkeeping, which says nothing about why a rollout failed.
            if obj.get("kind") not in _WORKLOAD_KINDS or obj.get("name") not in names:
                continue
            if ev.get("type") == "Warning" or obj.get("kind") != "Pod":
                events.append(ev)
    except Exception as exc:  # a report must never hide the failure it reports
        events = []
        problems.append(PodProblem("-", "-", "EventsUnavailable", str(exc), 0))
    events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    event_lines = tuple(_event_line(e) for e in events[-10:])
    logs = []
    for problem in problems[:3]:
        if problem.container == "-":
            continue
        text = kube.pod_logs(
            namespace, problem.pod, problem.container, 20, previous=problem.restarts > 0
        )
        logs.append((f"{problem.pod}/{problem.container}", text.strip()))
    if not problems:
        # Nothing doomed, yet not ready in time: say which pods are not ready.
        for pod in pods:
            if not pod_ready(pod):
                st = pod.get("status", {})
                problems.append(
                    PodProblem(
                        pod["metadata"]["name"], "-", "NotReady", st.get("phase", "Unknown"), 0
                    )
                )
    return FailureReport(tuple(problems), event_lines, tuple(logs))


def _event_line(ev: dict[str, Any]) -> str:
    obj = ev.get("involvedObject", {})
    what = f"{obj.get('kind', '?')}/{obj.get('name', '?')}"
    return f"{what} {ev.get('reason', '')}: {ev.get('message', '').strip()} (x{ev.get('count', 1)})"


def wait_for_deployment(
    kube: KubeApi,
    namespace: str,
    name: str,
    timeout: float,
    log: Log,
    poll: float = 1.0,
) -> RolloutOutcome:
    """Wait until the deployment is really done, fails, or TIMEOUT passes."""
    deadline = time.monotonic() + timeout
    schedule = PollSchedule(poll)
    last = ""
    while True:
        dep = kube.get("Deployment", namespace, name)
        if dep is None:
            return RolloutOutcome(False, f"Deployment {namespace}/{name} disappeared")
        verdict = deployment_verdict(dep)
        if verdict.state == "done":
            return RolloutOutcome(True, verdict.message)
        # Until the controller has observed the new spec, the revision annotation still names
        # the previous ReplicaSet: judging its pods would blame the wrong revision.
        observed = dep["metadata"].get("generation", 0) <= dep.get("status", {}).get(
            "observedGeneration", 0
        )
        new_pods = _new_deployment_pods(kube, dep) if observed else []
        problems = pod_problems(new_pods)
        if problems or verdict.state == "failed":
            message = verdict.message if verdict.state == "failed" else problems[0].line()
            report = collect_report(kube, namespace, new_pods, related=[name])
            return RolloutOutcome(False, message, report=report)
        if verdict.message != last:
            log(f"  {name}: {verdict.message}")
            last = verdict.message
        if time.monotonic() >= deadline:
            report = collect_report(kube, namespace, new_pods, related=[name])
            return RolloutOutcome(
                False, f"timed out after {timeout:.0f}s: {verdict.message}", True, report
            )
        schedule.sleep()


def _new_deployment_pods(kube: KubeApi, dep: dict[str, Any]) -> list[dict[str, Any]]:
    rs = newest_replicaset(kube, dep)
    if rs is None:
        return []
    pod_hash = rs["metadata"].get("labels", {}).get("pod-template-hash")
    ns = dep["metadata"]["namespace"]
    selector = dict(dep["spec"]["selector"]["matchLabels"])
    if pod_hash:
        selector["pod-template-hash"] = pod_hash
    return kube.list("Pod", ns, selector)


def wait_for_pods_ready(
    kube: KubeApi,
    namespace: str,
    selector: dict[str, str],
    want: int,
    deadline: float,
    log: Log,
    poll: float = 1.0,
) -> RolloutOutcome:
    """ReplicationController steps: wait until WANT pods of SELECTOR are ready, or fail fast."""
    schedule = PollSchedule(poll)
    last = ""
    while True:
        pods = [
            p
            for p in kube.list("Pod", namespace, selector)
            if not p["metadata"].get("deletionTimestamp")
        ]
        ready = sum(1 for p in pods if pod_ready(p))
        if ready >= want:
            return RolloutOutcome(True, f"{ready} of {want} pods ready")
        problems = pod_problems(pods)
        if problems:
            return RolloutOutcome(
                False, problems[0].line(), report=collect_report(kube, namespace, pods)
            )
        message = f"{ready} of {want} pods ready"
        if message != last:
            log(f"  {message}")
            last = message
        if time.monotonic() >= deadline:
            return RolloutOutcome(
                False,
                f"timed out: {message}",
                True,
                collect_report(kube, namespace, pods),
            )
        schedule.sleep()
