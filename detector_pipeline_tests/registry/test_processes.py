"""Is the process that was running at a given time still running? /proc, start times, pid reuse."""

import os
import subprocess
import sys
import time

from detector_pipeline.registry.processes import started_at, still_running


def test_this_process_is_running_and_started_before_now():
    start = started_at(os.getpid())
    assert start is not None and start <= time.time()
    assert still_running(os.getpid(), time.time())


def test_a_finished_process_is_not_running():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert started_at(child.pid) is None and not still_running(child.pid, time.time())


def test_a_pid_that_now_belongs_to_a_younger_process_is_not_the_one_we_look_for():
    """The worker reported in an hour before the process that holds its pid now started."""
    assert not still_running(os.getpid(), started_at(os.getpid()) - 3600)
