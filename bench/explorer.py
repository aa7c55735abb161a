"""The explorer's first paint on a 1,000-block ledger, measured in Debian's Chromium.

From navigation start to the first frame after the page drew the chain (the
`chainops-painted` mark app.js sets), and the browser's largest contentful paint.
`python -m bench.explorer [N]` applies N tiny migrations to a fresh database, serves
the explorer and loads the page once to warm up, then RUNS times. Target: under 1 s.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.database import PREFIX, Server, server
from bench.generate import write_tiny

BLOCKS = 1000
RUNS = 5
TARGET_MS = 1000.0
CHROMIUM = "/usr/bin/chromium"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_TIMES = """async () => {
  const mark = performance.getEntriesByName("chainops-painted")[0];
  const lcp = await new Promise((done) => {
    new PerformanceObserver((list) => {
      const entries = list.getEntries();
      done(entries[entries.length - 1].startTime);
    }).observe({ type: "largest-contentful-paint", buffered: true });
    setTimeout(() => done(null), 1000);
  });
  return [mark ? mark.startTime : null, lcp];
}"""


def measure(srv: Server, work: Path, n: int = BLOCKS, runs: int = RUNS) -> list[float]:
    """Milliseconds to the painted mark, one per measured load."""
    from playwright.sync_api import sync_playwright

    from chainops import api
    from chainops.config import load_settings
    from chainops.web.explorer import ExplorerServer

    layout = write_tiny(work / f"explorer-{n}", n)
    url = srv.fresh(f"{PREFIX}explorer")
    settings = load_settings(cwd=work, database_url=url, migrations_dir=layout.chainops)
    api.apply(api.target(settings))
    explorer = ExplorerServer(settings, 0)
    thread = threading.Thread(target=explorer.serve_forever, args=(0.05,))
    thread.start()
    painted: list[float] = []
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox"]
            )
            for i in range(runs + 1):  # the first load warms the server's caches
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(explorer.url)
                page.wait_for_function("() => performance.getEntriesByName("
                                       "'chainops-painted').length > 0")  # fmt: skip
                mark, lcp = page.evaluate(_TIMES)
                if i:
                    painted.append(float(mark))
                    print(f"  load {i}: painted {mark:.0f} ms, LCP {lcp or 0:.0f} ms")
                page.close()
            browser.close()
    finally:
        explorer.shutdown()
        thread.join(10)
        explorer.server_close()
    return painted


def target_row(painted: list[float], n: int = BLOCKS) -> tuple[str, str, bool]:
    """The targets table's row: median first paint against the 1 s target."""
    median = statistics.median(painted)
    return (
        f"explorer first paint on {n} blocks < {TARGET_MS / 1000:g} s (Chromium)",
        f"median {median:.0f} ms of {len(painted)} loads, max {max(painted):.0f} ms",
        median < TARGET_MS,
    )


def missing_row(n: int = BLOCKS) -> tuple[str, str, bool | None]:
    """The targets table's row where Chromium is not installed."""
    return (
        f"explorer first paint on {n} blocks < {TARGET_MS / 1000:g} s (Chromium)",
        f"not measured: {CHROMIUM} is missing (apt-get install chromium)",
        None,
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else BLOCKS
    url = os.environ.get("CHAINOPS_BENCH_URL", DEFAULT_URL)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch, server(url) as srv:
        painted = measure(srv, Path(scratch), n)
    median = statistics.median(painted)
    verdict = "meets" if median < TARGET_MS else "misses"
    print(
        f"explorer first paint on {n} blocks: median {median:.0f} ms of {len(painted)} "
        f"loads (max {max(painted):.0f} ms); {verdict} the {TARGET_MS:.0f} ms target "
        f"({time.monotonic() - started:.0f} s in all)"
    )


if __name__ == "__main__":
    main()
