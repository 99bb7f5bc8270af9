"""CodePipeline: pipeline metadata timestamps as numbers.

Fixes: ``aws_codepipeline`` failing to read back after create (``GetPipeline`` sent ``created``/
``updated`` as ISO strings where the JSON protocol needs epoch numbers).
"""

from __future__ import annotations

from typing import Any


def patch_codepipeline_timestamps() -> None:
    """Return pipeline metadata ``created``/``updated`` as epoch seconds.

    Why: ``GetPipeline`` (and ``ListPipelines``) send ISO strings where the JSON protocol needs
    numbers, so the provider fails to read ``aws_codepipeline`` back after create.
    ``UpdatePipeline`` is wrapped so ``updated`` moves forward like on AWS.
    """
    from moto.codepipeline.models import CodePipeline, CodePipelineBackend

    def metadata(self: Any) -> dict[str, Any]:
        return {
            "pipelineArn": self._arn,
            "created": self._created.timestamp(),
            "updated": self._updated.timestamp(),
        }

    original_update = CodePipelineBackend.update_pipeline

    def update_pipeline(self: Any, pipeline: dict[str, Any]) -> dict[str, Any]:
        result = original_update(self, pipeline)
        from moto.core.utils import utcnow

        existing = self.pipelines.get(pipeline["name"])
        if existing is not None:
            existing._updated = utcnow()
        return result

    CodePipeline.metadata = property(metadata)  # type: ignore[assignment,method-assign]
    CodePipelineBackend.update_pipeline = update_pipeline  # type: ignore[method-assign]
