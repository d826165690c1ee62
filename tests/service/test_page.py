"""The web page: served with its Content-Security-Policy, and showing results in headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
import subprocess
from urllib.parse import quote

import httpx
import pytest

from mpretriever.service.page import CONTENT_SECURITY_POLICY, INDEX_HTML, SCRIPT, STYLE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMIUM_TIMEOUT_S = 60


def chromium_dump_dom(url: str) -> str:
    """The DOM of ``url`` once its scripts have run (virtual time lets the fetch finish), from headless Chromium."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_page_is_served_offline_with_a_strict_content_security_policy(service_url: str) -> None:
    response = httpx.get(f"{service_url}/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.text == INDEX_HTML
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    for block in (SCRIPT, STYLE):
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert not re.search(r"(src|href)=\"(https?:)?//", INDEX_HTML), "nothing is loaded from elsewhere"


def test_script_never_writes_html_from_data() -> None:
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in SCRIPT
    assert "textContent" in SCRIPT


@pytest.mark.needs("chromium")
def test_page_shows_the_answer_and_the_ranked_passages_in_chromium(service_url: str) -> None:
    question = "cancer cell diet <b>bold</b>"
    expected = httpx.post(f"{service_url}/query", json={"question": question, "top_k": 3}).json()
    dom = chromium_dump_dom(f"{service_url}/?q={quote(question)}&k=3")
    assert 'data-state="done"' in dom, dom[-3000:]
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom))
    assert expected["answer"] in text  # the stub's answer quotes the question: markup shown as text
    assert "<b>bold</b>" not in dom
    ranked = re.findall(r'<li class="passage">.*?</li>', dom, flags=re.S)
    assert len(ranked) == 3
    for item, passage in zip(ranked, expected["passages"], strict=True):
        assert f'<code class="doc-id">{passage["id"]}</code>' in item
        assert f'<span class="score">{passage["score"]:.4f}</span>' in item
    assert "3 passages in" in text


@pytest.mark.needs("chromium")
def test_page_shows_validation_errors(service_url: str) -> None:
    dom = chromium_dump_dom(f"{service_url}/?q=x&k=500")
    assert '<p id="status" role="status" aria-live="polite" class="error">' in dom
    assert "top_k: Input should be less than or equal to 100" in html.unescape(dom)
