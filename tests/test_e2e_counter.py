"""The counter end to end in Chromium, one city each (issue 6/8):

- Gobo: a family moving in — ticket, My Number Card read by the real agent through pcscd, the
  household entered from the card, guidance, the 住民異動届 filled and filed, hand-over to the
  departments, each department completing its part;
- Yamaguchi: a certificate request from a resident's QR pre-application;
- Osaka: a death notification paused for a missing document and resumed the next day;
- two clerks on one case: the second save is refused with a conflict.

Every screen is screenshotted (var/test-artifacts/screenshots) and checked by axe-core.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from app.audit import Actor
from app.audit.service import actor_var
from app.counter import cards
from app.counter.models import Case, CaseProcedure
from app.forms.models import Application
from app.linkage.config import STANDARD
from app.linkage.importer import import_local_file
from app.tenancy.service import registry
from tests.agent import pcscd_harness
from tests.agent.card_sim import SimulatedCard, VirtualIcc
from tests.agent.test_e2e_pcscd import AgentProcess
from tests.browser_flows import check_screen, sign_in
from tests.browser_support import LiveServer
from tests.conftest import tenant_session
from tests.linkage_files import person, write


@pytest.fixture(scope="module")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pcscd_harness.Pcscd]:
    try:
        instance = pcscd_harness.start(tmp_path_factory.mktemp("pcscd-e2e"))
    except pcscd_harness.CannotStart as exc:
        pytest.fail(f"pcscd cannot be started: {exc}")
    try:
        yield instance
    finally:
        instance.stop()


def new_page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="ja-JP",
                                  timezone_id="Asia/Tokyo", bypass_csp=True)  # fmt: skip
    tab = context.new_page()
    tab.set_default_timeout(15000)
    return tab


def reader_token(tenant: str) -> str:
    record = registry.get(tenant)
    assert record is not None
    token = actor_var.set(Actor("staff", "admin", "管理", None))
    with tenant_session(tenant) as session:
        _, secret = cards.register_reader(session, registry.config(record), name="市民課 3番窓口",
                                          office_id="shiyakusho", counter_id="shimin", created_by="admin")  # fmt: skip
        session.commit()
    actor_var.reset(token)
    return secret


def call_next_visitor(page: Any, base: str, counter_button: str | re.Pattern[str], counter: str = "") -> str:
    """Reception issues a ticket; the desk calls it and the case screen opens. The ticket's label."""
    page.goto(f"{base}/reception")
    page.get_by_role("button", name=counter_button).click()
    label = page.locator(".ticket .ticket-number").inner_text()
    check_screen(page, f"{base.rsplit('/', 1)[1]}-reception")
    page.goto(f"{base}/desk" + (f"?counter={counter}" if counter else ""))
    page.get_by_role("button", name=re.compile("次の方を呼ぶ")).click()
    page.wait_for_url(re.compile(r"/cases/\d+$"))
    return label


def answer_open_questions(page: Any, choose: dict[str, str]) -> None:
    """Answer what the guidance asks (by question text fragment → label), until nothing is open."""
    for _ in range(4):
        questions = page.locator("fieldset.questions .question")
        if questions.count() == 0:
            return
        for i in range(questions.count()):
            question = questions.nth(i)
            text = question.locator("p").first.inner_text()
            label = next((v for k, v in choose.items() if k in text), None)
            options = question.locator("label.inline")
            if label is not None and options.filter(has_text=label).count():
                options.filter(has_text=label).first.locator("input").check()
            elif question.locator("input[type=number]").count():
                question.locator("input[type=number]").fill("0")
            else:
                options.last.locator("input").check()  # いいえ / the last choice
        page.get_by_role("button", name="判定する").click()
        page.wait_for_load_state()
    raise AssertionError("questions kept coming")


def case_id_of(page: Any) -> int:
    match = re.search(r"/cases/(\d+)", page.url)
    assert match
    return int(match.group(1))


# --- Gobo ---------------------------------------------------------------------------------------


def test_gobo_family_moving_in_from_card_to_departments(
    live_server: LiveServer, browser: Any, committed: object, pcscd: pcscd_harness.Pcscd, tmp_path: Path
) -> None:
    base = f"{live_server.url}/gobo"
    token = reader_token("gobo")
    clerk = new_page(browser)
    sign_in(clerk, live_server, "gobo", ("窓口職員",), name="窓口 一子")
    ticket = call_next_visitor(clerk, base, "A 番号札を発行")
    case_id = case_id_of(clerk)
    assert ticket in clerk.locator("h1").inner_text()
    check_screen(clerk, "gobo-case-new")

    # The visitor puts the card on the reader at the counter and types the PIN.
    card = SimulatedCard(
        name="紀州　太郎", address="大阪府堺市堺区南瓦町3番1号", birth="19850501", sex="1", pin="1234"
    )
    icc = VirtualIcc(card, pcscd.port)
    icc.insert()
    try:
        agent = AgentProcess(pcscd, live_server, tmp_path, "1234\n", tenant="gobo", token=token)
        agent.wait_for("カードをお取りください。")
    finally:
        icc.remove()
    code, err = agent.finish()
    assert code == 0, f"{agent.out}\n{err}"

    clerk.locator("#card-panel").get_by_text("マイナンバーカードを読み取りました").wait_for()
    check_screen(clerk, "gobo-case-card-read")
    clerk.get_by_role("link", name=re.compile("カードの内容で記録にない世帯")).click()
    household = clerk.locator("#household")
    assert household.get_by_label("1人目 氏名").input_value() == "紀州\u3000太郎"
    household.get_by_label("1人目 フリガナ").fill("キシュウ タロウ")
    for i, (name, kana, birth, sex, relation) in enumerate(
        [("紀州　花子", "キシュウ ハナコ", "1987-08-08", "女", "妻"),
         ("紀州　陽", "キシュウ ヒナタ", "2022-06-01", "男", "子"),
         ("紀州　葵", "キシュウ アオイ", "2016-10-10", "女", "子")], start=2):  # fmt: skip
        household.get_by_label(f"{i}人目 氏名").fill(name)
        household.get_by_label(f"{i}人目 フリガナ").fill(kana)
        household.get_by_label(f"{i}人目 生年月日").fill(birth)
        household.get_by_label(f"{i}人目 性別").select_option(label=sex)
        household.get_by_label(f"{i}人目 続柄").fill(relation)
    household.get_by_label("新しい住所（転入先）").fill("和歌山県御坊市薗350番地")
    household.get_by_label("郵便番号").fill("644-8686")
    check_screen(clerk, "gobo-case-household")
    household.get_by_role("button", name="この世帯で確定").click()
    clerk.wait_for_load_state()
    assert "マイナンバーカード" in clerk.locator("#identify-h").inner_text()

    clerk.get_by_label("転入", exact=True).check()
    clerk.get_by_label("異動日・届出の日（空欄は本日）").fill("2026-11-20")
    clerk.get_by_role("button", name="判定する").click()
    clerk.wait_for_load_state()
    answer_open_questions(clerk, {"犬": "いいえ", "国民健康保険": "はい", "国保": "はい"})
    check_screen(clerk, "gobo-case-guidance")
    guidance = clerk.locator("#guidance")
    departments = {t.strip() for t in guidance.locator("tbody tr td:nth-child(3)").all_inner_texts()}
    assert len(departments) >= 3, departments

    # The 住民異動届 from the case: every moving member on one form, filed.
    guidance.get_by_role("link", name="住民異動届").first.click()
    clerk.wait_for_load_state()
    check_screen(clerk, "gobo-form-juumin-idou")
    assert clerk.get_by_label(re.compile("届出人 氏名")).input_value() == "紀州\u3000太郎"
    assert "紀州\u3000葵" in clerk.locator("table.members").inner_text()
    relation = clerk.get_by_label(
        re.compile(
            "^届出人",
        )
    ).last
    if relation.evaluate("e => e.tagName") == "SELECT":
        relation.select_option(index=1)
    clerk.get_by_role("button", name=re.compile("申請を登録")).click()
    clerk.wait_for_url(re.compile(r"/applications/\d+$"))
    check_screen(clerk, "gobo-application")

    clerk.goto(f"{base}/cases/{case_id}")
    sheet = clerk.request.get(f"{base}/cases/{case_id}/sheet")
    assert sheet.headers["content-type"] == "application/pdf"
    clerk.locator("#guidance").get_by_role("button", name=re.compile("回付する")).click()
    clerk.wait_for_load_state()
    check_screen(clerk, "gobo-case-handed-over")
    assert clerk.locator("#procedures").get_by_text("回付済み（待ち）").count() >= 3

    # Each department works its queue.
    department = new_page(browser)
    sign_in(department, live_server, "gobo", ("担当課職員",), name="担当 二郎")
    for name in sorted(departments):
        department.goto(f"{base}/queues")
        department.get_by_role("link", name=name).click()
        check_screen(department, f"gobo-queue-{sorted(departments).index(name)}")
        while department.get_by_role("button", name="完了").count():
            department.get_by_role("button", name="完了").first.click()
            department.wait_for_load_state()
    with tenant_session("gobo") as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.status == "closed"
        statuses = set(session.scalars(select(CaseProcedure.status).where(CaseProcedure.case_id == case_id)))
        assert statuses == {"done"}
        (application,) = session.scalars(select(Application).where(Application.case_ref == str(case_id)))
        assert application.form_id == "juumin_idou_todoke"
    clerk.goto(f"{base}/cases/{case_id}")
    check_screen(clerk, "gobo-case-closed")
    assert "終了" in clerk.locator("h1").inner_text()
    clerk.context.close()
    department.context.close()


# --- Yamaguchi ------------------------------------------------------------------------------------


def import_people(tenant: str, tmp_path: Path, rows: list[dict[str, str]]) -> None:
    record = registry.get(tenant)
    assert record is not None
    outcome = import_local_file(record, write(tmp_path / f"{tenant}.csv", rows, STANDARD.residents),
                                actor=Actor("cli", "t"), standard_layout=True)  # fmt: skip
    assert outcome.status == "applied", outcome


def test_yamaguchi_certificate_request_from_a_qr_pre_application(
    live_server: LiveServer, browser: Any, committed: object, tmp_path: Path
) -> None:
    import_people("yamaguchi", tmp_path, [person(1, 1, 氏名="山口\u3000明", 氏名フリガナ="ヤマグチ アキラ",
                                                 生年月日="1970-03-03", 住所="山口県山口市亀山町2番1号")])  # fmt: skip
    base = f"{live_server.url}/yamaguchi"
    resident = new_page(browser)  # at home, on a phone-sized screen
    resident.set_viewport_size({"width": 390, "height": 844})
    resident.goto(f"{base}/pre")
    check_screen(resident, "yamaguchi-pre-start")
    resident.get_by_role("link", name="証明書のみ").click()
    resident.get_by_label("お名前").fill("山口 明")
    resident.get_by_label("フリガナ").fill("ヤマグチ アキラ")
    resident.get_by_label("生年月日").fill("1970-03-03")
    resident.get_by_label("現在の住所").fill("山口県山口市亀山町2番1号")
    resident.get_by_label("日中の電話番号").fill("083-922-0000")
    certificates = resident.locator("fieldset").filter(has_text="証明書")
    if certificates.count():
        certificates.first.locator("input").first.check()
    if resident.get_by_label("証明書の種類").count():
        resident.get_by_label("証明書の種類").select_option(index=1)
        resident.get_by_label("通数").fill("2")
        resident.get_by_label("使用目的").fill("勤務先への提出")
    check_screen(resident, "yamaguchi-pre-form")
    resident.get_by_role("button", name="QR コードを作る").click()
    resident.locator(".qr svg").wait_for()
    check_screen(resident, "yamaguchi-pre-qr")
    code = resident.locator("code.code-text").inner_text()
    resident.context.close()

    clerk = new_page(browser)
    sign_in(clerk, live_server, "yamaguchi", ("窓口職員",), name="窓口 三郎")
    call_next_visitor(clerk, base, "B 番号札を発行", counter="shoumei")  # 証明書の窓口
    case_id = case_id_of(clerk)
    clerk.get_by_label("QR コード（スキャナで読み取ると入力されます）").fill(code)  # the scanner types it
    clerk.get_by_role("button", name="読み込む").click()
    clerk.wait_for_load_state()
    check_screen(clerk, "yamaguchi-case-from-qr")
    assert "事前申請QR" in clerk.locator("#identify-h").inner_text()
    assert "山口\u3000明" in clerk.locator("#identify").inner_text()
    answer_open_questions(clerk, {})
    guidance = clerk.locator("#guidance")
    assert "証明" in guidance.inner_text()
    form_link = guidance.get_by_role("link", name=re.compile("請求書"))
    assert form_link.count() >= 1
    form_link.first.click()
    clerk.wait_for_load_state()
    check_screen(clerk, "yamaguchi-certificate-form")
    assert "山口\u3000明" in clerk.content()
    clerk.locator("input[id^=v_copies]").first.fill("2")  # 住民票の写し 2通
    for dropdown in clerk.locator("select").all():  # 使用目的 and the other required choices
        if dropdown.get_attribute("id") and not dropdown.input_value():
            dropdown.select_option(index=1)
    clerk.get_by_role("button", name=re.compile("申請を登録")).click()
    clerk.wait_for_url(re.compile(r"/applications/\d+$"))
    check_screen(clerk, "yamaguchi-application")
    with tenant_session("yamaguchi") as session:
        (application,) = session.scalars(select(Application).where(Application.case_ref == str(case_id)))
        assert application.resident_id is not None
    clerk.context.close()


# --- Osaka ----------------------------------------------------------------------------------------


def test_osaka_death_notification_resumed_on_a_second_day(
    live_server: LiveServer, browser: Any, committed: object, tmp_path: Path
) -> None:
    import_people("osaka", tmp_path, [
        person(1, 1, 氏名="浪速\u3000一郎", 氏名フリガナ="ナニワ イチロウ", 生年月日="1940-01-15",
               住所="大阪府大阪市東淀川区豊新2丁目1番4号"),
        person(2, 1, 氏名="浪速\u3000春子", 氏名フリガナ="ナニワ ハルコ", 続柄="妻", 世帯内順="2", 性別="2",
               生年月日="1945-04-04", 住所="大阪府大阪市東淀川区豊新2丁目1番4号"),
    ])  # fmt: skip
    base = f"{live_server.url}/osaka"
    clerk = new_page(browser)
    sign_in(clerk, live_server, "osaka", ("窓口職員",), name="窓口 四郎")
    clerk.goto(f"{base}/desk")
    clerk.get_by_role("button", name="番号札なしで受付を始める").click()
    clerk.wait_for_url(re.compile(r"/cases/\d+$"))
    case_id = case_id_of(clerk)
    clerk.locator("#s-kana").fill("ナニワ ハル")
    clerk.get_by_role("button", name="検索").click()
    clerk.get_by_role("button", name="この方で確定").first.click()
    clerk.wait_for_load_state()
    clerk.get_by_label("死亡", exact=True).check()
    clerk.get_by_role("button", name="判定する").click()
    clerk.wait_for_load_state()
    answer_open_questions(clerk, {"亡くなった": "世帯主", "世帯主": "世帯主"})
    check_screen(clerk, "osaka-case-death-guidance")
    assert "死亡届" in clerk.locator("#guidance").inner_text()
    clerk.get_by_label("中断の理由（書類不足など）").fill("死亡診断書の写しを後日持参")
    clerk.get_by_role("button", name="中断する（後日再開）").click()
    clerk.wait_for_load_state()
    assert "中断（後日再開）" in clerk.locator("h1").inner_text()
    clerk.context.close()

    # The next day: the visit was yesterday.
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with tenant_session("osaka") as session:
        session.execute(update(Case).where(Case.id == case_id).values(created_at=yesterday, updated_at=yesterday,
                                                                      started_at=yesterday))  # fmt: skip
        session.commit()
    other = new_page(browser)
    sign_in(other, live_server, "osaka", ("窓口職員",), name="窓口 五郎")
    other.goto(f"{base}/cases?status=paused&name=浪速")
    check_screen(other, "osaka-cases-paused")
    other.get_by_role("link", name=str(case_id), exact=True).click()
    assert "死亡診断書の写しを後日持参" in other.content()
    other.get_by_role("button", name="手続きを再開する").click()
    other.wait_for_load_state()
    check_screen(other, "osaka-case-resumed")
    assert "対応中" in other.locator("h1").inner_text()
    other.locator("#guidance").get_by_role("button", name=re.compile("回付する")).click()
    other.wait_for_load_state()
    with tenant_session("osaka") as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.status == "handed_over"
        assert case.created_at.date() < dt.datetime.now(dt.UTC).date() or case.created_at < case.updated_at
        assert (
            session.scalars(select(CaseProcedure).where(CaseProcedure.case_id == case_id)).first() is not None
        )
    other.context.close()


def test_two_clerks_editing_one_case_get_a_conflict(
    live_server: LiveServer, browser: Any, committed: object, tmp_path: Path
) -> None:
    import_people("gobo", tmp_path, [person(1, 1, 氏名="御坊\u3000一郎", 氏名フリガナ="ゴボウ イチロウ")])
    base = f"{live_server.url}/gobo"
    first, second = new_page(browser), new_page(browser)
    sign_in(first, live_server, "gobo", ("窓口職員",))
    sign_in(second, live_server, "gobo", ("窓口職員",))
    first.goto(f"{base}/desk")
    first.get_by_role("button", name="番号札なしで受付を始める").click()
    first.wait_for_url(re.compile(r"/cases/\d+$"))
    case_url = first.url
    second.goto(case_url)  # both screens show the same version
    first.get_by_label("転居", exact=True).check()
    first.get_by_role("button", name="判定する").click()
    first.wait_for_load_state()
    second.get_by_label("死亡", exact=True).check()
    second.get_by_role("button", name="判定する").click()
    second.wait_for_load_state()
    check_screen(second, "conflict")
    assert "他の職員が先に更新しました" in second.locator("[role=alert]").first.inner_text()
    with tenant_session("gobo") as session:
        case = session.get(Case, case_id_of(first))
        assert case is not None
        assert case.events == ["tenkyo"]
    first.context.close()
    second.context.close()
