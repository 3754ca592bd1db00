"""Refuse to run on a faust-streaming or aiokafka release other than the pinned ones.

The overrides in this package (and the bulk store in tables/store.py) read private names of
exactly these releases. A different release may have renamed or re-purposed them, which
would not fail loudly but count wrongly; so the worker refuses to start instead.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}


def version_problem(pinned: dict[str, str] = PINNED) -> str | None:
    """One line naming the first installed release that differs from its pin, or None."""
    for package, wanted in pinned.items():
        try:
            found = version(package)
        except PackageNotFoundError:
            found = "none"
        if found != wanted:
            return (f"orderstats needs {package}=={wanted} (its private names are used by "
                    f"app/faust_ext), found {found}; reinstall with scripts/bootstrap")
    return None


def check_versions() -> None:
    """Exit with one clear line when an installed release is not the pinned one."""
    problem = version_problem()
    if problem:
        raise SystemExit(f"error: {problem}")
