"""Static checks of the Jenkins library (vars/): every step has its help page, and every `sh`
runs a constant from a single-quoted @Field, so no caller value can become shell text."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

VARS = sorted((REPO / "vars").glob("*.groovy"))
_SH_CALL = re.compile(r"\bsh\s*\(([^)]*)\)")
_SCRIPT_ARG = re.compile(r"script:\s*([^,]+?)\s*(?:,|$)")
_CONSTANT = re.compile(r"^static final String ([A-Z_]+) = '([^'\\]*)'$", re.MULTILINE)


def test_the_library_has_its_steps():
    names = {p.stem for p in VARS}
    assert {
        "deployApp",
        "buildImage",
        "promoteApp",
        "rollbackApp",
        "smokeTest",
        "canaryApp",
        "promoteCanary",
        "abortCanary",
    } <= names


@pytest.mark.parametrize("step", VARS, ids=lambda p: p.stem)
def test_every_step_has_a_help_page(step):
    help_page = step.with_suffix(".txt")
    assert help_page.exists(), f"vars/{step.stem}.txt is missing"
    assert f"<b>{step.stem}</b>" in help_page.read_text()


@pytest.mark.parametrize("step", VARS, ids=lambda p: p.stem)
def test_every_shell_script_is_a_constant(step):
    text = step.read_text()
    constants = dict(_CONSTANT.findall(text))
    for call in _SH_CALL.findall(text):
        match = _SCRIPT_ARG.search(call)
        assert match, f"{step.name}: sh({call}) without script:"
        names = re.findall(r"[A-Za-z_]+", match.group(1).split("?")[-1]) + (
            re.findall(r"[A-Z_]{3,}", match.group(1))
        )
        used = {n for n in names if n.isupper()}
        assert used, f"{step.name}: sh({call}) runs something that is not a constant"
        assert used <= constants.keys(), f"{step.name}: {used - constants.keys()} not constants"
        for name in used:
            assert "${" not in constants[name], f"{step.name}: {name} interpolates"
