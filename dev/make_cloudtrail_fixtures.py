"""Build tests/fixtures/cloudtrail/: public sample records (a folder you name) in an AWSLogs tree.

    python dev/make_cloudtrail_fixtures.py --samples DIR [--out DIR]

The fixtures are committed; this rebuilds them from a local copy of the public samples listed in
tests/fixtures/PROVENANCE.md. Nothing reads that folder at test time.

The beats and integrations samples hold one record per line without the Records wrapper: they
are wrapped here. Files: mixed eventVersions and identity types, pretty-printed doc examples,
an insight file, a digest file (skipped), a Config file (skipped), a not-gzip file, a gzip
that is not JSON, a truncated gzip, and records without eventID or eventTime (quarantined).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_gz(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0))


def records_file(records: list[dict]) -> bytes:
    return json.dumps({"Records": records}, separators=(",", ":")).encode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", required=True, help="folder of the public CloudTrail samples")
    parser.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "cloudtrail"))
    args = parser.parse_args(argv)
    s, out = Path(args.samples), Path(args.out)
    docs = s / "awsdocs_examples"
    shutil.rmtree(out / "AWSLogs", ignore_errors=True)
    acct = out / "AWSLogs" / "111111111111"

    # Mixed eventVersions (1.0, 1.04, 1.05, 1.08, 1.09) and identities (IAMUser, AssumedRole,
    # AWSService, Root, no type); one 1.0 record without eventID; `accountid` in resources.
    mixed = (
        lines(s / "beats_assume-role-json.log")
        + lines(s / "integrations_test-assume-role-aws-service-json.log")
        + [json.loads((s / "integrations_test-put-object-json.log").read_text())]
        + json.loads((docs / "cloudtrail-log-file-examples__01.json").read_text())["Records"]
        + json.loads((docs / "cloudtrail-log-file-examples__07.json").read_text())["Records"]
        + [json.loads((docs / "cloudtrail-event-reference-aws-console-sign-in-events__09.json").read_text())]
        + [json.loads((docs / "non-api-aws-service-events__01.json").read_text())]
    )
    write_gz(
        acct
        / "CloudTrail/us-east-2/2019/10/02/111111111111_CloudTrail_us-east-2_20191002T2215Z_mixedVersions01.json.gz",
        records_file(mixed),
    )

    # No recipientAccountId in these (1.05 console sign-ins): it comes from the key's account.
    write_gz(
        out / "AWSLogs/111122223333/CloudTrail/us-east-2/2014/07/16/"
        "111122223333_CloudTrail_us-east-2_20140716T1550Z_consoleLogin0001.json.gz",
        records_file(lines(s / "beats_console-login-json.log")),
    )

    # A pretty-printed file as AWS's docs show it, verbatim.
    write_gz(
        out / "AWSLogs/111122223333/CloudTrail/us-east-2/2022/11/10/"
        "111122223333_CloudTrail_us-east-2_20221110T1625Z_prettyPrinted001.json.gz",
        (docs / "cloudtrail-event-reference-aws-console-sign-in-events__01.json").read_bytes(),
    )

    # Logstash re-serialised records (OTRF): no eventTime, extra @version/@timestamp keys.
    write_gz(
        acct
        / "CloudTrail/us-east-1/2020/09/14/111111111111_CloudTrail_us-east-1_20200914T0045Z_otrfLogstash0001.json.gz",
        records_file(lines(s / "otrf_ec2_proxy_s3_exfiltration_2020-09-14011940.json")[:3]),
    )

    # Insight events, in an organization trail's layout.
    insights = (
        lines(s / "beats_insight-json.log")
        + json.loads((docs / "cloudtrail-log-file-examples__08.json").read_text())["Records"]
    )
    write_gz(
        out / "AWSLogs/o-exampleorg1/123456789012/CloudTrail-Insight/us-east-1/2020/09/09/"
        "123456789012_CloudTrail-Insight_us-east-1_20200909T2305Z_insightFile00001.json.gz",
        records_file(insights),
    )

    # Not CloudTrail records: skipped.
    write_gz(
        out / "AWSLogs/144492464627/CloudTrail-Digest/us-west-2/2020/09/11/"
        "144492464627_CloudTrail-Digest_us-west-2_leh-ct-test_us-west-2_20200911T193649Z.json.gz",
        (s / "beats_cloudtrail-digest-json.log").read_bytes().strip(),
    )
    write_gz(
        acct
        / "Config/us-east-1/2020/8/31/ConfigHistory/111111111111_Config_us-east-1_ConfigHistory_x_1.json.gz",
        b'{"fileVersion":"1.0","configurationItems":[]}',
    )
    (acct / "CloudTrail/us-east-1/2020/09/14/README.txt").write_text("not a log file\n")

    # Corrupt objects: quarantined whole (record_index -1).
    bad = acct / "CloudTrail/us-east-1/2024/10/08"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "111111111111_CloudTrail_us-east-1_20241008T1015Z_notGzipAtAll0001.json.gz").write_bytes(
        b'{"Records": []}\n'
    )
    write_gz(
        bad / "111111111111_CloudTrail_us-east-1_20241008T1020Z_invalidJson00001.json.gz",
        b'{"Records": [{"eventID": "x",',
    )
    whole = gzip.compress(records_file(lines(s / "beats_assume-role-json.log") * 20), mtime=0)
    (bad / "111111111111_CloudTrail_us-east-1_20241008T1025Z_truncatedGzip001.json.gz").write_bytes(
        whole[: len(whole) // 2]
    )
    print(f"fixtures written under {out}")


if __name__ == "__main__":
    main()
