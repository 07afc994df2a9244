"""The one place that reaches Hadoop's FileSystem through py4j: exists, list, read, write, delete.

Going through the session's Hadoop configuration is what makes ``s3://`` (EMRFS on EMR and Glue),
``s3a://`` (a local S3 server in tests) and ``file:`` paths behave alike. Every call runs on the
driver; none of them moves table data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from py4j.java_gateway import JavaClass
from pyspark.sql import SparkSession


def hadoop_path(spark: SparkSession, uri: str, child: str | None = None) -> Any:
    """A JVM ``org.apache.hadoop.fs.Path`` for ``uri`` (or ``uri/child``)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path if child is None else jvm.org.apache.hadoop.fs.Path(path, child)


def filesystem(spark: SparkSession, path: Any) -> Any:
    """The Hadoop FileSystem that serves a JVM ``path``, from the session's Hadoop configuration."""
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def exists(spark: SparkSession, uri: str, child: str | None = None) -> bool:
    path = hadoop_path(spark, uri, child)
    return bool(filesystem(spark, path).exists(path))


def modification_time(spark: SparkSession, uri: str, child: str | None = None) -> int | None:
    """Modification time of the file at ``uri`` (or ``uri/child``) in epoch ms; None when absent."""
    path = hadoop_path(spark, uri, child)
    fs = filesystem(spark, path)
    if not fs.exists(path):
        return None
    return int(fs.getFileStatus(path).getModificationTime())


def delete(spark: SparkSession, uri: str, child: str | None = None) -> bool:
    """Delete ``uri`` (or ``uri/child``) recursively if it exists; whether it existed."""
    path = hadoop_path(spark, uri, child)
    fs = filesystem(spark, path)
    if not fs.exists(path):
        return False
    fs.delete(path, True)
    return True


def list_files(spark: SparkSession, uri: str) -> Iterator[tuple[str, int, int]]:
    """Every file under ``uri``, recursively: ``(uri, size in bytes, modification time in epoch ms)``.

    Raises ``FileNotFoundError`` when ``uri`` does not exist; the JVM's own errors pass through.
    """
    path = hadoop_path(spark, uri)
    fs = filesystem(spark, path)
    if not fs.exists(path):
        raise FileNotFoundError(uri)
    yield from list_tree(spark, fs, path)


def list_tree(spark: SparkSession, fs: Any, path: Any) -> list[tuple[str, int, int]]:
    """Every file under the JVM ``path`` of ``fs``, recursively: ``(uri, size, epoch ms)``."""
    listings = _listings(spark)
    if listings is not None:
        return [(uri, size, ms) for _, uri, size, ms in _entries(listings.listFiles(fs, path, True))]
    out = []
    it = fs.listFiles(path, True)
    while it.hasNext():
        st = it.next()
        out.append((st.getPath().toString(), int(st.getLen()), int(st.getModificationTime())))
    return out


def list_status(spark: SparkSession, fs: Any, path: Any) -> list[tuple[bool, str, int, int]] | None:
    """The entries directly under the JVM ``path`` of ``fs``: ``(is a folder, uri, size, epoch ms)``;
    None when the session's class path lacks our helper (the caller walks the iterator itself)."""
    listings = _listings(spark)
    return None if listings is None else list(_entries(listings.listStatus(fs, path)))


def _listings(spark: SparkSession) -> Any:
    """``dev.auditlake.fs.Listings`` (in auditlake-logstore.jar), or None if the JVM lacks it.

    It walks a listing in the JVM and returns it as one string: walked from Python through py4j,
    each entry cost round trips of its own (6.3-6.6 s for 19,417 objects on the local file
    system; 0.52-0.53 s walked in the JVM and handed over as one string).
    """
    helper = spark.sparkContext._jvm.dev.auditlake.fs.Listings
    return helper if isinstance(helper, JavaClass) else None


def _entries(text: str) -> Iterator[tuple[bool, str, int, int]]:
    """The records of a ``Listings`` string: ``(is a folder, uri, size, epoch ms)``."""
    for record in text.split("\0"):
        if record:
            kind, size, ms, uri = record.split("\t", 3)
            yield kind == "D", uri, int(size), int(ms)


def read_bytes(spark: SparkSession, uri: str) -> bytes:
    """The whole object at ``uri`` (for small objects only: it lands in driver memory)."""
    path = hadoop_path(spark, uri)
    stream = filesystem(spark, path).open(path)
    try:
        return bytes(spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def write_bytes(spark: SparkSession, uri: str, data: bytes) -> None:
    """Create or overwrite the object at ``uri`` with ``data``."""
    path = hadoop_path(spark, uri)
    stream = filesystem(spark, path).create(path, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()
