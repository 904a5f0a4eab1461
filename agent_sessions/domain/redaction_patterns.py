"""The secret patterns redaction looks for by default, by category.

They are Python ``re`` sources; case-insensitive ones carry an inline ``(?i)`` at the
start, so each source carries its own flags and compiles alone. The order matters:
patterns are applied one after another to the progressively rewritten text, so a
specific pattern (an AWS key) must come before a generic one that would swallow it
(``password=...``).

A pattern with a group named ``secret`` has only that group replaced, the rest of the
match kept as it was: a URL keeps its scheme, user and host readable, and loses its
password. Every pattern must do linear work on any text: the scan runs on whatever a
caller or a provider sends, so a pattern that backtracks over a long run from each of
its starts would let one payload stall a write.
"""

from __future__ import annotations

import re

#: ``(category, regex)`` pairs, in the order they are applied.
DEFAULT_PATTERN_SOURCES: tuple[tuple[str, str], ...] = (
    ("aws_access_key", r"AKIA[0-9A-Z]{16}"),
    ("aws_secret_key", r"(?i)aws[_-]?secret[_-]?access[_-]?key\s*[:=]\s*\S+"),
    ("gcp_api_key", r"AIza[0-9A-Za-z_-]{35}"),
    ("anthropic_key", r"sk-ant-api\S{20,}"),
    # Project, service-account and admin keys: their bodies use the URL-safe base64
    # alphabet, ``-`` and ``_`` included, so the whole key goes, not its first run of
    # letters.
    ("openai_key", r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}"),
    ("openai_legacy_key", r"sk-[a-zA-Z0-9]{40,}"),
    ("github_pat", r"ghp_[a-zA-Z0-9]{36}"),
    ("github_oauth", r"gho_[a-zA-Z0-9]{36}"),
    ("github_app", r"ghs_[a-zA-Z0-9]{36}"),
    ("github_refresh", r"ghr_[a-zA-Z0-9]{36}"),
    ("github_fine_pat", r"github_pat_[a-zA-Z0-9_]{22,}"),
    ("gitlab_token", r"glpat-[a-zA-Z0-9_-]{20,}"),
    # Starting only where a token starts, segments taken possessively: text made of
    # ``eyJ`` repeated would otherwise be rescanned from every one of them (quadratic).
    (
        "jwt_token",
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,}+\.[A-Za-z0-9_-]{10,}+\.[A-Za-z0-9_-]{10,}+",
    ),
    ("bearer_token", r"(?i)(bearer)\s+[a-zA-Z0-9._~+/=-]{20,}"),
    ("password", r"(?i)(password|passwd|pwd)\s*[:=]\s*\S+"),
    ("api_key_generic", r"(?i)(api[_-]?key|apikey)\s*[:=]\s*\S+"),
    ("secret_key", r"(?i)(secret[_-]?key|secretkey)\s*[:=]\s*\S+"),
    ("access_token", r"(?i)(access[_-]?token|accesstoken)\s*[:=]\s*\S+"),
    ("auth_token", r"(?i)(auth[_-]?token|authtoken)\s*[:=]\s*\S+"),
    ("connection_string", r"(?i)(postgres|postgresql|mysql|redis|mongodb|amqp|mssql)://[^\s]+"),
    # Matching the BEGIN line only would leave the key material in place (and
    # stored). We take the whole block up to its END line, or to the end of the text when
    # the block was cut off (truncated stderr, a streamed chunk).
    (
        "private_key",
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"
        r"(?:[\s\S]*?-----END (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----|[\s\S]*)",
    ),
    (
        "env_secret",
        r"(?i)(DATABASE_URL|REDIS_URL|SECRET_KEY_BASE|ENCRYPTION_KEY|PRIVATE_KEY)\s*=\s*\S+",
    ),
    # A password in any URL's userinfo (``scheme://user:password@host``), for the schemes
    # ``connection_string`` does not take whole (``https``, ``postgresql+psycopg``,
    # ``mongodb+srv``, ...). The user may be empty (``redis://:password@host``); the
    # password runs to the ``@`` that ends the userinfo. Bounded and possessive parts
    # keep the work linear on hostile text (``a.a.a…``, ``a://a://…``).
    (
        "url_password",
        r"(?i)\b[a-z][a-z0-9+.-]{0,31}+://[^\s/?#@:]{0,256}+:(?P<secret>[^\s@]{1,512}+)@",
    ),
)

DEFAULT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (category, re.compile(source)) for category, source in DEFAULT_PATTERN_SOURCES
)
