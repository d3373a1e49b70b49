"""Run the pysteps CLI with the argument list in a JSON file (written by the pystepsCli step).

The Jenkins step never builds a shell command from values: `sh` runs constant text, and this
file hands the list to pysteps.cli.main as data. Standard error is also copied to
`stderr.log` beside the arguments, so the step can quote the CLI's one-line error even for
commands that write no result file.
"""

import json
import sys
from pathlib import Path


class _Tee:
    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, text):
        self.log.write(text)
        self.log.flush()
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def main():
    args_file = Path(sys.argv[1])
    args = json.loads(args_file.read_text())
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        print("run-cli: the argument file must hold a JSON list of strings", file=sys.stderr)
        return 2
    with open(args_file.with_name("stderr.log"), "w") as log:
        sys.stderr = _Tee(sys.__stderr__, log)
        from pysteps.cli import main as pysteps_main

        sys.argv = ["pysteps", *args]
        try:
            return pysteps_main(args)
        except SystemExit as exc:  # argparse reports bad flags by exiting
            return exc.code if isinstance(exc.code, int) else 2


if __name__ == "__main__":
    sys.exit(main())
