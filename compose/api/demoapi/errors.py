"""The API's error type and the JSON shape of every error response."""

from fastapi.responses import JSONResponse


class ApiError(Exception):
    """An expected failure, answered as {"error": code, "message": ...} with `status`."""

    def __init__(self, status: int, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **details: object
) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **details}, status_code=status, headers=headers)
