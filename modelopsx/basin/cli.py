"""`modelopsx basin ...`: the local Basin emulator."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

from modelopsx.errors import UserError

_QUARANTINE_LINES = 10  # quarantined objects named one per line at start; the rest are in report.json

basin_app = typer.Typer(
    name="basin", help="Basin object storage: run the local emulator.", no_args_is_help=True
)


@basin_app.command("serve")
def serve(
    root: Path = typer.Option(..., "--root", help="Directory that holds the emulator's stores and objects."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8014, "--port", help="Port to listen on; 0 picks a free one."),
    access_key: str | None = typer.Option(
        None,
        "--access-key",
        envvar="MODELOPSX_BASIN_ACCESS_KEY",
        show_envvar=True,
        help="Require requests signed (SigV4) with this access key and --secret-key; without both keys "
        "the emulator runs with no auth at all.",
    ),
    secret_key: str | None = typer.Option(
        None,
        "--secret-key",
        envvar="MODELOPSX_BASIN_SECRET_KEY",
        show_envvar=True,
        show_default=False,
        help="Secret key for SigV4 checks.",
    ),
    read_only: bool = typer.Option(False, "--read-only", help="Answer every write with NotImplemented."),
    fail_rate: float = typer.Option(0.0, "--fail-rate", help="Fraction of requests that fail (0..1)."),
    fail_seed: int = typer.Option(0, "--fail-seed", help="Seed for the fault injector."),
    fail_kinds: str = typer.Option(
        "500,drop,truncate", "--fail-kinds", help="Comma-separated fault kinds: 500, drop, truncate."
    ),
    latency_ms: int = typer.Option(0, "--latency-ms", help="Delay added to every request (ms)."),
    max_object_size: int = typer.Option(1 << 30, "--max-object-size", help="Largest object in bytes."),
    list_cap: int = typer.Option(10_000, "--list-cap", help="Most entries one listing returns."),
    create_store: list[str] = typer.Option(
        [],
        "--create-store",
        help="Create this store (t2 address, 0x<owner>.<alias>, or a plain alias of --owner) if missing.",
    ),
    owner: str = typer.Option(
        "0x0000000000000000000000000000000000000001",
        "--owner",
        help="Owner address of stores created by a plain alias (0x<owner>.<alias>).",
    ),
    abandoned_upload_hours: float = typer.Option(
        24.0,
        "--abandoned-upload-hours",
        help="At start, remove multipart uploads started more than this many hours ago (0: all).",
    ),
) -> None:
    """Run the Basin emulator until Ctrl-C."""
    from modelopsx.basin.faults import parse_fault_kinds
    from modelopsx.basin.s3xml import S3Error
    from modelopsx.basin.server import BasinEmulator

    if (access_key is None) != (secret_key is None):
        raise UserError(
            "give both --access-key and --secret-key, or neither",
            hint="or set MODELOPSX_BASIN_ACCESS_KEY and MODELOPSX_BASIN_SECRET_KEY",
        )
    if access_key == "" or secret_key == "":
        empty = "--access-key" if access_key == "" else "--secret-key"
        raise UserError(
            f"{empty} is empty: an empty key would silently turn authentication off",
            hint="give both keys non-empty values, or leave both out to run with no auth",
        )
    if max_object_size < 1:
        raise UserError(
            f"--max-object-size must be at least 1 byte, got {max_object_size}",
            hint="e.g. --max-object-size 1073741824 (Basin's 1 GiB)",
        )
    if list_cap < 1:
        raise UserError(
            f"--list-cap must be at least 1, got {list_cap}", hint="e.g. --list-cap 10000 (Basin's cap)"
        )
    if not abandoned_upload_hours >= 0:  # also refuses NaN
        raise UserError(
            f"--abandoned-upload-hours must be 0 or more, got {abandoned_upload_hours}",
            hint="e.g. --abandoned-upload-hours 24",
        )
    if latency_ms < 0:
        raise UserError(f"--latency-ms must be 0 or more, got {latency_ms}", hint="e.g. --latency-ms 50")
    if not 0.0 <= fail_rate <= 1.0:
        raise UserError(f"--fail-rate must be between 0 and 1, got {fail_rate}", hint="e.g. --fail-rate 0.2")
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port} is not a TCP port", hint="use 1-65535, or 0 for a free port")
    try:
        kinds = parse_fault_kinds(fail_kinds)
    except ValueError as exc:
        raise UserError(str(exc), hint="e.g. --fail-kinds 500,drop") from None
    if root.exists() and not root.is_dir():
        raise UserError(
            f"--root {root} is not a directory", hint="point --root at a directory (created if missing)"
        )
    try:
        emulator = BasinEmulator(
            root,
            host=host,
            port=port,
            access_key=access_key,
            secret_key=secret_key,
            read_only=read_only,
            fail_rate=fail_rate,
            fail_seed=fail_seed,
            latency_ms=latency_ms,
            max_object_size=max_object_size,
            list_cap=list_cap,
            fault_kinds=kinds,
            owner=owner,
            abandoned_upload_age=abandoned_upload_hours * 3600,
        )
        for name in create_store:
            emulator.create_store(name)
    except S3Error as err:
        raise UserError(err.message, hint="store names look like 0x<40 hex>.<alias> or t2...") from None
    except ValueError as exc:
        raise UserError(str(exc), hint="owner addresses look like 0x followed by 40 hex digits") from None
    except OSError as exc:
        raise UserError(
            f"cannot use --root {root}: {exc.strerror}", hint="choose a writable directory"
        ) from None
    try:
        emulator.start()
    except OSError as exc:
        emulator.stop()
        raise UserError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="another process may hold the port; pick another with --port, or 0",
        ) from None
    stop = threading.Event()
    # Both stop it cleanly; SIGINT explicitly too, since a process started in the background inherits it
    # ignored and would otherwise never see Ctrl-C / `kill -INT`.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    mode = "read-only" if read_only else "read-write"
    if emulator.auth == "sigv4":
        auth = "SigV4 keys checked on every request, request time within 15 minutes"
    else:
        auth = "NO AUTH"
    typer.echo(f"Basin emulator on {emulator.endpoint} ({mode}, {auth}), data in {root.resolve()}", err=True)
    if emulator.auth == "none":
        typer.echo(
            "WARNING: no auth: any client that reaches this port can read and write every store; "
            "give --access-key and --secret-key to require signed requests",
            err=True,
        )
    quarantine = emulator.quarantine
    if quarantine.entries:
        typer.echo(f"WARNING: {quarantine.summary()}", err=True)
        for entry in quarantine.entries[:_QUARANTINE_LINES]:
            key = repr(entry.key) if entry.key is not None else "(key unknown)"
            typer.echo(f"  {entry.store} {key}: {entry.reason}", err=True)
        if len(quarantine.entries) > _QUARANTINE_LINES:
            typer.echo(f"  ... and {len(quarantine.entries) - _QUARANTINE_LINES} more", err=True)
    uploads, freed = emulator.abandoned_uploads_removed
    if uploads:
        typer.echo(
            f"removed {uploads} abandoned multipart upload(s) ({freed} bytes) older than "
            f"{abandoned_upload_hours:g} h",
            err=True,
        )
    typer.echo(emulator.endpoint, err=False)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        typer.echo(f"stopped; served {emulator.stats.requests} requests", err=True)


CLI = (basin_app,)
