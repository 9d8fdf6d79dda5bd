import json
import logging

from moviola.logs import JsonFormatter


def test_records_become_one_json_object_with_their_extra_fields():
    record = logging.LogRecord(
        "moviola.worker", logging.INFO, "w.py", 1, "rendering %s", ("video_1",), None
    )
    record.job = "video_1"
    record.color_message = "\x1b[36mrendering\x1b[0m"  # uvicorn's coloured copy
    entry = json.loads(JsonFormatter().format(record))
    assert "color_message" not in entry
    assert entry["message"] == "rendering video_1"
    assert entry["level"] == "info" and entry["logger"] == "moviola.worker"
    assert entry["job"] == "video_1"
    assert entry["time"].endswith("Z")


def test_exceptions_are_kept():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, "x.py", 1, "failed", None, sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]
