"""Export bundles and the offline verifier: every tampering is caught and named.

The bundles are real: a centre assessed through the service on a SQLite store, with
checkpoints issued at an EV sample and on demand, exported whole, for one portfolio and
for the centre. Each test mutates a copy as an attacker without the key would.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import msgspec
import psycopg
import pytest
from psycopg import sql

from adapters import cores
from adapters.audit import bundle as b
from adapters.audit import bundle_io, verify_split, verify_tree
from adapters.audit import verify as verify_module
from adapters.audit.bundle_io import ZipIn
from adapters.audit.export import export_bundle
from adapters.audit.findings import Report
from adapters.audit.signing import SigningKey
from adapters.audit.verify import verify_bundle, verify_bundle_reporting
from adapters.audit.verify_store import verify_store
from adapters.cli.main import main
from adapters.config import Config
from service.checkpoints import Reason, checkpoint_text, checkpoints
from tests.audit_helpers import KEY, Audited
from tests.conftest import POSTGRES_URL, with_kek

Files = dict[str, bytes]
KINDS = ("full", "portfolio", "centre")


class Exports(NamedTuple):
    bundles: dict[str, bytes]
    early_note: str  # the first checkpoint, as an EV would have kept it
    portfolio: UUID
    reexported: bytes


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Exports:
    centre = Audited(with_kek(Config(data_dir=tmp_path_factory.mktemp("audit"))))
    try:
        centre.assess(portfolios=2)
        portfolio = centre.portfolios[0]
        centre.ev_sample(portfolio, centre.decisions[0])  # checkpoint 1
        centre.assess(portfolios=1)
        centre.world.submit(portfolio)
        centre.checkpointer.issue(Reason.ON_DEMAND)  # checkpoint 2
        ledger, index = centre.ledger, centre.index
        bundles = {
            "full": export_bundle(ledger, index, KEY).data,
            "portfolio": export_bundle(ledger, index, KEY, portfolio=portfolio).data,
            "centre": export_bundle(ledger, index, KEY, centre=centre.world.centre_id).data,
        }
        again = export_bundle(ledger, index, KEY).data
        early = checkpoints(ledger)[0].signed_note
    finally:
        centre.close()
    return Exports(bundles, early, portfolio, again)


def files_of(exports: Exports, kind: str) -> Files:
    return b.read_zip(exports.bundles[kind])


def verify(files: Files, **trust: str) -> Report:
    return verify_bundle(b.write_zip(files), **trust)


def load(files: Files, name: str) -> Any:
    return json.loads(files[name])


def save(files: Files, name: str, value: Any) -> None:
    files[name] = json.dumps(value, indent=1).encode()


def named(report: Report, *, position: int | None = None, stream: str | None = None) -> bool:
    assert not report.verified
    return any(
        (position is None or p.position == position) and (stream is None or str(p.stream) == stream)
        for p in report.problems
    )


def without(files: Files, keep: Callable[[dict[str, Any]], bool]) -> Files:
    """The bundle less the rows (and their proofs) that `keep` rejects."""
    changed = dict(files)
    rows = load(files, b.STORED)
    gone = {row["position"] for row in rows if not keep(row)}
    save(changed, b.STORED, [r for r in rows if r["position"] not in gone])
    save(changed, b.DECODED, [r for r in load(files, b.DECODED) if r["position"] not in gone])
    proofs = load(files, b.PROOFS)
    proofs["inclusion"] = [p for p in proofs["inclusion"] if p["position"] not in gone]
    save(changed, b.PROOFS, proofs)
    return changed


def not_at(position: int) -> Callable[[dict[str, Any]], bool]:
    return lambda row: bool(row["position"] != position)


@pytest.mark.parametrize("kind", KINDS)
def test_the_untouched_export_verifies(exports: Exports, kind: str) -> None:
    report = verify_bundle(exports.bundles[kind])
    assert report.verified, report.lines()
    assert any("signed root" in line or "proven included" in line for line in report.checked)


def test_exporting_the_same_checkpoint_twice_gives_the_same_bytes(exports: Exports) -> None:
    assert exports.reexported == exports.bundles["full"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_flipped_byte_in_any_event_is_named_by_its_position(exports: Exports, kind: str) -> None:
    files = files_of(exports, kind)
    rows = load(files, b.STORED)
    for i, row in enumerate(rows):
        state = bytearray(base64.b64decode(row["state"]))
        state[i % len(state)] ^= 0x01
        changed = dict(files)
        save(
            changed,
            b.STORED,
            [*rows[:i], {**row, "state": base64.b64encode(state).decode()}, *rows[i + 1 :]],
        )
        assert named(verify(changed), position=row["position"]), (kind, row["position"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_deleted_event_is_named_by_its_position(exports: Exports, kind: str) -> None:
    files = files_of(exports, kind)
    rows = load(files, b.STORED)
    for row in rows:
        changed = without(files, not_at(row["position"]))
        if kind != "full":  # the attacker also forgets it was proven
            assert named(verify(changed), stream=row["originator_id"]), row["position"]
        else:
            assert named(verify(changed), position=row["position"]), row["position"]


@pytest.mark.parametrize("kind", KINDS)
def test_two_reordered_events_are_named(exports: Exports, kind: str) -> None:
    files = files_of(exports, kind)
    rows = load(files, b.STORED)
    for i in range(0, len(rows) - 1, 3):
        swapped = [*rows[:i], rows[i + 1], rows[i], *rows[i + 2 :]]
        changed = dict(files)
        save(changed, b.STORED, swapped)
        assert named(verify(changed), position=rows[i]["position"])
        states = [*rows[:i], {**rows[i], "state": rows[i + 1]["state"]}]
        states += [{**rows[i + 1], "state": rows[i]["state"]}, *rows[i + 2 :]]
        save(changed, b.STORED, states)
        report = verify(changed)
        assert named(report, position=rows[i]["position"])
        assert named(report, position=rows[i + 1]["position"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_truncated_portfolio_stream_is_named(exports: Exports, kind: str) -> None:
    files = files_of(exports, kind)
    stream = str(exports.portfolio)
    last = max(
        r["originator_version"] for r in load(files, b.STORED) if r["originator_id"] == stream
    )
    changed = without(
        files, lambda r: r["originator_id"] != stream or r["originator_version"] <= last - 2
    )
    report = verify(changed)
    if kind == "full":
        cut = [r["position"] for r in load(files, b.STORED) if r["originator_id"] == stream]
        assert all(named(report, position=p) for p in cut[-2:])
    else:
        assert named(report, stream=stream)
        assert any("cut off" in p.what for p in report.problems)


@pytest.mark.parametrize("kind", KINDS)
def test_a_forged_checkpoint_is_named(exports: Exports, kind: str) -> None:
    files = files_of(exports, kind)
    entries = load(files, b.CHECKPOINTS)
    origin, size, _ = entries[-1]["note"].split("\n", 3)[:3]
    forged_text = checkpoint_text(origin, int(size), b"\x00" * 32)
    signature = entries[-1]["note"].rsplit("\n\n", 1)[1]
    entries[-1] = {**entries[-1], "root_hash": "00" * 32, "note": forged_text + "\n" + signature}
    save(files, b.CHECKPOINTS, entries)
    report = verify(files)
    assert any(
        "checkpoint 2 of 2" in p.what and "does not verify" in p.what for p in report.problems
    ), report.lines()


@pytest.mark.parametrize("kind", KINDS)
def test_a_checkpoint_signed_by_another_key_is_named(exports: Exports, kind: str) -> None:
    files = files_of(exports, kind)
    entries = load(files, b.CHECKPOINTS)
    mallory = SigningKey.generate(KEY.origin)  # same name, another key
    text = entries[0]["note"].rsplit("\n\n", 1)[0] + "\n"
    entries[0] = {**entries[0], "note": mallory.sign(text)}
    save(files, b.CHECKPOINTS, entries)
    report = verify(files)
    assert any(
        "checkpoint 1 of 2" in p.what and f"signed by {KEY.origin}+{mallory.key_id}" in p.what
        for p in report.problems
    ), report.lines()


@pytest.mark.parametrize("kind", KINDS)
def test_a_swapped_public_key_is_named(exports: Exports, kind: str) -> None:
    files = files_of(exports, kind)
    files[b.PUBLIC_KEY] = SigningKey.generate(KEY.origin).verifier.to_text().encode()
    report = verify(files)
    assert any(
        p.what.startswith(f"{b.PUBLIC_KEY}: no checkpoint verifies") for p in report.problems
    )
    assert any(p.what.startswith(f"{b.MANIFEST}: not signed by") for p in report.problems)


def test_a_bundle_re_signed_by_another_key_fails_against_a_trusted_key_or_checkpoint(
    exports: Exports,
) -> None:
    """Without a trust anchor a forger's own key verifies its own bundle: hence the options."""
    files = files_of(exports, "full")
    mallory = SigningKey.generate(KEY.origin)
    entries = load(files, b.CHECKPOINTS)
    for entry in entries:
        entry["note"] = mallory.sign(entry["note"].rsplit("\n\n", 1)[0] + "\n")
    save(files, b.CHECKPOINTS, entries)
    files[b.PUBLIC_KEY] = (mallory.verifier.to_text() + "\n").encode()
    manifest = b.parse_manifest(files[b.MANIFEST].decode().rsplit("\n\n", 1)[0] + "\n")
    digests = {name: b.sha256_hex(data) for name, data in files.items() if name != b.MANIFEST}
    resealed = msgspec.structs.replace(manifest, files=digests)
    files[b.MANIFEST] = mallory.sign(b.manifest_text(resealed)).encode()
    assert verify(files).verified
    report = verify(files, trusted_key=KEY.verifier.to_text())
    assert any("is not the trusted key" in p.what for p in report.problems)
    report = verify(files, trusted_checkpoint=exports.early_note)
    assert any(p.what.startswith("the trusted checkpoint does not verify") for p in report.problems)


@pytest.mark.parametrize("kind", KINDS)
def test_an_earlier_trusted_checkpoint_is_shown_consistent(exports: Exports, kind: str) -> None:
    report = verify(files_of(exports, kind), trusted_checkpoint=exports.early_note)
    assert report.verified, report.lines()
    assert any("consistent with the trusted checkpoint" in line for line in report.checked)


@pytest.mark.parametrize("kind", KINDS)
def test_a_trusted_checkpoint_of_a_rewritten_log_is_named(exports: Exports, kind: str) -> None:
    origin, size, _ = exports.early_note.split("\n", 3)[:3]
    fork = KEY.sign(checkpoint_text(origin, int(size), b"\x01" * 32))  # same size, other root
    report = verify(files_of(exports, kind), trusted_checkpoint=fork)
    assert any("rewritten" in p.what or "not consistent" in p.what for p in report.problems), (
        report.lines()
    )


def test_a_file_added_to_the_bundle_is_named(exports: Exports) -> None:
    files = files_of(exports, "portfolio")
    files["events/extra.json"] = b"[]"
    report = verify(files)
    assert any(p.what.startswith("events/extra.json is not listed") for p in report.problems)


def test_the_cli_exits_zero_only_when_the_bundle_verifies(
    exports: Exports, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad, trusted = tmp_path / "good.zip", tmp_path / "bad.zip", tmp_path / "cp.note"
    good.write_bytes(exports.bundles["portfolio"])
    files = files_of(exports, "portfolio")
    files[b.SUMMARY] = files[b.SUMMARY].replace(b"met", b"not_yet")
    bad.write_bytes(b.write_zip(files))
    trusted.write_text(exports.early_note)
    assert main(["verify", str(good), "--trusted-checkpoint", str(trusted)]) == 0
    assert "Verified." in capsys.readouterr().out
    assert main(["verify", str(bad)]) == 1
    assert "summary.html was changed after export" in capsys.readouterr().out


@pytest.mark.parametrize(
    "saved",
    [
        pytest.param(lambda note: note + "\n", id="jq -r (a trailing newline)"),
        pytest.param(lambda note: note.replace("\n", "\r\n") + "\r\n", id="Windows line ends"),
    ],
)
def test_a_trusted_checkpoint_saved_as_people_save_it_is_accepted(
    exports: Exports,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    saved: Callable[[str], str],
) -> None:
    bundle, trusted = tmp_path / "full.zip", tmp_path / "cp.note"
    bundle.write_bytes(exports.bundles["full"])
    trusted.write_bytes(saved(exports.early_note).encode())
    assert main(["verify", str(bundle), "--trusted-checkpoint", str(trusted)]) == 0
    out = capsys.readouterr().out
    assert "consistent with the trusted checkpoint" in out
    assert "Verified." in out


def test_a_trusted_checkpoint_that_is_no_note_says_what_is_wrong_and_what_to_pass(
    exports: Exports, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, trusted = tmp_path / "full.zip", tmp_path / "cp.json"
    bundle.write_bytes(exports.bundles["full"])
    trusted.write_text(json.dumps({"signed_note": exports.early_note}))  # jq without -r
    assert main(["verify", str(bundle), "--trusted-checkpoint", str(trusted)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "the trusted checkpoint is not a signed checkpoint note" in out
    assert "eportfolio checkpoint" in out
    assert "jq -r .signed_note" in out


def _rezipped_by_zipfile(folder: Path, out: Path) -> None:
    """As a zip tool that writes a folder entry before the folder's files."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder).as_posix())


def _rezipped_by_zip_r(folder: Path, out: Path) -> None:
    if shutil.which("zip") is None:
        pytest.skip("needs Info-ZIP's zip (.ci/run installs it)")
    subprocess.run(["zip", "-q", "-r", str(out), "."], cwd=folder, check=True)


@pytest.mark.parametrize("rezip", [_rezipped_by_zipfile, _rezipped_by_zip_r])
@pytest.mark.parametrize("kind", KINDS)
def test_a_bundle_unzipped_and_zipped_again_unchanged_still_verifies(
    exports: Exports, kind: str, rezip: Callable[[Path, Path], None], tmp_path: Path
) -> None:
    folder, out = tmp_path / "bundle", tmp_path / "again.zip"
    with zipfile.ZipFile(io.BytesIO(exports.bundles[kind])) as archive:
        archive.extractall(folder)
    rezip(folder, out)
    with zipfile.ZipFile(out) as archive:
        assert any(info.is_dir() for info in archive.infolist())  # folder entries: events/
    report = verify_bundle(out.read_bytes())
    assert report.verified, report.lines()
    (folder / "events" / "notes.txt").write_text("added after export")
    out.unlink()
    rezip(folder, out)
    report = verify_bundle(out.read_bytes())
    assert any(p.what.startswith("events/notes.txt is not listed") for p in report.problems)


def test_the_cli_generates_a_key_checkpoints_exports_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EPORTFOLIO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EPORTFOLIO_DATABASE_URL", raising=False)
    monkeypatch.delenv("EPORTFOLIO_SIGNING_KEY_FILE", raising=False)
    assert main(["keys", "generate", "--origin", "college.example/log"]) == 0
    public = capsys.readouterr().out.strip().splitlines()[-1]
    assert public.startswith("college.example/log+")
    assert main(["keys", "generate"]) == 2  # never overwrites a key unasked
    assert main(["keys", "generate-kek"]) == 0
    assert main(["keys", "generate-kek"]) == 2  # nor a KEK
    assert main(["export", str(tmp_path / "none.zip")]) == 0  # checkpoints the empty log
    centre = Audited(
        Config(data_dir=tmp_path), key=SigningKey.from_text((tmp_path / "signing.key").read_text())
    )
    try:
        centre.assess(portfolios=1)
    finally:
        centre.close()
    capsys.readouterr()
    assert main(["checkpoint"]) == 0
    note = capsys.readouterr().out
    (tmp_path / "cp.note").write_text(note)
    (tmp_path / "key.txt").write_text(public)
    out = tmp_path / "centre.zip"
    assert main(["export", "--centre", str(centre.world.centre_id), str(out)]) == 0
    key = str(tmp_path / "key.txt")
    trust = ["--trusted-checkpoint", str(tmp_path / "cp.note"), "--trusted-key", key]
    assert main(["verify", str(out), *trust]) == 0
    assert main(["verify", "--store", "--trusted-key", key]) == 0
    assert "Verified." in capsys.readouterr().out


# ---- verify --store ----------------------------------------------------------------------


@contextlib.contextmanager
def raw_store(config: Config, table: str) -> Iterator[Callable[[str, tuple[object, ...]], object]]:
    """Run SQL on the ledger's events table directly, as someone with database access."""
    if not config.uses_postgres:
        with contextlib.closing(sqlite3.connect(config.data_dir / "eportfolio.sqlite")) as conn:
            yield lambda statement, params: conn.execute(
                statement.format(table=table, id="rowid", p="?"), params
            )
            conn.commit()
        return
    schema = parse_qs(urlsplit(config.database_url or "").query)["schema"][0]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        name = sql.Identifier(schema, table).as_string(conn)
        yield lambda statement, params: conn.execute(
            statement.format(table=name, id="notification_id", p="%s"),
            params,
        )


@pytest.mark.parametrize("tamper", ["update", "delete"])
def test_verify_store_names_the_first_position_edited_in_the_database(
    config: Config, tamper: str
) -> None:
    centre = Audited(config)
    try:
        centre.assess(portfolios=2)
        centre.checkpointer.issue(Reason.ON_DEMAND)
        assert verify_store(centre.ledger, centre.index, KEY.verifier).verified
        target = list(centre.ledger.notifications())[7]
        table = centre.ledger.recorder.events_table_name  # type: ignore[attr-defined]
        with raw_store(config, table) as run:
            if tamper == "update":
                state = target.state.replace(b"Complaint", b"Compliment")
                state = state if state != target.state else target.state + b" "
                run("UPDATE {table} SET state = {p} WHERE {id} = {p}", (state, target.id))
            else:
                run("DELETE FROM {table} WHERE {id} = {p}", (target.id,))
        report = verify_store(centre.ledger, centre.index, KEY.verifier)
        assert not report.verified
        first = [p for p in report.problems if p.what.startswith("first difference")]
        assert [p.position for p in first] == [target.id], report.lines()
    finally:
        centre.close()


# ---- bundles as exported: one item a line, read as a stream ------------------------------


def edited_lines(files: Files, name: str, edit: Callable[[list[bytes]], list[bytes]]) -> Files:
    """The bundle with `name` edited line by line, its one-item-a-line layout kept."""
    changed = dict(files)
    lines = files[name].split(b"\n")
    assert lines[0] == b"["  # exported one item a line
    assert lines[1].startswith(b"{")
    changed[name] = b"\n".join(edit(lines))
    return changed


def middle_row(files: Files) -> tuple[list[bytes], int, dict[str, Any]]:
    """The stored events' lines, the middle one's index, and that row."""
    lines = files[b.STORED].split(b"\n")
    index = len(lines) // 2
    return lines, index, json.loads(lines[index].removesuffix(b","))


@pytest.mark.parametrize("kind", KINDS)
def test_an_event_changed_in_place_in_an_exported_bundle_is_named(
    exports: Exports, kind: str
) -> None:
    files = files_of(exports, kind)
    lines, index, row = middle_row(files)
    state = bytearray(base64.b64decode(row["state"]))
    state[len(state) // 2] ^= 0x01
    changed_row = json.dumps({**row, "state": base64.b64encode(state).decode()}).encode()
    ending = b"," if lines[index].endswith(b",") else b""

    def flip(lines: list[bytes]) -> list[bytes]:
        return [*lines[:index], changed_row + ending, *lines[index + 1 :]]

    report = verify(edited_lines(files, b.STORED, flip))
    assert named(report, position=row["position"]), report.lines()


@pytest.mark.parametrize("kind", KINDS)
def test_an_event_line_deleted_from_an_exported_bundle_is_named(
    exports: Exports, kind: str
) -> None:
    files = files_of(exports, kind)
    _, index, row = middle_row(files)
    report = verify(edited_lines(files, b.STORED, lambda ls: [*ls[:index], *ls[index + 1 :]]))
    if kind == "full":
        assert named(report, position=row["position"]), report.lines()
    else:
        assert named(report, stream=row["originator_id"]), report.lines()
    assert any(p.what.startswith(f"{b.DECODED} holds an event") for p in report.problems)


def test_a_decoded_view_edited_in_place_is_named(exports: Exports) -> None:
    files = files_of(exports, "portfolio")
    lines = files[b.DECODED].split(b"\n")
    index = next(i for i, line in enumerate(lines) if b'"outcome":"met"' in line)
    position = json.loads(lines[index].removesuffix(b","))["position"]

    def lie(lines: list[bytes]) -> list[bytes]:
        edited = lines[index].replace(b'"outcome":"met"', b'"outcome":"not_yet"')
        return [*lines[:index], edited, *lines[index + 1 :]]

    report = verify(edited_lines(files, b.DECODED, lie))
    assert named(report, position=position), report.lines()
    assert any(p.what.startswith(f"{b.DECODED} does not say") for p in report.problems)


def test_a_whole_log_export_has_a_summary_page_per_centre_linked_from_its_index(
    exports: Exports,
) -> None:
    files = files_of(exports, "full")
    pages = sorted(name for name in files if name.startswith("summary/"))
    assert len(pages) == 1  # the one centre of this log
    index = files[b.SUMMARY].decode()
    assert all(f'href="{page}"' in index for page in pages)
    page = files[pages[0]].decode()
    assert "Coverage matrix" in page
    assert f'data-portfolio="{exports.portfolio}"' in page
    changed = dict(files)
    changed[pages[0]] = page.replace("met", "not_yet").encode()
    assert any(
        p.what == f"{pages[0]} was changed after export: its SHA-256 is not the manifest's"
        for p in verify(changed).problems
    )


def test_an_exported_events_file_cut_short_is_named_as_unreadable(exports: Exports) -> None:
    files = files_of(exports, "portfolio")
    lines = files[b.STORED].split(b"\n")
    cut = edited_lines(files, b.STORED, lambda ls: ls[: len(lines) // 2])
    report = verify(cut)
    assert any("the array ends before its closing ]" in p.what for p in report.problems)
    assert any(p.what.startswith(f"{b.STORED} was changed after export") for p in report.problems)


# ---- a whole-log bundle's tree hashed by a second process ---------------------------------


def _as_file(folder: Path, name: str, files: Files) -> Path:
    path = folder / name
    path.write_bytes(b.write_zip(files))
    return path


def _flipped_middle(files: Files) -> tuple[Files, int]:
    lines, index, row = middle_row(files)
    state = bytearray(base64.b64decode(row["state"]))
    state[0] ^= 0x01
    changed_row = json.dumps({**row, "state": base64.b64encode(state).decode()}).encode()
    ending = b"," if lines[index].endswith(b",") else b""
    edit = lambda ls: [*ls[:index], changed_row + ending, *ls[index + 1 :]]  # noqa: E731
    return edited_lines(files, b.STORED, edit), row["position"]


def test_a_whole_log_file_hashed_by_a_second_process_reports_as_when_hashed_here(
    exports: Exports, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = files_of(exports, "full")
    flipped, position = _flipped_middle(files)
    _, index, row = middle_row(files)
    deleted = edited_lines(files, b.STORED, lambda ls: [*ls[:index], *ls[index + 1 :]])
    bundles = {"intact": files, "flipped": flipped, "deleted": deleted}
    paths = {name: _as_file(tmp_path, f"{name}.zip", f) for name, f in bundles.items()}
    here = {name: verify_bundle(path).lines() for name, path in paths.items()}
    monkeypatch.setattr(verify_tree, "ELSEWHERE_FROM", 0)
    monkeypatch.setattr(verify_tree, "spare_core", lambda: True)  # however busy the machine
    started: list[int] = []
    real = verify_tree.TreeElsewhere.__init__

    def counted(self: verify_tree.TreeElsewhere, *args: Any) -> None:
        started.append(1)
        real(self, *args)

    monkeypatch.setattr(verify_tree.TreeElsewhere, "__init__", counted)
    elsewhere = {name: verify_bundle(path).lines() for name, path in paths.items()}
    assert len(started) == len(paths)  # each tree was hashed by the second process
    assert elsewhere == here
    assert verify_bundle(paths["intact"]).verified
    assert any(f"position {position}" in line for line in elsewhere["flipped"])
    assert any(f"position {row['position']}" in line for line in elsewhere["deleted"])


def test_if_the_second_process_fails_the_tree_is_hashed_here(
    exports: Exports, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = files_of(exports, "full")
    flipped, position = _flipped_middle(files)
    intact, changed = _as_file(tmp_path, "i.zip", files), _as_file(tmp_path, "f.zip", flipped)
    monkeypatch.setattr(verify_tree, "ELSEWHERE_FROM", 0)
    monkeypatch.setattr(verify_tree, "spare_core", lambda: True)
    for broken in (str(tmp_path / "no-python"), shutil.which("false")):  # no process; one failing
        monkeypatch.setattr(sys, "executable", broken)
        assert verify_bundle(intact).verified
        report = verify_bundle(changed)
        assert named(report, position=position), report.lines()


# ---- a whole-log bundle's rows checked in two halves, by two processes ------------------


def _row_lines(files: Files, name: str, edit: Callable[[list[bytes]], list[bytes]]) -> Files:
    """`name`'s row lines edited as a list of rows (their commas put back as exported)."""

    def rows(lines: list[bytes]) -> list[bytes]:
        head, body, tail = lines[:1], [ln.removesuffix(b",") for ln in lines[1:-2]], lines[-2:]
        edited = edit(body)
        return [*head, *[ln + b"," for ln in edited[:-1]], *edited[-1:], *tail]

    return edited_lines(files, name, rows)


def _both(files: Files, edit: Callable[[list[bytes]], list[bytes]]) -> Files:
    return _row_lines(_row_lines(files, b.STORED, edit), b.DECODED, edit)


Edit = Callable[[list[bytes]], list[bytes]]


def _deleting(i: int) -> Edit:
    return lambda rows: [*rows[:i], *rows[i + 1 :]]


def _swapping(i: int) -> Edit:
    return lambda rows: [*rows[: i - 1], rows[i], rows[i - 1], *rows[i + 1 :]]


def _repeating(i: int) -> Edit:
    return lambda rows: [*rows[:i], rows[i], *rows[i:]]


def _relaying(i: int) -> Edit:
    """Rows i and i+1 on one line; row i+2 over two lines (split inside its state)."""

    def relay(rows: list[bytes]) -> list[bytes]:
        split = rows[i + 2].index(b'"state":"') + len(b'"state":')
        wrapped = rows[i + 2][:split] + b"\n" + rows[i + 2][split:]
        return [*rows[:i], rows[i] + b"," + rows[i + 1], *wrapped.split(b"\n"), *rows[i + 3 :]]

    return relay


def _split_variants(files: Files) -> dict[str, Files]:
    """The bundle as exported and tampered on either side of its halves' boundary."""
    count = len(files[b.STORED].split(b"\n")) - 3
    half = round(count / 16) * 8  # where the second process starts (FIRST_SHARE 0.5, PAGE 8)
    variants = {"intact": files, "flipped": _flipped_middle(files)[0]}
    for where, at in (("early", 2), ("boundary", half), ("late", count - 3)):
        variants[f"deleted {where}"] = _both(files, _deleting(at))
        variants[f"stored deleted {where}"] = _row_lines(files, b.STORED, _deleting(at))
        variants[f"swapped {where}"] = _both(files, _swapping(at))
        variants[f"view swapped {where}"] = _row_lines(files, b.DECODED, _swapping(at))
        variants[f"repeated {where}"] = _both(files, _repeating(at))
    # Two rows on one line and one row over two, the line count kept: a page that holds
    # both decodes (a whole pass reads it so), so the halves must cut where it cuts.
    for where, at in (("early", 2), ("boundary", half - 1)):
        variants[f"relaid {where}"] = _row_lines(files, b.STORED, _relaying(at))
    variants["view edited late"] = _row_lines(
        files,
        b.DECODED,
        lambda rs: [
            *rs[:-2],
            rs[-2].replace(b'"originator_version":', b'"originator_version":9'),
            rs[-1],
        ],
    )
    return variants


def test_a_whole_log_file_checked_in_two_halves_reports_as_when_checked_whole(
    exports: Exports, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = files_of(exports, "full")
    variants = _split_variants(files)
    paths = {
        name: _as_file(tmp_path, f"{i}.zip", f) for i, (name, f) in enumerate(variants.items())
    }
    monkeypatch.setattr(bundle_io, "PAGE", 8)  # pages of 8 lines: a few pages a half
    whole = {name: verify_bundle(path).lines() for name, path in paths.items()}
    monkeypatch.setattr(verify_split, "SPLIT_FROM", 0)
    monkeypatch.setattr(verify_split, "FIRST_SHARE", 0.5)
    monkeypatch.setattr(verify_split, "spare_core", lambda: True)  # however busy the machine
    joined: list[str] = []
    real = verify_split.check_split

    def counted(*args: Any) -> verify_split.Checked | None:
        checked = real(*args)
        joined.append("joined" if checked else "whole")
        return checked

    monkeypatch.setattr(verify_module, "check_split", counted)
    halves = {name: verify_bundle(path).lines() for name, path in paths.items()}
    assert halves == whole
    by_name = dict(zip(paths, joined, strict=True))
    assert by_name["intact"] == "joined"
    # A finding in either half, or halves that do not join: checked again whole. (A row
    # deleted from both files joins when its stream had only it: the root then fails.)
    assert all(
        by_name[name] == "whole"
        for name in by_name
        if name.startswith(("swapped", "flipped", "repeated", "stored deleted"))
    )
    told: list[tuple[int, int]] = []
    intact = verify_bundle_reporting(
        paths["intact"],
        trusted_checkpoint=None,
        trusted_key=None,
        progress=lambda done, total: told.append((done, total)),
    )
    assert intact.verified
    rows = len(files[b.STORED].split(b"\n")) - 3
    assert told[-1] == (rows, rows)
    assert told == sorted(told)
    assert all(not verify_bundle(path).verified for name, path in paths.items() if name != "intact")
    assert not list(Path(tempfile.gettempdir()).glob("eportfolio-verify-*.streams"))


def test_if_the_second_half_cannot_be_checked_the_log_is_checked_whole(
    exports: Exports, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = files_of(exports, "full")
    flipped, position = _flipped_middle(files)
    intact, changed = _as_file(tmp_path, "i.zip", files), _as_file(tmp_path, "f.zip", flipped)
    monkeypatch.setattr(verify_split, "SPLIT_FROM", 0)
    monkeypatch.setattr(verify_split, "spare_core", lambda: True)
    for broken in (str(tmp_path / "no-python"), shutil.which("false")):  # no process; one failing
        monkeypatch.setattr(sys, "executable", broken)
        assert verify_bundle(intact).verified
        report = verify_bundle(changed)
        assert named(report, position=position), report.lines()


def test_lines_after_the_first_are_the_lines_less_those(tmp_path: Path) -> None:
    text = b"\n".join(b"line %d" % i for i in range(40_000)) + b"\n"
    path = tmp_path / "lines.zip"
    path.write_bytes(b.write_zip({"a": text}))
    with zipfile.ZipFile(path) as archive:
        zin = ZipIn(archive)
        try:
            for skip in (0, 1, 7, 9_000, 39_999, 40_000, 50_000):
                assert list(zin.lines("a", skip=skip)) == text.split(b"\n")[skip:-1]
            assert zin.digests["a"] == hashlib.sha256(text).hexdigest()
        finally:
            zin.close()


def test_a_core_is_spare_only_when_the_kernel_shows_one_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    measured = cores.idle_cores(0.02)
    assert measured is None or 0 <= measured <= (os.cpu_count() or 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    for idle, spare in ((2.0, True), (1.6, True), (1.4, False), (0.0, False)):
        monkeypatch.setattr(cores, "idle_cores", lambda idle=idle: idle)
        assert cores.spare_core() is spare
    monkeypatch.setattr(cores, "idle_cores", lambda: None)  # no /proc/stat here
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert cores.spare_core()
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert not cores.spare_core()
