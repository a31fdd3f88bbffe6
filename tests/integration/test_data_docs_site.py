"""The Data Docs site of a state folder: offline, named by series, trimmed, linked over http, in words.

Before the fix every page loaded Bootstrap and jQuery from CDNs (offline: unstyled pages and a blank
index, "$ is not defined"), said "Data asset: None" and run name "__none__" in files all named
candlecast-frames.html, and grew by a few pages an hour forever.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from candlecast.devtools.synthetic import synthetic_candles
from candlecast.expectations.candles import CandleBounds
from candlecast.expectations.project import gx_project, site_dir
from candlecast.expectations.report import served_docs_url
from candlecast.expectations.runner import _candle_suite, validate_candles

SERIES = "binance:BTC/USDT:1h"
REMOTE = re.compile(r"<(script|link|img)\b[^>]*(src|href)=\"https?://", re.I)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, list[str]]:
    """Three checks of one series (pass, fail, pass) keeping two, and one of another series."""
    root = tmp_path_factory.mktemp("docs")
    project = gx_project(root)
    suite = _candle_suite("1h", False, CandleBounds())
    good = synthetic_candles("BTC/USDT", 1_704_067_200_000, 60)
    urls = []
    for frame in (good, good.assign(high=good["low"] - 1), good):
        _, url = project.validate(frame, suite, {}, series=SERIES, keep=2)
        urls.append(url)
    project.validate(synthetic_candles("ETH/USDT", 1_704_067_200_000, 60), suite, {}, series="binance:ETH/USDT:1h")
    return root, urls


def _path(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


def test_result_pages_name_their_series_and_load_nothing_remote(site):
    _, urls = site
    page = _path(urls[-1])
    assert page.name == "candlecast-binance_BTC-USDT_1h.html"
    assert "/binance_BTC-USDT_1h/" in urls[-1], "the run is named by the series, not __none__"
    text = page.read_text()
    assert f"Data asset: {SERIES}" in text
    assert not REMOTE.search(text) and "jquery" not in text.lower()
    css = re.search(r'href="([^"]*candlecast-offline\.css)"', text).group(1)
    assert (page.parent / css).resolve().is_file()


def test_the_oldest_result_beyond_keep_is_gone_from_store_and_site(site):
    root, urls = site
    assert not _path(urls[0]).exists()
    assert _path(urls[1]).exists() and _path(urls[2]).exists()
    stored = list((root / "gx" / "uncommitted" / "validations").glob("*/binance_BTC-USDT_1h/*/*.json"))
    assert len(stored) == 2


def test_the_index_lists_each_series_with_working_links_and_no_script(site):
    root, urls = site
    index = site_dir(root) / "index.html"
    text = index.read_text()
    assert "<script" not in text and not REMOTE.search(text)
    assert "binance_BTC-USDT_1h" in text and "binance_ETH-USDT_1h" in text
    assert "FAILED" in text and "passed" in text
    links = re.findall(r"href='(validations/[^']+)'", text)
    assert len(links) == 3 and all((site_dir(root) / link).is_file() for link in links)


def test_artifact_links_point_at_the_served_site(site, monkeypatch):
    _, urls = site
    monkeypatch.setenv("CANDLECAST_DATA_DOCS_URL", "http://127.0.0.1:8090")
    served = served_docs_url(urls[-1])
    assert served.startswith("http://127.0.0.1:8090/validations/candle_contract_1h/binance_BTC-USDT_1h/")
    monkeypatch.delenv("CANDLECAST_DATA_DOCS_URL")
    assert served_docs_url(urls[-1]) == urls[-1]


def test_the_runner_names_the_series_and_the_index_says_a_warning_passes(tmp_path):
    """Flows validate through the runner: its pages must be named too (they said 'frames' and 'Data asset: None')."""
    frame = synthetic_candles("ETH/USDT", 1_704_067_200_000, 60)
    stale = int(frame["timestamp"].max()) + 10 * 86_400_000  # live mode, ten days late: only the freshness warning
    report = validate_candles(frame, "1h", "binance:ETH/USDT:1h", now_ms=stale, state_root=tmp_path)
    assert report.success and {f["severity"] for f in report.failures} == {"warning"}
    page = _path(report.data_docs)
    assert "/binance_ETH-USDT_1h/" in report.data_docs and "Data asset: binance:ETH/USDT:1h" in page.read_text()
    icon = re.search(r'rel="shortcut icon" href="([^"]+)"', page.read_text()).group(1)
    assert (page.parent / icon).resolve().is_file(), "GX's favicon link is one folder short on result pages"
    index = (site_dir(tmp_path) / "index.html").read_text()
    assert "<h2>binance_ETH-USDT_1h</h2>" in index and "frames" not in index
    assert "passed with warnings" in index and "FAILED" not in index
    text = page.read_text()  # the page agrees with the row linking to it
    assert "</i> Passed with warnings" in text and "</i> Failed" not in text and "cc-warn" in text
    assert "2024-01-03 11:00 UTC" in text and "e+12" not in text, "the newest candle's time reads as a date"
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text))
    assert "values are open times on the 1 h candle grid" in words  # the custom expectation, in words
    assert "aligned_to_timeframe" not in text


def test_a_page_with_a_critical_failure_still_says_failed(site):
    _, urls = site
    assert "</i> Failed" in _path(urls[1]).read_text()  # the high < low batch: critical, refused
