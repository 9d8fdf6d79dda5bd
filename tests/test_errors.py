"""A full disk is recognised however the write that met it failed."""

import errno
import sqlite3

import psycopg.errors
from sqlalchemy.exc import OperationalError

from moviola.errors import is_disk_full


def raised_from(cause: BaseException) -> OperationalError:
    try:
        raise OperationalError("INSERT …", {}, cause) from cause
    except OperationalError as err:
        return err


def test_each_way_a_full_disk_shows_itself_is_recognised():
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_disk_full(raised_from(sqlite3.OperationalError("database or disk is full")))
    assert is_disk_full(raised_from(psycopg.errors.DiskFull("could not extend file")))


def test_other_failures_are_not_taken_for_a_full_disk():
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(raised_from(sqlite3.OperationalError("database is locked")))
    assert not is_disk_full(None)
