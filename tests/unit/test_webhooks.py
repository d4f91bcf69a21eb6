"""Webhook signatures: GitHub, Stripe and our own HMAC style; tampering and replays."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orchestrion.triggers.webhooks import (
    REFUSED,
    Style,
    WebhookRejected,
    accept,
    read_body,
    sign,
    verify,
)

SECRET = b"s3cr3t"
BODY = b'{"id": 42}'
NOW = 1_800_000_000.0

# A tampering step: headers and body in, the altered pair out.
Mutation = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


@pytest.mark.parametrize("style", ["github", "stripe", "hmac"])
def test_good_signatures_pass(style: Style) -> None:
    headers = sign(style, SECRET, BODY, NOW)
    headers["X-GitHub-Delivery"] = "d-1"
    headers["X-Orchestrion-Delivery"] = "d-1"
    verified = verify(style, SECRET, headers, BODY, NOW + 5)
    assert verified.delivery_id == ("d-1" if style != "stripe" else None)


@pytest.mark.parametrize("style", ["github", "stripe", "hmac"])
@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, b: (h, b + b" "), "does not match"),
        (lambda h, b: (h, b"{}"), "does not match"),
        (lambda h, b: ({}, b), "missing"),
        (lambda h, b: ({k: v[:-2] + "00" for k, v in h.items()}, b), "does not match"),
    ],
)
def test_tampering_is_rejected(style: Style, mutate: Mutation, reason: str) -> None:
    headers, body = mutate(sign(style, SECRET, BODY, NOW), BODY)
    with pytest.raises(WebhookRejected, match=reason):
        verify(style, SECRET, headers, body, NOW)


@pytest.mark.parametrize("style", ["github", "stripe", "hmac"])
def test_wrong_secret_and_no_secret(style: Style) -> None:
    headers = sign(style, b"other", BODY, NOW)
    with pytest.raises(WebhookRejected, match="does not match"):
        verify(style, SECRET, headers, BODY, NOW)
    with pytest.raises(WebhookRejected, match="no secret"):
        verify(style, b"", headers, BODY, NOW)


@pytest.mark.parametrize("style", ["stripe", "hmac"])
def test_replays_outside_the_tolerance_are_rejected(style: Style) -> None:
    headers = sign(style, SECRET, BODY, NOW)
    with pytest.raises(WebhookRejected, match="replay"):
        verify(style, SECRET, headers, BODY, NOW + 301)
    with pytest.raises(WebhookRejected, match="replay"):
        verify(style, SECRET, headers, BODY, NOW - 301)


@pytest.mark.parametrize(
    "value",
    [
        "t=abc,v1=00",
        "v1=00",
        "t=1800000000",
        "garbage",
        "t=,v1=",
        "t=1800000000,v2=aa",
        "t=\u00b2,v1=00",  # a Unicode digit int() refuses: was a ValueError (500)
        "t=" + "9" * 5000 + ",v1=00",  # past int()'s digit limit: was a ValueError too
    ],
)
def test_malformed_stripe_headers(value: str) -> None:
    with pytest.raises(WebhookRejected):
        verify("stripe", SECRET, {"Stripe-Signature": value}, BODY, NOW)


def test_stripe_rotation_accepts_any_listed_signature() -> None:
    good = sign("stripe", SECRET, BODY, NOW)["Stripe-Signature"]
    stamp, sig = good.split(",")
    header = f"{stamp},v1={'0' * 64},{sig}"
    verify("stripe", SECRET, {"stripe-signature": header}, BODY, NOW)


def test_github_prefix_required() -> None:
    with pytest.raises(WebhookRejected, match="sha256="):
        verify("github", SECRET, {"X-Hub-Signature-256": "md5=00"}, BODY, NOW)


def test_errors_never_contain_the_expected_signature() -> None:
    expected = sign("github", SECRET, BODY, NOW)["X-Hub-Signature-256"][7:]
    with pytest.raises(WebhookRejected) as info:
        verify("github", SECRET, {"X-Hub-Signature-256": "sha256=00"}, BODY, NOW)
    assert expected not in str(info.value) and "s3cr3t" not in str(info.value)


def test_accept_tells_the_caller_nothing_and_the_audit_log_why() -> None:
    env = {"ORCHESTRION_WEBHOOK_GH_SECRET": "s3cr3t"}
    with pytest.raises(WebhookRejected) as unknown:
        accept("nope", env, {}, BODY, NOW)
    with pytest.raises(WebhookRejected) as unsigned:
        accept("gh", env, {}, BODY, NOW)
    assert str(unknown.value) == str(unsigned.value) == REFUSED
    assert unknown.value.reason == "no webhook named 'nope' is configured"
    assert unsigned.value.reason == "missing X-Hub-Signature-256 header"


@pytest.mark.parametrize(
    ("content_type", "body", "kind", "payload"),
    [
        ("application/json", b'{"a": 1}', "json", {"a": 1}),
        ("Application/JSON; charset=UTF-8", b"[1, 2]", "json", [1, 2]),
        ("application/json", b"", "json", None),
        ("application/cloudevents+json", b'"x"', "json", "x"),
        ("application/x-www-form-urlencoded", b"a=1&b=", "form", {"a": "1", "b": ""}),
        ("text/plain", "héllo".encode(), "text", "héllo"),
        ('text/csv; charset="utf-16"', "a,b".encode("utf-16"), "text", "a,b"),
        ("application/atom+xml", b"<feed/>", "text", "<feed/>"),
    ],
)
def test_bodies_are_read_by_their_content_type(
    content_type: str, body: bytes, kind: str, payload: object
) -> None:
    read = read_body(content_type, body)
    assert (read.kind, read.payload) == (kind, payload)


def test_replay_keys_cover_what_is_signed_and_the_hook() -> None:
    env = {
        "ORCHESTRION_WEBHOOK_A_SECRET": "s",
        "ORCHESTRION_WEBHOOK_B_SECRET": "s",
        "ORCHESTRION_WEBHOOK_S_SECRET": "s",
        "ORCHESTRION_WEBHOOK_S_STYLE": "stripe",
    }
    text = {"Content-Type": "text/plain"}
    signed = {**sign("github", b"s", BODY, NOW), **text}
    one = accept("a", env, {**signed, "X-GitHub-Delivery": "1"}, BODY, NOW)
    two = accept("a", env, {**signed, "X-GitHub-Delivery": "2"}, BODY, NOW)
    other_hook = accept("b", env, signed, BODY, NOW)
    assert one.replay_key == two.replay_key != other_hook.replay_key
    assert one.replay_until == NOW + 7 * 86400
    first = accept("s", env, {**sign("stripe", b"s", BODY, NOW), **text}, BODY, NOW)
    later = accept("s", env, {**sign("stripe", b"s", BODY, NOW + 1), **text}, BODY, NOW + 1)
    assert first.replay_key != later.replay_key  # signed afresh: a new delivery
    assert first.replay_until == NOW + 301
