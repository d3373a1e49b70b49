"""One error hierarchy, mapped to exit codes in one place (pysteps.cli)."""

from __future__ import annotations


class PystepsError(Exception):
    """Base of every error pysteps reports to the user; the message is one line."""

    exit_code = 1


class InputError(PystepsError):
    """Bad input: a spec field, a flag or an environment value. Nothing was changed."""

    exit_code = 2


class PreconditionError(PystepsError):
    """The world is not as the command needs it (lock held, object missing, ...)."""

    exit_code = 3


class ServiceError(PystepsError):
    """An outside system (cluster, registry, storage, etcd, mail) failed or is unreachable."""

    exit_code = 4


class RolloutFailed(PystepsError):
    """The rollout failed; it was rolled back unless rollback was disabled."""

    exit_code = 1


class RolloutTimeout(PystepsError):
    """The rollout did not finish within its deadline."""

    exit_code = 70


class Interrupted(PystepsError):
    """Stopped by SIGTERM (an aborted Jenkins build) or Ctrl-C; a rerun continues safely."""

    exit_code = 130


class InternalError(PystepsError):
    """An unexpected exception: a bug in pysteps. The traceback is printed with -v."""

    exit_code = 99


def as_pysteps_error(exc: BaseException) -> PystepsError:
    """EXC as the error pysteps reports: its own errors as they are, the rest by kind."""
    if isinstance(exc, PystepsError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted("interrupted (SIGTERM or Ctrl-C); rerun the command to continue")
    return InternalError(
        f"unexpected {type(exc).__name__}: {exc}; nothing more is known: rerun with -v for the "
        "traceback and report it"
    )
