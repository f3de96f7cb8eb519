"""One frozen settings object, read from arguments and the environment.

| variable | meaning | default |
| --- | --- | --- |
| ASSISTANT_DATA | data folder: collections and conversations | the ``--index`` folder if given, else the per-user data folder (``platformdirs``) |
| ASSISTANT_COLLECTION | the collection asked and ingested into | ``default`` |
| ASSISTANT_INDEX | the ``default`` collection's index folder | DATA/index |
| ASSISTANT_CHROMA_URL | Chroma server URL (else Chroma files in the index folder) | unset |
| ASSISTANT_BACKEND | ``bundled`` (SmolLM2 GGUF), ``openai`` (OpenAI-compatible server) or ``none`` | bundled |
| ASSISTANT_LLM_URL | base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 | unset |
| ASSISTANT_LLM_MODEL | model name to ask that server for | ``default`` |
| ASSISTANT_LLM_API_KEY | API key for that server | unset |
| ASSISTANT_MODE | ``auto`` (quote strong evidence, else the LLM), ``generate`` (the LLM) or ``extractive`` (no LLM) | auto with the bundled model, generate with a server |
| ASSISTANT_K | passages given to the answerer (1 to 10) | 4 |
| ASSISTANT_LLM_CONTEXT | context window (tokens) of the OpenAI-compatible server's model; the prompt is budgeted to it | 8192 |
| ASSISTANT_MAX_FILE_MB | larger HTML, PDF and DOCX files (read whole) and uploads are refused; text is streamed | 50 |
| ASSISTANT_THREADS | CPU threads for the models (0: all cores) | 0 |
| ASSISTANT_EMBED_RUNTIME | ``onnx`` (float32 ONNX graph, no torch) or ``torch`` (the ``torch`` extra) | onnx |
| ASSISTANT_EMBED_WORKERS | processes embedding in parallel at ingest | 1 |
| ASSISTANT_READER | ``on``: the reader model picks the answer span and joins the abstention (docs/reader.md); ``off``: the rules alone | on |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping

from assistant.errors import SettingError

BACKENDS = ("bundled", "openai", "none")
RUNTIMES = ("onnx", "torch")  # index.embedding.embedder.RUNTIMES, without importing the embedder at config time
MODES = ("auto", "generate", "extractive")
READER = ("on", "off")
K_MAX = 10  # passages an answer may be given; the prompt is also budgeted to the model's window
SERVER_CONTEXT = 8192  # tokens assumed for an OpenAI-compatible server's model unless told


# Each setting read from the environment: its variable, and how its text becomes a value.
ENVIRONMENT = {
    "index_dir": ("ASSISTANT_INDEX", Path),
    "data_dir": ("ASSISTANT_DATA", Path),
    "collection": ("ASSISTANT_COLLECTION", str),
    "chroma_url": ("ASSISTANT_CHROMA_URL", str),
    "catalog_url": ("ASSISTANT_CATALOG_URL", str),
    "backend": ("ASSISTANT_BACKEND", str),
    "llm_url": ("ASSISTANT_LLM_URL", str),
    "llm_model": ("ASSISTANT_LLM_MODEL", str),
    "llm_api_key": ("ASSISTANT_LLM_API_KEY", str),
    "mode": ("ASSISTANT_MODE", str),
    "k": ("ASSISTANT_K", int),
    "max_file_mb": ("ASSISTANT_MAX_FILE_MB", float),
    "threads": ("ASSISTANT_THREADS", int),
    "embed_runtime": ("ASSISTANT_EMBED_RUNTIME", str),
    "embed_workers": ("ASSISTANT_EMBED_WORKERS", int),
    "llm_context": ("ASSISTANT_LLM_CONTEXT", int),
    "reader": ("ASSISTANT_READER", str),
}
_KINDS = {int: "a whole number", float: "a number"}


def check_k(k) -> int:
    """``k`` as an int from 1 to ``K_MAX``; raises ValueError saying the range otherwise."""
    value = k
    if isinstance(k, float) and k.is_integer():
        value = int(k)
    elif isinstance(k, str) and k.strip().lstrip("-").isdigit():
        value = int(k)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= K_MAX:
        raise SettingError("k", f"k (passages) must be a whole number from 1 to {K_MAX}, not {k!r}")
    return value


def default_data_dir() -> Path:
    """The per-user data folder (e.g. ~/.local/share/doc-assistant)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("doc-assistant", appauthor=False))


def default_index_dir() -> Path:
    """The per-user data folder's ``index`` subfolder: the ``default`` collection."""
    return default_data_dir() / "index"


def default_corpus() -> Path:
    """The bundled example documents: ``assistant/seeds`` in an installed package (pyproject
    ships the checkout's ``seeds/`` there), else ``seeds/`` beside the package (a checkout,
    or an editable install)."""
    here = Path(__file__).resolve().parent
    installed, checkout = here / "seeds", here.parent / "seeds"
    return installed if installed.is_dir() else checkout


@dataclass(frozen=True)
class Settings:
    """Everything that shapes the assistant; build with ``Settings.from_env(**overrides)``.

    ``index_dir`` is the folder of the collection in use: ``from_env`` finds it from ``data_dir``,
    ``collection`` and an explicit index folder (``index.collections``).
    """

    index_dir: Path
    data_dir: Path | None = None  # None: the index folder's own (it is the default collection)
    collection: str = "default"
    chroma_url: str | None = None
    catalog_url: str | None = field(default=None, repr=False)  # may hold a password: never shown
    backend: str = "bundled"
    llm_url: str | None = None
    llm_model: str = "default"
    llm_api_key: str | None = None
    mode: str | None = None  # None: "generate" with a server LLM, else "auto"; follows the backend
    k: int = 4
    max_file_mb: float = 50.0
    threads: int = 0
    embed_runtime: str = "onnx"
    embed_workers: int = 1
    chunk_tokens: int = 200
    overlap_tokens: int = 30
    max_answer_tokens: int = 160
    llm_context: int = SERVER_CONTEXT
    reader: str = "on"
    _mode_defaulted: bool = field(default=False, init=False, repr=False, compare=False)
    _default_dir: Path | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_mode_defaulted", self.mode is None)
        if self.mode is None:
            object.__setattr__(self, "mode", "generate" if self.backend == "openai" else "auto")
        if self.backend not in BACKENDS:
            raise SettingError("backend", f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.mode not in MODES:
            raise SettingError("mode", f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.backend == "openai" and not self.llm_url:
            raise SettingError("llm_url", "the openai backend needs a server URL (--llm-url or ASSISTANT_LLM_URL)")
        if self.embed_runtime not in RUNTIMES:
            raise SettingError("embed_runtime",
                               f"embed_runtime must be one of {', '.join(RUNTIMES)}, not {self.embed_runtime!r}")
        if self.reader not in READER:
            raise SettingError("reader", f"reader must be on or off, not {self.reader!r}")
        if self.embed_workers < 1:
            raise SettingError("embed_workers", "embed_workers must be at least 1")
        object.__setattr__(self, "k", check_k(self.k))
        if self.llm_context < 512:
            raise SettingError("llm_context", f"llm_context must be at least 512 tokens, not {self.llm_context}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Settings from ``ASSISTANT_*`` variables, then explicit overrides (None = not given).

        Raises:
            ValueError: an override that is no setting (the message lists the known ones), or
                a bad value (naming the variable when it came from the environment).
        """
        env = os.environ if env is None else env
        known = [f.name for f in fields(cls) if f.init and not f.name.startswith("_")]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                             f"the settings are: {', '.join(known)}")
        values: dict = {}
        from_environment: dict[str, str] = {}  # setting -> the variable it was read from
        for name, (variable, kind) in ENVIRONMENT.items():
            text = env.get(variable)
            if not text:
                continue
            try:
                values[name] = kind(text)
            except ValueError:
                raise SettingError(name, f"{variable}={text!r} is not {_KINDS[kind]}; "
                                         f"fix or unset the environment variable") from None
            from_environment[name] = variable
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        for name in given:
            from_environment.pop(name, None)
        if values.get("llm_url") and not values.get("backend"):
            values["backend"] = "openai"
        try:
            _place(values)
            return cls(**values)
        except SettingError as exc:
            variable = from_environment.get(exc.name)
            if variable is None:
                raise
            raise SettingError(exc.name, f"{variable}={env[variable]!r}: {exc}; "
                                         "fix or unset the environment variable") from None

    @property
    def data(self) -> Path:
        """The data folder: the collections and the conversations."""
        return self.data_dir if self.data_dir is not None else self.index_dir

    @property
    def default_dir(self) -> Path:
        """The ``default`` collection's index folder."""
        if self._default_dir is not None:
            return self._default_dir
        return self.index_dir if self.collection == "default" else self.data / "index"

    def for_collection(self, name: str) -> "Settings":
        """The same settings on another collection of the same data folder."""
        from index.collections import collection_dir

        return replace(self, collection=name, index_dir=collection_dir(self.data, name, self.default_dir),
                       _default_dir=self.default_dir)

    def with_(self, **changes) -> "Settings":
        """A copy with some settings changed (a defaulted mode follows a changed backend)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if self._mode_defaulted and "mode" not in changes:
            changes["mode"] = None
        return replace(self, **changes)


def _place(values: dict) -> None:
    """Fill in ``index_dir`` (the collection's folder), ``data_dir`` and ``_default_dir``.

    No ``--index``: the data folder (or the per-user one) holds every collection, ``default`` in
    DATA/index. With ``--index DIR``: DIR is the ``default`` collection and, unless a data folder is
    given, the data folder too (its other collections under DIR/collections).
    """
    from index.collections import check_name, collection_dir

    name = values.setdefault("collection", "default")
    try:
        check_name(name)
    except ValueError as exc:
        raise SettingError("collection", str(exc)) from None
    index_dir = values.get("index_dir")
    data = values.get("data_dir")
    if index_dir is not None:
        default = Path(index_dir).expanduser()
        data = Path(data).expanduser() if data is not None else default
    else:
        data = Path(data).expanduser() if data is not None else default_data_dir()
        default = data / "index"
    values["data_dir"] = data
    values["_default_dir"] = default
    values["index_dir"] = collection_dir(data, name, default)
