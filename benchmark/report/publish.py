"""Publishing a report: OUT/tables, OUT/figures, OUT/metrics.json and OUT/report.html always come from one attempt.

An attempt builds everything in a staging folder `OUT/.report.pid<PID>.<random>.tmp`. Publishing
first renames that folder to the journal `OUT/.report.publish.tmp` (one atomic step that commits the
attempt), then swaps each output in: the previous one moves into the journal's `old/`, the new one
out of its `new/`. A process killed between those renames leaves the journal behind; the next report
into OUT finishes that publication (roll forward) before it does anything else, so OUT never stays a
mix of two attempts. An output the attempt did not write (report.html of a report without --html) moves
into `old/` all the same, so it never describes other runs than the tables beside it. Staging folders of
dead processes are removed. An OSError while the publisher is alive rolls the swapped outputs back and
ends in a one-line TedbenchError naming the path.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from benchmark.errors import TedbenchError
from benchmark.faults import pause_point
from benchmark.fsutil import clean_orphans, pid_alive

HTML = "report.html"  # written only by `tedbench report --html`
OUTPUTS = ("tables", "figures", "metrics.json", HTML)  # published in this order; the first two are folders
JOURNAL = ".report.publish.tmp"
_OWNER = "owner.json"
_STAGING = re.compile(r"^\.report\.pid(?P<pid>\d+)\..*\.tmp$")


@contextlib.contextmanager
def staged_report(out: Path) -> Iterator[Path]:
    """Yield an empty staging folder in `out`; publish what the block writes there (OUTPUTS) if it succeeds."""
    out = Path(out)
    with os_errors():
        out.mkdir(parents=True, exist_ok=True)
        recover(out)
        check_writable(out)
        staging = Path(tempfile.mkdtemp(prefix=f".report.pid{os.getpid()}.", suffix=".tmp", dir=out))
    try:
        with os_errors():
            (staging / "new").mkdir()
            yield staging / "new"
            written = [name for name in OUTPUTS if (staging / "new" / name).exists()]
            owner = {"pid": os.getpid(), "host": socket.gethostname(), "outputs": written}
            (staging / _OWNER).write_text(json.dumps(owner))
        pause_point("report.before_publish")
        _publish(out, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def recover(out: Path) -> None:
    """Finish a publication whose process died, and remove dead attempts' staging folders."""
    journal = out / JOURNAL
    if journal.exists():
        owner = _owner(journal)
        pid = owner.get("pid")
        live = (
            isinstance(pid, int)
            and pid != os.getpid()
            and (owner.get("host") != socket.gethostname() or pid_alive(pid))
        )
        if live:
            raise TedbenchError(
                f"{journal}: a report (pid {pid} on {owner.get('host')}) is publishing into {out}; "
                "wait for it (remove that folder only if no report is running)"
            )
        _swap_in(out, journal)
        _discard(journal)
    for path in out.iterdir():
        match = _STAGING.match(path.name)
        if match and int(match["pid"]) != os.getpid() and not pid_alive(int(match["pid"])):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    for name in OUTPUTS[:2]:
        clean_orphans(out / name)  # per-file staging of older report versions


def check_writable(out: Path) -> None:
    """Refuse read-only outputs before building anything: each existing output folder (and its subfolders) and OUT."""
    folders = [out]
    for name in OUTPUTS[:2]:
        if (out / name).is_dir() and not (out / name).is_symlink():
            folders += [out / name, *(p for p in (out / name).rglob("*") if p.is_dir())]
    for folder in folders:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise TedbenchError(f"{folder}: not writable; the report replaces {', '.join(OUTPUTS)} in {out} together")
    for name in OUTPUTS:
        path = out / name
        wanted = "folder" if name in OUTPUTS[:2] else "file"
        found = "link" if path.is_symlink() else "folder" if path.is_dir() else "file" if path.exists() else None
        if found not in (None, wanted):
            raise TedbenchError(f"{path}: expected a {wanted}, not a {found}")


@contextlib.contextmanager
def os_errors() -> Iterator[None]:
    """An OSError inside the block becomes a one-line TedbenchError naming the path."""
    try:
        yield
    except OSError as exc:
        raise TedbenchError(f"{_describe(exc)}; the previous report outputs are unchanged") from None


def _describe(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else "report output"
    return f"{where}: {exc.strerror or exc}"


def _publish(out: Path, staging: Path) -> None:
    """Commit the attempt (rename it to the journal), swap its outputs in, drop the journal.

    After an OSError the swapped outputs are rolled back; if even that fails, the journal stays
    and the next report into `out` completes the publication.
    """
    journal = out / JOURNAL
    with os_errors():
        os.rename(staging, journal)
    try:
        _swap_in(out, journal, pause=True)
    except OSError as exc:
        if not _roll_back(out, journal):
            raise TedbenchError(
                f"{_describe(exc)}; {out} mixes two reports until the next report into it completes this one"
            ) from None
        _discard(journal)
        raise TedbenchError(f"{_describe(exc)}; the previous report outputs are unchanged") from None
    _discard(journal)


def _swap_in(out: Path, journal: Path, *, pause: bool = False) -> None:
    """Move each output from journal/new into `out` and the previous one into journal/old.

    An output that the attempt did not write (not in its owner.json's "outputs") only moves into journal/old.
    Every step is one rename, so a killed swap is resumed by calling this again.
    """
    (journal / "old").mkdir(exist_ok=True)
    written = _owner(journal).get("outputs", OUTPUTS)
    for number, name in enumerate(OUTPUTS):
        new, final = journal / "new" / name, out / name
        present = final.exists() or final.is_symlink()
        if new.exists():
            if present:
                os.rename(final, journal / "old" / name)
            os.rename(new, final)
        elif name not in written and present:
            os.rename(final, journal / "old" / name)
        if pause and number == 0:
            pause_point("report.mid_publish")


def _roll_back(out: Path, journal: Path) -> bool:
    """Undo `_swap_in` step by step (each state stays one that `_swap_in` can finish); False if a step failed."""
    try:
        for name in reversed(OUTPUTS):
            new, old, final = journal / "new" / name, journal / "old" / name, out / name
            if not new.exists() and (final.exists() or final.is_symlink()):
                os.rename(final, new)
            if old.exists():
                os.rename(old, final)
    except OSError:
        return False
    return True


def _discard(folder: Path) -> None:
    """Remove a folder by first renaming it to a staging name of this process (a kill leaves only an orphan)."""
    doomed = folder.with_name(f".report.pid{os.getpid()}.discard.tmp")
    with contextlib.suppress(OSError):
        os.rename(folder, doomed)
        shutil.rmtree(doomed)


def _owner(journal: Path) -> dict:
    try:
        owner = json.loads((journal / _OWNER).read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}
