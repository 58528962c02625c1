"""The management API's one error body: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

from typing import Any


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
