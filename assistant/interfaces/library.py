"""The CLI's commands for what a data folder holds besides one index: ``watch`` (a collection kept
in step with folders), ``collections`` and ``conversations``; thin over ``assistant.api``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

from assistant.interfaces.rendering import format_answer


def add_library_commands(sub, common) -> None:
    """Add the commands to the ``assistant`` parser (``common`` adds the shared options)."""
    p = sub.add_parser("watch", help="keep a collection in step with folders: sync them now, then on "
                                     "every change (Ctrl-C or SIGTERM stops)")
    p.add_argument("paths", nargs="+", metavar="DIR")
    common(p)

    p = sub.add_parser("collections", help="list, create, rename or delete collections")
    p.add_argument("action", nargs="?", default="list", choices=["list", "create", "rename", "delete"])
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--yes", action="store_true", help="delete: confirm deleting everything indexed in it")
    p.add_argument("--json", action="store_true")
    common(p)

    p = sub.add_parser("migrate", help="copy this data folder's collections and conversations into the "
                                       "PostgreSQL catalog of --catalog-url (vectors to --chroma-url), checked")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                   help="wait this long for another writer of the target to finish")
    common(p)

    p = sub.add_parser("conversations", help="list, show, rename, delete or export stored conversations")
    p.add_argument("action", nargs="?", default="list", choices=["list", "show", "rename", "delete", "export"])
    p.add_argument("id", nargs="?", metavar="ID")
    p.add_argument("title", nargs="?", metavar="TITLE", help="rename: the new title")
    p.add_argument("--user", default="", help="the chat login whose conversations these are (default: none)")
    p.add_argument("--json", action="store_true")
    common(p)


def cmd_watch(bot, args) -> int:
    folders = [Path(p) for p in args.paths]
    missing = [str(p) for p in folders if not p.is_dir()]
    if missing:
        raise ValueError(f"not a folder: {', '.join(missing)}")
    watcher = bot.watch(folders, on_event=lambda line: print(line, flush=True))
    print(f"watching {', '.join(map(str, folders))} for collection {bot.collection_name!r}; Ctrl-C stops",
          flush=True)
    # SIGTERM (a service manager, `kill`) stops it as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: watcher.stop(timeout=0))
    watcher.run()  # until Ctrl-C or SIGTERM
    print("stopped", flush=True)
    sys.stderr.flush()
    # Exit at once: a sync still under way is abandoned, which the crash-safe sync allows (the
    # document it was writing keeps its old version, docs/reliability.md), rather than wait at
    # interpreter exit for library threads that a sync left busy.
    os._exit(0)


def cmd_collections(bot, args) -> int:
    needed = {"list": 0, "create": 1, "rename": 2, "delete": 1}[args.action]
    if len(args.names) != needed:
        raise ValueError(f"collections {args.action} takes {needed} name{'s' if needed != 1 else ''}")
    if args.action == "create":
        bot.create_collection(args.names[0])
    elif args.action == "rename":
        bot.rename_collection(*args.names)
    elif args.action == "delete":
        if not args.yes:
            raise ValueError(f"deleting collection {args.names[0]!r} drops everything indexed in it "
                             "(the files stay); add --yes to confirm")
        bot.delete_collection(args.names[0])
    if args.action != "list":
        print(f"{args.action}d {' -> '.join(args.names)}")
        return 0
    rows = [{"name": n, "documents": len(bot.collection(n).documents()),
             "folder": str(bot.collection(n).settings.index_dir)} for n in bot.collections()]
    if args.json:
        print(json.dumps(rows, indent=2))
    for r in rows if not args.json else []:
        print(f"{r['name']}\t{r['documents']} documents\t{r['folder']}")
    return 0


def cmd_conversations(bot, args) -> int:
    if args.action == "list":
        convs = bot.conversations(args.user)
        if args.json:
            print(json.dumps([{"id": c.id, "title": c.title, "updated": c.updated} for c in convs], indent=2))
        for c in convs if not args.json else []:
            print(f"{c.id}\t{datetime.fromtimestamp(c.updated).strftime('%Y-%m-%d %H:%M')}\t{c.title}")
        if not convs and not args.json:
            print("no conversations")
        return 0
    if not args.id:
        raise ValueError(f"conversations {args.action} needs a conversation ID (`assistant conversations` lists them)")
    if args.action == "rename":
        bot.conversation_store.rename(args.id, args.title or "", args.user)
        print(f"renamed {args.id}")
    elif args.action == "delete":
        bot.conversation_store.delete(args.id, args.user)
        print(f"deleted {args.id}")
    elif args.action == "export":
        print(bot.conversation(args.id, args.user).to_markdown(), end="")
    else:
        conv = bot.conversation(args.id, args.user)
        if args.json:
            print(json.dumps({"id": conv.id, "title": conv.title,
                              "turns": [{"question": t.question, "collections": list(t.collections),
                                         "answer": t.answer.to_dict()} for t in conv.turns]}, indent=2))
        else:
            print(f"# {conv.title}")
            for t in conv.turns:
                print(f"\nyou> {t.question}\n{format_answer(t.answer)}")
    return 0




def cmd_migrate(bot, args) -> int:
    """``bot`` is the data folder's own (SQLite, Chroma files); the target is in the options."""
    if not args.catalog_url:
        raise ValueError("migrate needs --catalog-url postgresql://USER@HOST/DB (the database to copy into)")
    report = bot.migrate(args.catalog_url, args.chroma_url, wait=args.wait,
                         progress=lambda name, done, total, src: print(f"{name}: {done}/{total} {src}",
                                                                       file=sys.stderr, flush=True))
    for name, r in report.collections.items():
        print(f"{name}: copied {len(r.copied)} documents ({r.chunks} chunks), {len(r.present)} already there; "
              "checked: same documents and chunks")
    print(f"conversations: copied {report.conversations}, ratings: copied {report.ratings}")
    return 0


COMMANDS = {"watch": cmd_watch, "collections": cmd_collections, "conversations": cmd_conversations,
            "migrate": cmd_migrate}
