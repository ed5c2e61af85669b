"""E-mail and web templates over HTTP, in-process, on SQLite and PostgreSQL (spec B3.13, B8).

``/<db>/templates/pull|push|reset|test-send`` need MANAGE_DB; mails reach a
real web-hook receiver (``tests/mailbox.py``) through the e-mail channel.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from dxc.auth.tokens import AccessClaims
from dxc.manage import databases
from dxc.manage.databases import ADMIN_SCOPES
from dxc.manage.importer import import_document
from dxc.storage import credentials, schema
from tests.protocol_client import ALICE, BOB, Device

OWNER = "owner@example.com"
ANN = "ann@example.com"
OTP_SUBJECT = "email-templates/otp-subject.handlebars"
INVITE_SUBJECT = "email-templates/invite-subject.handlebars"
B8_PATHS = {
    "email-templates/otp-subject.handlebars",
    "email-templates/otp-body-txt.handlebars",
    "email-templates/otp-body-html.handlebars",
    "email-templates/otp-testdata.json",
    "email-templates/invite-subject.handlebars",
    "email-templates/invite-body-txt.handlebars",
    "email-templates/invite-body-html.handlebars",
    "email-templates/invite-testdata.json",
    "web-templates/root-template.handlebars",
    "web-templates/message.handlebars",
    "web-templates/error.handlebars",
}


@pytest.fixture
def app(mail_app):
    return mail_app


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(app, db_id: str, client_id: str, scopes: tuple[str, ...]) -> dict[str, str]:
    """The header of an API client's own token (what client_credentials issues)."""
    claims = AccessClaims(client_id, frozenset(scopes), "client")
    return {"Authorization": f"Bearer {app.extensions['dxc'].signer.issue(db_id, claims).token}"}


def new_database(app, owner: str | None = OWNER):
    """A database and a bearer header of its admin API client (owned by ``owner``)."""
    created = databases.create_database(app.extensions["dxc"], owner_email=owner)
    return created, bearer(app, created.db_id, created.client_id, ADMIN_SCOPES)


@pytest.fixture
def db(app):
    return new_database(app)


def pull(client, db) -> dict[str, str]:
    created, auth = db
    response = client.get(f"/{created.db_id}/templates/pull", headers=auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {entry["path"]: entry["content"] for entry in response.get_json()}


def push(client, db, files: list[dict]):
    created, auth = db
    return client.post(f"/{created.db_id}/templates/push", json=files, headers=auth)


def stored_rows(app) -> int:
    with app.extensions["dxc"].control.connect() as connection:
        return connection.scalar(select(func.count()).select_from(schema.templates))


def request_otp(client, db_id: str, email: str, origin: str | None = None) -> None:
    headers = {"Origin": origin} if origin else {}
    response = client.post(f"/{db_id}/token", headers=headers, json={
        "grant_type": "otp", "email": email, "scopes": ["ACCESS_DB"],
    })
    assert response.get_json()["type"] == "otp-sent", response.get_data(as_text=True)


# --- scopes ----------------------------------------------------------------------------------

ENDPOINTS = [
    ("get", "pull", None),
    ("post", "push", []),
    ("post", "reset", {}),
    ("post", "test-send", {"subjectStr": "s", "bodyTxtStr": "t", "bodyHtmlStr": "h", "vars": {}}),
]


def test_every_endpoint_needs_manage_db_of_this_database(app, client, mailbox):
    created, manager = new_database(app)
    _, other_manager = new_database(app)
    with app.extensions["dxc"].control.begin() as connection:
        weak, _ = credentials.create_api_client(
            connection, created.db_id, ("ACCESS_DB", "GLOBAL_READ"), OWNER
        )
    weak_header = bearer(app, created.db_id, weak.client_id, ("ACCESS_DB", "GLOBAL_READ"))
    for method, name, body in ENDPOINTS:
        url = f"/{created.db_id}/templates/{name}"

        def call(headers, url=url, method=method, body=body):
            return getattr(client, method)(url, json=body, headers=headers)

        assert call({}).status_code == 401, name
        assert call(other_manager).status_code == 401, name  # a token of another database
        forbidden = call(weak_header)  # a client of this database without MANAGE_DB
        assert forbidden.status_code == 403, name
        assert "MANAGE_DB" in forbidden.get_json()["message"]
        assert call(manager).status_code == 200, name
        unknown = getattr(client, method)(f"/zunknown1/templates/{name}", json=body,
                                          headers=manager)
        assert unknown.status_code == 404, name


# --- pull, push, reset -----------------------------------------------------------------------


def test_pull_gives_the_eleven_defaults_with_their_variables(client, db):
    templates = pull(client, db)
    assert set(templates) == B8_PATHS
    for path, content in templates.items():
        assert not path.startswith("/") and ".." not in path
        if path.endswith(".handlebars"):
            assert content.startswith("{{!--"), path
        else:
            json.loads(content)
    assert "{{{originName}}}" in templates[OTP_SUBJECT]
    for variable in ("originName", "otp", "otpId", "isApp", "email"):
        assert variable in templates["email-templates/otp-body-html.handlebars"]
    assert json.loads(templates["email-templates/otp-testdata.json"]) == {
        "originName": "myapp.company.com", "otp": "ABCD1234", "otpId": "1234567890",
        "isApp": False, "email": "foo@bar.com",
    }
    invite_html = templates["email-templates/invite-body-html.handlebars"]
    for variable in ("recepient.firstName", "invitor.name", "realm.name", "acceptUrl",
                     "rejectUrl", "app.url", "app.isWebPage"):
        assert variable in invite_html
    assert "{{{body}}}" in templates["web-templates/root-template.handlebars"]


def test_push_pull_round_trip_and_reset(app, client, db):
    defaults = pull(client, db)
    mine = "{{!-- mine --}}\nLog in to {{{originName}}} with {{{otp}}}\n"
    files = [{"path": path, "content": content} for path, content in defaults.items()]
    files[[f["path"] for f in files].index(OTP_SUBJECT)]["content"] = mine
    files.append({"path": "notes/todo.txt", "content": "not a template"})
    files.append({"path": ".DS_Store", "content": "\u0000junk"})

    answer = push(client, db, files)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"ok": True, "numUpdatedTemplates": 1}
    pulled = pull(client, db)
    assert pulled == {**defaults, OTP_SUBJECT: mine}, "unknown paths are not stored"
    assert push(client, db, files).get_json()["numUpdatedTemplates"] == 0

    html = "email-templates/invite-body-html.handlebars"
    changed = [{"path": html, "content": "<p>{{invitor.name}}</p>"},
               {"path": OTP_SUBJECT, "content": defaults[OTP_SUBJECT]}]
    assert push(client, db, changed).get_json()["numUpdatedTemplates"] == 2
    assert pull(client, db) == {**defaults, html: "<p>{{invitor.name}}</p>"}
    assert stored_rows(app) == 1, "a template pushed back to its default is not kept"

    created, auth = db
    reset = client.post(f"/{created.db_id}/templates/reset", json={}, headers=auth)
    assert reset.get_json() == {"ok": True, "numResetTemplates": 1}
    assert pull(client, db) == defaults
    again = client.post(f"/{created.db_id}/templates/reset", json={}, headers=auth)
    assert again.get_json() == {"ok": True, "numResetTemplates": 0}


BAD_PUSHES = [
    ([{"path": "../x", "content": "x"}], "../x"),
    ([{"path": "email-templates/../../etc/passwd", "content": "x"}], "passwd"),
    ([{"path": "/etc/passwd", "content": "x"}], "/etc/passwd"),
    ([{"path": "C:/x", "content": "x"}], "C:/x"),
    ([{"path": "email-templates\\otp-subject.handlebars", "content": "x"}], "otp-subject"),
    ([{"path": OTP_SUBJECT, "content": "Hi {{#if x}}{{/each}}"}], OTP_SUBJECT),
    ([{"path": OTP_SUBJECT, "content": "Hi {{{x}}"}], OTP_SUBJECT),
    ([{"path": "web-templates/message.handlebars", "content": "{{> nothere}}"}], "message"),
    # pybars pastes [segment] paths into Python source unescaped: never compiled.
    ([{"path": OTP_SUBJECT, "content": "{{[a') or print('hi') or ('b]}}"}], OTP_SUBJECT),
    ([{"path": OTP_SUBJECT, "content": "{{otp.__class__.__mro__}}"}], OTP_SUBJECT),
    ([{"path": "email-templates/otp-testdata.json", "content": "{nope"}], "otp-testdata"),
    ([{"path": "email-templates/otp-testdata.json", "content": "[1]"}], "otp-testdata"),
    ([{"path": OTP_SUBJECT, "content": "x" * 70_000}], OTP_SUBJECT),
    ([{"path": OTP_SUBJECT, "content": "a\u0000b"}], OTP_SUBJECT),
    ([{"path": OTP_SUBJECT, "content": 5}], OTP_SUBJECT),
    ([{"path": OTP_SUBJECT, "content": None}], OTP_SUBJECT),
    ([{"path": 7, "content": "x"}], "path"),
    ([{"path": OTP_SUBJECT}], OTP_SUBJECT),
    ([{"path": OTP_SUBJECT, "content": "a"}, {"path": OTP_SUBJECT, "content": "b"}], "twice"),
    (["email-templates/otp-subject.handlebars"], "object"),
    ({"path": OTP_SUBJECT, "content": "x"}, "array"),
    (None, "array"),
]


def test_bad_pushes_are_refused_and_change_nothing(app, client, db):
    defaults = pull(client, db)
    for body, named in BAD_PUSHES:
        # A good change travels with the bad entry: it must not be stored either.
        if isinstance(body, list):
            good = {"path": "email-templates/otp-body-txt.handlebars", "content": "OTP: {{otp}}"}
            body = [good, *body]
        response = push(client, db, body)
        assert response.status_code == 400, (body, response.get_data(as_text=True))
        assert named in response.get_json()["message"], body
        assert stored_rows(app) == 0, body
    assert pull(client, db) == defaults
    created, auth = db
    for name in ("push", "test-send"):
        for raw in (b"\xff{", b"[" * 100_000 + b"]" * 100_000):  # not JSON, too deep for it
            response = client.post(f"/{created.db_id}/templates/{name}", data=raw,
                                   headers={**auth, "Content-Type": "application/json"})
            assert response.status_code == 400, (name, raw[:5])
    assert stored_rows(app) == 0


def test_two_databases_keep_separate_templates(app, client, mailbox):
    first, second = new_database(app), new_database(app)
    mine = "Sign in to {{{originName}}}: {{{otp}}}"
    assert push(client, first, [{"path": OTP_SUBJECT, "content": mine}]).status_code == 200
    assert pull(client, first)[OTP_SUBJECT] == mine
    assert pull(client, second)[OTP_SUBJECT] != mine

    request_otp(client, first[0].db_id, ANN, origin="https://todo.example.com")
    request_otp(client, second[0].db_id, ANN, origin="https://todo.example.com")
    mails = [mailbox.wait_for_mail(ANN, 1), mailbox.wait_for_mail(ANN, 2)]
    # Delivery jobs may finish in any order.
    by_subject = {mail["subject"]: mail for mail in mails}
    codes = {mail["variables"]["otp"] for mail in mails}
    custom = [s for s in by_subject if s.startswith("Sign in to todo.example.com: ")]
    assert len(custom) == 1 and custom[0].split(": ")[1] in codes
    default, = (s for s in by_subject if s not in custom)
    assert default.startswith("Your One-Time Password for todo.example.com")
    for mail in mails:
        assert mail["variables"]["originName"] == "todo.example.com"
        assert mail["variables"]["isApp"] is False
        assert f"OTP: {mail['variables']['otp']}" in mail["text"]

    # Reset brings the default back for the first database too.
    created, auth = first
    client.post(f"/{created.db_id}/templates/reset", json={}, headers=auth)
    request_otp(client, created.db_id, ANN)  # no Origin: the CLI
    third = mailbox.wait_for_mail(ANN, 3)
    host = app.extensions["dxc"].settings.database_url_for(created.db_id).split("/")[2]
    assert third["subject"].startswith(f"Your One-Time Password for {host}: ")


def test_an_app_origin_sets_is_app(app, client, mailbox, db):
    html = "{{#if isApp}}in the app{{else}}on the web{{/if}} {{originName}}"
    push(client, db, [{"path": "email-templates/otp-body-html.handlebars", "content": html}])
    request_otp(client, db[0].db_id, ANN, origin="capacitor://localhost")
    mail = mailbox.wait_for_mail(ANN)
    assert mail["variables"]["isApp"] is True
    assert mail["html"] == "in the app localhost\n"


def test_a_template_that_fails_with_real_data_falls_back_to_the_default(client, mailbox, db):
    # Passes with the test data (no validMinutes there), fails with a real OTP's number.
    broken = "<p>{{otp}} {{validMinutes.bit_length}}</p>"
    html = "email-templates/otp-body-html.handlebars"
    assert push(client, db, [{"path": html, "content": broken}]).status_code == 200
    request_otp(client, db[0].db_id, ANN, origin="https://todo.example.com")
    mail = mailbox.wait_for_mail(ANN)
    assert "phishing" in mail["html"] and mail["variables"]["otp"] in mail["html"]


# --- test-send -------------------------------------------------------------------------------


def send_test(client, db, body):
    created, auth = db
    return client.post(f"/{created.db_id}/templates/test-send", json=body, headers=auth)


def test_test_send_renders_with_html_escaping_in_html_only(client, db, mailbox):
    body = {
        "subjectStr": "{{!-- {{{who}}} --}}\nHello {{{who}}}",
        "bodyTxtStr": "Text for {{{who}}}{{#if vip}} (VIP){{/if}}",
        "bodyHtmlStr": "<p>Html for {{who}}{{#if vip}} <b>VIP</b>{{/if}}</p>",
        "vars": {"who": "<Tom & \"Jerry\">", "vip": True},
    }
    answer = send_test(client, db, body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"ok": True, "emailReceiver": OWNER}
    mail = mailbox.wait_for_mail(OWNER)
    assert mail["subject"] == 'Hello <Tom & "Jerry">'
    assert mail["text"] == 'Text for <Tom & "Jerry"> (VIP)\n'
    assert mail["html"] == "<p>Html for &lt;Tom &amp; &quot;Jerry&quot;&gt; <b>VIP</b></p>\n"

    answer = send_test(client, db, {**body, "to": ANN})
    assert answer.get_json() == {"ok": True, "emailReceiver": ANN}
    assert mailbox.wait_for_mail(ANN)["subject"] == 'Hello <Tom & "Jerry">'


def test_template_variables_expose_no_python_attributes(client, db, mailbox):
    answer = send_test(client, db, {
        "subjectStr": "[{{x.format}}][{{d.items}}][{{lookup x 'upper'}}][{{d.k}}]",
        "bodyTxtStr": "{{#each l}}{{this}}{{@index}} {{/each}}{{l.length}}",
        "bodyHtmlStr": "{{#each d}}{{@key}}={{this}}{{/each}}",
        "vars": {"x": "{0.__class__}", "d": {"k": "v"}, "l": ["a", "b"]},
    })
    assert answer.status_code == 200, answer.get_data(as_text=True)
    mail = mailbox.wait_for_mail(OWNER)
    assert (mail["subject"], mail["text"], mail["html"]) == ("[][][][v]", "a0 b1 2\n", "k=v\n")


def test_test_send_with_the_default_templates_and_test_data(client, db, mailbox):
    templates = pull(client, db)
    for kind in ("otp", "invite"):
        answer = send_test(client, db, {
            "subjectStr": templates[f"email-templates/{kind}-subject.handlebars"],
            "bodyTxtStr": templates[f"email-templates/{kind}-body-txt.handlebars"],
            "bodyHtmlStr": templates[f"email-templates/{kind}-body-html.handlebars"],
            "vars": json.loads(templates[f"email-templates/{kind}-testdata.json"]),
        })
        assert answer.status_code == 200
    otp, invite = mailbox.wait_for_mail(OWNER, 1), mailbox.wait_for_mail(OWNER, 2)
    if otp["subject"].startswith("Jane"):
        otp, invite = invite, otp
    assert otp["subject"] == "Your One-Time Password for myapp.company.com: ABCD1234"
    assert "OTP: ABCD1234" in otp["text"] and "phishing" in otp["html"]
    assert invite["subject"] == 'Jane Doe wants to share "My Todo List" with you'
    assert "visit https://example.com" in invite["text"]
    assert 'href="https://example.com/accept"' in invite["html"]


BAD_TEST_SENDS = [
    ({"subjectStr": 1}, "strings"),
    ({"bodyHtmlStr": None}, "strings"),
    ({"vars": [1]}, "vars"),
    ({"to": "not an address"}, "e-mail address"),
    ({"to": 5}, "e-mail address"),
    ({"bodyHtmlStr": "{{#if x}}{{/with}}"}, "template"),
    ({"bodyTxtStr": "{{> partial}}"}, "template"),
    ({"subjectStr": "{{[a') or print('hi') or ('b]}}"}, "template"),
    ({"vars": {"a": json.loads("[" * 40 + "]" * 40)}}, "nested"),
]


def test_test_send_refuses_bad_input(client, db, mailbox):
    for change, named in BAD_TEST_SENDS:
        body = {"subjectStr": "s", "bodyTxtStr": "t", "bodyHtmlStr": "h", "vars": {}, **change}
        answer = send_test(client, db, body)
        assert answer.status_code == 400, change
        assert named in answer.get_json()["message"], change
    assert send_test(client, db, []).status_code == 400
    assert mailbox.mails == []


def test_test_send_needs_a_receiver_and_a_channel(app, client, mailbox, db):
    body = {"subjectStr": "s", "bodyTxtStr": "t", "bodyHtmlStr": "h", "vars": {}}
    anonymous = new_database(app, owner=None)
    answer = send_test(client, anonymous, body)
    assert answer.status_code == 400 and "--to" in answer.get_json()["message"]
    assert send_test(client, anonymous, {**body, "to": ANN}).status_code == 200
    assert mailbox.wait_for_mail(ANN)["subject"] == "s"

    with app.extensions["dxc"].control.begin() as connection:
        connection.execute(schema.email_channels.delete())
    answer = send_test(client, db, body)
    assert answer.status_code == 400 and "init-email-channel" in answer.get_json()["message"]


# --- invitations -----------------------------------------------------------------------------


def test_invite_mail_uses_the_pushed_templates_and_the_inviters_origin(app, client, mailbox):
    db = new_database(app)
    created = db[0]
    import_document(app.extensions["dxc"], created.db_id, {"demoUsers": {ALICE: {}, BOB: {}}})
    subject = "{{{invitor.firstName}}} shares {{{realm.name}}}"
    txt = "Hi {{{recepient.firstName}}} {{{recepient.lastName}}}: {{{acceptUrl}}} {{{app.name}}}"
    html = "<p>{{realm.represents}} {{#if app.isWebPage}}web{{/if}} {{rejectUrl}}</p>"
    answer = push(client, db, [
        {"path": INVITE_SUBJECT, "content": subject},
        {"path": "email-templates/invite-body-txt.handlebars", "content": txt},
        {"path": "email-templates/invite-body-html.handlebars", "content": html},
    ])
    assert answer.get_json()["numUpdatedTemplates"] == 3

    alice = Device(app.test_client(), created.url, "alice-1")
    alice.client.environ_base["HTTP_ORIGIN"] = "https://todo.example.com"
    claims = AccessClaims(ALICE, frozenset({"ACCESS_DB"}), "demo", ALICE, "Alice May Smith")
    alice.token = app.extensions["dxc"].signer.issue(created.db_id, claims).token
    realm = {"realmId": "rlmT", "owner": ALICE, "name": "Groceries & more",
             "represents": "shopping list"}
    member = {"id": "mmbBob", "realmId": "rlmT", "owner": ALICE, "email": BOB,
              "name": "Bob van Builder", "invite": True}
    alice.sync([
        alice.op("realms", "insert", ["rlmT"], "share", values=[realm]),
        alice.op("members", "insert", ["mmbBob"], "share", values=[member]),
    ])
    mail = mailbox.wait_for_mail(BOB)
    assert mail["template"] == "invite"
    assert mail["subject"] == "Alice shares Groceries & more"
    assert mail["text"] == (
        "Hi Bob van Builder: https://todo.example.com todo.example.com\n"
    )
    assert mail["html"] == "<p>shopping list web https://todo.example.com</p>\n"
    variables = mail["variables"]
    assert variables["invitor"] == {
        "name": "Alice May Smith", "firstName": "Alice", "lastName": "May Smith", "email": ALICE,
    }
    assert variables["recepient"] == {
        "name": "Bob van Builder", "firstName": "Bob", "lastName": "van Builder", "email": BOB,
    }
    assert variables["realm"]["realmId"] == "rlmT"
    assert variables["app"] == {
        "name": "todo.example.com", "url": "https://todo.example.com", "isWebPage": True,
    }
