"""The synthetic log generator: same seed, same bytes; the manifest says what the files hold.

The files are read back with plain Python (gzip, json, a line check), independently of the parsers.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import zlib
from pathlib import Path

import pytest

from synth import generate
from synth.common import seeded
from synth.s3_access import _Line, _malformed

SCALE = 0.02


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth")
    return out, generate(out, scale=SCALE, seed=11)


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Name -> (bytes, last-modified) of every file; the manifest's write time is not data."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), 0 if p.name == "manifest.json" else int(p.stat().st_mtime))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(synth, tmp_path):
    out, _ = synth
    generate(tmp_path / "again", scale=SCALE, seed=11)
    generate(tmp_path / "other", scale=SCALE, seed=12, sources=("s3access",))
    assert _tree(tmp_path / "again") == _tree(out)
    assert _tree(tmp_path / "other" / "s3access") != _tree(out / "s3access")


def _valid_event_time(value) -> bool:
    try:
        dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
        return True
    except (TypeError, ValueError):
        return False


def test_cloudtrail_manifest_matches_the_files(synth):
    out, manifest = synth
    root = out / "cloudtrail"
    skipped = read = quarantined = duplicates = events = insights = 0
    seen: set[tuple[str, str]] = set()
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        rel = str(path.relative_to(root))
        parts = rel.split("/")
        kind = (
            "CloudTrail-Insight"
            if "CloudTrail-Insight" in parts
            else "CloudTrail"
            if "CloudTrail" in parts
            else None
        )
        if kind is None:
            skipped += 1
            continue
        try:
            records = json.loads(gzip.decompress(path.read_bytes()))["Records"]
        except (OSError, EOFError, ValueError):
            read += 1
            quarantined += 1
            continue
        for r in records:
            read += 1
            if kind == "CloudTrail-Insight":
                insights += 1
            elif "eventID" not in r or not _valid_event_time(r.get("eventTime")):
                quarantined += 1
            elif (r["eventID"], r["recipientAccountId"]) in seen:
                duplicates += 1
            else:
                seen.add((r["eventID"], r["recipientAccountId"]))
                events += 1
    expected = manifest["sources"]["cloudtrail"]["expected"]
    assert (read, quarantined, duplicates, events, insights, skipped) == (
        expected["records_read"],
        expected["records_quarantined"],
        expected["records_duplicate"],
        expected["loaded_by_table"]["cloudtrail_events"],
        expected["loaded_by_table"]["cloudtrail_insights"],
        expected["objects_skipped"],
    )
    assert quarantined > 1 and duplicates > 0 and insights > 0 and skipped > 0


def test_cloudtrail_late_files_hold_events_days_before_their_folder(synth):
    out, manifest = synth
    late = manifest["sources"]["cloudtrail"]["planted"]["late_objects"]
    assert late
    for item in late:
        records = json.loads(gzip.decompress((out / "cloudtrail" / item["object"]).read_bytes()))["Records"]
        folder = dt.date.fromisoformat(item["folder_date"])
        assert all(
            dt.date.fromisoformat(r["eventTime"][:10]) <= folder - dt.timedelta(days=2) for r in records
        )


_S3_START = re.compile(r"^[0-9a-f]{64} \S+ \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] ")


def _s3_line_ok(line: str) -> bool:
    m = _S3_START.match(line)
    if not m or len(line.split(" ")) < 18:
        return False
    try:
        dt.datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S %z")
    except ValueError:
        return False
    return True


def test_s3_access_manifest_matches_the_files(synth):
    out, manifest = synth
    root = out / "s3access"
    read = bad = duplicates = 0
    seen: set[str] = set()
    bad_at: set[tuple[str, int]] = set()
    layouts = {"simple": 0, "partitioned": 0}
    for path in sorted(root.rglob("*"), key=lambda p: p.stat().st_mtime if p.is_file() else 0):
        if not path.is_file():
            continue
        rel = str(path.relative_to(root))
        layouts[rel.split("/")[0]] += 1
        text = path.read_text()
        assert text.endswith("\n")
        for i, line in enumerate(text[:-1].split("\n")):
            read += 1
            if not _s3_line_ok(line):
                bad += 1
                bad_at.add((rel, i))
            elif line in seen:
                duplicates += 1
            else:
                seen.add(line)
    section = manifest["sources"]["s3access"]
    expected = section["expected"]
    assert (read, bad, duplicates, len(seen)) == (
        expected["records_read"],
        expected["records_quarantined"],
        expected["records_duplicate"],
        expected["records_loaded"],
    )
    assert bad_at == {(m["object"], m["line"]) for m in section["planted"]["malformed_lines"]}
    assert layouts["simple"] > 0 and layouts["partitioned"] > 0
    assert section["objects"]["mean_lines_per_object"] < 150


def test_s3_access_lines_per_object_puts_about_the_same_lines_in_fewer_objects(tmp_path):
    """The benchmark's 2M lines in 5,000 objects: the objects' mean size is a knob, the volume is not."""
    small = generate(tmp_path / "small", scale=0.5, seed=11, sources=("s3access",))
    big = generate(tmp_path / "big", scale=0.5, seed=11, sources=("s3access",), s3_lines_per_object=400)

    def objects(out: Path) -> list[Path]:
        return [p for p in (out / "s3access").rglob("*") if p.is_file()]

    def lines(paths: list[Path]) -> int:
        return sum(len(p.read_text().splitlines()) for p in paths)

    few, many = objects(tmp_path / "big"), objects(tmp_path / "small")
    section = big["sources"]["s3access"]
    assert big["s3_lines_per_object"] == 400 and small["s3_lines_per_object"] == 50
    assert section["expected"]["objects_listed"] == len(few)
    assert section["expected"]["records_read"] == lines(few)
    assert 250 <= lines(few) / len(few) <= 550
    assert len(few) * 5 < len(many)
    assert 0.8 < lines(few) / lines(many) < 1.25
    with pytest.raises(ValueError, match="at least 1"):
        generate(tmp_path / "none", scale=0.1, seed=11, sources=("s3access",), s3_lines_per_object=0)


_OWNER = "36c1f05b76016b78528454e6e0c60e2b7ff7aa20c0a5e4c748276e5b0a2debd2"
_TAIL = "HOSTID= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader b1.s3.us-east-1.amazonaws.com TLSv1.2 - -"


def test_s3_access_truncated_line_keeps_a_quote_open():
    # A BATCH.DELETE / S3.EXPIRE row has no request URI: its first quoted field is the referer
    # '"-"'. Cutting 8 characters past that quote left '... "-" - - ', a whole legacy line that
    # ends after the version id, which a parser rightly loads (3 of the 114 planted at scale 1).
    head = (
        f"{_OWNER} b1 [04/Mar/2024:17:16:29 +0000] 10.49.250.123 "
        "arn:aws:sts::111122223333:assumed-role/DataEngineer/alice 9D888A4B48CE9DC4 BATCH.DELETE.OBJECT "
        "curated/4598.parquet - 204 - - 30268030 - - "
    )
    rng = seeded(7, "test")
    assert _malformed(rng, head + f'"-" - - {_TAIL}', "truncated") == head + '"-'
    get = head.replace(
        "BATCH.DELETE.OBJECT curated/4598.parquet - 204", 'REST.GET.OBJECT k "GET /b1/k HTTP/1.1" 200'
    )
    cut = get.index('"GET') + 8
    assert _malformed(rng, get + f'"-" "aws-cli/2.15.30" - {_TAIL}', "truncated") == get[:cut]
    assert get[:cut].endswith('"GET /b1')
    # Every shape the generator writes: the cut leaves an open quote and too few fields.
    liner = _Line(seeded(7, "lines"))
    t = dt.datetime(2024, 3, 4, 12, 0, 0)
    for op in ("BATCH.DELETE.OBJECT", "S3.EXPIRE.OBJECT", "REST.GET.OBJECT", "REST.GET.BUCKET", None):
        for _ in range(200):
            fields, _kinds = liner.fields(t, "b1", "us-east-1", op=op)
            bad = _malformed(rng, " ".join(fields), "truncated")
            assert bad.count('"') % 2 == 1 and len(bad.split()) < 18, bad


def test_s3_access_lines_carry_the_awkward_shapes(synth):
    out, manifest = synth
    text = "".join(p.read_text() for p in (out / "s3access").rglob("*") if p.is_file())
    assert "CloudFront Origin Access Identity E2EXAMPLEID" in text
    assert " +0200] " in text
    assert " BATCH.DELETE.OBJECT " in text
    assert "%3D" in text
    mix = manifest["sources"]["s3access"]["mix"]["awkward_lines"]
    assert mix["legacy_18_fields"] > 0 and mix["extra_trailing_field"] > 0 and mix["dash_status"] > 0


_CWL_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def _envelopes(data: bytes) -> list[dict]:
    """Every JSON envelope of a Firehose object (concatenated gzip members)."""
    text = gzip.decompress(data).decode()
    decoder, pos, out = json.JSONDecoder(), 0, []
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
    return out


def test_crawler_manifest_matches_the_files(synth):
    out, manifest = synth
    root = out / "crawler"
    read = quarantined = duplicates = loaded = skipped = control = 0
    seen: set[tuple[str, str, str]] = set()
    multiline = 0

    def count(stream: str, ts: str, message: str) -> None:
        nonlocal read, duplicates, loaded, multiline
        read += 1
        key = (stream, ts, message)
        if key in seen:
            duplicates += 1
        else:
            seen.add(key)
            loaded += 1
            multiline += "\n" in message

    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        rel = str(path.relative_to(root))
        if rel.endswith("aws-logs-write-test"):
            skipped += 1
            continue
        if rel.startswith("export/"):
            stream = rel.split("/")[2]
            events: list[list[str]] = []
            for line in gzip.decompress(path.read_bytes()).decode().split("\n")[:-1]:
                if _CWL_TS.match(line):
                    events.append([line[:24], line[25:]])
                else:
                    events[-1][1] += "\n" + line
            for ts, message in events:
                count(stream, ts, message)
            continue
        try:
            envelopes = _envelopes(path.read_bytes())
        except (OSError, EOFError, zlib.error, ValueError):
            read += 1
            quarantined += 1
            continue
        for env in envelopes:
            if env["messageType"] == "CONTROL_MESSAGE":
                control += 1
                continue
            for e in env["logEvents"]:
                ts = (
                    dt.datetime.fromtimestamp(e["timestamp"] / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[
                        :23
                    ]
                    + "Z"
                )
                count(env["logStream"], ts, e["message"])
    expected = manifest["sources"]["crawler"]["expected"]
    assert (read, quarantined, duplicates, loaded, skipped, control) == (
        expected["records_read"],
        expected["records_quarantined"],
        expected["records_duplicate"],
        expected["records_loaded"],
        expected["objects_skipped"],
        expected["control_messages"],
    )
    assert multiline == manifest["sources"]["crawler"]["mix"]["multiline_events"] > 0
