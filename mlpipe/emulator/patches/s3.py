"""S3 (everything but bucket policies): logging targets, access log delivery, notifications, delete markers.

Fixes: ``PutBucketLogging`` crashing on a target policy with ``Principal: "*"``, the log bucket
refilling during ``force_destroy``, ``eventbridge = true`` drifting on every plan, and destroy of a
versioned bucket crashing on a delete marker. Bucket policy evaluation is in
:mod:`mlpipe.emulator.patches.s3_bucket_policy`.
"""

from __future__ import annotations

import json
from typing import Any


def patch_s3_logging_target_policy() -> None:
    """Let ``PutBucketLogging`` read target policies that also hold ``Principal: "*"`` statements.

    Why: moto 5.2.5 looks for the logging-service grant with ``stmt["Principal"].get(...)`` and
    crashes (HTTP 500) on any statement whose principal is the string ``"*"``, such as the
    TLS-only deny every hardened bucket has. Such statements are skipped in the search; the
    grant itself is still required exactly as moto checks it.
    """
    from moto.s3.models import FakeBucket

    original = FakeBucket._log_permissions_enabled_policy

    def log_permissions_enabled_policy(target_bucket: Any, target_prefix: str | None) -> bool:
        policy = target_bucket.policy
        if not policy:
            return False
        document = json.loads(policy.decode() if isinstance(policy, bytes) else policy)
        statements = document.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        usable = [st for st in statements if isinstance(st.get("Principal"), dict)]
        if len(usable) == len(statements):
            return bool(original(target_bucket, target_prefix))
        saved = target_bucket.policy
        try:
            target_bucket.policy = json.dumps({**document, "Statement": usable}).encode()
            return bool(original(target_bucket, target_prefix))
        finally:
            target_bucket.policy = saved

    FakeBucket._log_permissions_enabled_policy = staticmethod(log_permissions_enabled_policy)  # type: ignore[method-assign]


def patch_s3_no_access_log_delivery() -> None:
    """Do not write server access log objects into the target bucket.

    Why: moto writes a log object into the target bucket synchronously on every request to a
    bucket with logging on, including the requests of ``terraform destroy`` itself, so the log
    bucket refills while its ``force_destroy`` empties it and DeleteBucket fails with
    BucketNotEmpty. (AWS delivers access logs asynchronously, best effort.) The logging
    configuration is still stored, validated and returned; only the delivery is off locally.
    """
    from moto.s3.models import S3Backend

    def log_incoming_request(self: Any, request: Any, bucket_name: str) -> None:
        return None

    S3Backend.log_incoming_request = log_incoming_request  # type: ignore[method-assign]


def patch_s3_eventbridge_notification() -> None:
    """Return ``<EventBridgeConfiguration/>`` when EventBridge delivery is switched on.

    Why: moto stores ``EventBridgeConfiguration`` from ``PutBucketNotificationConfiguration`` but
    leaves it out of the Get response, so ``aws_s3_bucket_notification { eventbridge = true }``
    reads back as false and every plan shows a change.
    """
    from moto.s3.responses import S3Response

    original = S3Response.get_bucket_notification

    def get_bucket_notification(self: Any) -> Any:
        result = original(self)
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or getattr(config, "event_bridge", None) is None:
            return result
        status, headers, body = result
        text = body.decode() if isinstance(body, bytes) else str(body)
        marker = "</NotificationConfiguration>"
        if "EventBridgeConfiguration" not in text:
            if marker in text:
                text = text.replace(marker, f"<EventBridgeConfiguration/>{marker}")
            else:  # empty result rendered as a self-closed element
                text = (
                    '<?xml version="1.0" encoding="UTF-8"?>'
                    '<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    f"<EventBridgeConfiguration/>{marker}"
                )
        headers = dict(headers)
        headers.pop("Content-Length", None)
        headers.pop("content-length", None)
        return status, headers, text.encode() if isinstance(body, bytes) else text

    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]


def patch_s3_delete_marker_dispose() -> None:
    """Give ``FakeDeleteMarker`` the no-op ``dispose()`` every stored version is expected to have.

    Why: when the last version of a key is removed while a delete marker is still in its history,
    moto disposes every entry and crashes on the marker (``AttributeError``, HTTP 500). The
    provider empties versioned buckets exactly that way on ``force_destroy``, so destroy failed
    once an object had been deleted (a marker exists). A marker holds no data, so nothing to free.
    """
    from moto.s3.models import FakeDeleteMarker

    if not hasattr(FakeDeleteMarker, "dispose"):

        def dispose(self: Any, garbage: bool = False) -> None:
            return None

        FakeDeleteMarker.dispose = dispose  # type: ignore[attr-defined]
