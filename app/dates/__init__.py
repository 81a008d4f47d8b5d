"""Japanese calendar dates (和暦, 不詳日), the era table, and Japan's time zone."""

import datetime as dt

JST = dt.timezone(dt.timedelta(hours=9), "JST")  # UTC+9 all year: Japan has no daylight saving
