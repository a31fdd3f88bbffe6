import pytest


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server and database for the flow tests, stopped while pytest still listens."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
