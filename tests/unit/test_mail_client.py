"""Mail settings come from the environment only, checked before any connection."""

from __future__ import annotations

import pytest

from pysteps.clients.mail import MailMessage, SmtpSettings, YagmailNotifier
from pysteps.errors import InputError, ServiceError


def test_no_host_means_no_mail_server():
    assert SmtpSettings.from_env({}) is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PYSTEPS_SMTP_HOST": "127.0.0.1"}, ("none", 25, None)),
        (
            {"PYSTEPS_SMTP_HOST": "127.0.0.1", "PYSTEPS_SMTP_TLS": "starttls"},
            ("starttls", 587, None),
        ),
        ({"PYSTEPS_SMTP_HOST": "127.0.0.1", "PYSTEPS_SMTP_TLS": "ssl"}, ("ssl", 465, None)),
        (
            {"PYSTEPS_SMTP_HOST": "h", "PYSTEPS_SMTP_PORT": "2525", "PYSTEPS_SMTP_USERNAME": "ci"},
            ("none", 2525, "ci"),
        ),
    ],
)
def test_settings_from_the_environment(env, expected):
    s = SmtpSettings.from_env(env)
    assert s is not None and (s.tls, s.port, s.username) == expected


@pytest.mark.parametrize(
    ("key", "value"),
    [("PYSTEPS_SMTP_TLS", "tls1.3"), ("PYSTEPS_SMTP_PORT", "smtp"), ("PYSTEPS_SMTP_TIMEOUT", "0")],
)
def test_a_bad_setting_names_the_variable(key, value):
    with pytest.raises(InputError, match="PYSTEPS_SMTP_"):
        SmtpSettings.from_env({"PYSTEPS_SMTP_HOST": "127.0.0.1", key: value})


def test_a_username_without_password_fails_before_connecting():
    # Port 1 on loopback: a connection attempt would fail with a different message.
    notifier = YagmailNotifier(SmtpSettings("127.0.0.1", 1, username="ci", password=None))
    with pytest.raises(ServiceError, match="PYSTEPS_SMTP_PASSWORD is not"):
        notifier.send(MailMessage(("a@ci.test",), (), "s", "b"))


def test_the_message_is_multipart_alternative_text_then_html():
    msg = MailMessage(("a@x.test",), ("b@x.test",), "subj", "text", "<p>html</p>").to_email(
        "p@x.test"
    )
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert (msg["To"], msg["Cc"], msg["From"]) == ("a@x.test", "b@x.test", "p@x.test")
