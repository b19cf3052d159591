"""The README's connection recipes, as tests run them: each is the fenced block after a
``<!-- recipe: NAME -->`` line, run as written but for the server's address (the
README's ``127.0.0.1:8765``) and the ``KEY`` and ``SECRET`` it leaves to the reader.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from e2e.clients import Credentials
from sandex.cli.recipes import DEFAULT_ADDRESS

__all__ = ["README", "FT_VENV", "readme_recipes", "at", "freqtrade_env", "freqtrade_exchange"]

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FT_VENV = REPO / ".venv-freqtrade"
_RECIPE = re.compile(r"^<!-- recipe: (\S+) -->\n```python\n(.*?)^```$", re.M | re.S)


def readme_recipes() -> dict[str, str]:
    """name -> code of every ``<!-- recipe: NAME -->`` block in README.md."""
    found = {m[1]: m[2] for m in _RECIPE.finditer(README.read_text())}
    assert {"sandex_urls", "ccxt", "ccxt.pro", "python-binance", "freqtrade"} <= set(found)
    return found


def at(code: str, address: str) -> str:
    """A recipe for the server at ``address`` (host:port) instead of the README's."""
    assert code.count(DEFAULT_ADDRESS) <= 1, "one address per recipe"
    return code.replace(DEFAULT_ADDRESS, address)


def freqtrade_env() -> dict[str, str]:
    """This environment without what could steer freqtrade: proxies, this venv, SANDEX_*,
    FREQTRADE__* and PYTEST_* (with PYTEST_VERSION set freqtrade skips its logging setup)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy")
        and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        and not k.startswith(("SANDEX_", "FREQTRADE__", "PYTEST_"))
    }


def freqtrade_exchange(address: str, creds: Credentials) -> dict[str, Any]:
    """The ``exchange`` block the README's freqtrade recipe prints, run as a user would:
    with freqtrade's own Python (and its ccxt), the key and secret from the environment
    (never on a command line)."""
    recipes = readme_recipes()
    script = "\n".join(
        [
            "import os",
            'KEY, SECRET = os.environ["RECIPE_KEY"], os.environ["RECIPE_SECRET"]',
            at(recipes["sandex_urls"], address),
            recipes["freqtrade"],
        ]
    )
    env = freqtrade_env()
    env.update(RECIPE_KEY=creds.api_key, RECIPE_SECRET=creds.signing_secret)
    out = subprocess.run(
        [str(FT_VENV / "bin" / "python"), "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:].replace(creds.signing_secret, "<secret>")
    block: dict[str, Any] = json.loads(out.stdout)["exchange"]
    return block
