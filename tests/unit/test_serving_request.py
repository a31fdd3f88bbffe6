"""serve-model's request bodies: every layout reads to the same arrays per series; a bad body is one line.

JSON split, records and series, and an Arrow stream, give each series' candles as arrays; a body it
cannot read is a BadRequest naming what is wrong (HTTP 400).

tests/flows/test_serving.py sends the same bodies to a running server and compares the forecasts.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import pytest

from candlecast.devtools.synthetic import synthetic_candles
from candlecast.registry.request_body import ARROW_STREAM, BadRequest, parse_request
from candlecast.schema import CANDLE_COLUMNS


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """Three series of 30 candles, rows interleaved by time (as a store query returns them)."""
    parts = [synthetic_candles(s, 1_717_200_000_000, 30, seed=i).assign(symbol=s) for i, s in enumerate("CAB")]
    return pd.concat(parts).sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def _split(frame: pd.DataFrame) -> dict:
    return frame.to_dict(orient="split", index=False)  # Python floats: JSON keeps every digit (to_json keeps 10)


def _arrow(table: pd.DataFrame | pa.Table) -> bytes:
    table = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _assert_series(got, frame: pd.DataFrame) -> None:
    """Symbols sorted, each with its candles as arrays in time order (timestamp int64)."""
    assert [symbol for symbol, _ in got] == sorted(frame["symbol"].unique())
    for symbol, arrays in got:
        want = frame[frame["symbol"] == symbol]
        assert arrays["timestamp"].dtype == np.int64
        for column in CANDLE_COLUMNS:
            np.testing.assert_array_equal(arrays[column], want[column].to_numpy(), err_msg=f"{symbol} {column}")


def test_every_layout_reads_to_the_same_arrays_per_series(frame):
    split = _split(frame)
    records = frame.to_dict(orient="records")
    series = [{"symbol": s, "candles": _split(g.drop(columns="symbol"))} for s, g in frame.groupby("symbol")]
    for body in ({"dataframe_split": split}, {"dataframe_records": records}, {"series": series}):
        _assert_series(parse_request(json.dumps(body).encode()), frame)
    _assert_series(parse_request(_arrow(frame), ARROW_STREAM), frame)
    _assert_series(parse_request(_arrow(frame), f"{ARROW_STREAM}; charset=binary"), frame)


def test_one_unnamed_series_and_arrow_timestamps_as_a_timestamp_type(frame):
    one = frame[frame["symbol"] == "A"].drop(columns="symbol")
    [(symbol, arrays)] = parse_request(json.dumps({"dataframe_split": _split(one)}).encode())
    assert symbol is None and arrays["close"].tolist() == one["close"].tolist()
    table = pa.Table.from_pandas(one, preserve_index=False)
    table = table.set_column(0, "timestamp", pa.array(pd.to_datetime(one["timestamp"], unit="ms"), pa.timestamp("us")))
    [(symbol, arrays)] = parse_request(_arrow(table), ARROW_STREAM)
    assert symbol is None and arrays["timestamp"].tolist() == one["timestamp"].tolist()


def test_a_record_without_a_column_reads_as_missing(frame):
    records = frame.head(3).drop(columns="symbol").to_dict(orient="records")
    del records[1]["volume"]
    [(_, arrays)] = parse_request(json.dumps({"dataframe_records": records}).encode())
    assert np.isnan(arrays["volume"][1])
    assert arrays["volume"][[0, 2]].tolist() == frame["volume"].head(3)[[0, 2]].tolist()


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"{not json", "application/json", "the body is not JSON"),
        (b'{"dataframe_split": {"columns": ["close"], "data": [[NaN]]}}', "application/json", "the body is not JSON"),
        (b"[1, 2]", "application/json", "send a JSON object"),
        (b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3]]}}', "application/json", "needs 2 values"),
        (b'{"dataframe_split": {"columns": ["timestamp"], "data": [[1]]}}', "application/json", "lacks candle columns"),
        (b'{"dataframe_records": [1, 2]}', "application/json", "dataframe_records needs"),
        (b'{"series": []}', "application/json", "series must be a non-empty list"),
        (b"not arrow at all", ARROW_STREAM, "not an Arrow IPC stream"),
    ],
    ids=[
        "not-json",
        "nan-literal",
        "not-an-object",
        "ragged",
        "missing-columns",
        "records-not-objects",
        "no-series",
        "not-arrow",
    ],
)
def test_a_body_it_cannot_read_is_one_line(body, content_type, reason):
    with pytest.raises(BadRequest, match=reason) as caught:
        parse_request(body, content_type)
    assert "\n" not in str(caught.value)


def test_candle_columns_that_are_not_numbers_are_one_line(frame):
    bad = frame.head(3).drop(columns="symbol").assign(close=["x", "y", "z"])
    with pytest.raises(BadRequest, match="must hold numbers"):
        parse_request(json.dumps({"dataframe_split": _split(bad)}).encode())
    with pytest.raises(BadRequest, match="must hold numbers"):
        parse_request(_arrow(bad), ARROW_STREAM)
    with pytest.raises(BadRequest, match="lacks candle columns"):
        parse_request(_arrow(frame.drop(columns="open")), ARROW_STREAM)
