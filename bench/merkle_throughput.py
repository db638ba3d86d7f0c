"""Leaf hashing, tree building, export and offline verification, in events/s.

Folded into the suite as figure 6 (`python -m bench`, see bench/README.md); this runs that
figure alone with its breakdown: `uv run python -m bench.merkle_throughput [N]`.
"""

from __future__ import annotations

from bench.verification import main

if __name__ == "__main__":
    main()
