"""The data contracts as Great Expectations 1.x suites in code, and the gate that applies them.

``candles`` (the candle contract) and ``features`` (the feature contract) define the suites; ``runner``
validates a frame against one, ``report`` turns GX's result into a plain verdict, ``gate`` applies it
to a staged batch (quarantine on failure) and ``project`` keeps the results and Data Docs on disk.
The core never imports this package: tasks and the CLI hand its gate to the core's ingest and import.
"""
