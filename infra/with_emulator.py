#!/usr/bin/env python3
"""Runs a command with a fresh AWS emulator (moto server) on a free loopback
port, exported to it as CONNECTOR_TEST_AWS_ENDPOINT; stops the emulator after.
Usage: with_emulator.py MOTO_SERVER_PATH COMMAND [ARGS...]"""
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RESULT = re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed")


def run_and_tally(command, env) -> int:
    """Streams the command's output and closes with the totals of every
    `cargo test` binary it ran, so the last line speaks for the whole run."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    passed = failed = 0
    for line in proc.stdout:
        sys.stdout.write(line)
        m = RESULT.search(line)
        if m:
            passed += int(m.group(1))
            failed += int(m.group(2))
    rc = proc.wait()
    sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return rc


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    moto, command = sys.argv[1], sys.argv[2:]
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"moto-{port}.log"), "w")
    server = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except Exception:
                if server.poll() is not None or time.time() > deadline:
                    print(f"AWS emulator did not start (see {log.name})", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        env = dict(os.environ, CONNECTOR_TEST_AWS_ENDPOINT=endpoint)
        return run_and_tally(command, env)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
