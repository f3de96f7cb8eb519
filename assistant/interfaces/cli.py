"""The ``assistant`` command: ingest / list / remove / ask / chat / watch / collections /
conversations / eval / serve, thin over ``assistant.api``.

Exit codes: 0 success; 1 some files failed to index, or the index is busy or
mismatched, or its Chroma server does not answer; 2 a usage error (bad option, k
out of range, unknown document, empty question, a removal refused as ambiguous or
as an unconfirmed folder).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from assistant.config import BACKENDS, K_MAX, MODES, READER, RUNTIMES, Settings, check_k, default_corpus
from assistant.interfaces import library
from assistant.interfaces.library import add_library_commands
from assistant.interfaces.rendering import format_answer
from assistant.types import Answer


def _common(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("index and models")
    g.add_argument("--data", metavar="DIR", help="data folder: collections and conversations (env ASSISTANT_DATA)")
    g.add_argument("--collection", metavar="NAME", action="append",
                   help="the collection to use (default: default; env ASSISTANT_COLLECTION); ask and chat "
                        "take it more than once to ask several at once")
    g.add_argument("--index", metavar="DIR", help="the default collection's index folder (env ASSISTANT_INDEX)")
    g.add_argument("--chroma-url", metavar="URL", help="use a Chroma server (env ASSISTANT_CHROMA_URL)")
    g.add_argument("--catalog-url", metavar="URL",
                   help="keep the catalog, collections and conversations in PostgreSQL: "
                        "postgresql://USER@HOST/DB (env ASSISTANT_CATALOG_URL; docs/deploy.md)")
    g.add_argument("--backend", choices=BACKENDS, help="LLM backend (env ASSISTANT_BACKEND)")
    g.add_argument("--llm-url", metavar="URL", help="OpenAI-compatible server base URL, e.g. http://127.0.0.1:11434/v1")
    g.add_argument("--llm-model", metavar="NAME", help="model name on that server")
    g.add_argument("--threads", type=int, help="CPU threads for the models (0: all)")
    g.add_argument("--embed-runtime", choices=RUNTIMES,
                   help="embedding runtime: onnx (default, no torch) or torch (the torch extra; env ASSISTANT_EMBED_RUNTIME)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="processes embedding in parallel at ingest (env ASSISTANT_EMBED_WORKERS)")
    g.add_argument("--reader", choices=READER,
                   help="the reader model picks the answer (on, default) or the rules alone do (off; "
                        "env ASSISTANT_READER)")


def _k(text: str) -> int:
    try:
        return check_k(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description="Ask questions of your documents; every answer cites its passages.")
    sub = parser.add_subparsers(dest="command", required=True)
    _document_commands(sub)
    _question_commands(sub)
    add_library_commands(sub, _common)
    _eval_command(sub)
    _serve_command(sub)
    return parser


def _document_commands(sub) -> None:
    p = sub.add_parser("ingest", help="index files and folders (default: the bundled seeds/)")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--rebuild", action="store_true", help="drop the index and rebuild it (after a settings change)")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait this long for another writer")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _common(p)

    p = sub.add_parser("list", help="show the indexed documents")
    p.add_argument("--json", action="store_true")
    _common(p)

    p = sub.add_parser("remove", help="take a document (or, with --folder, every document under a folder) "
                                      "out of the index")
    p.add_argument("target", metavar="SOURCE", help="a source as `assistant list` shows it, or its path")
    p.add_argument("--folder", action="store_true",
                   help="TARGET is a folder: remove every document under it (asked for explicitly)")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS")
    _common(p)


def _question_commands(sub) -> None:
    for name, help_ in (("ask", "answer one question"), ("chat", "chat in the terminal")):
        p = sub.add_parser(name, help=help_)
        if name == "ask":
            p.add_argument("question")
            p.add_argument("--json", action="store_true", help="print the answer as JSON")
        else:
            p.add_argument("--resume", metavar="ID", help="go on with a stored conversation "
                                                          "(`assistant conversations` lists them)")
        p.add_argument("--k", type=_k, help=f"passages given to the answerer, 1 to {K_MAX} (default 4)")
        p.add_argument("--doc", action="append", metavar="PATH", help="only these documents (repeatable)")
        p.add_argument("--mode", choices=MODES,
                       help="auto (quote strong evidence, else the LLM; the default with the bundled "
                            "model), generate (always the LLM) or extractive (never)")
        _common(p)


def _eval_command(sub) -> None:
    p = sub.add_parser("eval", help="measure answer quality on a QA or conversation file (JSON Lines)",
                       description="Measure answer quality (docs/evaluation.md): a QA file, or a file of "
                                   "conversations (entries with turns), over the documents in --docs.")
    p.add_argument("qa", metavar="QA.jsonl", help="the questions; with --from-feedback, the file to write")
    p.add_argument("--docs", metavar="DIR", help="the documents the questions are about (indexed first)")
    p.add_argument("--from-feedback", action="store_true",
                   help="first write QA.jsonl from the answers rated in the chat, then measure it "
                        "over the collection as it is (docs/ui.md)")
    p.add_argument("--split", choices=["dev", "test", "all"], default="all",
                   help="tune on dev, report test (default: all)")
    p.add_argument("--baseline", action="store_true", help="also run a plain llama-index pipeline")
    p.add_argument("--k", type=_k, help=f"passages per question, 1 to {K_MAX} (default 4)")
    p.add_argument("--mode", choices=MODES)
    p.add_argument("--own-history", action="store_true",
                   help="conversations: earlier turns carry the assistant's own answers, not the gold ones")
    p.add_argument("--max-turns", type=int, metavar="N", help="conversations: ask at most N turns of each")
    p.add_argument("--subject-changes", type=int, metavar="N",
                   help="conversations: instead, ask each next conversation's first question after N turns "
                        "of this one (a change of subject), and alone")
    p.add_argument("--sample", type=int, metavar="N",
                   help="ask N questions spread evenly over the file (every len/N-th), e.g. for --baseline")
    p.add_argument("--json", action="store_true", help="print the report, with every record, as JSON")
    p.add_argument("--save", metavar="FILE", help="also write the JSON report (every record) to FILE")
    _common(p)


def _serve_command(sub) -> None:
    p = sub.add_parser("serve", help="the browser chat (ingests seeds/ first when the index is empty)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--auth", metavar="USER:PASSWORD", action="append",
                   help="require a login; repeat for several users, each seeing only their own "
                        "conversations (env ASSISTANT_AUTH)")
    p.add_argument("--auth-file", metavar="FILE", help="the logins, one USER:PASSWORD a line")
    p.add_argument("--watch", metavar="DIR", action="append",
                   help="keep the collection in step with this folder (repeatable)")
    p.add_argument("--no-seeds", action="store_true", help="do not index seeds/ into an empty index")
    _common(p)


def _settings(args) -> Settings:
    names = args.collection or []
    if len(names) > 1 and args.command not in ("ask", "chat"):
        raise ValueError("only ask and chat take --collection more than once")
    return Settings.from_env(
        data_dir=args.data,
        collection=names[0] if names else None,
        index_dir=args.index,
        chroma_url=args.chroma_url,
        catalog_url=args.catalog_url,
        backend=args.backend,
        llm_url=args.llm_url,
        llm_model=args.llm_model,
        threads=args.threads,
        embed_runtime=args.embed_runtime,
        embed_workers=args.workers,
        reader=args.reader,
        k=getattr(args, "k", None),
        mode=getattr(args, "mode", None),
    )


class _ProgressBar:
    """A progress bar on stderr (a line per second when stderr is not a terminal)."""

    def __init__(self, verb: str = "indexed", unit: str = "files", stream=sys.stderr):
        self.verb, self.unit = verb, unit
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def __call__(self, done: int, total: int, source: str) -> None:
        now = time.monotonic()
        if not self.tty:
            if now - self.last >= 1 or done == total:
                print(f"{self.verb} {done}/{total} {self.unit}: {source}", file=self.stream, flush=True)
                self.last = now
            return
        width = 30
        filled = int(width * done / max(total, 1))
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {source[-40:]:<40}"
        self.stream.write(line)
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


def cmd_ingest(bot, args) -> int:
    paths = args.paths or [str(default_corpus())]
    report = bot.ingest(paths, progress=_ProgressBar(), rebuild=args.rebuild, wait=args.wait)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(
            f"added {len(report.added)}, updated {len(report.updated)}, unchanged {len(report.unchanged)}, "
            f"removed {len(report.removed)}, failed {len(report.failed)}; "
            f"{report.chunks} chunks in {report.seconds:.1f} s"
        )
        for source, reason in report.skipped:
            print(f"  skipped {source}: {reason}")
        for source, reason in report.failed:
            print(f"  FAILED {source}: {reason}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_list(bot, args) -> int:
    docs = bot.documents()
    if args.json:
        print(json.dumps([{"source": d.source, "path": d.path, "title": d.title, "chunks": d.chunks,
                           "indexed_at": datetime.fromtimestamp(d.indexed_at).isoformat(timespec="seconds")}
                          for d in docs], indent=2))
        return 0
    if not docs:
        print("no documents indexed")
    for d in docs:
        when = datetime.fromtimestamp(d.indexed_at).strftime("%Y-%m-%d %H:%M")
        print(f"{d.source}\t{d.chunks} chunks\tindexed {when}")
    return 0


def cmd_remove(bot, args) -> int:
    removed = bot.remove(args.target, wait=args.wait, folder=args.folder)
    if not removed:
        print(f"nothing indexed matches {args.target!r}; see `assistant list`", file=sys.stderr)
        return 2
    for source in removed:
        print(f"removed {source}")
    return 0


def _run_stream(stream, show_raw: bool) -> Answer:
    result = None
    for item in stream:
        if isinstance(item, Answer):
            result = item
        elif show_raw:
            sys.stderr.write(item)
            sys.stderr.flush()
    if show_raw:
        sys.stderr.write("\n\n")
    return result


def cmd_ask(bot, args) -> int:
    show_raw = not args.json and sys.stderr.isatty()
    answer = _run_stream(bot.stream(args.question, k=args.k, docs=args.doc, mode=args.mode,
                                    collections=args.collection), show_raw)
    print(answer.to_json(indent=2) if args.json else format_answer(answer))
    return 0


def cmd_chat(bot, args) -> int:
    conv = bot.conversation(args.resume) if args.resume else bot.new_conversation()
    for turn in conv.turns:
        print(f"you> {turn.question}\n{turn.answer.answer}\n")
    print(f"Conversation {conv.id} (go on later with `assistant chat --resume {conv.id}`).\n"
          "Ask about your documents; an empty line or Ctrl-D ends the chat.")
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            print()
            return 0
        if not question:
            return 0
        answer = _run_stream(bot.stream(question, k=args.k, docs=args.doc, mode=args.mode,
                                        collections=args.collection, conversation=conv.id), sys.stderr.isatty())
        print(format_answer(answer))


def _logins(args) -> list[tuple[str, str]]:
    """The logins from --auth (repeatable), --auth-file and ASSISTANT_AUTH."""
    entries = list(args.auth or [])
    if not entries and os.environ.get("ASSISTANT_AUTH"):
        entries.append(os.environ["ASSISTANT_AUTH"])
    if args.auth_file:
        try:
            lines = Path(args.auth_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"cannot read --auth-file {args.auth_file}: {exc.strerror or exc}") from None
        entries += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    logins = []
    for entry in entries:
        user, sep, password = entry.partition(":")
        if not sep or not user or not password:
            raise ValueError(f"--auth takes USER:PASSWORD, not {user + ':…' if sep else entry!r}")
        logins.append((user, password))
    return logins


def cmd_serve(bot, args) -> int:
    from assistant.interfaces.ui import LOCAL_HOSTS, serve

    logins = _logins(args)
    if args.host not in LOCAL_HOSTS and not logins:
        print(f"assistant: warning: serving on {args.host} without a login; anyone who can reach "
              "this port can read your documents (use --auth USER:PASSWORD)", file=sys.stderr)
    missing = [p for p in args.watch or [] if not Path(p).is_dir()]
    if missing:
        raise ValueError(f"--watch: not a folder: {', '.join(missing)}")
    serve(bot, host=args.host, port=args.port, auth=logins or None,
          seeds=None if args.no_seeds else default_corpus(), watch=[Path(p) for p in args.watch or []])
    return 0


def cmd_eval(bot, args) -> int:
    from assistant.evaluation import Report

    if args.from_feedback:
        _write_feedback(bot, args)
    elif not args.docs:
        raise ValueError("eval needs --docs DIR (the documents the questions are about), or --from-feedback")
    items, talks = _eval_items(args)
    if args.docs:
        ingested = bot.ingest([Path(args.docs)], progress=_ProgressBar())
        if ingested.failed:
            print(f"assistant: {len(ingested.failed)} files failed to index", file=sys.stderr)
    indexed = {d.source for d in bot.documents()}
    has_sources = talks or any(s in indexed for q in items for s in q.source)
    report = Report(bot.settings.k)
    bar = _ProgressBar("asked", "turns" if talks else "questions")
    report.add("assistant", _eval_assistant(bot, args, items, talks, bar), has_sources)
    if args.baseline:
        report.add("baseline", _eval_baseline(bot, args, items, talks, bar), has_sources)
    _print_report(report, args)
    return 0


def _write_feedback(bot, args) -> None:
    """Write the rated answers of this collection as a QA file (``assistant.evaluation.feedback``)."""
    from assistant.evaluation.feedback import feedback_rows, write_rows

    rows, left_out = feedback_rows(bot.conversation_store.ratings(), bot.collection_name)
    if not rows:
        raise ValueError(f"no rated answers about collection {bot.collection_name!r} to make questions of"
                         + (f" ({left_out} down-rated without a correction)" if left_out else ""))
    write_rows(Path(args.qa), rows)
    print(f"wrote {len(rows)} questions to {args.qa}"
          + (f"; {left_out} down-rated answers without a correction left out" if left_out else ""),
          file=sys.stderr)


def _eval_items(args) -> tuple[list, bool]:
    """The questions (or conversations) ``eval`` asks, and whether they are conversations."""
    from assistant.evaluation import is_conversation_file, load_conversations, load_qa

    path = Path(args.qa)
    talks = is_conversation_file(path)
    if args.subject_changes is not None and (not talks or args.subject_changes < 1):
        raise ValueError("--subject-changes N needs a file of conversations and N of at least 1")
    items = load_conversations(path) if talks else load_qa(path)
    items = [x for x in items if args.split == "all" or x.split == args.split]
    if not items:
        raise ValueError(f"no questions in {args.qa} for split {args.split}")
    if args.sample:
        items = items[::max(1, -(-len(items) // args.sample))][:args.sample]
    return items, talks


def _eval_assistant(bot, args, items: list, talks: bool, bar) -> list:
    """The assistant's records: questions, conversation turns, or changes of subject."""
    from assistant.evaluation import evaluate, evaluate_conversations, evaluate_subject_changes

    if not talks:
        return evaluate(lambda q: bot.ask(q), items, bar)
    if args.subject_changes is not None:
        if args.baseline:
            raise ValueError("--subject-changes measures the assistant alone; leave out --baseline")
        records = evaluate_subject_changes(bot.chat, items, args.subject_changes, bar)
        if not records:
            raise ValueError("--subject-changes needs conversations about at least two documents "
                             "whose first question is answerable")
        return records
    sources = {d.doc_id: d.source for d in bot.documents()}
    k = bot.settings.k

    def search(q):
        return [(sources.get(h.chunk.doc_id, ""), h.chunk.start, h.chunk.end)
                for h in bot.search(q, k)]

    return evaluate_conversations(bot.chat, search, items, args.own_history, args.max_turns, bar)


def _eval_baseline(bot, args, items: list, talks: bool, bar) -> list:
    """The plain llama-index pipeline's records on the same questions."""
    from assistant.evaluation import evaluate, evaluate_conversations
    from assistant.evaluation.baseline import Baseline

    llm = bot.llm
    if llm is None:
        raise ValueError("--baseline needs an LLM backend (not --backend none)")
    if not args.docs:
        raise ValueError("--baseline needs --docs DIR")
    base = Baseline(Path(args.docs), bot.settings.index_dir / "baseline", bot.embedder, llm, k=bot.settings.k,
                    max_tokens=bot.settings.max_answer_tokens)
    if talks:
        return evaluate_conversations(base.chat, base.search, items, args.own_history, args.max_turns, bar)
    return evaluate(base.ask, items, bar)


def _print_report(report, args) -> None:
    if args.save:
        Path(args.save).write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table())
        types = report.type_table()
        if types:
            print()
            print(types)


COMMANDS = {"ingest": cmd_ingest, "list": cmd_list, "remove": cmd_remove, "ask": cmd_ask, "chat": cmd_chat,
            "eval": cmd_eval, "serve": cmd_serve, **library.COMMANDS}
CREATING = ("ingest", "watch")  # the commands that make their collection when it does not exist


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from assistant.api import Assistant
    from assistant.errors import USER_ERRORS

    try:
        settings = _settings(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "migrate":  # the target from the options or the environment; the source is
        args.catalog_url, args.chroma_url = settings.catalog_url, settings.chroma_url  # the folder's own
        settings = replace(settings, catalog_url=None, chroma_url=None)
    try:
        bot = Assistant(settings, create=args.command in CREATING)
        return COMMANDS[args.command](bot, args)
    except ValueError as exc:
        print(f"assistant: {exc}", file=sys.stderr)
        return 2
    except USER_ERRORS as exc:
        print(f"assistant: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
