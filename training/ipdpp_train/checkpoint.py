"""Files a run writes, written so that no crash, kill or full disk ever leaves one torn.

Every file is first written in full to a temporary file beside it (``.NAME.tmpPID``), flushed
to the disk, and only then renamed over ``NAME`` (an atomic step on POSIX file systems): a
process killed at any point leaves either the old file or the new one, never a mixture. A
failed write (a full disk, say) removes its temporary file and raises
:class:`CheckpointWriteError` with the previous file untouched. Temporary files of processes
that were killed are removed by the next write of the same file.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CheckpointWriteError",
    "logged_seconds",
    "save_atomic",
    "write_bytes_atomic",
    "write_logs",
    "write_text_atomic",
]

#: Bytes per write(2) call; a multi-megabyte checkpoint goes out in several calls.
CHUNK = 1 << 20


class CheckpointWriteError(OSError):
    """A run's file could not be written; the previous version of the file is intact."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Delete ``.NAME.tmpPID`` files left by processes that no longer run."""
    prefix = f".{path.name}.tmp"
    for candidate in path.parent.glob(f"{prefix}*"):
        pid_text = candidate.name[len(prefix) :]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            with suppress(OSError):
                candidate.unlink()


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically (module docstring).

    Raises
    ------
    CheckpointWriteError
        If writing fails (e.g. no space left on the device); ``path`` keeps its previous
        contents and no temporary file stays behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view[:CHUNK])
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with suppress(OSError):
            tmp.unlink()
        reason = exc.strerror or str(exc)
        raise CheckpointWriteError(
            exc.errno,
            f"could not write {path}: {reason}. The previous {path.name} is intact; free some "
            "space (or fix the folder's permissions) and rerun with --resume",
        ) from exc
    _fsync_directory(path.parent)


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (serialised in memory first, so that a
    write error surfaces as a plain OSError from the file system)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode())


def write_logs(directory: Path, history: Sequence[dict[str, Any]]) -> None:
    """log.csv (one row per epoch, union of keys) and log.json, both rewritten atomically."""
    keys: list[str] = []
    for record in history:
        keys.extend(k for k in record if k not in keys)
    lines = [",".join(keys)]
    for record in history:
        lines.append(",".join(_csv_cell(record.get(k, "")) for k in keys))
    write_text_atomic(directory / "log.csv", "\n".join(lines) + "\n")
    write_text_atomic(directory / "log.json", json.dumps(list(history), indent=1) + "\n")


def _csv_cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    if any(c in text for c in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def logged_seconds(directory: Path) -> float:
    """Training seconds of every phase under ``directory``: the sum of the per-epoch
    ``seconds`` of their ``log.json`` files (validation passes excluded), the same whether
    a phase ran at once or over several resumed invocations."""
    total = 0.0
    for log in sorted(Path(directory).rglob("log.json")):
        total += sum(float(r.get("seconds", 0.0)) for r in json.loads(log.read_text()))
    return total
