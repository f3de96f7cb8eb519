"""Shared fixtures: an offline guard, a multi-format fixture corpus, the real models, a fake
embedder, an OpenAI-compatible LLM server. Helpers the tests import are in ``tests/support``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support.corpus import build_corpus
from tests.support.offline import refuse_remote
from tests.support.servers import free_port, start_process, stop_process

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


sys.addaudithook(refuse_remote)

# CI explores the same hypothesis examples every run; locally each run explores new ones.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _no_user_index(tmp_path, monkeypatch):
    """Never touch the user's own index: the default index folder is per test."""
    monkeypatch.setenv("ASSISTANT_INDEX", str(tmp_path / "default-index"))


@pytest.fixture
def corpus(tmp_path) -> Path:
    return build_corpus(tmp_path / "corpus")


# --------------------------------------------------------------------------- models
@pytest.fixture(scope="session")
def embedder():
    """The default embedder (int8 ONNX), as the assistant ships it."""
    from index.embedding.embedder import make_embedder

    return make_embedder()


@pytest.fixture(scope="session")
def bundled_llm():
    from assistant.llm.bundled import BundledLLM

    return BundledLLM()


@pytest.fixture
def fake_embedder():
    from index.embedding.embedder import HashEmbedder

    return HashEmbedder()


@pytest.fixture
def settings(tmp_path):
    from assistant.config import Settings

    return Settings.from_env(index_dir=tmp_path / "index")


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server with the bundled model (alias ``smollm2``);
    yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    from assistant.llm.gguf import bundled_model_path

    port = free_port()
    log = tmp_path_factory.mktemp("llm") / "server.log"
    proc = start_process([sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path()),
                          "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                          "--n_ctx", "2048"], f"http://127.0.0.1:{port}/v1/models", log)
    yield f"http://127.0.0.1:{port}/v1"
    stop_process(proc)


# --------------------------------------------------------------------------- catalogs
# The catalog's two implementations (index.catalog, index.postgres): tests that take
# ``catalog_url`` run on both. PostgreSQL is a real throwaway cluster (tests.support.postgres);
# where it is not installed those runs skip, saying so, unless ASSISTANT_REQUIRE_POSTGRES is
# set (.ci/run sets it: CI always runs them).
CATALOGS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_cluster():
    from tests.support.postgres import Cluster, binaries

    if binaries() is None:
        if os.environ.get("ASSISTANT_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is not installed and ASSISTANT_REQUIRE_POSTGRES is set")
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql); "
                    "the PostgreSQL catalog's tests are skipped")
    cluster = Cluster()
    yield cluster
    cluster.close()


_DATABASES = iter(range(1, 1 << 30))


@pytest.fixture
def postgres_url(postgres_cluster) -> str:
    """The URL of a new, empty database on the test cluster (with its password)."""
    return postgres_cluster.create_database(f"test_{next(_DATABASES)}")


@pytest.fixture(params=CATALOGS)
def catalog_url(request) -> str | None:
    """None (the SQLite catalog in the index folder), then a new PostgreSQL database's URL."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")
