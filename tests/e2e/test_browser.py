"""The web page in a real (headless) Chromium with a fake microphone playing Telugu speech."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from telugu_s2s.client.wav import read_wav_as, write_wav

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def fake_mic(tmp_path_factory, example_wavs) -> Path:
    # Chromium loops the file: a question, then 12 s of silence so that even an untrained
    # model's longest reply (8 s, paced at real time) plays out before the caller speaks again.
    q = read_wav_as(example_wavs["namaskaram"], 16000)
    path = tmp_path_factory.mktemp("mic") / "mic.wav"
    write_wav(path, np.concatenate([q, np.zeros(16000 * 12, np.int16)]), 16000)
    return path


def test_page_talks_plays_reply_shows_latency_and_changes_voice(stack, fake_mic, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    url = f"http://{stack.cfg.host}:{stack.cfg.web_port}/"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_mic}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(url)
            assert "telugu" in page.title().lower()
            page.select_option("#voice", "priya")
            page.click("#start")
            log = page.locator("#log")
            # A reply arrives and plays.
            page.wait_for_function(
                "document.getElementById('log').innerText.includes('reply audio playing')", timeout=60_000)
            page.wait_for_function(
                "document.getElementById('log').innerText.includes('reply done')", timeout=60_000)
            assert re.search(r"\d+ ms", page.inner_text("#latency"))
            assert int(page.inner_text("#turns")) >= 1
            assert "voice priya" in log.inner_text()
            # The voice picker changes the voice of the next reply.
            page.select_option("#voice", "arjun")
            page.wait_for_function(
                "document.getElementById('log').innerText.includes('voice arjun)')", timeout=60_000)
            page.wait_for_function(
                "document.querySelectorAll('#turn-table tbody tr').length >= 2", timeout=60_000)
            page.screenshot(path=str(tmp_path / "web-demo.png"), full_page=True)  # kept for a failing run
        finally:
            browser.close()


def test_page_says_when_the_service_is_down(tmp_path):
    """The bridge is up but no gateway answers: the page explains instead of hanging."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    import socket
    import subprocess
    import sys
    import time

    s = socket.socket(); s.bind(("127.0.0.1", 0)); web_port = s.getsockname()[1]; s.close()
    s = socket.socket(); s.bind(("127.0.0.1", 0)); dead_port = s.getsockname()[1]; s.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "telugu_s2s.web", "--port", str(web_port), "--gateway", f"127.0.0.1:{dead_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
                      "--use-fake-device-for-media-stream", "--disable-background-networking"],
            )
            try:
                page = browser.new_page()
                deadline = time.monotonic() + 20
                while True:
                    try:
                        page.goto(f"http://127.0.0.1:{web_port}/")
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                page.click("#start")
                page.wait_for_function(
                    "document.getElementById('status').className.includes('error')", timeout=30_000)
                assert "not reachable" in page.inner_text("#status")
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
