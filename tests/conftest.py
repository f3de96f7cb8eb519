"""Shared fixtures: an offline guard, a multi-format fixture corpus, the real models, a fake embedder."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback
                       for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def _guard(event, args):
    if event == "socket.connect" and not _is_local(args[1]):
        raise ConnectionRefusedError(f"test guard: connection off this machine refused: {args[1]!r}")


sys.addaudithook(_guard)

# CI explores the same hypothesis examples every run; locally each run explores new ones.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _no_user_index(tmp_path, monkeypatch):
    """Never touch the user's own index: the default index folder is per test."""
    monkeypatch.setenv("ASSISTANT_INDEX", str(tmp_path / "default-index"))


# --------------------------------------------------------------------------- corpus
NEIGHBOURS = {
    "belgium.md": (
        "# Belgium\n\n"
        "Belgium lies to the north of France. Its capital is Brussels, home to the European "
        "Commission. The country has three official languages: Dutch, French and German.\n\n"
        "Belgian waffles and fries are famous. The Atomium in Brussels was built for the 1958 "
        "World's Fair.\n"
    ),
    "germany.html": (
        "<html><head><title>Germany</title><style>p {color: red}</style>"
        "<script>var x = 'not text';</script></head><body>"
        "<h1>Germany</h1><p>Germany borders France to the east. Berlin has been the German "
        "capital since reunification in 1990.</p><p>The Rhine river forms part of the "
        "border between Germany and France &amp; Switzerland.</p>"
        "<ul><li>Population: about 84 million</li><li>Currency: the euro</li></ul></body></html>"
    ),
}
SPAIN_PAGES = [
    "Spain shares the Pyrenees mountains with France. Madrid is the Spanish capital.",
    "The Spanish tomato festival, La Tomatina, takes place every August in the town of Bunol.",
]
SWISS_PARAGRAPHS = [
    "Switzerland is a neighbour of France in the Alps.",
    "Swiss watchmaking is centred in the Jura mountains. The Swiss franc is the currency.",
    "Bern is the Swiss federal city.",
]
LIGHTHOUSE = (
    "The Keeper's Log of Hollowmere Lighthouse\n\n"
    "The lighthouse at Hollowmere was first lit on 3 March 1871. Its lamp burned whale oil "
    "until 1904, when keeper Agnes Thorsby installed a paraffin burner. The tower is 41 metres "
    "tall and painted in red and white bands.\n\n"
    "In the great storm of 1923 the keeper rowed out to rescue eleven fishermen from the "
    "trawler Marigold. The lighthouse was automated in 1987 and now runs on solar power.\n"
)


def make_pdf(path: Path, pages: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def make_docx(path: Path, paragraphs: list[str], title: str | None = None) -> None:
    import docx

    document = docx.Document()
    if title:
        document.core_properties.title = title
    for p in paragraphs:
        document.add_paragraph(p)
    document.save(str(path))


def build_corpus(folder: Path) -> Path:
    """A multi-document, multi-format corpus: txt, md, html, pdf (2 pages), docx, and the seed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in NEIGHBOURS.items():
        (folder / name).write_text(text, encoding="utf-8")
    make_pdf(folder / "spain.pdf", SPAIN_PAGES)
    make_docx(folder / "switzerland.docx", SWISS_PARAGRAPHS, title="Switzerland")
    (folder / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    (folder / "seed.txt").write_text((SEEDS / "mss-joins-wechat.txt").read_text("utf-8"), "utf-8")
    return folder


@pytest.fixture
def corpus(tmp_path) -> Path:
    return build_corpus(tmp_path / "corpus")


# --------------------------------------------------------------------------- models
@pytest.fixture(scope="session")
def embedder():
    """The default embedder (int8 ONNX), as the assistant ships it."""
    from index.embedder import make_embedder

    return make_embedder()


@pytest.fixture(scope="session")
def bundled_llm():
    from assistant.llms import BundledLLM

    return BundledLLM()


@pytest.fixture
def fake_embedder():
    from index.embedder import HashEmbedder

    return HashEmbedder()


@pytest.fixture
def settings(tmp_path):
    from assistant.config import Settings

    return Settings.from_env(index_dir=tmp_path / "index")


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_process(cmd: list[str], ready_url: str, log_path: Path, env: dict | None = None,
                  timeout: float = 180):
    """Start a server process and wait until ``ready_url`` answers; returns the Popen."""
    import subprocess
    import time

    import httpx

    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", **(env or {})}
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:3]} exited with {proc.returncode}: "
                               f"{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(ready_url, timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{cmd[:3]} did not become ready in {timeout} s")
        time.sleep(0.5)


def stop_process(proc) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(20)


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server with the bundled model (alias ``smollm2``);
    yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    from assistant.models import bundled_model_path

    port = free_port()
    log = tmp_path_factory.mktemp("llm") / "server.log"
    proc = start_process([sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path()),
                          "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                          "--n_ctx", "2048"], f"http://127.0.0.1:{port}/v1/models", log)
    yield f"http://127.0.0.1:{port}/v1"
    stop_process(proc)


def serve_index(index_dir: Path, log_path: Path, *extra: str, env: dict | None = None):
    """``assistant serve`` on a free port over ``index_dir``; returns (url, process)."""
    port = free_port()
    env = {"ASSISTANT_INDEX": str(index_dir), **(env or {})}
    proc = start_process([sys.executable, "-m", "assistant", "serve", "--port", str(port), *extra],
                         f"http://127.0.0.1:{port}/", log_path, env=env)
    return f"http://127.0.0.1:{port}/", proc
