"""The explorer's page from a synthetic chain document: values from the ledger are
escaped, and the inline script matches the Content-Security-Policy.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from chainops.errors import ConfigError
from chainops.web.explorer import _POLICY, parse_port, render_page

HOSTILE = '<script>alert("x")</script>&'


def document(**changes: object) -> dict:
    doc = {
        "database": "127.0.0.1:5432/app",
        "head": "c" * 64,
        "height": 1,
        "blocks": [
            {
                "height": 1,
                "number": 1001,
                "path": "001-schema/001-a.sql",
                "content_hash": "a" * 64,
                "block_hash": "c" * 64,
                "previous_hash": "0" * 64,
                "applied_at": "2025-09-21T10:00:00.000Z",
                "applied_by": HOSTILE,
                "duration_ms": 8,
                "mode": "transaction",
                "state": "applied",
            }
        ],
        "pending": [
            {
                "number": 1002,
                "path": "001-schema/002-b.sql",
                "state": "failed",
                "applied_at": None,
                "error": HOSTILE,
            }
        ],
        "problems": [{"kind": "tampered", "path": "", "message": HOSTILE}],
        "error": None,
        "ok": False,
        "version": '"><script>',
    }
    doc.update(changes)
    return doc


def test_render_escapes_ledger_values_when_they_hold_markup():
    page = render_page(document())

    assert "<script>alert" not in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;") == 3
    assert 'data-version="&quot;&gt;&lt;script&gt;"' in page
    assert page.count("<script>") == 1  # only the refresh script


def test_render_escapes_error_banner_when_database_fails():
    page = render_page(document(error=HOSTILE, blocks=[], pending=[], problems=[]))

    assert '<div class="banner">✗ &lt;script&gt;' in page
    assert "No blocks yet" not in page


def test_policy_allows_exactly_the_inline_script_when_rendered():
    page = render_page(document())
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert script
    assert style

    for block in (script.group(1), style.group(1)):
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in _POLICY


@pytest.mark.parametrize(
    ("value", "port"), [(None, 8765), ("", 8765), ("0", 0), ("5100", 5100)]
)
def test_parse_port_reads_port_when_valid(value, port):
    assert parse_port(value) == port


@pytest.mark.parametrize("value", ["http", "-1", "70000", "80.5"])
def test_parse_port_refuses_value_when_not_a_port(value):
    with pytest.raises(ConfigError) as caught:
        parse_port(value)

    assert str(caught.value).startswith(f"PORT={value!r} is not a port number")
