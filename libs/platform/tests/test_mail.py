"""The platform's mail sending over real SMTP (the tests' mail sink), settings and templates."""

import pytest

from libs.platform.config import ConfigError
from libs.platform.mail import Mail, MailError, MailTemplates, SmtpMailer, SmtpSettings, check_address
from tests.simulators.mailsink import MailSink

pytestmark = pytest.mark.timeout(30)


def mail(**changes) -> Mail:
    values = {"to": "ops@acme.example", "subject": "Order SO-1", "body": "Fix it.\n", "message_id": "<m1@ordersync>"}
    return Mail(**(values | changes))


def mailer(port: int) -> SmtpMailer:
    return SmtpMailer(SmtpSettings("127.0.0.1", port, "ordersync@hub.example", starttls=False, timeout_s=5))


@pytest.mark.asyncio
async def test_a_mail_arrives_as_sent():
    async with MailSink() as sink:
        await mailer(sink.smtp_port).send(mail())
    [received] = sink.messages
    assert received["rcpt_tos"] == ["ops@acme.example"] and received["mail_from"] == "ordersync@hub.example"
    assert (received["subject"], received["body"], received["message_id"]) == (
        "Order SO-1",
        "Fix it.\n",
        "<m1@ordersync>",
    )


@pytest.mark.asyncio
async def test_a_4xx_answer_is_retryable_and_a_5xx_is_not():
    async with MailSink() as sink:
        sink.fail_next(1, 451)
        sink.fail_next(1, 554)
        with pytest.raises(MailError) as later:
            await mailer(sink.smtp_port).send(mail())
        with pytest.raises(MailError) as never:
            await mailer(sink.smtp_port).send(mail())
        await mailer(sink.smtp_port).send(mail())
    assert later.value.retryable and not never.value.retryable
    assert len(sink.messages) == 1


@pytest.mark.asyncio
async def test_no_server_is_retryable():
    async with MailSink() as sink:
        port = sink.smtp_port
    with pytest.raises(MailError) as error:
        await mailer(port).send(mail())
    assert error.value.retryable


def test_templates_give_subject_and_body_and_refuse_holes(tmp_path):
    (tmp_path / "t.txt").write_text("Subject: Order {{ number }}\n\nHello {{ who }}.\n")
    templates = MailTemplates(tmp_path)
    assert templates.render("t.txt", number="SO-1", who="Ops & Co") == ("Order SO-1", "Hello Ops & Co.\n")
    with pytest.raises(Exception, match="who"):
        templates.render("t.txt", number="SO-1")


def test_settings_from_env(monkeypatch):
    assert SmtpSettings.from_env(lambda r, w: "x") is None
    monkeypatch.setenv("ORDERSYNC_SMTP_HOST", "smtp.example")
    monkeypatch.setenv("ORDERSYNC_SMTP_FROM", "hub@example.com")
    monkeypatch.setenv("ORDERSYNC_SMTP_PASSWORD", "env:SMTP_PW")
    monkeypatch.setenv("ORDERSYNC_SMTP_STARTTLS", "off")
    seen: list[str] = []

    def resolve(reference: str, where: str) -> str:
        seen.append(reference)
        return "s3cret"

    settings = SmtpSettings.from_env(resolve)
    assert settings is not None and (settings.host, settings.port, settings.starttls) == ("smtp.example", 587, False)
    assert settings.password == "s3cret" and seen == ["env:SMTP_PW"] and "s3cret" not in repr(settings)
    monkeypatch.setenv("ORDERSYNC_SMTP_FROM", "not an address")
    with pytest.raises(ConfigError, match="ORDERSYNC_SMTP_FROM"):
        SmtpSettings.from_env(lambda r, w: "x")


@pytest.mark.parametrize("value", ["ops@acme.example", "first.last+tag@sub.acme.co"])
def test_addresses(value):
    assert check_address(value) is None


@pytest.mark.parametrize("value", ["", "ops", "ops@acme", "Ops <ops@acme.example>", "a b@acme.example", None])
def test_not_addresses(value):
    assert check_address(value) is not None
