"""Trust through the API, with the official `openai` SDK against a real `moviola serve`: signed
downloads, the credentials state in the response, blocked prompts, and the audit trail."""

import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest
from sqlalchemy import select

from moviola.media.provenance import TRAINED_ALGORITHMIC_MEDIA, read_credentials
from moviola.store import audit
from moviola.store.models import ApiKey, Video

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def moderation_endpoint():
    """A real `/v1/moderations` on loopback that flags prompts about violence, and is down
    (500) for prompts that say "outage"; `.asked` lists the prompts it was sent."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked.append(body["input"])
            if "outage" in body["input"]:
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            flagged = "violence" in body["input"]
            data = json.dumps(
                {"results": [{"flagged": flagged, "categories": {"violence": flagged}}]}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1/moderations"
    yield type("Endpoint", (str,), {"asked": asked})(url)
    server.shutdown()
    server.server_close()


def test_an_sdk_session_is_signed_moderated_and_audited(
    make_server, moderation_endpoint, small, tmp_path
):
    server = make_server(
        env={"MOVIOLA_BLOCKED_TERMS": "gore", "MOVIOLA_MODERATION_URL": moderation_endpoint}
    ).start()
    # The first start created the development identity, and said so.
    assert "created a development signing identity" in server.log.read_text()
    secret = server.create_key("studio")
    sessions = server.sessions()
    with sessions() as session:
        key_id = session.execute(select(ApiKey.id)).scalar_one()
    client = server.client(secret)

    video = client.videos.create_and_poll(prompt="a paper boat", **small)
    assert video.status == "completed", video.error
    assert video.moviola["credentials"] == "untrusted"  # parsed by the SDK as an extra field
    original = tmp_path / "boat.mp4"
    client.videos.download_content(video.id).write_to_file(original)
    credentials = read_credentials(original)
    assert credentials["state"] == "untrusted" and credentials["model"] == "tiny"
    assert credentials["actions"][0]["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
    with sessions() as session:
        assert session.get(Video, video.id).credentials == credentials

    remix = client.videos.remix(video.id, prompt="the same boat, at night")
    assert client.videos.poll(remix.id).status == "completed"
    remixed = tmp_path / "night.mp4"
    client.videos.download_content(remix.id).write_to_file(remixed)
    lineage = read_credentials(remixed)
    assert [a["action"] for a in lineage["actions"]] == ["c2pa.created", "c2pa.edited"]
    assert lineage["ingredients"] == [
        {"title": f"{video.id}.mp4", "relationship": "parentOf", "state": "untrusted"}
    ]

    # Blocked by a term, then by the external endpoint: 400 moderation_blocked, nothing queued.
    listed = [v.id for v in client.videos.list()]
    for prompt in ("gore everywhere", "a scene of violence"):
        with pytest.raises(openai.BadRequestError) as caught:
            client.videos.create(prompt=prompt, **small)
        assert caught.value.code == "moderation_blocked"
        assert caught.value.body["param"] == "prompt"
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.remix(video.id, prompt="more gore")
    assert caught.value.code == "moderation_blocked"
    assert [v.id for v in client.videos.list()] == listed
    with sessions() as session:
        assert session.query(Video).count() == 2

    client.videos.delete(remix.id)

    entries = audit.query(sessions, audit.Filter(actor=key_id))
    assert [(e["action"], e["video_id"]) for e in entries] == [
        ("create", video.id),
        ("download", video.id),
        ("remix", remix.id),
        ("download", remix.id),
        ("moderation", None),
        ("moderation", None),
        ("moderation", None),
        ("delete", remix.id),
    ]
    assert entries[2]["detail"]["source_video_id"] == video.id
    reasons = [e["detail"]["reason"] for e in entries if e["action"] == "moderation"]
    assert reasons[0] == "the prompt contains the blocked term 'gore'"
    assert reasons[1] == "the moderation service flagged the prompt (violence)"
    assert [e["detail"]["kind"] for e in entries if e["action"] == "moderation"] == [
        "create",
        "create",
        "remix",
    ]


def test_a_moderation_outage_answers_503_which_the_sdk_retries(
    make_server, moderation_endpoint, small
):
    server = make_server(env={"MOVIOLA_MODERATION_URL": moderation_endpoint}).start()
    client = server.client().with_options(max_retries=2)  # the SDK's default
    with pytest.raises(openai.InternalServerError) as caught:
        client.videos.create(prompt="during an outage", **small)
    assert caught.value.status_code == 503
    assert caught.value.code == "moderation_unavailable"
    assert caught.value.body["type"] == "server_error"
    # Not the caller's fault: the SDK tried again, as it does for any 5xx.
    assert moderation_endpoint.asked == ["during an outage"] * 3
    assert client.videos.list().data == []  # nothing queued


def test_a_studio_zip_download_is_audited_like_an_api_download(make_server, small):
    server = make_server().start()
    client = server.client()
    first = client.videos.create_and_poll(prompt="a heron", **small)
    second = client.videos.create_and_poll(prompt="a boat", **small)
    assert (first.status, second.status) == ("completed", "completed")
    zipped = httpx.get(
        f"{server.url}/library/download", params={"id": [first.id, second.id]}, timeout=60
    )
    assert zipped.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    # Named after their prompts (with the short id that keeps two of one prompt apart).
    assert sorted(names) == sorted(
        [f"a-heron-{first.id[6:14]}.mp4", f"a-boat-{second.id[6:14]}.mp4"]
    )
    downloads = audit.query(server.sessions(), audit.Filter(action="download", actor=audit.LOCAL))
    assert sorted(e["video_id"] for e in downloads) == sorted([first.id, second.id])
    assert [e["detail"] for e in downloads] == [{"variant": "video", "archive": "zip"}] * 2
