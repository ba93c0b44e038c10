"""A request refused with a status and a short message; raised before any write."""


class Refusal(Exception):
    """`reason` is a short fixed code for logs and metrics; `message` is safe to show."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
