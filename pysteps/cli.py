"""The `pysteps` command line. Subcommands live in pysteps.commands and are imported lazily,
so `pysteps --help` stays instant. Errors map to exit codes in one place, here.

Exit codes:
  0   ok (or nothing to do)
  1   the rollout failed (and was rolled back unless --no-rollback)
  2   bad input: a spec field, a flag, a file
  3   a precondition failed: lock held, app missing, permission refused
  4   an outside system failed or is unreachable (cluster, registry, storage, etcd, mail)
  70  the rollout timed out (and was rolled back unless --no-rollback)
  99  an unexpected error: a bug in pysteps (the traceback with -v); the result file is
      still written, with exit_code 99
  130 interrupted (SIGTERM from an aborted build, or Ctrl-C); a rerun continues safely
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback
from collections.abc import Sequence

COMMANDS = {
    "deploy": "observe, plan and apply a release of an app (image or code mode)",
    "create": "deploy an app that must not exist yet",
    "list": "list every app pysteps manages, one request per kind",
    "status": "show one app: workload, pods, service, route",
    "rollback": "put an app's previous (or a given) revision back",
    "destroy": "remove everything an app owns",
    "schema": "print the JSON Schema of deploy.yaml",
    "routes": "the apps' routes in etcd: list, show, remove, sync with the cluster",
    "canary": "an app's canary (deploy --canary WEIGHT): status, weight, promote, abort",
    "history": "list every deploy attempt of an app, failed ones included",
    "dns": "render or apply the cluster DNS config (CoreDNS Corefile or kube-dns ConfigMap)",
    "build": "build and push the app's image for a commit, without deploying (for promotion)",
    "jobs": "check the app catalog the Jenkins seed job reads (jobs validate [FILE])",
    "jenkins": "ops on Jenkins: failed builds, rerun a failed stage, trigger a job",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pysteps",
        description="Ship apps to Kubernetes: observe, plan, apply.",
        epilog="Exit codes: 0 ok, 1 rollout failed, 2 bad input, 3 precondition failed, "
        "4 outside system failed, 70 rollout timed out, 99 internal error, 130 interrupted.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="details and tracebacks")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Only the global part is parsed here; each command parses its own flags.
    split = next((i for i, a in enumerate(args) if a in COMMANDS), len(args))
    head, rest = args[:split], args[split:]
    opts = parser.parse_args(head)
    if opts.version:
        from pysteps import __version__

        print(f"pysteps {__version__}")
        return 0
    if not rest:
        parser.print_help()
        return 0 if not head else 2
    command = rest[0]
    # Jenkins stops an aborted build with SIGTERM: unwind like Ctrl-C, so the deploy lock is
    # released and the result file is written instead of both being left behind.
    signal.signal(signal.SIGTERM, _interrupt)
    module = importlib.import_module(f"pysteps.commands.{command}")
    from pysteps.errors import as_pysteps_error

    # The one place where every error becomes an exit code and one masked line; commands
    # that write a result file map errors the same way (as_pysteps_error) before re-raising.
    try:
        return int(module.run(rest[1:], verbose=opts.verbose))
    except (Exception, KeyboardInterrupt) as exc:
        error = as_pysteps_error(exc)
        from pysteps.masking import mask

        if opts.verbose or "-v" in rest or "--verbose" in rest:
            print(mask(traceback.format_exc()), file=sys.stderr, end="")
        print(f"pysteps {command}: {mask(str(error))}", file=sys.stderr)
        return error.exit_code
