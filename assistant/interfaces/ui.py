"""The browser chat (gradio), thin over ``Assistant``.

Everything that comes from a document or a file name is HTML-escaped before it
reaches the page, and the chat shows plain text (no Markdown, no HTML), so a
document holding ``<script>`` or ``<img onerror=...>`` runs nothing.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from assistant.api import Assistant
from assistant.config import K_MAX, MODES, check_k
from assistant.errors import IndexProblem, StoreUnavailable
from assistant.types import Answer

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# errors shown on the page as a line of text, rather than as the chat's error box
SHOWN_ERRORS = (ValueError, IndexProblem, StoreUnavailable)
INGEST_WAIT = 600  # seconds an upload's ingest waits for another writer (a CLI ingest) to finish
CSS = """
.passage { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; margin: 8px 0; }
.passage.cited { border-color: #1f6feb; }
.passage:target { box-shadow: 0 0 0 3px #1f6feb55; }
.passage .head { font-weight: 600; margin-bottom: 4px; }
.passage .body { white-space: pre-wrap; font-size: 0.92em; }
.passage mark { background: #fff3b0; }
.passage mark.answer { background: #ffd33d; font-weight: 600; }
.answer-text { white-space: pre-wrap; margin-bottom: 8px; }
.retrieved-title { color: #57606a; margin-top: 14px; }
"""
# System fonts only: the page must fetch nothing from other hosts.
FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO_FONTS = ["ui-monospace", "Consolas", "monospace"]


# ----------------------------------------------------------------------------- rendering
def _marked(text: str, spans: list[list[int]], answers: list[list[int]] = ()) -> str:
    """``text`` escaped, ``spans`` wrapped in <mark>, the ``answers`` inside them in <mark class="answer">."""
    cuts = sorted({0, len(text)} | {max(0, min(len(text), x)) for span in list(spans) + list(answers)
                                     for x in span})
    runs: list[list] = []  # [style, text] with neighbours of one style merged
    for a, b in zip(cuts, cuts[1:]):
        style = ("answer" if any(s <= a and b <= e for s, e in answers)
                 else "mark" if any(s <= a and b <= e for s, e in spans) else "")
        if runs and runs[-1][0] == style:
            runs[-1][1] += text[a:b]
        else:
            runs.append([style, text[a:b]])
    opening = {"answer": '<mark class="answer">', "mark": "<mark>", "": ""}
    return "".join(f"{opening[st]}{html.escape(t)}{'</mark>' if st else ''}" for st, t in runs)


def _linked_markers(answer_text: str) -> str:
    escaped = html.escape(answer_text)
    return re.sub(r"\[(\d+)\]", r'<a class="marker" href="#src-\1">[\1]</a>', escaped)


def render_sources(answer: Answer, notice: str | None = None) -> str:
    """The sources panel: the answer with linked markers, cited passages, then the rest apart."""
    parts = []
    if notice:
        parts.append(f'<p class="notice">{html.escape(notice)}</p>')
    parts.append(f'<div class="answer-text">{_linked_markers(answer.answer)}</div>')
    if answer.rewritten_question:
        parts.append(f"<p><em>Understood as: {html.escape(answer.rewritten_question)}</em></p>")
    cited = [c for c in answer.citations if c.cited]
    others = [c for c in answer.citations if not c.cited]
    if cited:
        parts.append("<h4>Sources</h4>")
        parts += [_passage(c, True) for c in cited]
    if others:
        parts.append('<h4 class="retrieved-title">Also retrieved (not cited)</h4>')
        parts += [_passage(c, False) for c in others]
    return "\n".join(parts)


def _passage(c, cited: bool) -> str:
    where = f"page {c.page}" if c.page else f"characters {c.start}–{c.end}"
    name = html.escape(Path(c.source).name)
    full = html.escape(c.source)
    return (
        f'<div class="passage{" cited" if cited else ""}" id="src-{c.n}">'
        f'<div class="head" title="{full}">[{c.n}] {name} · {where} · score {c.score:.4f}</div>'
        f'<div class="body">{_marked(c.text, c.highlights if cited else [], c.answer_spans if cited else [])}</div></div>'
    )


def chat_text(answer: Answer, notice: str | None = None) -> str:
    """What the chat bubble keeps: the checked answer, the rewrite, and any notice (plain text)."""
    text = answer.answer
    if answer.rewritten_question:
        text += f"\n\n(understood as: {answer.rewritten_question})"
    if notice:
        text += f"\n\n{notice}"
    return text


# ----------------------------------------------------------------------------- uploads
def safe_upload_name(name: str) -> str:
    """A file name that stays inside the upload folder: no folders, no leading dots."""
    base = re.split(r"[\\/]", name)[-1]
    base = re.sub(r"[\x00-\x1f]", "", base).strip().lstrip(".")
    if not base or base in (".", ".."):
        raise ValueError(f"unusable file name {name!r}")
    return base[:200]


@dataclass
class IngestJob:
    """The one background ingest a server runs at a time, and what it has done so far.

    ``pending`` is set when files arrive while it runs: it then runs once more when
    it ends, so every upload is indexed.
    """

    running: bool = False
    pending: bool = False
    done: int = 0
    total: int = 0
    current: str = ""
    message: str = "No indexing has run yet."
    started: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def notice(self) -> str | None:
        if not self.running:
            return None
        return (f"Indexing is in progress ({self.done} of {self.total} files done): this answer "
                "uses only the documents indexed so far.")


class App:
    """Server-side state shared by all sessions: the assistant, uploads and the ingest job."""

    def __init__(self, bot: Assistant, upload_dir: Path, allowed: tuple[str, ...] = Assistant.supported_suffixes,
                 max_upload_mb: float | None = None):
        self.bot = bot
        self.upload_dir = upload_dir
        self.allowed = tuple(s.lower() for s in allowed)
        self.max_upload_bytes = int((max_upload_mb or bot.settings.max_file_mb) * 1_000_000)
        self.job = IngestJob()
        self._bots: dict[str, Assistant] = {bot.settings.backend: bot}

    def backends(self) -> list[str]:
        names = [self.bot.settings.backend]
        if self.bot.settings.backend == "openai":
            names.append("bundled")
        names.append("none")
        return list(dict.fromkeys(names))

    def using(self, backend: str | None) -> Assistant:
        """The assistant answering with ``backend`` (sharing index, retriever and embedder)."""
        backend = backend or self.bot.settings.backend
        if backend not in self.backends():
            raise ValueError(f"unknown backend {backend!r}")
        if backend not in self._bots:
            self._bots[backend] = self.bot.with_backend(backend)
        return self._bots[backend]

    # documents --------------------------------------------------------------
    def documents_table(self) -> list[list]:
        return [[d.source, d.chunks, datetime.fromtimestamp(d.indexed_at).strftime("%Y-%m-%d %H:%M")]
                for d in self.bot.documents()]

    def sources(self) -> list[str]:
        return [d.source for d in self.bot.documents()]

    def accept_uploads(self, paths: list[str]) -> tuple[list[str], list[str]]:
        """Copy uploaded files into the upload folder; returns (accepted names, refusals)."""
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        accepted, refused = [], []
        for tmp in paths or []:
            original = getattr(tmp, "orig_name", None) or os.path.basename(str(tmp))
            try:
                name = safe_upload_name(original)
            except ValueError as exc:
                refused.append(str(exc))
                continue
            suffix = Path(name).suffix.lower()
            if suffix not in self.allowed:
                refused.append(f"{name}: type {suffix or '(none)'} is not allowed "
                               f"(allowed: {', '.join(self.allowed)})")
                continue
            size = os.path.getsize(str(tmp))
            if size > self.max_upload_bytes:
                refused.append(f"{name}: {size / 1e6:.1f} MB is over the "
                               f"{self.max_upload_bytes / 1e6:.1f} MB limit")
                continue
            target = (self.upload_dir / name).resolve()
            if target.parent != self.upload_dir.resolve():
                refused.append(f"{original!r}: not a plain file name")
                continue
            # copied under a hidden name (ingest skips those), then renamed: a running
            # ingest sees the old file or the whole new one, never half of it
            part = target.with_name(f".{name}.{threading.get_ident()}.part")
            shutil.copyfile(str(tmp), part)
            os.replace(part, target)
            accepted.append(name)
        return accepted, refused

    def start_ingest(self) -> str:
        """Index the upload folder in the background; returns a status line.

        Files uploaded while an ingest runs are queued: it runs again when it ends.
        """
        with self.job.lock:
            if self.job.running:
                self.job.pending = True
                return "Indexing is running; these files are queued and indexed when it ends."
            self.job.running, self.job.pending = True, False
            self.job.started = time.monotonic()
            self.job.message = "Indexing started."
        threading.Thread(target=self._ingest, daemon=True, name="upload-ingest").start()
        return "Indexing started."

    def _ingest(self) -> None:
        """Run ingests of the upload folder until no upload is pending."""
        while True:
            self.job.done, self.job.total, self.job.current = 0, 0, ""
            self._ingest_once()
            with self.job.lock:
                if not self.job.pending:
                    self.job.running = False
                    return
                self.job.pending = False

    def _ingest_once(self) -> None:
        def progress(done, total, source):
            self.job.done, self.job.total, self.job.current = done, total, source

        try:
            report = self.bot.ingest([self.upload_dir], progress=progress, wait=INGEST_WAIT)
            failed = "; ".join(f"{s}: {r}" for s, r in report.failed)
            self.job.message = (
                f"Indexed: {len(report.added)} added, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged, {len(report.failed)} failed"
                f"{' (' + failed + ')' if failed else ''}; {report.chunks} chunks in {report.seconds:.1f} s."
            )
        except Exception as exc:  # shown to the user; the index itself is unchanged
            self.job.message = f"Indexing failed: {exc}"

    def status(self) -> str:
        if self.job.running:
            return f"Indexing… {self.job.done} of {self.job.total or '?'} files: {self.job.current}"
        return self.job.message

    def remove(self, source: str | None, folder: bool = False) -> str:
        """Remove a document as listed (a folder only with ``folder``); returns a status line,
        which the status box keeps showing until the next indexing or removal.

        An uploaded file goes from the upload folder too, so it is not indexed again.
        """
        line = self._remove(source, folder)
        self.job.message = line
        return line

    def _remove(self, source: str | None, folder: bool) -> str:
        if not source:
            return "Choose a document to remove."
        try:
            removed = self.bot.remove_documents(source, folder=bool(folder))
        except SHOWN_ERRORS as exc:
            return f"Not removed: {exc}"
        uploads = self.upload_dir.resolve()
        for doc in removed:
            path = Path(doc.path)
            if path.parent == uploads and path.exists():
                path.unlink()
        return f"Removed {', '.join(d.source for d in removed)}." if removed else f"{source} is not indexed."

    # answers ------------------------------------------------------------------
    def answer_stream(self, question: str, history: list[dict], k: int, mode: str, backend: str,
                      docs: list[str] | None):
        """Yield (partial text, None) while generating, then (final chat text, Answer)."""
        notice = self.job.notice()
        bot = self.using(backend)
        turns = [{"role": m["role"], "content": _message_text(m["content"])} for m in history or []]
        partial = ""
        for item in bot.stream(question, history=turns, k=check_k(k), docs=docs or None, mode=mode):
            if isinstance(item, Answer):
                yield chat_text(item, notice), item, notice
            else:
                partial += item
                yield partial, None, notice


def _message_text(content) -> str:
    """A chat message's text, whatever shape gradio hands it back in."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # gradio may hand back [{"type": "text", "text": ...}]
        return " ".join(c.get("text", "") for c in content if isinstance(c, dict))
    return "" if content is None else str(content)


# ----------------------------------------------------------------------------- gradio
def build_ui(app: App):
    """The gradio Blocks: chat + sources panel, settings, documents tab, and the ``ask`` API."""
    import gradio as gr

    with gr.Blocks(title="Document assistant", analytics_enabled=False) as demo:
        gr.Markdown("## Ask your documents\nEvery answer cites the passages it rests on.")
        with gr.Tab("Chat"):
            chat = _chat_tab(gr, app)
        with gr.Tab("Documents"):
            documents = _documents_tab(gr, app)
        timer = gr.Timer(1.0)
        _wire_chat(gr, app, chat)
        _wire_documents(gr, app, documents, chat.docs, timer)
        _wire_api(gr, app)
    return demo


def _chat_tab(gr, app: App) -> SimpleNamespace:
    """The chat, its settings and the sources panel."""
    settings = app.bot.settings
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Chat", height=460, render_markdown=False,
                                 sanitize_html=True, allow_tags=False, elem_id="chat",
                                 feedback_options=None)
            question = gr.Textbox(label="Question", placeholder="Ask about your documents",
                                  elem_id="question", lines=1)
            with gr.Row():
                send = gr.Button("Ask", variant="primary", elem_id="ask")
                clear = gr.Button("New conversation", elem_id="clear")
            with gr.Accordion("Settings", open=False):
                k = gr.Slider(1, K_MAX, value=settings.k, step=1, label="Passages")
                mode = gr.Radio(list(MODES), value=settings.mode, label="Answer mode",
                                info="auto: quote a passage that states the answer plainly, "
                                     "else the LLM writes it; generate: always the LLM; "
                                     "extractive: never")
                backend = gr.Dropdown(app.backends(), value=settings.backend, label="Backend")
                docs = gr.Dropdown(app.sources(), multiselect=True, value=[],
                                   allow_custom_value=True, label="Only these documents",
                                   elem_id="docs-filter")
        with gr.Column(scale=2):
            sources = gr.HTML("<p>Sources appear here.</p>", elem_id="sources")
    return SimpleNamespace(chatbot=chatbot, question=question, send=send, clear=clear, k=k, mode=mode,
                           backend=backend, docs=docs, sources=sources)


def _documents_tab(gr, app: App) -> SimpleNamespace:
    """Uploads, the indexing status, the list of documents, removal and summaries."""
    upload = gr.File(label="Add documents", file_count="multiple",
                     file_types=list(app.allowed), elem_id="upload")
    status = gr.Textbox(label="Indexing", value=app.status(), interactive=False,
                        elem_id="status")
    table = gr.Dataframe(headers=["document", "chunks", "indexed"], datatype=["str", "number", "str"],
                         value=app.documents_table(), interactive=False, elem_id="documents")
    with gr.Row():
        to_remove = gr.Dropdown(app.sources(), value=None, label="Document",
                                allow_custom_value=True,
                                elem_id="remove-choice")
        whole_folder = gr.Checkbox(False, label="everything under this folder",
                                   elem_id="remove-folder")
        remove_btn = gr.Button("Remove from index", elem_id="remove")
        summarize_btn = gr.Button("Summarize", elem_id="summarize")
    summary = gr.HTML("", elem_id="summary")
    return SimpleNamespace(upload=upload, status=status, table=table, to_remove=to_remove,
                           whole_folder=whole_folder, remove_btn=remove_btn, summarize_btn=summarize_btn,
                           summary=summary)


def _wire_chat(gr, app: App, c: SimpleNamespace) -> None:
    """Asking in the chat, streamed, and starting a new conversation."""
    def respond(message, history, k_, mode_, backend_, docs_):
        history = list(history or [])
        if not (message or "").strip():
            yield history, gr.update(), ""
            return
        shown = history + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        try:
            for text, answer, notice in app.answer_stream(message, history, k_, mode_, backend_, docs_):
                shown[-1] = {"role": "assistant", "content": text}
                panel = render_sources(answer, notice) if answer else gr.update()
                yield shown, panel, ""
        except SHOWN_ERRORS as exc:
            shown[-1] = {"role": "assistant", "content": f"Error: {exc}"}
            yield shown, gr.update(), ""

    inputs = [c.question, c.chatbot, c.k, c.mode, c.backend, c.docs]
    outputs = [c.chatbot, c.sources, c.question]
    c.send.click(respond, inputs, outputs, api_name="chat")
    c.question.submit(respond, inputs, outputs, api_visibility="undocumented")
    c.clear.click(lambda: ([], "<p>Sources appear here.</p>"), None, [c.chatbot, c.sources],
                  api_visibility="undocumented")


def _wire_documents(gr, app: App, d: SimpleNamespace, docs_filter, timer) -> None:
    """Uploading, the listing kept fresh, removing and summarizing a document."""
    def on_upload(files):
        accepted, refused = app.accept_uploads([f for f in files or []])
        lines = [f"Refused {r}" for r in refused]
        if accepted:
            lines.insert(0, app.start_ingest() + f" ({', '.join(accepted)})")
        return "\n".join(lines) or "No file received.", None

    d.upload.upload(on_upload, d.upload, [d.status, d.upload], api_name="upload")

    def refresh():
        names = app.sources()
        return (app.status(), app.documents_table(), gr.update(choices=names),
                gr.update(choices=names))

    listing = [d.status, d.table, d.to_remove, docs_filter]
    timer.tick(refresh, None, listing, show_progress="hidden", queue=False,
               api_name="documents")
    d.remove_btn.click(app.remove, [d.to_remove, d.whole_folder], d.status, api_name="remove").then(
        refresh, None, listing, api_visibility="undocumented")

    def on_summarize(source):
        """A cited summary of the chosen document, shown like an answer's sources."""
        if not source:
            return "<p>Choose a document to summarize.</p>"
        try:
            return render_sources(app.bot.summarize(source))
        except SHOWN_ERRORS as exc:
            return f"<p>{html.escape(str(exc))}</p>"

    d.summarize_btn.click(on_summarize, d.to_remove, d.summary, api_name="summarize")


def _wire_api(gr, app: App) -> None:
    """``/ask``: one question in, the answer's JSON out (as ``assistant ask --json``)."""
    settings = app.bot.settings

    def ask(question: str, k: int = settings.k, mode: str = settings.mode,
            docs: list[str] | None = None) -> dict:
        """Answer one question; returns the same JSON as `assistant ask --json`."""
        try:
            answer = app.bot.ask(question, k=check_k(k), docs=docs or None, mode=mode)
        except SHOWN_ERRORS as exc:
            raise gr.Error(str(exc)) from exc
        return answer.to_dict()

    gr.api(ask, api_name="ask")


def serve(bot: Assistant, host: str = "127.0.0.1", port: int = 7860,
          auth: tuple[str, str] | None = None, seeds: Path | None = None, block: bool = True):
    """Start the browser chat. Ingests ``seeds`` first when the index is empty."""
    import gradio as gr

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if seeds is not None and not bot.documents():
        bot.ingest([seeds])
    threading.Thread(target=bot.warm_up, daemon=True).start()
    app = App(bot, upload_dir=bot.settings.index_dir / "uploads")
    demo = build_ui(app)
    theme = gr.themes.Default(font=FONTS, font_mono=MONO_FONTS)
    demo.queue(default_concurrency_limit=4)
    return demo.launch(server_name=host, server_port=port, auth=auth, share=False,
                       prevent_thread_lock=not block, quiet=False, theme=theme, css=CSS,
                       max_file_size=2 * app.max_upload_bytes,  # ours refuses, clearly, past 1x footer_links=["api"],
                       ssr_mode=False, mcp_server=False, enable_monitoring=False)
