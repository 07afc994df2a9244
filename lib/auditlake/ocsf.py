"""CloudTrail events as OCSF 1.1.0 rows: API Activity (6003) and Authentication (3002).

Pure transforms over ``cloudtrail_events``; the field-by-field mapping is in docs/ocsf.md. Every
event goes to exactly one class: console sign-in events and federated sign-ins
(``AssumeRoleWithSAML`` / ``AssumeRoleWithWebIdentity``) are Authentication, every other
management or data event is API Activity. Network-activity events (VPC endpoint events) are
neither and are not exported.

Rows carry OCSF's nested objects as Spark structs; a field with no value is null, and an
object whose every field is null is null itself, so the JSON view of a row (``to_json``, which
drops nulls) holds only what the event said. ``unmapped`` (map<string,string>) keeps the raw
``requestParameters`` / ``responseElements`` / ``additionalEventData`` documents.

The Security Lake partition columns ``region``, ``accountId`` and ``eventDay`` (``YYYYMMDD``)
are added by :func:`with_security_lake_partitions`; an event whose region or account is not a
valid value cannot be placed and is returned by :func:`unplaceable` with the reason.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from auditlake.entities import ip_kind

OCSF_VERSION = "1.1.0"
API_ACTIVITY = "api_activity"
AUTHENTICATION = "authentication"
CLASSES = (API_ACTIVITY, AUTHENTICATION)

FEDERATED_SIGN_INS = ("AssumeRoleWithSAML", "AssumeRoleWithWebIdentity")
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$"
ACCOUNT_PATTERN = r"^\d{12}$"
# OCSF hostname_t
_HOSTNAME = r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$"

# API Activity activity_id from the action's verb (CloudTrail has no CRUD field). readOnly=true
# is Read whatever the verb; a verb in none of these lists is Other (99) with the event name.
_CREATE = (
    "Create",
    "Put",
    "Add",
    "Attach",
    "Register",
    "Import",
    "Allocate",
    "Issue",
    "Generate",
    "Upload",
    "Run",
    "Copy",
    "Publish",
    "Send",
)
_READ = (
    "Get",
    "List",
    "Describe",
    "Head",
    "Lookup",
    "Search",
    "Select",
    "BatchGet",
    "Query",
    "Scan",
    "Check",
)
_UPDATE = (
    "Update",
    "Modify",
    "Set",
    "Change",
    "Enable",
    "Disable",
    "Start",
    "Stop",
    "Reset",
    "Tag",
    "Untag",
    "Grant",
    "Revoke",
    "Associate",
    "Replace",
    "Restore",
    "Rotate",
    "BatchUpdate",
    "Rename",
    "Reboot",
)
_DELETE = (
    "Delete",
    "Remove",
    "Detach",
    "Terminate",
    "Deregister",
    "Disassociate",
    "Cancel",
    "Purge",
    "BatchDelete",
    "ScheduleKeyDeletion",
)

_API_ACTIVITIES = {0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}
_AUTH_ACTIVITIES = {0: "Unknown", 1: "Logon", 2: "Logoff", 99: "Other"}

# userIdentity.type -> OCSF user.type_id (0 Unknown, 1 User, 2 Admin, 3 System, 99 Other).
_USER_TYPE_IDS = {
    "IAMUser": 1,
    "IdentityCenterUser": 1,
    "Root": 2,
    "AWSService": 3,
    "AWSAccount": 99,
    "AssumedRole": 99,
    "FederatedUser": 99,
    "SAMLUser": 99,
    "WebIdentityUser": 99,
    "Role": 99,
}


def _starts_with_any(col: Column, prefixes: tuple[str, ...]) -> Column:
    return F.coalesce(col.rlike("^(" + "|".join(prefixes) + ")([A-Z0-9]|$)"), F.lit(False))


def _caption(id_col: Column, captions: dict[int, str]) -> Column:
    out = F.lit(None).cast("string")
    for k, v in captions.items():
        out = F.when(id_col == k, F.lit(v)).otherwise(out)
    return out


def _obj(**fields: Column) -> Column:
    """A struct of the fields, or null when every field is null."""
    cols = list(fields.values())
    any_set = F.lit(False)
    for c in cols:
        any_set = any_set | c.isNotNull()
    return F.when(any_set, F.struct(*[c.alias(n) for n, c in fields.items()]))


def _millis(ts: Column) -> Column:
    return F.when(ts.isNotNull(), (F.unix_micros(ts) / 1000).cast("bigint"))


def _non_null_map(**fields: Column) -> Column:
    pairs = [x for n, c in fields.items() for x in (F.lit(n), c.cast("string"))]
    m = F.map_filter(F.create_map(*pairs), lambda _k, v: v.isNotNull())
    return F.when(F.size(m) > 0, m)


def is_authentication() -> Column:
    """Whether a cloudtrail_events row is an authentication event (console or federated sign-in)."""
    return F.coalesce(F.col("event_type") == "AwsConsoleSignIn", F.lit(False)) | F.coalesce(
        F.col("event_name").isin(*FEDERATED_SIGN_INS), F.lit(False)
    )


def api_activity_id(event_name: Column, read_only: Column) -> Column:
    """OCSF API Activity activity_id (1 Create, 2 Read, 3 Update, 4 Delete, 99 Other, 0 Unknown)."""
    return (
        F.when(event_name.isNull(), F.lit(0))
        .when(F.coalesce(read_only, F.lit(False)), F.lit(2))
        .when(_starts_with_any(event_name, _DELETE), F.lit(4))
        .when(_starts_with_any(event_name, _CREATE), F.lit(1))
        .when(_starts_with_any(event_name, _READ), F.lit(2))
        .when(_starts_with_any(event_name, _UPDATE), F.lit(3))
        .otherwise(F.lit(99))
    )


def authentication_activity_id(event_name: Column) -> Column:
    """OCSF Authentication activity_id: sign-ins are Logon (1), sign-outs Logoff (2), others 99."""
    return (
        F.when(event_name.isNull(), F.lit(0))
        .when(event_name.rlike("(?i)(logout|logoff|signout)"), F.lit(2))
        .when(
            event_name.isin(
                "ConsoleLogin",
                "SwitchRole",
                "ExternalIdPDirectoryLogin",
                "UserAuthentication",
                *FEDERATED_SIGN_INS,
            ),
            F.lit(1),
        )
        .otherwise(F.lit(99))
    )


def _status(failed: Column) -> list[Column]:
    status_id = F.when(failed, F.lit(2)).otherwise(F.lit(1))
    return [
        status_id.alias("status_id"),
        F.when(failed, F.lit("Failure")).otherwise(F.lit("Success")).alias("status"),
        F.col("error_code").alias("status_code"),
        F.col("error_message").alias("status_detail"),
    ]


def _user() -> Column:
    type_id = F.lit(None).cast("int")
    for name, value in _USER_TYPE_IDS.items():
        type_id = F.when(F.col("user_type") == name, F.lit(value)).otherwise(type_id)
    type_id = F.when(F.col("user_type").isNotNull(), F.coalesce(type_id, F.lit(99)))
    is_service = F.col("user_type") == "AWSService"
    return _obj(
        uid=F.col("user_arn"),
        uid_alt=F.col("user_principal_id"),
        name=F.coalesce(F.col("user_name"), F.when(is_service, F.col("invoked_by"))),
        type=F.col("user_type"),
        type_id=type_id,
        credential_uid=F.col("access_key_id"),
        account=_obj(
            uid=F.col("user_account_id"),
            type=F.when(F.col("user_account_id").isNotNull(), F.lit("AWS Account")),
            type_id=F.when(F.col("user_account_id").isNotNull(), F.lit(10)),
        ),
    )


def _session() -> Column:
    return _obj(
        issuer=F.col("session_issuer_arn"),
        is_mfa=F.col("session_mfa_authenticated"),
        created_time=_millis(F.col("session_creation_date")),
        credential_uid=F.col("access_key_id"),
    )


def _src_endpoint() -> Column:
    """sourceIPAddress: an address goes to ``ip``, a service host name to ``hostname``, anything else
    (``AWS Internal``) to ``name``."""
    src = F.trim(F.col("source_ip_address"))
    is_ip = ip_kind(src).isNotNull()
    return _obj(
        ip=F.when(is_ip, src),
        hostname=F.when(~is_ip & src.rlike(_HOSTNAME), src),
        name=F.when(~is_ip & ~src.rlike(_HOSTNAME), src),
    )


def _common(
    class_uid: int,
    category_uid: int,
    class_name: str,
    category_name: str,
    activity_id: Column,
    activities: dict[int, str],
) -> list[Column]:
    activity_name = F.coalesce(_caption(activity_id, activities), F.col("event_name"))
    activity_name = F.when(activity_id == 99, F.coalesce(F.col("event_name"), activity_name)).otherwise(
        activity_name
    )
    return [
        activity_id.cast("int").alias("activity_id"),
        activity_name.alias("activity_name"),
        F.lit(category_uid).alias("category_uid"),
        F.lit(category_name).alias("category_name"),
        F.lit(class_uid).alias("class_uid"),
        F.lit(class_name).alias("class_name"),
        (F.lit(class_uid * 100) + activity_id).cast("bigint").alias("type_uid"),
        F.concat(F.lit(f"{class_name}: "), activity_name).alias("type_name"),
        _millis(F.col("event_time")).alias("time"),
        F.lit(0).alias("timezone_offset"),
        F.lit(1).alias("severity_id"),
        F.lit("Informational").alias("severity"),
        F.struct(
            F.lit(OCSF_VERSION).alias("version"),
            F.struct(
                F.lit("CloudTrail").alias("name"),
                F.lit("AWS").alias("vendor_name"),
                F.col("event_version").alias("version"),
                _obj(name=F.col("event_category")).alias("feature"),
            ).alias("product"),
            F.array(F.lit("cloud")).alias("profiles"),
            F.col("event_id").alias("uid"),
            F.col("shared_event_id").alias("correlation_uid"),
            F.col("event_type").alias("event_code"),
            F.lit("CloudTrail").alias("log_name"),
            F.lit("AWS CloudTrail").alias("log_provider"),
            F.date_format(F.col("event_time"), "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("original_time"),
        ).alias("metadata"),
        F.struct(
            F.lit("AWS").alias("provider"),
            F.col("aws_region").alias("region"),
            _obj(uid=F.col("recipient_account_id"), type=F.lit("AWS Account"), type_id=F.lit(10)).alias(
                "account"
            ),
        ).alias("cloud"),
        _src_endpoint().alias("src_endpoint"),
        _obj(user_agent=F.col("user_agent")).alias("http_request"),
        _non_null_map(
            request_parameters=F.col("request_parameters"),
            response_elements=F.col("response_elements"),
            additional_event_data=F.col("additional_event_data"),
            service_event_details=F.col("service_event_details"),
            event_category=F.col("event_category"),
            recipient_account_id=F.col("recipient_account_id"),
            tls_version=F.col("tls_version"),
            cipher_suite=F.col("cipher_suite"),
            client_provided_host_header=F.col("client_provided_host_header"),
            vpc_endpoint_id=F.col("vpc_endpoint_id"),
        ).alias("unmapped"),
    ]


def to_api_activity(events: DataFrame) -> DataFrame:
    """cloudtrail_events -> OCSF API Activity (6003) rows, authentication events left out."""
    calls = events.where(
        ~is_authentication() & F.coalesce(F.col("event_category") != "NetworkActivity", F.lit(True))
    )
    activity = api_activity_id(F.col("event_name"), F.col("read_only"))
    return calls.select(
        *_common(6003, 6, "API Activity", "Application Activity", activity, _API_ACTIVITIES),
        *_status(F.col("error_code").isNotNull()),
        F.struct(
            F.coalesce(F.col("event_name"), F.lit("unknown")).alias("operation"),
            _obj(name=F.col("event_source")).alias("service"),
            _obj(uid=F.col("request_id")).alias("request"),
            _obj(error=F.col("error_code"), message=F.col("error_message")).alias("response"),
        ).alias("api"),
        _obj(user=_user(), session=_session(), invoked_by=F.col("invoked_by")).alias("actor"),
        F.transform(
            F.col("resources"),
            lambda r: F.struct(
                r["arn"].alias("uid"),
                r["type"].alias("type"),
                _obj(account=_obj(uid=r["account_id"])).alias("owner"),
            ),
        ).alias("resources"),
        F.col("aws_region").alias("_region"),
        F.col("recipient_account_id").alias("_account"),
        F.col("event_date").alias("_day"),
        F.col("event_id").alias("_event_id"),
        F.col("source_object").alias("_source_object"),
        F.when(
            F.col("source_ip_address").isNull(),
            F.lit("no sourceIPAddress: API Activity requires src_endpoint"),
        )
        .when(
            _obj(user=_user(), invoked_by=F.col("invoked_by")).isNull(),
            F.lit("no userIdentity: API Activity requires actor"),
        )
        .alias("_problem"),
    )


def to_authentication(events: DataFrame) -> DataFrame:
    """cloudtrail_events -> OCSF Authentication (3002) rows (console and federated sign-ins)."""
    signins = events.where(is_authentication())
    result = F.get_json_object(F.col("response_elements"), "$.ConsoleLogin")
    mfa = F.get_json_object(F.col("additional_event_data"), "$.MFAUsed")
    failed = F.col("error_code").isNotNull() | F.coalesce(result == "Failure", F.lit(False))
    protocol = (
        F.when(F.col("event_name") == "AssumeRoleWithSAML", F.lit(5))
        .when(F.col("event_name") == "AssumeRoleWithWebIdentity", F.lit(4))
        .otherwise(F.lit(0))
    )
    return signins.select(
        *_common(
            3002,
            3,
            "Authentication",
            "Identity & Access Management",
            authentication_activity_id(F.col("event_name")),
            _AUTH_ACTIVITIES,
        ),
        *_status(failed),
        _user().alias("user"),
        _obj(user=_user(), invoked_by=F.col("invoked_by")).alias("actor"),
        _session().alias("session"),
        F.struct(F.col("event_source").alias("name")).alias("service"),
        F.when(mfa == "Yes", F.lit(True)).when(mfa == "No", F.lit(False)).alias("is_mfa"),
        F.lit(True).alias("is_remote"),
        protocol.alias("auth_protocol_id"),
        F.when(protocol == 5, F.lit("SAML"))
        .when(protocol == 4, F.lit("OpenID"))
        .otherwise(F.lit("Unknown"))
        .alias("auth_protocol"),
        F.col("aws_region").alias("_region"),
        F.col("recipient_account_id").alias("_account"),
        F.col("event_date").alias("_day"),
        F.col("event_id").alias("_event_id"),
        F.col("source_object").alias("_source_object"),
        F.when(_user().isNull(), F.lit("no userIdentity: Authentication requires user")).alias("_problem"),
    )


def unplaceable(rows: DataFrame) -> DataFrame:
    """Rows of :func:`to_api_activity` / :func:`to_authentication` that no partition can hold, with why."""
    reason = (
        F.when(F.col("_problem").isNotNull(), F.col("_problem"))
        .when(F.col("_day").isNull(), F.lit("no event day"))
        .when(
            ~F.coalesce(F.col("_region").rlike(REGION_PATTERN), F.lit(False)),
            F.lit("awsRegion is not an AWS region name"),
        )
        .when(
            ~F.coalesce(F.col("_account").rlike(ACCOUNT_PATTERN), F.lit(False)),
            F.lit("recipientAccountId is not a 12-digit account id"),
        )
    )
    return rows.select("*", reason.alias("_reason")).where(F.col("_reason").isNotNull())


def with_security_lake_partitions(rows: DataFrame) -> DataFrame:
    """Placeable rows with ``region``, ``accountId`` and ``eventDay`` (``YYYYMMDD``) last."""
    ok = (
        F.col("_problem").isNull()
        & F.col("_day").isNotNull()
        & F.coalesce(F.col("_region").rlike(REGION_PATTERN), F.lit(False))
        & F.coalesce(F.col("_account").rlike(ACCOUNT_PATTERN), F.lit(False))
    )
    data = [c for c in rows.columns if not c.startswith("_")]
    return rows.where(ok).select(
        *data,
        F.col("_region").alias("region"),
        F.col("_account").alias("accountId"),
        F.date_format(F.col("_day"), "yyyyMMdd").alias("eventDay"),
    )
