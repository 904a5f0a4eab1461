"""Test support for ``SessionStore`` implementations.

Shipped inside the package (not only in this repository's ``tests/``) so that anyone who
writes their own store can hold it to the same contract as the built-in backends::

    from agent_sessions.testing import SessionStoreContract

    class TestMyStore(SessionStoreContract):
        @pytest.fixture
        def store(self):
            with MyStore() as store:
                yield store

``ArtifactStoreContract`` does the same for ``ArtifactStore`` implementations.
Importing this package requires ``pytest``.
"""

from .artifact_contract import ArtifactStoreContract
from .contract import SessionStoreContract

__all__ = ["ArtifactStoreContract", "SessionStoreContract"]
