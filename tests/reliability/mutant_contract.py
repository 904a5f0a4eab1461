"""The contract as the mutation check runs it, in a pytest session of its own.

Not a ``test_*`` module: the suite's own run does not collect it. The harness of
``test_contract_mutants.py`` names this file to ``pytest.main`` and, as a plugin, gives
it the ``wrapped_store`` fixture: a fresh real store inside the mutant under test.
"""

from __future__ import annotations

import pytest

from agent_sessions import SessionStore
from agent_sessions.testing import SessionStoreContract


class TestContractOfWrappedStore(SessionStoreContract):
    # The wrappers forward ``prune_events``. A second handle would bypass the mutant
    # (it is opened from a URL), so the sharing tests are left out.
    supports_pruning = True

    @pytest.fixture
    def store(self, wrapped_store: SessionStore) -> SessionStore:
        return wrapped_store
