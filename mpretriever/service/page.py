"""The web page served at ``/``: a question box, the answer and the ranked passages.

Plain HTML, CSS and vanilla JavaScript, nothing fetched from elsewhere, so it works offline. Text from the service
is only ever set with ``textContent``. ``/?q=question`` (optionally ``&k=5&generate=0``) asks on load. The
Content-Security-Policy allows exactly the inline style and script below (by hash) and requests to this origin.
"""

from __future__ import annotations

import base64
import hashlib

STYLE = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5d6678; --line: #dde2ea; --accent: #2457c5; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: #f6f7fa; }
main { max-width: 900px; margin: 0 auto; padding: 28px 20px 40px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; }
h1 + p { margin: 0 0 20px; color: var(--muted); }
form { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
#question { flex: 1 1 420px; padding: 10px 12px; font-size: 1rem; border: 1px solid #b9c2d0; border-radius: 8px; }
#top-k { width: 4.5em; padding: 6px; }
label { color: var(--muted); font-size: 0.92rem; }
button { padding: 10px 18px; font-size: 1rem; border: 0; border-radius: 8px; background: var(--accent);
         color: #fff; cursor: pointer; }
button:disabled { opacity: 0.6; cursor: progress; }
#status { min-height: 1.5em; color: var(--muted); font-size: 0.92rem; margin: 14px 0; }
#status.error { color: #b3261e; }
#answer-box { background: #fff; border: 1px solid var(--line); border-left: 4px solid var(--accent);
              border-radius: 8px; padding: 12px 16px; margin-bottom: 18px; }
#answer-box h2, #passages-title { font-size: 0.8rem; letter-spacing: 0.06em; text-transform: uppercase;
                                  color: var(--muted); margin: 0 0 4px; }
#answer { font-size: 1.15rem; margin: 0; }
ol { list-style: none; padding: 0; margin: 0; counter-reset: rank; }
.passage { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
           margin-bottom: 10px; counter-increment: rank; }
.passage-header { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: baseline; }
.passage-header::before { content: "#" counter(rank); font-weight: 600; color: var(--accent); }
.score { font-variant-numeric: tabular-nums; font-weight: 600; }
.doc-id { color: var(--muted); font-size: 0.85rem; }
.title { flex-basis: 100%; }
.content { margin: 6px 0 0; white-space: pre-wrap; }
"""

SCRIPT = """
"use strict";
const form = document.getElementById("ask");
const question = document.getElementById("question");
const topK = document.getElementById("top-k");
const generate = document.getElementById("generate");
const button = form.querySelector("button");
const statusLine = document.getElementById("status");
const answerBox = document.getElementById("answer-box");
const answer = document.getElementById("answer");
const passagesTitle = document.getElementById("passages-title");
const passages = document.getElementById("passages");

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function errorMessage(body, status) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((item) => `${item.loc.slice(1).join(".") || "request"}: ${item.msg}`).join("; ");
  }
  return `the service answered HTTP ${status}`;
}

function showStatus(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "";
}

function render(body) {
  if (body.answer !== null) {
    answer.textContent = body.answer || "(the generator gave no answer)";
    answerBox.hidden = false;
  }
  for (const passage of body.passages) {
    const item = element("li", "passage");
    const header = element("div", "passage-header");
    header.append(element("span", "score", passage.score.toFixed(4)), element("code", "doc-id", passage.id));
    if (passage.title) header.append(element("strong", "title", passage.title));
    item.append(header, element("p", "content", passage.content));
    passages.append(item);
  }
  passagesTitle.hidden = body.passages.length === 0;
  let summary = `${body.passages.length} passages in ${Math.round(body.retrieval_ms)} ms`;
  if (body.generation_ms !== null) summary += `, answer in ${Math.round(body.generation_ms)} ms`;
  showStatus(summary, false);
}

async function ask() {
  const request = { question: question.value, top_k: Number(topK.value), generate: generate.checked };
  const address = new URL(window.location.href);
  address.searchParams.set("q", request.question);
  address.searchParams.set("k", String(request.top_k));
  address.searchParams.set("generate", request.generate ? "1" : "0");
  window.history.replaceState(null, "", address);
  answerBox.hidden = true;
  passagesTitle.hidden = true;
  passages.replaceChildren();
  showStatus(request.generate ? "Searching and writing the answer…" : "Searching…", false);
  button.disabled = true;
  document.body.dataset.state = "busy";
  try {
    const response = await fetch("query", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    });
    const body = await response.json().catch(() => null);
    if (response.ok) render(body);
    else showStatus(errorMessage(body, response.status), true);
  } catch (error) {
    showStatus(`the service did not answer: ${error.message}`, true);
  } finally {
    button.disabled = false;
    document.body.dataset.state = "done";
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  ask();
});

const parameters = new URLSearchParams(window.location.search);
if (parameters.get("k")) topK.value = parameters.get("k");
if (parameters.get("generate") === "0") generate.checked = false;
if (parameters.get("q")) {
  question.value = parameters.get("q");
  ask();
} else {
  question.focus();
}
"""

BODY = """<main>
<h1>mpretriever</h1>
<p>Ask a question: the passages are retrieved from Qdrant, and the answer is written from the best of them.</p>
<form id="ask">
<input id="question" name="q" type="search" placeholder="Ask a question" maxlength="2000" required
 aria-label="question">
<label>passages <input id="top-k" type="number" min="1" max="100" value="5"></label>
<label><input id="generate" type="checkbox" checked> write an answer</label>
<button type="submit">Ask</button>
</form>
<p id="status" role="status" aria-live="polite"></p>
<section id="answer-box" hidden><h2>Answer</h2><p id="answer"></p></section>
<h2 id="passages-title" hidden>Passages</h2>
<ol id="passages"></ol>
</main>"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


INDEX_HTML = (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>mpretriever</title>\n'
    f"<style>{STYLE}</style>\n</head>\n<body>\n{BODY}\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
)

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_sha256(STYLE)}; script-src {_sha256(SCRIPT)}; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
