import os

import pytest

from dnafm_lib.core.atomic import atomic_dir, atomic_open


def test_a_file_appears_only_when_whole_and_gets_umask_permissions(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_open(target) as handle:
        handle.write("partial")
        assert not target.exists()
    assert target.read_text() == "partial"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_open(tmp_path / "out.txt") as handle:
            handle.write("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_leaves_the_temps_of_a_longer_output_name_alone(tmp_path):
    import socket
    import subprocess
    import sys
    import time

    from dnafm_lib.core.atomic import sweep_stale

    host = socket.gethostname()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(gone.stdout)
    day_old = time.time() - 2 * 24 * 3600
    # genome.fa.gz.fai's temps: one of this (live) process, untouched for two days; one of a dead writer
    live_fai = tmp_path / f".tmp-genome.fa.gz.fai.{host}.{os.getpid()}.abcd_123"
    dead_fai = tmp_path / f".tmp-genome.fa.gz.fai.{host}.{dead_pid}.efgh_456"
    dead_gz = tmp_path / f".tmp-genome.fa.gz.{host}.{dead_pid}.ijkl_789"
    for path in (live_fai, dead_fai, dead_gz):
        path.write_text("partial")
        os.utime(path, (day_old, day_old))
    assert sweep_stale(tmp_path / "genome.fa.gz") == [dead_gz]
    assert live_fai.exists() and dead_fai.exists()
    assert sweep_stale(tmp_path / "genome.fa.gz.fai") == [dead_fai]
    assert live_fai.exists()


def test_a_directory_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == [".dnafm-output.json", "b"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_a_temporary_name_carries_its_writers_host_and_pid(tmp_path):
    import socket

    with atomic_open(tmp_path / "out.txt") as handle:
        (temp,) = [p.name for p in tmp_path.iterdir()]
        handle.write("x")
    assert temp.startswith(f".tmp-out.txt.{socket.gethostname()}.{os.getpid()}.")
    with atomic_dir(tmp_path / "d") as tmp:
        assert tmp.name.startswith(f".tmp-d.{socket.gethostname()}.{os.getpid()}.")


def test_a_writer_using_temp_prefix_gets_its_leftovers_swept(tmp_path):
    import subprocess
    import sys
    import tempfile

    from dnafm_lib.core.atomic import sweep_stale, temp_prefix

    # A process makes an owner-tagged temp directory and dies without cleaning up.
    code = (
        "import sys, tempfile; from dnafm_lib.core.atomic import temp_prefix; "
        "tempfile.mkdtemp(prefix=temp_prefix(sys.argv[1]), dir=sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, "cache-entry", str(tmp_path)], check=True)
    mine = tempfile.mkdtemp(prefix=temp_prefix(tmp_path / "cache-entry"), dir=tmp_path)
    (leftover,) = [p for p in tmp_path.iterdir() if str(p) != mine]
    assert sweep_stale(tmp_path / "cache-entry") == [leftover]
    assert [str(p) for p in tmp_path.iterdir()] == [mine]  # our own, live, stays
