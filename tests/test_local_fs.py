"""Our Hadoop local file system (``jvm/logstore``, ``dev.auditlake.fs``): Hadoop's answers, no child processes."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

import pytest


def _forks() -> int:
    """Processes (and threads) this machine has started since boot."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("processes "):
            return int(line.split()[1])
    raise AssertionError("no processes line in /proc/stat")


@pytest.fixture
def hadoop(spark):
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    fs = jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI("file:///"), conf)
    fc = jvm.org.apache.hadoop.fs.FileContext.getFileContext(jvm.java.net.URI("file:///"), conf)
    return jvm, fs, fc


def test_the_session_s_local_files_go_through_our_file_system(hadoop):
    _, fs, fc = hadoop
    assert fs.getClass().getName() == "dev.auditlake.fs.ForklessLocalFileSystem"
    assert fs.getRawFileSystem().getClass().getName() == "dev.auditlake.fs.ForklessRawLocalFileSystem"
    assert fc.getDefaultFileSystem().getClass().getName() == "dev.auditlake.fs.ForklessLocalFs"


def test_status_permissions_links_and_renames_are_hadoop_s(hadoop, tmp_path):
    jvm, fs, fc = hadoop
    Path_ = jvm.org.apache.hadoop.fs.Path
    perm = jvm.org.apache.hadoop.fs.permission.FsPermission
    f = tmp_path / "a.json"
    out = fs.create(Path_(f"file://{f}"), perm(0o640), False, 4096, 1, 1 << 20, None)
    out.write(bytearray(b"12345"))
    out.close()
    # The file's mode is the one asked for (no umask in between), as Hadoop's chmod would leave it.
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o640
    st = fs.getFileStatus(Path_(str(f)))
    assert (st.getLen(), st.isDirectory(), str(st.getPermission())) == (5, False, "rw-r-----")
    assert (st.getOwner(), st.getGroup()) == (
        pwd.getpwuid(os.stat(f).st_uid).pw_name,
        grp.getgrgid(os.stat(f).st_gid).gr_name,
    )
    assert st.getPath().toString() == f"file:{f}"
    assert st.getModificationTime() == int(os.stat(f).st_mtime * 1000)
    fs.setPermission(Path_(str(f)), perm(0o604))
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o604
    # A link: its own status names the target; through it, the target's size.
    link = tmp_path / "link"
    link.symlink_to(f)
    ls = fs.getFileLinkStatus(Path_(str(link)))
    assert ls.isSymlink() and ls.getSymlink().toString() == f"file:{f}"
    assert fs.getFileStatus(Path_(str(link))).getLen() == 5
    # A listing holds every name, the checksum side files hidden as before.
    names = sorted(s.getPath().getName() for s in fs.listStatus(Path_(str(tmp_path))))
    assert names == ["a.json", "link"]
    assert (tmp_path / ".a.json.crc").exists()
    with pytest.raises(Exception, match="FileNotFoundException"):
        fs.getFileStatus(Path_(str(tmp_path / "missing")))
    # FileContext's rename (Delta's commit) keeps refusing to replace an existing file.
    rename = jvm.org.apache.hadoop.fs.Options.Rename
    none = spark_array(rename, [rename.NONE])
    (tmp_path / "b.json").write_text("x")
    with pytest.raises(Exception, match="FileAlreadyExistsException"):
        fc.rename(Path_(str(tmp_path / "b.json")), Path_(str(f)), none)
    fc.rename(Path_(str(tmp_path / "b.json")), Path_(str(tmp_path / "c.json")), none)
    assert (tmp_path / "c.json").read_text() == "x" and not (tmp_path / "b.json").exists()


def spark_array(cls, items):
    from pyspark import SparkContext

    arr = SparkContext._gateway.new_array(cls, len(items))
    for i, item in enumerate(items):
        arr[i] = item
    return arr


def test_creating_and_renaming_files_starts_no_process(hadoop, tmp_path):
    """Hadoop's own local file system ran chmod, readlink and ls: 660 processes and threads here."""
    jvm, fs, fc = hadoop
    Path_ = jvm.org.apache.hadoop.fs.Path
    rename = jvm.org.apache.hadoop.fs.Options.Rename
    none = spark_array(rename, [rename.NONE])
    fs.mkdirs(Path_(str(tmp_path / "warm")))
    before = _forks()
    for i in range(30):
        out = fs.create(Path_(str(tmp_path / f"t{i}")), True)
        out.close()
        fc.rename(Path_(str(tmp_path / f"t{i}")), Path_(str(tmp_path / f"f{i}")), none)
        fs.getFileStatus(Path_(str(tmp_path / f"f{i}"))).getPermission()
    started = _forks() - before
    assert len(list(tmp_path.glob("f*"))) == 30
    assert started < 30, f"{started} processes or threads started by 30 creates and renames"
