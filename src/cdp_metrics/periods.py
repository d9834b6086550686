"""Reporting periods (contract §3): calendar-month arithmetic that clamps to the month's end."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta


def add_months(d: date, months: int) -> date:
    """`d` plus `months` calendar months, clamped to the last day of the target month.

    >>> add_months(date(2023, 8, 31), 6)
    datetime.date(2024, 2, 29)
    >>> add_months(date(2023, 9, 30), -12)
    datetime.date(2022, 9, 30)
    """
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def last_month_end_on_or_before(d: date) -> date:
    """The last day of a month that is on or before `d`.

    >>> last_month_end_on_or_before(date(2023, 10, 15))
    datetime.date(2023, 9, 30)
    >>> last_month_end_on_or_before(date(2023, 9, 30))
    datetime.date(2023, 9, 30)
    """
    if d.day == calendar.monthrange(d.year, d.month)[1]:
        return d
    return d.replace(day=1) - timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """A reporting period, both ends inclusive."""

    start: date
    end: date

    @classmethod
    def ending(cls, end: date, months: int = 12) -> Period:
        """The `months` months ending on `end`: start = end − months + 1 day.

        When `end` is the last day of a month, the period is the `months` whole
        calendar months ending with that month: end − months is then taken to
        the month end `months` earlier, so the quarter ending 30 June starts on
        1 April (plain clamping would give 30 March + 1 day = 31 March).

        >>> Period.ending(date(2023, 6, 30), 3).start
        datetime.date(2023, 4, 1)
        >>> Period.ending(date(2023, 9, 15), 12).start
        datetime.date(2022, 9, 16)
        """
        if months < 1:
            raise ValueError("months must be at least 1")
        if end == last_month_end_on_or_before(end):
            return cls(add_months(end.replace(day=1), -(months - 1)), end)
        return cls(add_months(end, -months) + timedelta(days=1), end)

    def as_json(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    def __str__(self) -> str:
        return f"{self.start.day} {self.start:%b %Y} to {self.end.day} {self.end:%b %Y}"
