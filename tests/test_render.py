"""explorer.render: one worker thread, latest-wins, stale results dropped, clean shutdown."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import nvp_core as nc
from explorer.render import Cancelled, Renderer, describe_error


@pytest.fixture
def renderer(qtbot):
    r = Renderer()
    yield r
    r.shutdown()
    assert r._worker.isFinished()


def _wait_idle(qtbot, r: Renderer) -> None:
    qtbot.waitUntil(lambda: not r.busy, timeout=10000)


def test_result_comes_back_with_its_stamp(qtbot, renderer):
    got = []
    renderer.result.connect(lambda key, stamp, value: got.append((key, stamp, value)))
    seen = []
    stamp = renderer.submit("k", lambda job: np.full((2, 2, 3), 7, np.uint8), on_result=seen.append)
    _wait_idle(qtbot, renderer)
    assert len(got) == 1 and got[0][0] == "k" and got[0][1] == stamp
    assert seen[0].dtype == np.uint8 and seen[0][0, 0, 0] == 7


def test_runs_off_the_gui_thread(qtbot, renderer):
    threads = []
    renderer.submit("k", lambda job: threads.append(threading.get_ident()))
    _wait_idle(qtbot, renderer)
    assert threads and threads[0] != threading.get_ident()


def test_newer_request_replaces_pending_one(qtbot, renderer):
    gate = threading.Event()
    ran, shown = [], []
    renderer.submit("block", lambda job: gate.wait(5))
    for i in range(10):  # a slider drag while the worker is busy
        renderer.submit("frame", lambda job, i=i: ran.append(i) or i, on_result=shown.append)
    gate.set()
    _wait_idle(qtbot, renderer)
    assert ran == [9] and shown == [9]


def test_results_arrive_in_order_while_dragging(qtbot, renderer):
    """Every finished frame newer than the one shown is shown: the view follows the drag."""
    shown = []
    for i in range(5):
        renderer.submit("frame", lambda job, i=i: i, on_result=shown.append)
        qtbot.wait(5)
    _wait_idle(qtbot, renderer)
    assert shown == sorted(shown) and shown[-1] == 4


def test_cancel_drops_a_result_in_flight(qtbot, renderer):
    started, gate = threading.Event(), threading.Event()
    shown = []

    def slow(job):
        started.set()
        gate.wait(5)
        return "old"

    renderer.submit("k", slow, on_result=shown.append)
    assert started.wait(5)
    renderer.cancel("k")
    gate.set()
    _wait_idle(qtbot, renderer)
    assert shown == []
    renderer.submit("k", lambda job: "new", on_result=shown.append)
    _wait_idle(qtbot, renderer)
    assert shown == ["new"]


def test_superseded_long_task_stops_at_its_next_report(qtbot, renderer):
    started = threading.Event()
    steps = []

    def long(job):
        started.set()
        for i in range(200):
            job.report(i / 200)
            steps.append(i)
            threading.Event().wait(0.01)
        return "long"

    shown = []
    renderer.submit("grid", long, on_result=shown.append)
    assert started.wait(5)
    renderer.submit("grid", lambda job: "short", on_result=shown.append)
    _wait_idle(qtbot, renderer)
    assert shown == ["short"] and len(steps) < 200


def test_errors_become_messages(qtbot, renderer):
    errors = []
    renderer.submit("a", lambda job: (_ for _ in ()).throw(nc.ShapeError("side must be a multiple of 4")),
                    on_error=errors.append)
    renderer.submit("b", lambda job: {}["missing"], on_error=errors.append)
    renderer.submit("c", lambda job: (_ for _ in ()).throw(MemoryError()), on_error=errors.append)
    _wait_idle(qtbot, renderer)
    assert errors[0] == "side must be a multiple of 4"
    assert errors[1].startswith("KeyError")
    assert "out of memory" in errors[2]
    assert "disk full" in describe_error(OSError(28, "No space left on device", "/x.png"))


def test_non_replacing_requests_all_run(qtbot, renderer):
    done = []
    for i in range(4):
        renderer.submit("encode", lambda job, i=i: i, on_result=done.append, replace=False)
    _wait_idle(qtbot, renderer)
    assert done == [0, 1, 2, 3]


def test_progress_and_busy_signals(qtbot, renderer):
    busy, progress = [], []
    renderer.busy_changed.connect(busy.append)

    def work(job):
        for i in range(3):
            job.report((i + 1) / 3, "step")
            threading.Event().wait(0.06)
        return 1

    renderer.submit("p", work, on_progress=lambda f, t: progress.append(f))
    _wait_idle(qtbot, renderer)
    assert busy == [True, False]
    assert progress and progress[-1] == pytest.approx(1.0)


def test_shutdown_cancels_running_work(qtbot):
    r = Renderer()
    started = threading.Event()

    def forever(job):
        started.set()
        while True:
            job.report(0.5)
            threading.Event().wait(0.01)

    r.submit("k", forever)
    assert started.wait(5)
    r.shutdown(timeout_ms=5000)
    assert r._worker.isFinished()
    assert r.submit("k", lambda job: 1) == -1  # closed: nothing more runs
    with pytest.raises(Cancelled):
        from explorer.render import Job

        j = Job("x", 1, lambda job: None)
        j._cancel.set()
        j.report(0.1)
