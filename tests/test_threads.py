"""The OpenMP wait policy is set before torch is imported, and a user's choice is kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from transfigure.threads import WAIT_POLICY_VARIABLES, set_openmp_wait_policy


def test_sets_the_passive_policy_when_the_user_chose_none():
    env: dict[str, str] = {"PATH": "/bin"}
    in_force = set_openmp_wait_policy(env)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert in_force is ("torch" not in sys.modules)  # too late for this process if imported


@pytest.mark.parametrize("name", WAIT_POLICY_VARIABLES)
def test_a_users_choice_is_left_alone(name):
    env = {name: "ACTIVE" if name == "OMP_WAIT_POLICY" else "1000"}
    assert set_openmp_wait_policy(env) is True
    assert env == {name: env[name]}  # nothing added


def test_the_command_line_sets_it_before_torch_is_imported():
    code = (
        "import os, sys\n"
        "import transfigure.cli\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in WAIT_POLICY_VARIABLES}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.split() == ["PASSIVE", "False"]
