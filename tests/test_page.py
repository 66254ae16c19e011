"""The drawing page (lenet_fast/static/pad.html, served at / by lenet_fast/serve.py) in a real headless Chromium
driven by Selenium: digits drawn with pointer events on #pad are read in #digit, #clear empties it, and the
feature maps appear. Needs Chromium and its driver (Debian: apt-get install chromium chromium-driver; or
CHROMIUM and CHROMEDRIVER naming them); skips with its reason without them. With LENET_FAST_PAGE_PICTURE=FILE
it also saves the page with the drawn 7 read and its maps shown to FILE (PNG): tools/screenshots.py makes the
README's picture so."""
import math
import os
import shutil
import socket
import threading
import time

import pytest

import lenet_fast
from lenet_fast import serve

pytest.importorskip("starlette", reason="the page's test needs Starlette (pip install \"lenet_fast[serve]\")")
pytest.importorskip("uvicorn", reason="the page's test needs uvicorn (pip install \"lenet_fast[serve]\")")
pytest.importorskip("selenium", reason="the page's test drives the browser with Selenium (pip install selenium)")
import uvicorn  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException, WebDriverException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT = 10  # seconds: the longest wait for the page to show a result


def executable(variable, *names):
    return os.environ.get(variable) or next((shutil.which(n) for n in names if shutil.which(n)), None)


@pytest.fixture(scope="module")
def url():
    """The service on a free port of 127.0.0.1, run by uvicorn in a thread for the module's tests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = serve.create_app(lenet_fast.pretrained("classic"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    chromium = executable("CHROMIUM", "chromium", "chromium-browser", "google-chrome")
    driver_path = executable("CHROMEDRIVER", "chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("no Chromium or chromedriver found (apt-get install chromium chromium-driver, or set CHROMIUM "
                    "and CHROMEDRIVER)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1000,700"):
        options.add_argument(argument)
    try:  # the driver given: Selenium Manager would try to download one
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    except WebDriverException as exc:
        pytest.skip(f"Chromium does not start here: {exc.msg}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


# Strokes in the pad's CSS pixels from its centre (the pad is 280x280): a 7 (a bar, then the down stroke) and
# a 0 (an upright ellipse, closed).
SEVEN = [[(-70, -90), (70, -90), (10, 20), (-20, 100)]]
ZERO = [[(round(55 * math.sin(t * math.pi / 6)), round(-90 * math.cos(t * math.pi / 6))) for t in range(13)]]


def draw(driver, strokes):
    """Each stroke as one pointer's press, moves and release on #pad (Selenium's mouse: Pointer Events)."""
    pad = driver.find_element(By.ID, "pad")
    for stroke in strokes:
        actions = ActionChains(driver, duration=20)
        actions.move_to_element_with_offset(pad, *stroke[0]).click_and_hold()
        x, y = stroke[0]
        for nx, ny in stroke[1:]:
            for k in range(1, 5):  # short steps: pointermove events along the whole stroke
                actions.move_by_offset(round(x + (nx - x) * k / 4) - round(x + (nx - x) * (k - 1) / 4),
                                       round(y + (ny - y) * k / 4) - round(y + (ny - y) * (k - 1) / 4))
            x, y = nx, ny
        actions.release().perform()


def digit_shown(driver, expected):
    try:
        WebDriverWait(driver, WAIT, poll_frequency=0.05).until(
            lambda d: d.find_element(By.ID, "digit").text == expected)
    except TimeoutException:
        pass
    return driver.find_element(By.ID, "digit").text


def test_drawn_digits_are_read_while_drawing_and_clear_empties(browser, url):
    browser.get(url)
    assert browser.find_element(By.ID, "digit").text == ""
    draw(browser, SEVEN)
    assert digit_shown(browser, "7") == "7"
    # the maps: six C1 and sixteen C3 canvases, drawn at their layers' sizes
    sizes = browser.execute_script("return [...document.querySelectorAll('#c1 canvas, #c3 canvas')]"
                                   ".map(c => [c.width, c.height])")
    assert sizes == [[28, 28]] * 6 + [[10, 10]] * 16
    bars = browser.execute_script("return [...document.querySelectorAll('#bars .bar div')]"
                                  ".map(b => parseInt(b.style.width))")
    assert bars.index(max(bars)) == 7 and max(bars) > 0
    picture = os.environ.get("LENET_FAST_PAGE_PICTURE")
    if picture:
        assert browser.save_screenshot(picture), picture
    browser.find_element(By.ID, "clear").click()
    assert digit_shown(browser, "") == ""
    draw(browser, ZERO)
    assert digit_shown(browser, "0") == "0"
