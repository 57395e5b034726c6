"""scripts/build-deb's half for a release other than the host's:
``build_in_container.py RELEASE WORKDIR`` builds WORKDIR/ragops in RELEASE's build root
(tests/e2e/buildroot.py); the .debs and build.log land in WORKDIR."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.buildroot import build_in_container
from tests.e2e.container import ContainerError


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: build_in_container.py RELEASE WORKDIR", file=sys.stderr)
        return 2
    try:
        build_in_container(argv[0], Path(argv[1]))
    except ContainerError as err:
        print(f"build_in_container: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
