"""How torch's CPU threads wait between parallel regions: decided before torch is imported.

PyTorch runs its CPU work on an OpenMP thread team (GNU libgomp in the Linux wheels, LLVM's
libomp on macOS). By default a thread that has finished its share of a parallel region *spins*
for a while (libgomp: up to 300,000 polls) before it sleeps, hoping the next region starts
soon. On an idle machine that saves a wake-up. When another program keeps one core busy, it
is a disaster: the scheduler gives a thread's core to that program for a time slice, and the
other threads burn their own cores spinning at every barrier, waiting for it. A training step
of small networks runs thousands of small parallel regions, so each waits for a time slice.
Measured on two cores (a ResNet generator + PatchGAN discriminator step, width 16, 64 px,
batch 4): 0.24 s idle, 1.96 s beside one busy loop (8×, where sharing a core should cost at
most 2×); with three other processes running, one step took 42 s.

``OMP_WAIT_POLICY=PASSIVE`` makes waiting threads sleep at once (a futex wake-up costs
microseconds): the same step took 0.17 s idle and 0.24 s beside the busy loop
(``GOMP_SPINCOUNT=0`` the same; one thread instead of two: 0.27 s idle, 0.46 s busy).
``benchmarks/threads.py`` repeats the measurement on a full CycleGAN step.
The OpenMP runtime reads it once, when it is loaded, i.e. at ``import torch``, so it must be in
the environment before that: the command line calls :func:`set_openmp_wait_policy` while it
is imported, and library users who want the same can call it before importing torch (or set
the variable themselves). A wait policy the user set (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``,
``KMP_BLOCKTIME``) is left alone.

This module must not import torch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

__all__ = ["WAIT_POLICY_VARIABLES", "set_openmp_wait_policy"]

#: Variables by which a user chooses how OpenMP threads wait (libgomp, LLVM libomp / Intel).
WAIT_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def set_openmp_wait_policy(environ: MutableMapping[str, str] | None = None) -> bool:
    """Let idle OpenMP threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``).

    Args:
        environ: the environment to change (default ``os.environ``).

    Returns:
        True if the policy is in force for torch in this process: set now (or by the user)
        before torch was imported. False if torch was already imported with the default
        spinning policy (then only child processes get the setting).
    """
    env = os.environ if environ is None else environ
    user_chose = any(name in env for name in WAIT_POLICY_VARIABLES)
    if not user_chose:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return user_chose or "torch" not in sys.modules
