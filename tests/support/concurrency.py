"""Running one piece of work on several threads at once, to show state shared by mistake."""

from __future__ import annotations

import sys


def at_once(work, threads: int = 4) -> list:
    """Run ``work()`` on several threads at once, switching between them as often as Python
    allows, so state shared by mistake shows up; returns what each run returned (or raised)."""
    import threading

    results: list = [None] * threads
    start = threading.Barrier(threads)

    def run(i):
        try:
            start.wait()
            results[i] = work()
        except Exception as exc:
            results[i] = exc

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    return results
