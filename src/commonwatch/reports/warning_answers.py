"""notify's ``warning_answers`` part: an answer to a warning moves the time-to-acknowledge rollup."""

from commonwatch.reports.acks import answered

__all__ = ["answered"]
