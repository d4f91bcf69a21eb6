"""The masker: every secret, in every encoding it travels in, becomes ***."""

from __future__ import annotations

import json
import time
from urllib.parse import quote, quote_plus, urlencode

import pytest

from orchestrion.auth.masking import MASK, Masker

SECRET = 'p@ss w0rd/"quoted"\\back+plus&amp=é✓'


def test_plain() -> None:
    masker = Masker(["hunter2"])
    assert masker.mask("password is hunter2, again hunter2.") == "password is ***, again ***."
    assert masker.mask("nothing here") == "nothing here"
    assert masker.mask("") == ""


@pytest.mark.parametrize(
    "encoded",
    [
        SECRET,
        json.dumps(SECRET),
        json.dumps(SECRET, ensure_ascii=False),
        json.dumps({"password": SECRET}),
        json.dumps([SECRET], indent=2),
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        quote(SECRET, safe="").lower(),
        urlencode({"token": SECRET, "next": "/"}),
        f"https://user:{quote(SECRET, safe='')}@host.test/",
    ],
)
def test_encoded_forms(encoded: str) -> None:
    masked = Masker([SECRET]).mask(f"before {encoded} after")
    assert masked.startswith("before ") and masked.endswith(" after")
    assert MASK in masked
    for leak in ("p@ss", "w0rd", "quoted", "back", "amp"):
        assert leak not in masked, masked


def test_overlapping_secrets_leave_nothing_behind() -> None:
    masker = Masker(["abcd", "cdef"])
    assert masker.mask("xxabcdefyy") == "xx***yy"
    assert Masker(["aaa"]).mask("aaaa") == "***"
    assert Masker(["abc", "abcdef"]).mask("abcdefg abcx") == "***g ***x"


def test_secret_inside_another() -> None:
    masker = Masker(["token", "secret-token-value"])
    assert masker.mask("got secret-token-value and token") == "got *** and ***"


def test_multiline_secret_is_masked_line_by_line() -> None:
    pem = "-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEFAASCAUEwggE9\n-----END KEY-----"
    masker = Masker([pem])
    assert masker.mask(f"key={pem}") == "key=***"
    assert "MIIB" not in masker.mask("log line: MIIBVwIBADANBgkqhkiG9w0BAQEFAASCAUEwggE9")


def test_regex_metacharacters_are_literal() -> None:
    masker = Masker(["a.c", "(x|y)*"])
    assert masker.mask("abc a.c (x|y)* xy") == "abc *** *** xy"


def test_min_length_and_empty_values() -> None:
    masker = Masker(["", "ab", "longer"], min_length=3)
    assert masker.mask("ab longer") == "ab ***"
    assert Masker([""]).is_empty
    assert Masker().mask("text") == "text"


def test_mask_data() -> None:
    masker = Masker(["s3cret"])
    data = {"s3cret-key": ["a s3cret", {"n": 1, "b": True, "x": None}], "t": ("s3cret",)}
    assert masker.mask_data(data) == {
        "***-key": ["a ***", {"n": 1, "b": True, "x": None}],
        "t": ["***"],
    }
    assert Masker().mask_data(data) is data


def test_repr_holds_no_value() -> None:
    assert "hunter2" not in repr(Masker(["hunter2"]))


def test_many_secrets_are_fast() -> None:
    values = [f"sentinel-{i:05d}-{i * 7919 % 10007:05d}" for i in range(2000)]
    masker = Masker(values)
    text = " ".join(f"line {i} {values[i]} ok" for i in range(0, 2000, 7)) * 3
    started = time.perf_counter()
    masked = masker.mask(text)
    assert time.perf_counter() - started < 2.0
    assert "sentinel-" not in masked
    assert masked.count(MASK) == len(range(0, 2000, 7)) * 3


@pytest.mark.parametrize("value", ['a\\b"c', "it's \\n", "tab\there é"], ids=["bs", "quote", "uni"])
def test_python_repr_forms_are_masked(value: str) -> None:
    masker = Masker([value])
    for text in (f"failed with {value!r}", f"{[value]}", ascii(value), str({"k": value})):
        assert masker.mask(text).count(MASK) >= 1, text
        assert value not in masker.mask(text)


# ------------------------------------------------------------------ shortening (issue 12)

CUT_SECRET = "QZXJKWVYQZXJ"
LIMIT = 40


def _pieces(text: str) -> list[str]:
    n = len(CUT_SECRET)
    return [CUT_SECRET[i : i + 2] for i in range(n - 1) if CUT_SECRET[i : i + 2] in text]


@pytest.mark.parametrize("offset", range(LIMIT - len(CUT_SECRET) - 1, LIMIT + 2))
def test_head_masks_before_cutting(offset: int) -> None:
    text = "." * offset + CUT_SECRET + "." * 50
    kept = Masker([CUT_SECRET]).head(text, LIMIT, marker="…")
    assert _pieces(kept) == []
    assert kept.endswith("…") and len(kept) <= LIMIT + 1


@pytest.mark.parametrize("after", range(LIMIT - len(CUT_SECRET) - 1, LIMIT + 2))
def test_tail_masks_before_cutting(after: int) -> None:
    text = "." * 50 + CUT_SECRET + "." * after
    kept = Masker([CUT_SECRET]).tail(text, LIMIT)
    assert _pieces(kept) == [] and len(kept) <= LIMIT


@pytest.mark.parametrize("size", range(1, len(CUT_SECRET)))
def test_scrub_end_removes_any_beginning_of_a_value(size: int) -> None:
    masker = Masker([CUT_SECRET, "other"])
    assert masker.scrub_end("abc " + CUT_SECRET[:size]) == f"abc {MASK}"
    # Not at the edge: text that merely begins like a value is not a value.
    assert masker.scrub_end("abc " + CUT_SECRET[:size] + "!") == "abc " + CUT_SECRET[:size] + "!"


def test_scrub_end_finds_escaped_forms_and_keeps_other_text() -> None:
    value = 'a"b\\c-secret'
    masker = Masker([value])
    assert masker.scrub_end('log: {"k": "a\\"b\\\\c-se') == 'log: {"k": "***'
    assert masker.scrub_end("plain text") == "plain text"
    assert Masker().scrub_end("anything a") == "anything a"
    assert masker.scrub_end(f"{value} and {value[:3]}") == f"{MASK} and {MASK}"


def test_short_text_is_not_cut() -> None:
    masker = Masker(["hunter2"])
    assert masker.head("hunter2 x", 100, marker="…") == "*** x"
    assert masker.tail("x hunter2", 100, marker="…") == "x ***"
    assert masker.tail("x hunter2", 0, marker="…") == "…"
