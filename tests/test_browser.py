"""A real browser: JupyterLab 4 from this venv, headless Chromium driven by Playwright, the widget smoke
notebook run, its slider moved; the widget must render (slider, image, <audio>) and the image change.
And the live soundtrack player (course_lib.live_player): started, two state changes clicked, its Web
Audio schedule read back from the page.

Screenshots go to test-artifacts/browser/ (ignored by git). Needs /usr/bin/chromium and the playwright
package (never `playwright install`: the system Chromium is used); skipped without them.
"""
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "tests" / "notebooks" / "widget_smoke.ipynb"
LIVE_NOTEBOOK = REPO / "tests" / "notebooks" / "live_player_smoke.ipynb"
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required"]
WIDGET_ERRORS = ("Error displaying widget", "model not found", "Error creating widget")
IMAGE = ".jp-OutputArea-output .widget-html-content img"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


class JupyterLab:
    """`jupyter lab` on a free loopback port with a token, every config/data/runtime folder temporary."""

    def __init__(self, workdir: Path):
        self.token, self.port = secrets.token_hex(16), _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        home = workdir / f"home-{self.port}"
        env = {**os.environ, "JUPYTER_PLATFORM_DIRS": "1", "PYTHONUNBUFFERED": "1"}
        for var in ("JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR", "MPLCONFIGDIR",
                    "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
            env[var] = str(home / var.lower())
            Path(env[var]).mkdir(parents=True)
        news = Path(env["JUPYTERLAB_SETTINGS_DIR"], "@jupyterlab", "apputils-extension")
        news.mkdir(parents=True)
        (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={workdir}",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self.log = workdir / f"jupyterlab-{self.port}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                _api(self.base, self.token, "/api/status")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        """Shut kernels down, then the server; kill the server's process group if it lingers. (Kernels run
        in sessions of their own, and also exit when their parent, the server, is gone: JPY_PARENT_PID.)"""
        if self.process.poll() is None:
            try:
                for kernel in _api(self.base, self.token, "/api/kernels"):
                    _api(self.base, self.token, f"/api/kernels/{kernel['id']}", method="DELETE")
                _api(self.base, self.token, "/api/shutdown", method="POST")
                self.process.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture
def jupyterlab(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (no `playwright install` needed)")
    for notebook in (NOTEBOOK, LIVE_NOTEBOOK):  # the browser autosaves: keep the committed copies clean
        shutil.copy(notebook, tmp_path / notebook.name)
    for attempt in range(3):  # another process may take the free port before the server binds it
        server = JupyterLab(tmp_path)
        try:
            server.wait_ready()
            break
        except RuntimeError:
            port_taken = server.process.poll() is not None and "already in use" in server.log_tail()
            server.stop()
            if not port_taken or attempt == 2:
                raise
    try:
        yield server
    finally:
        server.stop()


def test_widget_renders_and_its_slider_redraws_the_figure(jupyterlab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{jupyterlab.base}/lab/tree/{NOTEBOOK.name}?token={jupyterlab.token}")
            # The kernel is ready when the status bar says Idle (the execution indicator fires earlier).
            page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(timeout=90_000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator('li[data-command="runmenu:run-all"]').click()
            slider = page.locator(".jp-OutputArea-output .widget-slider").first
            slider.wait_for(timeout=90_000)
            page.locator(IMAGE).first.wait_for(timeout=30_000)
            page.locator(".jp-OutputArea-output audio").first.wait_for(timeout=30_000)
            page.locator(IMAGE).first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "widget_before.png"), full_page=True)

            assert "x_t at t=0 of 1000" in page.locator(".jp-OutputArea-output figcaption").first.inner_text()
            before = page.locator(IMAGE).first.get_attribute("src")
            assert before.startswith("data:image/png;base64,")

            slider.locator(".noUi-handle").first.focus()  # the keyboard moves a focused noUiSlider handle
            page.keyboard.press("End")
            page.wait_for_function("([selector, old]) => { const img = document.querySelector(selector); "
                                   "return img !== null && img.src !== old; }", arg=[IMAGE, before], timeout=60_000)
            # the new figure comes first, its audio right after
            page.locator(".jp-OutputArea-output figcaption", has_text="x_t at t=999 of 1000").wait_for(timeout=60_000)
            page.locator(IMAGE).first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "widget_after.png"), full_page=True)

            assert page.locator(".jp-OutputArea-output .widget-readout").first.inner_text().strip() == "999"
            assert page.locator(".jp-OutputArea-output audio").count() >= 1
            text = page.locator("body").inner_text()
            assert not [e for e in WIDGET_ERRORS if e in text], f"the page says {text[-500:]!r}"
        except Exception:
            with contextlib.suppress(Exception):  # what the page looked like, next to the error
                page.screenshot(path=str(ARTIFACTS / "widget_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    print(f"browser test: {time.monotonic() - started:.1f} s in Chromium")


LOG = "(() => { const logs = window.liveSoundtracks || []; return logs[logs.length - 1] || null; })()"
MUSIC_SECONDS = 20.0  # scheduled back to back, at least
MAX_GAP = 0.020  # seconds between the end of one bar and the start of the next


def _live_log(page):
    return page.evaluate(f"JSON.parse(JSON.stringify({LOG}))")


def _music(log) -> float:
    return sum(bar["duration"] for bar in log["bars"]) if log else 0.0


def test_live_player_schedules_bars_back_to_back_and_follows_the_clicks(jupyterlab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{jupyterlab.base}/lab/tree/{LIVE_NOTEBOOK.name}?token={jupyterlab.token}")
            page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(timeout=90_000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator('li[data-command="runmenu:run-all"]').click()
            player = page.locator(".live-soundtrack").first
            player.wait_for(timeout=120_000)

            def press(state):
                player.locator("button.ls-state", has_text=state).click()

            def wait_for_music(seconds, timeout=60_000):
                page.wait_for_function(f"(() => {{ const log = {LOG}; return log !== null && "
                                       f"log.bars.reduce((s, b) => s + b.duration, 0) >= {seconds}; }})()",
                                       timeout=timeout)

            press("exploration")  # starts the music
            wait_for_music(6.0)
            page.screenshot(path=str(ARTIFACTS / "live_player_exploration.png"), full_page=True)
            page.wait_for_timeout(1000)  # mid-bar: heard from the next bar line
            press("battle")
            wait_for_music(_music(_live_log(page)) + 7.0)
            press("victory")  # just after a bar was scheduled: heard from the bar after it
            wait_for_music(max(MUSIC_SECONDS + 2.0, _music(_live_log(page)) + 6.0))
            page.screenshot(path=str(ARTIFACTS / "live_player_after_clicks.png"), full_page=True)
            counter = player.locator(".ls-counter").inner_text()
            log = _live_log(page)
            player.locator("button.ls-stop").click()
            text = page.locator("body").inner_text()
            assert not [e for e in WIDGET_ERRORS if e in text], f"the page says {text[-500:]!r}"
        except Exception:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / "live_player_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    (ARTIFACTS / "live_player_log.json").write_text(json.dumps(log, indent=1))

    bars, clicks = log["bars"], log["clicks"]
    assert f"bars scheduled: {len(bars)}" in counter and "underruns: 0" in counter, counter
    assert [b["index"] for b in bars] == list(range(len(bars)))
    gaps = [b["start"] - (a["start"] + a["duration"]) for a, b in zip(bars, bars[1:])]
    assert _music(log) >= MUSIC_SECONDS and max(map(abs, gaps)) < MAX_GAP, gaps
    assert log["underruns"] == 0 and not any(b["underrun"] for b in bars)
    assert [c["state"] for c in clicks] == ["exploration", "battle", "victory"]
    latencies = []
    for click, after in zip(clicks[1:], clicks[2:] + [None]):
        upcoming = [b for b in bars if b["start"] >= click["at"]]
        assert click["state"] in [b["state"] for b in upcoming[:2]], (click, upcoming[:2])  # next bar or the one after
        first = next(b for b in upcoming if b["state"] == click["state"])
        until = after["at"] if after else float("inf")
        assert all(b["state"] == click["state"] for b in upcoming if first["start"] <= b["start"] < until)
        latencies.append(first["start"] - click["at"])
    print(f"live player: {_music(log):.1f} s of music in {len(bars)} bars, gaps <= {max(map(abs, gaps)) * 1e3:.3f} ms, "
          f"click to first new-state bar {', '.join(f'{x:.2f} s' for x in latencies)}; "
          f"{time.monotonic() - started:.1f} s in Chromium")
