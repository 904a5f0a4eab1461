"""The mutation check of the contract suite (issue 11, class 10).

The ``SessionStore`` contract is what users run against their own stores, so it must
fail a broken one. Each mutant of ``contract_mutants.py`` is a real store wrapped to
break one promise of the port; the whole contract (``mutant_contract.py``) runs against
it in a pytest session of its own, and the mutant is *killed* when a test fails. The
check reports the kill ratio and requires it to be 100 %: every mutant here breaks a
promise the port makes. The unbroken wrapper runs as the control and must pass, so a
kill is the mutation's doing.

``make test`` runs a quick form (a handful of mutants on ``memory://``, the control run
on the tests that killed them); the full form, every mutant on ``memory://`` and SQLite
with the control run on the whole contract, is marked ``slow`` (``make
test-reliability``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from contract_mutants import MUTANTS, DelegatingStore

from agent_sessions import SessionStore, open_store

CONTRACT = Path(__file__).with_name("mutant_contract.py")
CLASS = "TestContractOfWrappedStore"

#: The quick form: one mutant per kind of promise (a number, a scope, atomicity, input
#: validation, isolation), each killed within the first few dozen tests.
QUICK = ["latest_is_count", "foreign_run_events", "flaky_flush", "zero_limit_is_empty"]
QUICK += ["event_id_reuse_leaks", "stale_saves_overwrite"]


@dataclass(frozen=True)
class Verdict:
    name: str
    breaks: str
    exit_code: int
    failed: tuple[str, ...]

    @property
    def killed(self) -> bool:
        return self.exit_code == pytest.ExitCode.TESTS_FAILED

    def line(self) -> str:
        outcome = "killed  " if self.killed else "SURVIVED"
        by = f" (by {self.failed[0]})" if self.failed else ""
        return f"  {outcome} {self.name}: {self.breaks}{by}"


class _Harness:
    """Plugin of the inner session: opens each test's store inside the wrapper, and
    notes which tests failed."""

    def __init__(self, wrapper: type[DelegatingStore], url: Callable[[], str]) -> None:
        self.wrapper = wrapper
        self.url = url
        self.failed: list[str] = []

    @pytest.fixture
    def wrapped_store(self) -> Iterator[SessionStore]:
        with self.wrapper(open_store(self.url())) as store:
            yield store

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.append(report.nodeid.rpartition("::")[2])


def _urls(backend: str, workdir: Path) -> Callable[[], str]:
    """A fresh, empty store per test."""
    if backend == "memory":
        return lambda: "memory://"
    numbers = itertools.count()
    return lambda: f"sqlite:///{workdir}/store-{next(numbers)}.db"


def run_contract(
    name: str,
    wrapper: type[DelegatingStore],
    backend: str,
    tmp: Path,
    *,
    only: Sequence[str] = (),
) -> Verdict:
    """The contract against ``wrapper`` around fresh ``backend`` stores, stopping at the
    first failure (one is a kill); only the tests named in ``only`` when given."""
    workdir = tmp / name
    workdir.mkdir()
    harness = _Harness(wrapper, _urls(backend, workdir))
    tests = [f"{CONTRACT}::{CLASS}::{test}" for test in only] or [str(CONTRACT)]
    exit_code = pytest.main(
        [
            *tests,
            "-x",
            "-q",
            "--no-header",
            "--noconftest",
            f"--basetemp={workdir / 'basetemp'}",
            "-p",
            "no:cacheprovider",
            # Timers of the inner session would cancel this test's own timeout.
            "-o",
            "timeout=0",
            "-p",
            "no:faulthandler",
        ],
        plugins=[harness],
    )
    return Verdict(name, wrapper.breaks, int(exit_code), tuple(harness.failed))


def check_kills(
    backend: str,
    names: list[str],
    tmp: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    whole_control: bool = True,
) -> None:
    """Every mutant in ``names`` killed, and the unbroken wrapper (the control) passing
    the whole contract, or with ``whole_control=False`` the tests that did the killing:
    enough to show each kill is the mutation's doing."""
    verdicts = [run_contract(name, MUTANTS[name], backend, tmp) for name in names]
    killers = sorted({test for verdict in verdicts for test in verdict.failed})
    if whole_control or killers:
        only = () if whole_control else killers
        control = run_contract("control", DelegatingStore, backend, tmp, only=only)
        assert control.exit_code == pytest.ExitCode.OK, (
            f"the unbroken wrapper fails the contract on {backend}: {control.failed}"
        )
    for verdict in verdicts:
        assert verdict.exit_code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), (
            f"the contract session for {verdict.name} ended with exit code {verdict.exit_code}"
        )
    killed = sum(verdict.killed for verdict in verdicts)
    report = "\n".join(
        [
            f"contract mutation check on {backend}: {killed}/{len(verdicts)} mutants killed "
            f"({killed / len(verdicts):.0%})",
            *(verdict.line() for verdict in verdicts),
        ]
    )
    with capsys.disabled():
        print("\n" + report)
    assert killed == len(verdicts), report


def test_contract_kills_quick_mutants(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_kills("memory", QUICK, tmp_path, capsys, whole_control=False)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_contract_kills_every_mutant(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_kills(backend, sorted(MUTANTS), tmp_path, capsys)
