"""Write ``constraints.txt``: the exact versions of cascade-lab's dependency closure in this venv.

    python .ci/constraints.py > constraints.txt

Walks the requirements of the installed ``cascade-lab[dev]`` (markers evaluated for this
interpreter) through ``importlib.metadata`` and prints ``name==version`` for every package
reached, so ``pip install -c constraints.txt -e '.[dev]'`` rebuilds the same environment.
Run it after upgrading a dependency on purpose, and commit the result.
"""

from __future__ import annotations

import importlib.metadata as md
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def closure(root: str, extras: tuple[str, ...]) -> dict[str, str]:
    """Canonical name → installed version of every package ``root[extras]`` needs."""
    seen: dict[str, str] = {}
    visited: set[tuple[str, tuple[str, ...]]] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        if (canonicalize_name(name), wanted) in visited:
            continue
        visited.add((canonicalize_name(name), wanted))
        dist = md.distribution(name)
        key = canonicalize_name(dist.metadata["Name"])
        seen[key] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((req.name, tuple(sorted(req.extras))))
    return seen


def main() -> None:
    """Print the constraints of ``cascade-lab[dev]``."""
    pins = closure("cascade-lab", ("dev",))
    pins.pop("cascade-lab", None)
    print("# cascade-lab[dev] dependency closure; regenerate: python .ci/constraints.py")
    print(f"# python {sys.version_info.major}.{sys.version_info.minor}")
    for name in sorted(pins):
        print(f"{name}=={pins[name]}")


if __name__ == "__main__":
    main()
