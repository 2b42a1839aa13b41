"""Build the cached base collections and prepared rigs ahead of the runs.

``python -m bench.prepare 384:10000,35000,70000 1536:35000,70000``
"""

from __future__ import annotations

import sys

from bench._common import ensure_bases, ensure_rig, quiet


def main(argv: list[str]) -> None:
    """Build every ``dim:size,size`` named on the command line."""
    quiet()
    for spec in argv:
        dim_text, _, sizes_text = spec.partition(":")
        dim = int(dim_text)
        sizes = [int(s) for s in sizes_text.split(",")]
        ensure_bases(sizes, dim)
        for size in sizes:
            ensure_rig(size, dim)


if __name__ == "__main__":
    main(sys.argv[1:])
