"""``python -m pipelines.orchestration.server_guard PARENT_PID -m uvicorn …``: run, die with parent.

Started by :func:`pipelines.orchestration.prefect_server.guard_temporary_servers` in place of
Prefect's ``python -m uvicorn …``: a thread polls the parent pid twice a second and stops the
server (SIGTERM, then exit after 5 s) once the parent is gone; uvicorn runs in this process.

Not ``prctl(PR_SET_PDEATHSIG)``: on Linux it fires when the parent *thread* that started the
server exits, which in a threaded Prefect client can be long before the command ends.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down cleanly on SIGTERM
    time.sleep(5)
    os._exit(1)


def main(argv: list[str]) -> None:
    """Watch ``argv[0]`` (the parent pid) and run ``argv[1:]`` (``-m module args…``)."""
    parent = int(argv[0])
    if os.getppid() != parent:  # the parent died before we got here
        sys.exit(1)
    threading.Thread(target=_watch, args=(parent,), daemon=True).start()
    if argv[1:2] != ["-m"] or len(argv) < 3:
        sys.exit(f"usage: server_guard PARENT_PID -m MODULE [ARGS…], got {argv[1:]}")
    module = argv[2]
    sys.argv = [module, *argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
