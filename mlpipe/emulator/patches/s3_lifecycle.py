"""S3 lifecycle configurations: ``TransitionDefaultMinimumObjectSize`` kept as the caller set it.

Fixes: ``aws_s3_bucket_lifecycle_configuration`` with
``transition_default_minimum_object_size = "varies_by_storage_class"`` never finishing its create:
moto 5.2.5 ignores the request header and always reads back ``all_storage_classes_128K``, so the
provider's read-back comparison never holds (see docs/emulator-notes.md, "Provider waits").
"""

from __future__ import annotations

from typing import Any

#: The header that carries the setting on PutBucketLifecycleConfiguration (request and answer)
#: and on GetBucketLifecycleConfiguration (answer).
TDMOS_HEADER = "x-amz-transition-default-minimum-object-size"
#: What S3 applies when a PUT names no value (its default for new configurations since 2024-09).
TDMOS_DEFAULT = "all_storage_classes_128K"
#: Where the value lives on moto's ``FakeBucket`` (gone with the bucket, replaced by every PUT).
_BUCKET_ATTR = "mlpipe_transition_default_minimum_object_size"


def patch_s3_lifecycle_transition_default_minimum_object_size() -> None:
    """Store ``TransitionDefaultMinimumObjectSize`` per bucket on PUT; return it on PUT and GET.

    Why: provider 5.100.0 creates the resource with PutBucketLifecycleConfiguration and then
    ``waitLifecycleConfigEquals`` (internal/service/s3/bucket_lifecycle_configuration.go) polls
    GetBucketLifecycleConfiguration until ``lifecycleConfigEqual`` holds 10 times in a row; its
    first comparison is ``TransitionDefaultMinimumObjectSize``. moto answers the constant
    ``all_storage_classes_128K`` whatever was sent, so ``varies_by_storage_class`` never matched:
    the create waited out its 3-minute timeout and failed. S3 keeps the value the PUT named
    (``all_storage_classes_128K`` when none) and returns it in the header of both answers, as
    this does now. The provider's default value, which the project sends, matched before and
    still does: this removes a timeout, not the waiter's fixed 55 s schedule.
    """
    from moto.s3.exceptions import InvalidArgumentError
    from moto.s3.models import TransitionDefaultMinimumObjectSize
    from moto.s3.responses import S3Response

    allowed = {member.value for member in TransitionDefaultMinimumObjectSize}
    original_put = S3Response._bucket_response_put
    original_get = S3Response.get_bucket_lifecycle

    def bucket_response_put(self: Any, request: Any, bucket_name: str, querystring: dict[str, Any]) -> Any:
        if "lifecycle" not in (querystring or {}):
            return original_put(self, request, bucket_name, querystring)
        value = request.headers.get(TDMOS_HEADER) or TDMOS_DEFAULT
        if value not in allowed:  # checked before anything is stored (the provider validates it too)
            raise InvalidArgumentError(f"Invalid value for {TDMOS_HEADER}: {value}", TDMOS_HEADER, value)
        response = original_put(self, request, bucket_name, querystring)
        if not isinstance(response, (str, bytes)):  # an error answer (e.g. 411): nothing was stored
            return response
        setattr(self.backend.get_bucket(bucket_name), _BUCKET_ATTR, value)
        return 200, {TDMOS_HEADER: value}, response

    def get_bucket_lifecycle(self: Any) -> Any:
        status, headers, body = original_get(self)
        value = getattr(self.backend.get_bucket(self.bucket_name), _BUCKET_ATTR, None)
        if value:
            for name in [name for name in headers if name.lower() == TDMOS_HEADER]:
                del headers[name]
            headers[TDMOS_HEADER] = value
        return status, headers, body

    S3Response._bucket_response_put = bucket_response_put  # type: ignore[method-assign]
    S3Response.get_bucket_lifecycle = get_bucket_lifecycle  # type: ignore[method-assign]
