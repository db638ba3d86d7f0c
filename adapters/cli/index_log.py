"""The Merkle index caught up in a process of its own while this one rebuilds the views.

`eportfolio projections rebuild` reads and decodes the log for the views; the index needs
each event decoded too (its leaf binds the recorded time). With a core idle, a child
interpreter (`python -m adapters.cli.index_log`, configured through the environment as
the CLI is) catches the index up with its own read, so the view rebuild does not pay for
it; otherwise the index is fed the view rebuild's pages (`MerkleIndex.extend`). Either
way the leaves are the ones `MerkleIndex.catch_up` makes: the child runs exactly that, and
if it fails the caller catches up in process.
"""

from __future__ import annotations

import os
import subprocess
import sys

from adapters.audit.merkle_index import MerkleIndex, open_merkle_index
from adapters.bootstrap import build
from adapters.config import Config
from adapters.cores import spare_core
from service.ledger import Ledger


def child_env(config: Config) -> dict[str, str] | None:
    """The environment that configures the child as `config` is, or None if none can (a log
    in memory, or a KEK given as a value but not in this environment)."""
    if config.log_in_memory:
        return None
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "EPORTFOLIO_DATA_DIR": str(config.data_dir.absolute()),
        "EPORTFOLIO_KEK_FILE": str(config.kek_path),
    }
    if config.kek is not None and "EPORTFOLIO_KEK" not in os.environ:
        return None
    if config.database_url is not None:
        env["EPORTFOLIO_DATABASE_URL"] = config.database_url
    else:
        env.pop("EPORTFOLIO_DATABASE_URL", None)
    return env


class IndexElsewhere:
    """The child catching the index up; `wait()` says whether it did."""

    def __init__(self, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", __name__]
        self._child = subprocess.Popen(  # noqa: S603 - this interpreter, this module
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )

    @classmethod
    def start(cls, config: Config, *, force: bool = False) -> IndexElsewhere | None:
        """The child, if a core is idle for it (or `force`) and it can be configured."""
        env = child_env(config)
        if env is None or not (force or spare_core()):
            return None
        try:
            return cls(env)
        except OSError:  # no process to be had: index here
            return None

    def wait(self) -> bool:
        return self._child.wait() == 0


class Indexing:
    """Catching the index up during a view rebuild: in a child if a core is idle, else from
    the rebuild's own read (`alongside`); `done()` makes sure it is caught up."""

    def __init__(self, config: Config, index: MerkleIndex, ledger: Ledger) -> None:
        self.index = index
        self.ledger = ledger
        behind = index.head().position < (ledger.recorder.max_notification_id() or 0)
        self.elsewhere = IndexElsewhere.start(config) if behind else None
        self.alongside = index.extend if self.elsewhere is None else None

    def done(self) -> None:
        if self.elsewhere is None or not self.elsewhere.wait():
            self.index.catch_up(self.ledger)  # what the pages missed, or all if the child failed


def main() -> None:
    config = Config.from_env()
    app = build(config)
    try:
        with open_merkle_index(config) as index:
            index.catch_up(app.ledger)
    finally:
        app.ledger.close()


if __name__ == "__main__":
    main()
