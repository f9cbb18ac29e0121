"""The shell walk that watches consumer.py's workers inside a container (grader/programs.py),
run here with sh on this machine's /proc: a pid file that appears late is waited for."""

import subprocess
import time

from grader.programs import WALK_SCRIPT


def test_the_walk_waits_for_a_pid_file_written_late_and_sees_the_workers(tmp_path):
    pid_file = tmp_path / "consumer.pid"
    script = WALK_SCRIPT.replace("PIDFILE", str(pid_file)).replace("INTERVAL", "0.1")
    # A stand-in consumer.py: a shell with one worker process under it.
    consumer = subprocess.Popen(["sh", "-c", "sleep 30 & wait"])
    walk = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # the walk starts before the program's docker exec wrote its pid
        pid_file.write_text(f"{consumer.pid}\n")
        lines = []
        for line in walk.stdout:
            lines.append(line.strip())
            if lines.count("-") == 3:
                break
    finally:
        walk.kill()
        subprocess.run(["pkill", "-P", str(consumer.pid)], check=False)  # its sleep
        consumer.kill()
        consumer.wait()
    workers = {line.split()[1] for line in lines if line.startswith("p ")}
    assert len(workers) == 1, lines
    assert not [line for line in lines if line.startswith("t ")], lines  # no bogus threads
