"""The one reader of the test bed's env file (tests, benches and the demo share it)."""

from __future__ import annotations

from pysteps import testbed_env


def test_export_lines_with_shell_quoting(tmp_path, monkeypatch):
    env = tmp_path / "env"
    env.write_text("# made by testbed.sh\nexport A=1\nexport B='two words'\n\nC=\"x y\"\nD=\n")
    assert testbed_env.read_testbed_env(env) == {"A": "1", "B": "two words", "C": "x y", "D": ""}
    monkeypatch.setenv("TESTBED_DIR", str(tmp_path))
    assert testbed_env.testbed_env_path() == env
    assert testbed_env.read_testbed_env()["B"] == "two words"
