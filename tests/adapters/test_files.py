"""Output writing in ``dynamo_plan.formats.files``: links followed, non-files refused,
all-or-nothing on failure (a full disk simulated by ``os.fsync``/``write`` raising ENOSPC)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from dynamo_plan.errors import InputError, StateStoreError
from dynamo_plan.formats.files import (
    atomic_output,
    is_stdout,
    output_dir,
    resolve_output,
    write_bytes_atomic,
    write_text_atomic,
)


def _enospc(*_: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_writes_a_new_file_with_the_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    old = os.umask(0o027)
    try:
        assert write_text_atomic(target, "héllo\n") == target
    finally:
        os.umask(old)
    assert target.read_bytes() == "héllo\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_replacing_keeps_the_permission_bits(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    target.chmod(0o600)
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_symlink_target_is_replaced_and_the_link_stays(tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_text("old\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(real.name)
    write_text_atomic(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == real.name
    assert real.read_text() == "new\n"


def test_symlink_chain_reaches_the_last_target(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    real = tmp_path / "d" / "real.txt"
    real.write_text("old")
    (tmp_path / "b").symlink_to(real)
    (tmp_path / "a").symlink_to(tmp_path / "b")
    assert resolve_output(tmp_path / "a") == real
    write_text_atomic(tmp_path / "a", "new")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()
    assert real.read_text() == "new"
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["real.txt"]


def test_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "later.txt")
    write_text_atomic(link, "x")
    assert link.is_symlink() and (tmp_path / "later.txt").read_text() == "x"


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(InputError, match="symbolic links"):
        write_text_atomic(tmp_path / "a", "x")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"refusing to write over .*: it is a directory"):
        write_text_atomic(tmp_path, "x")


def test_fifo_is_refused_and_left_alone(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"pipe: it is a FIFO"):
        write_text_atomic(fifo, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_link_to_a_device_is_refused_and_the_device_kept(tmp_path: Path) -> None:
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    with pytest.raises(InputError) as err:
        write_text_atomic(link, "x")
    assert str(err.value) == (
        f"refusing to write over {link} (-> /dev/null): it is a character device"
    )
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode) and link.is_symlink()


def test_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_text_atomic(tmp_path / "nope" / "x.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_the_error_class_can_be_chosen(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="it is a directory"):
        write_text_atomic(tmp_path, "x", StateStoreError)


def test_full_disk_at_sync_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old,content\n")
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(InputError, match=r"cannot write .*out.csv: No space left on device"):
        write_text_atomic(target, "new,content\n" * 1000)
    assert target.read_text() == "old,content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_full_disk_mid_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "new.csv"
    with (
        pytest.raises(InputError, match="No space left on device"),
        atomic_output(target, "w") as handle,
    ):
        handle.write("row\n" * 10)
        _enospc()
    assert list(tmp_path.iterdir()) == []


def test_an_error_in_the_writer_propagates_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target, "wb") as handle:
        handle.write(b"partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]


def test_is_stdout() -> None:
    assert is_stdout("-") and is_stdout(Path("-"))
    assert not is_stdout(None) and not is_stdout("./-") and not is_stdout("out")


def test_output_dir_removes_what_it_created_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    with pytest.raises(InputError, match="midway"), output_dir(out) as d:
        (d / "partial.txt").write_text("x")
        raise InputError("midway")
    assert list(tmp_path.iterdir()) == []


def test_output_dir_keeps_a_directory_that_existed(tmp_path: Path) -> None:
    out = tmp_path / "existing"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(InputError), output_dir(out / "new"):
        raise InputError("midway")
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    with pytest.raises(InputError), output_dir(out):
        raise InputError("midway")
    assert (out / "mine.txt").read_text() == "keep"


def test_output_dir_success_keeps_the_directory(tmp_path: Path) -> None:
    with output_dir(tmp_path / "x" / "y") as d:
        (d / "f").write_text("1")
    assert (tmp_path / "x" / "y" / "f").read_text() == "1"


def test_output_dir_follows_a_link_and_refuses_a_file(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "target")
    with output_dir(link) as d:
        (d / "f").write_text("1")
    assert link.is_symlink() and (tmp_path / "target" / "f").read_text() == "1"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="exists and is not a directory"):
        output_dir(tmp_path / "file").__enter__()
