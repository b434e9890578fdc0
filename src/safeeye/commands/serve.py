"""``safeeye serve``: the web workbench, with the monitor and the deletion follow-up beside it
in the same process (the embedded default; with Celery workers, turn them off here)."""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from safeeye.commands.common import actor, app_for, console
from safeeye.tempfiles import process_temp_dir
from safeeye.work import Actor

if TYPE_CHECKING:
    from safeeye.accounts import FirstAdmin
    from safeeye.app import SafeEye

log = logging.getLogger(__name__)
#: How long a clean stop waits for a background loop (a visit under way ends at its next
#: step; one that takes longer is resumed by the next monitor once its lease expires).
JOIN_SECONDS = 15.0


def welcome(safe: SafeEye) -> FirstAdmin | None:
    """On an installation without accounts: makes ``admin`` and prints its one-time
    password (once; it is changed at the first sign-in)."""
    from safeeye.accounts import ensure_first_admin

    with safe.work(Actor.system("serve")) as work:
        first = ensure_first_admin(work)
    if first is not None:
        console.print(
            f"[bold]First administrator:[/] {first.username}  "
            f"[bold]one-time password:[/] {first.password}\n"
            "  (shown only now: sign in with it and choose your own password)"
        )
    return first


def load_demo(safe: SafeEye, who: Actor) -> bool:
    """The demo data set (``safeeye demo``) on an installation without cases; False when
    there are cases already (the demo never mixes into real work)."""
    from safeeye.cases.service import list_cases
    from safeeye.demo import run_demo

    with safe.work(who, read_only=True) as work:
        if list_cases(work):
            console.print("demo: this installation has cases already; no demo data loaded")
            return False
    console.print("demo: registering the demo cases and scanning the fixture media ...")
    found = run_demo(safe, who)
    matches = sum(len(result["matches"]) for result in found["results"])
    console.print(f"demo: {len(found['results'])} files scanned, {matches} matches to review")
    return True


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch/--no-watch",
            help="Also visit due sources (the monitor), as `safeeye discover` does.",
        ),
    ] = True,
    follow_up: Annotated[
        bool,
        typer.Option(
            "--follow-up/--no-follow-up",
            help="Also send approved batches, recheck sent notices and report re-uploads "
            "(leave both to Celery workers where they run).",
        ),
    ] = True,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="Proxies whose X-Forwarded-For/-Proto are believed (comma-separated, or '*').",
        ),
    ] = "127.0.0.1",
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request line (paths may name cases).")
    ] = False,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="On an installation without cases, first load the demo cases and scan the "
            "fixture media, so the review queue has real items to try.",
        ),
    ] = False,
) -> None:
    """Serve the workbench (pages and /api/v1) until Ctrl-C or SIGTERM; sets the data dir up
    first, as `safeeye init` does, and on a new installation makes the first administrator
    and prints its one-time password."""
    import uvicorn

    from safeeye.ingest.monitor import Monitor
    from safeeye.tasks.scheduler import follow_up_in_process
    from safeeye.web.app import create_app

    safe = app_for()  # runs init: data dir, master key, schema, service keys
    # A large upload spills to a file: here, in this process's private folder (0700, removed
    # at exit), never the shared system temp dir.
    tempfile.tempdir = str(process_temp_dir(safe.settings.data_dir))
    who = actor()
    welcome(safe)
    if demo:
        load_demo(safe, who)
    stop = threading.Event()
    loops: list[threading.Thread] = []
    monitor = Monitor(safe, actor=who) if watch else None

    def start(name: str, target: Callable[..., Any], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        loops.append(thread)

    def stop_on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    # uvicorn takes these signals while it serves and hands them back to these handlers once
    # it has shut down, so the loops stop after the server (and also if it never started).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_on_signal)
    config = uvicorn.Config(
        create_app(safe),
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        access_log=access_log,
        log_level="info",
    )
    try:
        if monitor is not None:
            start("monitor", monitor.run_forever, stop)
        if follow_up:
            start("follow-up", follow_up_in_process, safe, who, stop)
        console.print(f"safeeye serves http://{host}:{port}/ ; Ctrl-C stops")
        uvicorn.Server(config).run()
    finally:
        stop.set()
        for thread in loops:
            thread.join(JOIN_SECONDS)
        busy = [thread.name for thread in loops if thread.is_alive()]
        if busy:  # its lease lets another process carry on
            log.warning("still busy at exit: %s", ", ".join(busy))
        if monitor is not None and "monitor" not in busy:
            monitor.close()
