"""Forms in the staff UI: fill from the record, correct, file; sign on the tablet; edit and approve."""

from __future__ import annotations

import base64
import io
import re
import struct
import subprocess
import threading
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageDraw
from sqlalchemy import select

from app import storage
from app.audit.models import AuditEntry
from app.forms import trial
from app.forms.models import Application, FormVersion
from app.forms.signature import SignatureError, decode_signature
from app.pdf import renderer
from tests.conftest import csrf_token, login, make_staff, tenant_session
from tests.forms_support import TENANT, import_family, pdf_text


def signature_png(width: int = 600, height: int = 200, ink: bool = True) -> bytes:
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if ink:
        ImageDraw.Draw(image).line(
            [(20, 150), (200, 40), (380, 160), (560, 50)], fill=(0, 0, 0, 255), width=5
        )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def claiming_size(png: bytes, width: int, height: int) -> bytes:
    """The PNG with its header (IHDR) claiming another size, its checksum right: what a crafted file
    sends to make a decoder allocate gigabytes."""
    # signature (8), length (4), "IHDR" (4), then 13 bytes: width, height, depth, colour, 3 methods
    chunk = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[33:]


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def staff_client(
    app: Flask, tenant: str = TENANT, groups: tuple[str, ...] = ("監督者", "管理者", "署名タブレット")
) -> tuple[FlaskClient, str]:
    login_id = f"s{uuid.uuid4().hex[:8]}"
    user_id = make_staff(tenant, login_id, groups=groups)
    client = app.test_client()
    login(client, tenant, login_id)
    return client, str(user_id)


@pytest.fixture
def head(clean: None, tmp_path: Path) -> int:
    return import_family(tmp_path)


def audit_actions() -> list[str]:
    with tenant_session(TENANT) as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def file_application(client: FlaskClient, head: int, **values: str) -> int:
    path = f"/{TENANT}/residents/{head}/forms/juumin_idou"
    data = {"csrf_token": csrf_token(client, path), "action": "submit", "v_phone": "0738-22-0001", **values}
    response = client.post(path, data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    match = re.search(r"/applications/(\d+)$", response.headers["Location"])
    assert match
    return int(match.group(1))


# --- the counter ------------------------------------------------------------------------------------


def test_clerk_opens_a_form_filled_from_the_record_and_files_it(
    app: Flask, head: int, tmp_path: Path
) -> None:
    client, _ = staff_client(app)
    listing = client.get(f"/{TENANT}/residents/{head}/forms?form=juumin_idou").get_data(as_text=True)
    assert "住民異動届" in listing
    assert "案内で必要" in listing

    page = client.get(f"/{TENANT}/residents/{head}/forms/juumin_idou?event_date=2026-12-01").get_data(
        as_text=True
    )
    assert 'value="𠮷田\u3000太郎"' in page  # filled from the record
    assert "令和8年12月1日" in page  # the event date, in 和暦
    assert "𠮷田\u3000﨑子" in page
    assert "𠮷田\u3000髙志" in page
    assert "form.filled" in audit_actions()

    path = f"/{TENANT}/residents/{head}/forms/juumin_idou"
    refused = client.post(
        path, data={"csrf_token": csrf_token(client, path), "action": "submit", "v_applicant_kana": "yoshida"}
    )
    text = refused.get_data(as_text=True)
    assert refused.status_code == 200
    assert "フリガナはカナで入力してください" in text
    assert 'aria-invalid="true"' in text
    with tenant_session(TENANT) as session:
        assert session.scalars(select(Application)).first() is None  # nothing half-filed

    preview = client.post(path, data={"csrf_token": csrf_token(client, path), "action": "preview"})
    assert preview.mimetype == "application/pdf"
    assert "𠮷田" in pdf_text(preview.data, tmp_path)

    application_id = file_application(client, head)
    detail = client.get(f"/{TENANT}/applications/{application_id}").get_data(as_text=True)
    assert "受付（未受理）" in detail
    assert "0738-22-0001" in detail
    assert "未署名" in detail
    pdf = client.get(f"/{TENANT}/applications/{application_id}/pdf")
    assert "𠮷田" in pdf_text(pdf.data, tmp_path)
    assert {"application.submitted", "application.viewed", "application.pdf_read"} <= set(audit_actions())

    detail_path = f"/{TENANT}/applications/{application_id}"
    client.post(f"{detail_path}/accept", data={"csrf_token": csrf_token(client, detail_path)})
    assert "受理済み" in client.get(detail_path).get_data(as_text=True)
    assert "受理済み" in client.get(f"/{TENANT}/applications?status=accepted").get_data(as_text=True)


# --- the pen tablet ---------------------------------------------------------------------------------


def test_the_signer_sees_the_form_and_the_signature_is_attached(
    app: Flask, head: int, tmp_path: Path
) -> None:
    clerk, _ = staff_client(app)
    application_id = file_application(clerk, head)
    tablet, _ = staff_client(app)
    assert f"申請番号 {application_id}" in tablet.get(f"/{TENANT}/tablet").get_data(as_text=True)

    sign_path = f"/{TENANT}/applications/{application_id}/sign"
    page = tablet.get(sign_path).get_data(as_text=True)
    assert page.count('src="data:image/png;base64,') == 1  # the one-page form, shown to the signer
    blank = tablet.post(sign_path, data={"csrf_token": csrf_token(tablet, sign_path),
                                         "signature": data_url(signature_png(ink=False))})  # fmt: skip
    assert "署名がありません" in blank.get_data(as_text=True)

    signed = tablet.post(
        sign_path, data={"csrf_token": csrf_token(tablet, sign_path), "signature": data_url(signature_png())}
    )
    assert "署名を受け付けました" in signed.get_data(as_text=True)
    with tenant_session(TENANT) as session:
        application = session.get(Application, application_id)
        assert application is not None
        assert application.signature_key is not None
        assert storage.get(application.signature_key).startswith(b"\x89PNG")
        pdf = storage.get(application.pdf_key or "")
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    images = subprocess.run(
        ["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert len(images.strip().splitlines()) >= 3  # header lines + the signature image
    assert "署名済み" in clerk.get(f"/{TENANT}/applications/{application_id}").get_data(as_text=True)
    assert f"申請番号 {application_id}" not in tablet.get(f"/{TENANT}/tablet").get_data(as_text=True)

    token = csrf_token(tablet, f"/{TENANT}/applications/{application_id}")
    again = tablet.post(sign_path, data={"csrf_token": token, "signature": data_url(signature_png())})
    assert "署名済み" in again.get_data(as_text=True)
    assert "application.signed" in audit_actions()


def test_signature_images_are_checked() -> None:
    assert decode_signature(data_url(signature_png())).startswith(b"\x89PNG")
    for bad, reason in [
        ("data:image/jpeg;base64,AAAA", "PNG のみ"),
        ("data:image/png;base64,!!!", "読み取れません"),
        (data_url(b"\x89PNG\r\n\x1a\n" + b"0" * 100), "読み取れません"),
        (data_url(signature_png(ink=False)), "署名がありません"),
        (data_url(signature_png(width=10, height=10, ink=False)), "大きさ"),
        (data_url(signature_png(width=3000, height=200)), "大きさ"),
        # headers claiming a decompression bomb's size: Pillow's refusal and its warning range
        (data_url(claiming_size(signature_png(), 100_000, 100_000)), "大きさ"),
        (data_url(claiming_size(signature_png(), 10_000, 10_000)), "大きさ"),
    ]:
        with pytest.raises(SignatureError, match=reason):
            decode_signature(bad)


def test_api_signature_and_accepted_applications_stay_unsigned(app: Flask, head: int) -> None:
    client, _ = staff_client(app)
    application_id = file_application(client, head)
    api = f"/api/v1/{TENANT}/applications/{application_id}"
    bad = client.post(f"{api}/signature", json={"signature_png": base64.b64encode(b"GIF89a").decode()})
    assert bad.status_code == 422
    assert "PNG" in bad.get_json()["message"]
    bomb = claiming_size(signature_png(), 100_000, 100_000)
    huge = client.post(f"{api}/signature", json={"signature_png": base64.b64encode(bomb).decode()})
    assert huge.status_code == 422
    assert "大きさ" in huge.get_json()["message"]
    client.post(f"{api}/accept")
    late = client.post(f"{api}/signature", json={"signature_png": data_url(signature_png())})
    assert late.status_code == 422
    assert "受理済み" in late.get_json()["message"]


# --- form editing -----------------------------------------------------------------------------------

GOOD_TEMPLATE = "<h1>{{ form.name }}</h1><p class='mj'>{{ f.applicant_name }}</p><p>{{ f.phone }}</p>"


def definition_text(client: FlaskClient) -> str:
    page = client.get(f"/{TENANT}/admin/forms/juumin_idou").get_data(as_text=True)
    match = re.search(r'<textarea id="definition"[^>]*>(.*?)</textarea>', page, re.S)
    assert match
    import html

    return html.unescape(match.group(1))


def save(client: FlaskClient, definition: str, template: str) -> str:
    path = f"/{TENANT}/admin/forms/juumin_idou"
    response = client.post(
        path, data={"csrf_token": csrf_token(client, path), "definition": definition, "template": template}
    )
    if response.status_code == 302:
        return "saved"
    return response.get_data(as_text=True)


def test_staff_edit_a_form_with_live_preview_and_a_second_person_approves(app: Flask, clean: None) -> None:
    author, author_id = staff_client(app)
    approver, approver_id = staff_client(app)
    text = definition_text(author)
    assert (
        ("applicant_name" in text and "version: '2026.1'" in text)
        or 'version: "2026.1"' in text
        or "2026.1" in text
    )
    import datetime as dt

    from app.dates import JST

    today = dt.datetime.now(JST).date().isoformat()
    new = re.sub(r"version: .*", "version: '2026.2'", text)
    new = re.sub(r"effective_from: .*", f"effective_from: '{today}'", new)
    new = new.replace("label: 電話番号", "label: 日中の連絡先")

    preview_path = f"/{TENANT}/admin/forms/juumin_idou/preview"
    token = csrf_token(author, f"/{TENANT}/admin/forms/juumin_idou")
    shown = author.post(preview_path, data={"definition": new, "template": GOOD_TEMPLATE},
                        headers={"X-CSRFToken": token}).get_json()  # fmt: skip
    assert shown["ok"]
    assert shown["pages"] == 1
    thumbnail = base64.b64decode(shown["png"].split(",", 1)[1])
    assert Image.open(io.BytesIO(thumbnail)).size[0] > 300  # an A4 page at 50 dpi is 413 px wide
    as_pdf = author.post(preview_path, data={"definition": new, "template": GOOD_TEMPLATE, "format": "pdf",
                                             "csrf_token": token})  # fmt: skip
    assert as_pdf.data.startswith(b"%PDF")

    broken = author.post(preview_path, data={"definition": new, "template": "<p>\n{% if %}</p>"},
                         headers={"X-CSRFToken": token}).get_json()  # fmt: skip
    assert not broken["ok"]
    assert broken["problems"][0].startswith("テンプレート 2行目: テンプレートの構文エラー")

    refused = save(author, new, "<p>{{ f.applicant_name }}</p>\n<p>{{ f.fax }}</p>")
    assert "テンプレート 2行目: 項目「fax」はこの様式にありません" in refused
    refused = save(author, new.replace("fields:\n", "fields:\n- {id: Bad Id, label: x}\n", 1), GOOD_TEMPLATE)
    assert "定義" in refused
    assert "行目" in refused
    assert "形式が正しくありません" in refused, re.findall(r"<li>(.*?)</li>", refused)
    refused = save(author, new + "name: [unclosed", GOOD_TEMPLATE)
    assert "YAML の書き方に誤りがあります" in refused
    refused = save(author, new, "<p>{{ f.applicant_name.foo.bar }}</p>")
    assert "テンプレート 1行目: 印刷できません" in refused
    assert save(author, new, GOOD_TEMPLATE) == "saved"
    with tenant_session(TENANT) as session:
        draft = session.scalars(select(FormVersion).where(FormVersion.status == "draft")).one()
        assert draft.origin == "admin"
        assert draft.created_by == author_id

    own = author.post(f"/{TENANT}/admin/forms/versions/{draft.id}",
                      data={"csrf_token": token, "action": "approve"})  # fmt: skip
    assert "作成した職員とは別の職員が承認してください" in own.get_data(as_text=True)
    approver_token = csrf_token(approver, f"/{TENANT}/admin/forms/juumin_idou")
    approved = approver.post(f"/{TENANT}/admin/forms/versions/{draft.id}",
                             data={"csrf_token": approver_token, "action": "approve"})  # fmt: skip
    assert approved.status_code == 302
    with tenant_session(TENANT) as session:
        row = session.get(FormVersion, draft.id)
        assert row is not None
        assert row.status == "approved"
        assert row.approved_by == approver_id

    forms = author.get(f"/api/v1/{TENANT}/forms").get_json()
    current = next(f for f in forms if f["id"] == "juumin_idou")
    assert current["version"] == "2026.2"  # in force from today
    assert "日中の連絡先" in [x["label"] for x in current["fields"]]
    assert {"form.draft_saved", "form.approved"} <= set(audit_actions())


def test_a_template_that_would_not_end_is_refused_and_the_editor_keeps_working(
    app: Flask, clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template is code: loops of 10^10 steps, 10 GB strings and deep nesting are refused in
    Japanese (preview and save), inside a limited child process, and the next preview prints."""
    monkeypatch.setattr(trial, "DEADLINE_SECONDS", 3.0)
    author, _ = staff_client(app)
    text = definition_text(author)
    preview_path = f"/{TENANT}/admin/forms/juumin_idou/preview"
    token = csrf_token(author, f"/{TENANT}/admin/forms/juumin_idou")

    def preview(template: str) -> dict[str, Any]:
        response = author.post(preview_path, data={"definition": text, "template": template},
                               headers={"X-CSRFToken": token})  # fmt: skip
        assert response.status_code == 200
        return response.get_json()  # type: ignore[no-any-return]

    endless = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    for template, reason in [
        (endless, "印刷が3秒で終わりませんでした"),
        ("{{ 'x' * 99999 * 99999 }}", "メモリが上限を超えました"),
        ("{{ 'x'|center(999999999) }}{{ 'y'|center(999999999) }}", "メモリ"),
        ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "入れ子が深すぎます"),
    ]:
        shown = preview(template)
        assert not shown["ok"], template[:40]
        assert any(reason in problem for problem in shown["problems"]), shown["problems"]
    assert "印刷が3秒で終わりませんでした" in save(author, text, endless)  # nor saved
    assert preview(GOOD_TEMPLATE)["ok"]


def test_a_trial_print_that_fails_in_the_layout_engine_is_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the child meets while printing comes back as a problem with the template, never as
    a child that died without a word (which would read as a limit exceeded)."""
    import multiprocessing

    def layout_gives_up(*args: object, **kwargs: object) -> bytes:
        raise OSError("cairo: out of surfaces")

    monkeypatch.setattr(trial, "render_pdf", layout_gives_up)
    monkeypatch.setattr(trial.resource, "setrlimit", lambda *args: None)  # not on the test process
    receiver, sender = multiprocessing.Pipe(duplex=False)
    trial._child(sender, None, "御坊市", "<p>x</p>")  # type: ignore[arg-type]
    assert receiver.recv() == ("problem", None, "印刷できません（レイアウトを処理できませんでした）")
    receiver.close()


def test_a_trial_print_that_cannot_start_is_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoProcess:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def start(self) -> None:
            raise OSError("fork server: cannot allocate memory")

    monkeypatch.setattr(trial._context, "Process", NoProcess)
    with pytest.raises(trial.TrialRefusal, match="見本の印刷を始められませんでした"):
        trial.trial_pdf(None, tenant_name="御坊市", template="<p>x</p>")  # type: ignore[arg-type]


def test_a_form_template_reaches_no_server_file_and_no_network(app: Flask, clean: None) -> None:
    """A tenant's administrator writes the template's HTML; the PDF renderer must not fetch what it
    names: a server file attached to the PDF (or drawn, or imported as a stylesheet) would hand
    another city's secrets to this one, and an address inside the network is the cloud's metadata."""
    hits: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"p { color: red }")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    inside = f"http://127.0.0.1:{server.server_address[1]}"
    secret = Path(__file__).resolve().parents[1] / "pyproject.toml"
    template = (
        f'<link rel="attachment" href="file://{secret}" title="x">'
        f'<link rel="stylesheet" href="{inside}/sheet.css"><style>@import url("{inside}/import.css");</style>'
        f'<img src="file://{secret}"><img src="{inside}/latest/meta-data/">'
        '<p class="mj">{{ f.applicant_name }}</p>'
    )
    author, _ = staff_client(app)
    text = definition_text(author)
    preview_path = f"/{TENANT}/admin/forms/juumin_idou/preview"
    token = csrf_token(author, f"/{TENANT}/admin/forms/juumin_idou")
    try:
        pdf = author.post(preview_path, data={"definition": text, "template": template, "format": "pdf",
                                              "csrf_token": token})  # fmt: skip
        shown = author.post(preview_path, data={"definition": text, "template": template},
                            headers={"X-CSRFToken": token}).get_json()  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert pdf.data.startswith(b"%PDF")
    assert shown["ok"]  # the page still prints: what it names is skipped like a broken image
    assert hits == []
    assert b"/EmbeddedFile" not in pdf.data
    assert b"[tool.pytest" not in pdf.data
    # and a signature, which is a data: URL, still prints (the one kind of address a form may name)
    assert b"/Image" in renderer().render(f'<img src="{data_url(signature_png())}">')


# --- tenancy ----------------------------------------------------------------------------------------


def test_other_tenants_cannot_reach_applications_signing_or_form_editing(app: Flask, head: int) -> None:
    client, _ = staff_client(app)
    application_id = file_application(client, head)
    osaka, _ = staff_client(app, "osaka")
    for path in (
        f"/{TENANT}/applications/{application_id}",
        f"/{TENANT}/applications/{application_id}/pdf",
        f"/{TENANT}/applications/{application_id}/sign",
        f"/{TENANT}/residents/{head}/forms/juumin_idou",
        f"/{TENANT}/admin/forms/juumin_idou",
        f"/{TENANT}/tablet",
    ):
        assert osaka.get(path).status_code == 404, path
    for path in (  # the same ids under Osaka's own address: Osaka has no such records
        f"/osaka/applications/{application_id}",
        f"/osaka/applications/{application_id}/sign",
        f"/osaka/applications/{application_id}/pdf",
        f"/osaka/residents/{head}/forms/juumin_idou",
    ):
        assert osaka.get(path).status_code == 404, path
    assert "申請番号" not in osaka.get("/osaka/tablet").get_data(as_text=True)
