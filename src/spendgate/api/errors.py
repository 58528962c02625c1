"""The management API's one error body: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ApiError(Exception):
    """An error answered by the management API, with a message that says how to fix it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON body for this error."""
        return {"error": {"code": self.code, "message": self.message}}


def reject_nulls(body: BaseModel) -> None:
    """A PATCH body whose every field must be left out rather than sent as null."""
    for field in sorted(body.model_fields_set):
        if getattr(body, field) is None:
            raise ApiError(
                400, "invalid_request", f"{field}: cannot be null; leave it out to keep it"
            )
