"""The browser chat (gradio), thin over ``Assistant``: conversations, the chat with its sources
and the document viewer, the Documents tab, and the ``/ask`` and ``/document`` APIs.

The page's HTML is ``assistant.interfaces.rendering`` (every document text escaped), the state
behind it ``assistant.interfaces.app``; the chat shows plain text (no Markdown, no HTML).
"""

# No ``from __future__ import annotations`` here: gradio reads the handlers' ``gr.Request`` and
# ``gr.LikeData`` hints at run time, and ``gr`` is imported inside the functions that use it.
import html
import os
import threading
from pathlib import Path
from types import SimpleNamespace

from assistant.api import Assistant
from assistant.config import K_MAX, MODES, check_k
from assistant.interfaces.app import PAGE_SCALE, SHOWN_ERRORS, App, safe_upload_name
from assistant.interfaces.rendering import citation_target, render_sources, source_label, view_json

__all__ = ["App", "LOCAL_HOSTS", "build_ui", "render_sources", "safe_upload_name", "serve"]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
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
.viewer .page { position: relative; display: inline-block; }
.viewer .page img { display: block; max-width: none; height: auto; }
.viewer .box { position: absolute; background: #fff3b066; outline: 2px solid #d4a72c; }
.viewer .box.hl-answer { background: #ffd33d88; outline: 2px solid #bf8700; }
.viewer .scroll { max-height: 720px; overflow: auto; border: 1px solid #d0d7de; }
.viewer .doc-text { white-space: pre-wrap; font-size: 0.92em; padding: 8px; }
.viewer .doc-text .heading { font-weight: 700; font-size: 1.1em; }
.viewer .doc-text mark.hl-passage { background: #fff3b0; }
.viewer .doc-text mark.hl-answer { background: #ffd33d; font-weight: 600; }
.viewer .note { color: #9a6700; }
"""
# after a view is shown: bring the passage (or its box) into the viewer's scrolled area
SCROLL_JS = """() => { for (const id of ['viewer', 'doc-viewer']) {
  const el = document.querySelector('#' + id + ' .hl-passage');
  if (el) el.scrollIntoView({block: 'center'}); } }"""
ZOOMS = (50, 75, 100, 150, 200, 300)  # viewer zoom: percent of the viewer's width
# System fonts only: the page must fetch nothing from other hosts.
FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO_FONTS = ["ui-monospace", "Consolas", "monospace"]



# ----------------------------------------------------------------------------- gradio
def _user(request) -> str:
    """The logged-in user ("" without a login)."""
    return (getattr(request, "username", None) or "") if request is not None else ""


def build_ui(app: App):
    """The gradio Blocks: conversations, chat, sources and viewer; the documents tab; the APIs."""
    import gradio as gr

    with gr.Blocks(title="Document assistant", analytics_enabled=False) as demo:
        gr.Markdown("## Ask your documents\nEvery answer cites the passages it rests on.")
        with gr.Tab("Chat"):
            chat = _chat_tab(gr, app)
        with gr.Tab("Documents"):
            documents = _documents_tab(gr, app)
        timer = gr.Timer(1.0)
        _wire_chat(gr, app, chat)
        _wire_ratings(gr, app, chat)
        _wire_conversations(gr, app, chat)
        _wire_viewer(gr, app, chat.viewer)
        _wire_documents(gr, app, documents, chat, timer)
        _wire_viewer(gr, app, documents.viewer)
        _wire_api(gr, app)
        def listed(request: gr.Request):
            return gr.update(choices=app.conversation_choices(_user(request)))

        demo.load(listed, None, chat.conversations, api_visibility="undocumented")
    return demo


def _viewer(gr, elem_id: str) -> SimpleNamespace:
    """A document viewer: the page or text, previous/next page and zoom."""
    target = gr.State(None)
    with gr.Row():
        previous = gr.Button("◀ Previous page", size="sm", elem_id=f"{elem_id}-previous")
        following = gr.Button("Next page ▶", size="sm", elem_id=f"{elem_id}-next")
        zoom = gr.Dropdown(list(ZOOMS), value=100, label="Zoom %", elem_id=f"{elem_id}-zoom", scale=0,
                           min_width=110)
    html_ = gr.HTML("<p>Choose a source to see it in its document.</p>", elem_id=elem_id)
    return SimpleNamespace(target=target, previous=previous, next=following, zoom=zoom, html=html_)


def _chat_tab(gr, app: App) -> SimpleNamespace:
    """Conversations, the chat and its settings, the sources panel and the viewer."""
    settings = app.bot.settings
    with gr.Row():
        with gr.Column(scale=1, min_width=180):
            gr.Markdown("**Conversations**")
            conversations = gr.Radio([], label="Reopen", elem_id="conversations", show_label=False)
            title = gr.Textbox(label="Title", elem_id="conversation-title", lines=1)
            with gr.Row():
                rename = gr.Button("Rename", size="sm", elem_id="rename-conversation")
                delete = gr.Button("Delete", size="sm", elem_id="delete-conversation")
            export = gr.Button("Export as Markdown", size="sm", elem_id="export-conversation")
            exported = gr.File(label="Export", elem_id="exported", interactive=False)
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Chat", height=460, render_markdown=False,
                                 sanitize_html=True, allow_tags=False, elem_id="chat",
                                 feedback_options=("Like", "Dislike"))
            question = gr.Textbox(label="Question", placeholder="Ask about your documents",
                                  elem_id="question", lines=1)
            with gr.Row():
                send = gr.Button("Ask", variant="primary", elem_id="ask")
                clear = gr.Button("New conversation", elem_id="clear")
            collections = gr.Dropdown(app.collections(), multiselect=True, value=[app.bot.collection_name],
                                      label="Collections asked", elem_id="collections")
            rated = gr.Markdown("", elem_id="rated")
            with gr.Row():
                correction = gr.Textbox(label="Correction for the answer you rated down (optional)",
                                        elem_id="correction", lines=1, scale=4)
                send_correction = gr.Button("Save correction", size="sm", elem_id="send-correction", scale=1)
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
        with gr.Column(scale=3, elem_id="side"):
            with gr.Tabs(selected="sources-tab") as side:
                with gr.Tab("Sources", id="sources-tab"):
                    pick = gr.Radio([], label="Open a source in its document", elem_id="open-source")
                    sources = gr.HTML("<p>Sources appear here.</p>", elem_id="sources")
                with gr.Tab("Document", id="document-tab"):
                    viewer = _viewer(gr, "viewer")
    return SimpleNamespace(chatbot=chatbot, question=question, send=send, clear=clear, k=k, mode=mode,
                           backend=backend, docs=docs, sources=sources, collections=collections,
                           conversations=conversations, title=title, rename=rename, delete=delete,
                           export=export, exported=exported, pick=pick, viewer=viewer,
                           conversation=gr.State(None), targets=gr.State([]), turns=gr.State([]),
                           rated=rated, correction=correction, send_correction=send_correction, side=side,
                           last_rated=gr.State(None))


def _documents_tab(gr, app: App) -> SimpleNamespace:
    """The collection, uploads, the indexing status, the documents, removal, summaries and the viewer."""
    collection = gr.Dropdown(app.collections(), value=app.bot.collection_name, label="Collection",
                             elem_id="doc-collection")
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
        open_btn = gr.Button("Open", elem_id="open-document")
    summary = gr.HTML("", elem_id="summary")
    viewer = _viewer(gr, "doc-viewer")
    return SimpleNamespace(upload=upload, status=status, table=table, to_remove=to_remove,
                           whole_folder=whole_folder, remove_btn=remove_btn, summarize_btn=summarize_btn,
                           summary=summary, collection=collection, open_btn=open_btn, viewer=viewer)


def _wire_chat(gr, app: App, c: SimpleNamespace) -> None:
    """Asking in the chat, streamed and kept in a conversation; rating answers; a new conversation."""
    def respond(message, history, k_, mode_, backend_, docs_, collections_, conversation,
                turns, request: gr.Request):
        history, turns = list(history or []), list(turns or [])
        user = _user(request)
        if not (message or "").strip():
            yield history, gr.update(), "", gr.update(), conversation, gr.update(), turns, gr.update()
            return
        shown = history + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        try:
            if conversation is not None and not app.has_conversation(conversation, user):
                conversation = None  # deleted meanwhile (another tab): this question starts a new one
            if conversation is None:
                conversation = app.bot.new_conversation(user).id
            for text, answer, notice in app.answer_stream(message, history, k_, mode_, backend_, docs_,
                                                          collections_, conversation, user):
                shown[-1] = {"role": "assistant", "content": text}
                if answer is None:
                    yield shown, gr.update(), "", gr.update(), conversation, gr.update(), turns, gr.update()
                    continue
                turns = turns + [len(app.bot.conversation(conversation, user).turns)]
                targets = [citation_target(x) for x in answer.citations]
                pick = gr.update(choices=[(source_label(x), i) for i, x in enumerate(answer.citations)],
                                 value=None)
                yield (shown, render_sources(answer, notice), "", pick, conversation,
                       gr.update(choices=app.conversation_choices(user), value=conversation), turns, targets)
        except SHOWN_ERRORS as exc:
            shown[-1] = {"role": "assistant", "content": f"Error: {exc}"}
            yield shown, gr.update(), "", gr.update(), conversation, gr.update(), turns + [None], gr.update()

    inputs = [c.question, c.chatbot, c.k, c.mode, c.backend, c.docs, c.collections, c.conversation, c.turns]
    outputs = [c.chatbot, c.sources, c.question, c.pick, c.conversation, c.conversations, c.turns, c.targets]
    c.send.click(respond, inputs, outputs, api_name="chat")
    c.question.submit(respond, inputs, outputs, api_visibility="undocumented")
    for asked in (c.send.click, c.question.submit):  # a new answer shows its sources
        asked(lambda: gr.Tabs(selected="sources-tab"), None, c.side, api_visibility="undocumented")
    c.clear.click(lambda: ([], "<p>Sources appear here.</p>", None, [], gr.update(value=None),
                           gr.update(choices=[], value=None)),
                  None, [c.chatbot, c.sources, c.conversation, c.turns, c.conversations, c.pick],
                  api_visibility="undocumented")

def _wire_ratings(gr, app: App, c: SimpleNamespace) -> None:
    """Thumbs up / down on an answer, and the correction of one rated down (docs/ui.md)."""
    def on_like(data: gr.LikeData, conversation, turns, request: gr.Request):
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        n = turns[index // 2] if conversation and turns and 0 <= index // 2 < len(turns) else None
        if n is None:
            return "This answer is not stored, so it cannot be rated.", None
        liked = data.liked is True or data.liked == "Like"
        try:
            app.bot.rate(conversation, n, 1 if liked else -1, user=_user(request))
        except SHOWN_ERRORS as exc:
            return f"Not rated: {exc}", None
        if liked:
            return f"Rated answer {n} good: `assistant eval --from-feedback` keeps it as a test.", None
        return (f"Rated answer {n} wrong. Type what is right below (optional) and save it: "
                "`assistant eval --from-feedback` keeps it as a test.", n)

    c.chatbot.like(on_like, [c.conversation, c.turns], [c.rated, c.last_rated], api_visibility="undocumented")

    def on_correction(text, conversation, n, request: gr.Request):
        if not conversation or n is None:
            return "Rate an answer down first, then say what is right."
        try:
            app.bot.rate(conversation, n, -1, correction=text, user=_user(request))
        except SHOWN_ERRORS as exc:
            return f"Not saved: {exc}"
        return f"Saved the correction of answer {n}."

    c.send_correction.click(on_correction, [c.correction, c.conversation, c.last_rated], c.rated,
                            api_visibility="undocumented")


def _wire_conversations(gr, app: App, c: SimpleNamespace) -> None:
    """The conversations panel: reopen, rename, delete, export."""
    def reopen(conversation_id, request: gr.Request):
        if not conversation_id:
            return gr.update(), gr.update(), None, [], gr.update(), gr.update(), []
        try:
            messages, last = app.reopen(conversation_id, _user(request))
        except SHOWN_ERRORS as exc:
            return gr.update(), f"<p>{html.escape(str(exc))}</p>", None, [], gr.update(), gr.update(), []
        conv = app.bot.conversation(conversation_id, _user(request))
        panel = render_sources(last) if last else "<p>Sources appear here.</p>"
        choices = [(source_label(x), i) for i, x in enumerate(last.citations)] if last else []
        targets = [citation_target(x) for x in last.citations] if last else []
        return (messages, panel, conversation_id, [t.n for t in conv.turns], conv.title,
                gr.update(choices=choices, value=None), targets)

    c.conversations.input(reopen, c.conversations,
                          [c.chatbot, c.sources, c.conversation, c.turns, c.title, c.pick, c.targets],
                          api_visibility="undocumented")

    def rename(conversation_id, title, request: gr.Request):
        user = _user(request)
        if conversation_id:
            try:
                app.bot.conversation_store.rename(conversation_id, title, user)
            except SHOWN_ERRORS as exc:
                gr.Warning(str(exc))
        return gr.update(choices=app.conversation_choices(user), value=conversation_id)

    c.rename.click(rename, [c.conversation, c.title], c.conversations, api_visibility="undocumented")

    def delete(conversation_id, request: gr.Request):
        user = _user(request)
        if conversation_id and app.has_conversation(conversation_id, user):
            app.bot.conversation_store.delete(conversation_id, user)
        return (gr.update(choices=app.conversation_choices(user), value=None), [], None, [],
                "<p>Sources appear here.</p>", "")

    c.delete.click(delete, c.conversation, [c.conversations, c.chatbot, c.conversation, c.turns, c.sources,
                                           c.title], api_visibility="undocumented")

    def export(conversation_id, request: gr.Request):
        if not conversation_id or not app.has_conversation(conversation_id, _user(request)):
            return None
        return str(app.export(conversation_id, _user(request)))

    c.export.click(export, c.conversation, c.exported, api_visibility="undocumented")

    def open_source(i, targets, zoom):
        if i is None or not targets or not 0 <= int(i) < len(targets):
            return gr.update(), None
        return app.view(dict(targets[int(i)]), int(zoom))

    c.pick.input(open_source, [c.pick, c.targets, c.viewer.zoom], [c.viewer.html, c.viewer.target],
                 api_visibility="undocumented").then(
        lambda: gr.Tabs(selected="document-tab"), None, c.side, api_visibility="undocumented").then(
        None, js=SCROLL_JS)


def _wire_viewer(gr, app: App, v: SimpleNamespace) -> None:
    """Previous/next page and zoom of a viewer."""
    def turn(target, zoom, step):
        if not target:
            return gr.update(), target
        target = dict(target)
        if step:  # within the document's pages, once a page of it has been shown
            page = max(1, (target.get("page") or 1) + step)
            target["page"] = min(page, target["pages"]) if target.get("pages") else page
        return app.view(target, int(zoom))

    v.previous.click(lambda t, z: turn(t, z, -1), [v.target, v.zoom], [v.html, v.target],
                     api_visibility="undocumented")
    v.next.click(lambda t, z: turn(t, z, 1), [v.target, v.zoom], [v.html, v.target],
                 api_visibility="undocumented")
    v.zoom.input(lambda t, z: turn(t, z, 0), [v.target, v.zoom], [v.html, v.target],
                 api_visibility="undocumented").then(None, js=SCROLL_JS)


def _wire_documents(gr, app: App, d: SimpleNamespace, chat: SimpleNamespace, timer) -> None:
    """The collection, uploading, the listing kept fresh, removing, summarizing and opening a document."""
    def on_upload(files, collection):
        try:
            accepted, refused = app.accept_uploads([f for f in files or []], collection)
        except SHOWN_ERRORS as exc:  # a collection deleted meanwhile
            return f"Not uploaded: {exc}", None
        lines = [f"Refused {r}" for r in refused]
        if accepted:
            lines.insert(0, app.start_ingest(collection) + f" ({', '.join(accepted)})")
        return "\n".join(lines) or "No file received.", None

    d.upload.upload(on_upload, [d.upload, d.collection], [d.status, d.upload], api_name="upload")

    def refresh(collection=None):
        try:
            names, table = app.sources(collection), app.documents_table(collection)
        except SHOWN_ERRORS as exc:  # a collection deleted by another process
            return f"{exc}", [], gr.update(choices=[]), gr.update(), gr.update()
        collections = app.collections()
        return (app.status(), table, gr.update(choices=names), gr.update(choices=app.sources()),
                gr.update(choices=collections))

    listing = [d.status, d.table, d.to_remove, chat.docs, d.collection]
    timer.tick(refresh, d.collection, listing, show_progress="hidden", queue=False,
               api_name="documents")
    d.collection.input(refresh, d.collection, listing, api_visibility="undocumented")
    d.remove_btn.click(app.remove, [d.to_remove, d.whole_folder, d.collection], d.status,
                       api_name="remove").then(refresh, d.collection, listing, api_visibility="undocumented")

    def on_summarize(source, collection):
        """A cited summary of the chosen document, shown like an answer's sources."""
        if not source:
            return "<p>Choose a document to summarize.</p>"
        try:
            return render_sources(app.collection(collection).summarize(source))
        except SHOWN_ERRORS as exc:
            return f"<p>{html.escape(str(exc))}</p>"

    d.summarize_btn.click(on_summarize, [d.to_remove, d.collection], d.summary, api_name="summarize")

    def on_open(source, collection, zoom):
        if not source:
            return "<p>Choose a document to open.</p>", None
        return app.view({"collection": collection, "document": source}, int(zoom))

    d.open_btn.click(on_open, [d.to_remove, d.collection, d.viewer.zoom], [d.viewer.html, d.viewer.target],
                     api_visibility="undocumented")


def _wire_api(gr, app: App) -> None:
    """``/ask``: one question in, the answer's JSON out (as ``assistant ask --json``);
    ``/document``: what the viewer shows of a document, as JSON."""
    settings = app.bot.settings

    def ask(question: str, k: int = settings.k, mode: str = settings.mode,
            docs: list[str] | None = None, collections: list[str] | None = None) -> dict:
        """Answer one question; returns the same JSON as `assistant ask --json`."""
        try:
            answer = app.bot.chat(question, None, k=check_k(k), docs=docs or None, mode=mode,
                                  collections=collections or None)
        except SHOWN_ERRORS as exc:
            raise gr.Error(str(exc)) from exc
        return answer.to_dict()

    gr.api(ask, api_name="ask")

    def document(document: str, collection: str = app.bot.collection_name, start: int | None = None,
                 end: int | None = None, page: int | None = None, zoom: int = 100) -> dict:
        """A document as the viewer shows it: a PDF page (PNG in base64, the passage's and answer's
        boxes in pixels) or the text with its headings; the passage is [start, end) of its text."""
        try:
            view = app.collection(collection).view(document, start, end, (), page, PAGE_SCALE * zoom / 100)
        except SHOWN_ERRORS as exc:
            raise gr.Error(str(exc)) from exc
        return view_json(view)

    gr.api(document, api_name="document")

    def conversations(request: gr.Request) -> list[dict]:
        """The logged-in user's conversations (id, title, turns' questions), the most recent first."""
        user = _user(request)
        return [{"id": c.id, "title": c.title,
                 "questions": [t.question for t in app.bot.conversation(c.id, user).turns]}
                for c in app.bot.conversations(user)]

    gr.api(conversations, api_name="conversations")


def serve(bot: Assistant, host: str = "127.0.0.1", port: int = 7860,
          auth: list[tuple[str, str]] | tuple[str, str] | None = None, seeds: Path | None = None,
          block: bool = True, watch: list[Path] | None = None):
    """Start the browser chat. Ingests ``seeds`` first when the index is empty and nothing is
    watched; keeps the collection in step with the ``watch`` folders."""
    import gradio as gr

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if seeds is not None and not watch and not bot.documents():
        bot.ingest([seeds])
    threading.Thread(target=bot.warm_up, daemon=True).start()
    app = App(bot)
    if watch:
        app.watch(list(watch))
    demo = build_ui(app)
    theme = gr.themes.Default(font=FONTS, font_mono=MONO_FONTS)
    demo.queue(default_concurrency_limit=4)
    return demo.launch(server_name=host, server_port=port, auth=auth, share=False,
                       prevent_thread_lock=not block, quiet=False, theme=theme, css=CSS,
                       max_file_size=2 * app.max_upload_bytes,  # ours refuses, clearly, past 1x
                       footer_links=["api"], ssr_mode=False, mcp_server=False, enable_monitoring=False)
