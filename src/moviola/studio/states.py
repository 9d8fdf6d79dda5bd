"""A video's state as creators read it, and where "edit & retry" takes them.

The Videos API has four statuses; a job stopped on request is `failed` there, with the error
code `cancelled` (the honest mapping the `openai` SDK's `Video` type allows). The Studio says
what happened: "cancelled", which is not a failure.
"""

from __future__ import annotations

from urllib.parse import urlencode

from moviola.jobs.queue import CANCELLED
from moviola.store.models import Video, VideoKind, VideoStatus

# The actions of a video's page that a video of each kind was made by (see video.html).
_ACTIONS = {VideoKind.REMIX: "remix", VideoKind.EDIT: "edit", VideoKind.EXTEND: "extend"}


def shown_status(video: Video) -> str:
    """`queued`, `in_progress`, `completed`, `failed` or `cancelled`."""
    if video.status == VideoStatus.FAILED and video.error_code == CANCELLED:
        return CANCELLED
    return str(video.status)


def edit_again_url(video: Video) -> str | None:
    """Where "edit & retry" opens the form `video` was made with, filled in as it was: Create
    or Storyboard, or the action's form on its source's page. None when there is no form to
    reopen (an edit or extension of an uploaded file)."""
    kind = VideoKind(video.kind)
    if kind in (VideoKind.CREATE, VideoKind.IMPORT):
        return "/?" + urlencode({"from": video.id, "seed": "1"})  # its seed too: its settings
    if kind is VideoKind.STORYBOARD:
        return "/storyboard?" + urlencode({"from": video.id})
    source = video.remixed_from_video_id or video.source_video_id
    if source is None:
        return None
    query = urlencode({"again": video.id})
    return f"/videos/{source}?{query}#{_ACTIONS[kind]}-form"
