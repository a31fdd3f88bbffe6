"""Thin Prefect tasks: each a line or two around one core function, so retries and logs attach to it.

The tasks join the core with the data contracts (``expectations``) and read the settings from the
environment at run time; the logic stays in ``candlecast`` where it runs and is tested without Prefect.
"""
