"""The run-directory lock: a live holder refuses a second fit by name; a dead one's lock is taken over."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from pebr_lit.ckpt.run_lock import LOCK_NAME, RunLock, RunLockedError


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_writer_is_refused_naming_the_directory_and_the_holder(tmp_path):
    first = RunLock(tmp_path / "stage2")
    first.acquire()
    record = json.loads((tmp_path / "stage2" / LOCK_NAME).read_text())
    assert record["host"] == socket.gethostname()
    with pytest.raises(RunLockedError) as err:
        RunLock(tmp_path / "stage2").acquire()
    message = str(err.value)
    assert f"run directory {tmp_path / 'stage2'} is being written by another fit" in message
    assert f"pid {record['pid']} on host {record['host']}" in message and "\n" not in message
    first.release()
    assert not (tmp_path / "stage2" / LOCK_NAME).exists()
    again = RunLock(tmp_path / "stage2")
    again.acquire()  # free once released
    again.release()


def test_a_dead_holders_lock_is_taken_over_with_a_warning(tmp_path):
    pid = _dead_pid()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "then"}))
    lock = RunLock(tmp_path)
    with pytest.warns(UserWarning, match=rf"taking over the lock of pid {pid} on host .*no longer running"):
        lock.acquire()
    assert lock.held and json.loads((tmp_path / LOCK_NAME).read_text())["pid"] != pid
    lock.release()


def test_a_record_naming_a_live_process_or_another_host_is_believed(tmp_path):
    # the flock is free (e.g. a network mount without working flocks): the recorded holder still counts
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as live:
        try:
            (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": live.pid, "host": socket.gethostname()}))
            with pytest.raises(RunLockedError, match=rf"pid {live.pid} on host"):
                RunLock(tmp_path).acquire()
        finally:
            live.kill()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere-node-7"}))
    with pytest.raises(RunLockedError, match="pid 1 on host elsewhere-node-7"):
        RunLock(tmp_path).acquire()
