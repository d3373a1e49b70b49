"""`pysteps --help` against a bare `python -c pass`: imports must stay lazy (target <= 4)."""

from __future__ import annotations

import sys

from benchlib import best_of, report, run


def main() -> None:
    reference = best_of(lambda: run([sys.executable, "-c", "pass"]), 15)
    ours = best_of(lambda: run([sys.executable, "-m", "pysteps", "--help"]), 15)
    report("pysteps --help vs python -c pass", ours, reference, "<= 4")


if __name__ == "__main__":
    main()
