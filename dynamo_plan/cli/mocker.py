"""``dynamo-plan mocker``: GPU-free stand-in for a Dynamo frontend and workers (OpenAI-compatible, with /metrics)."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dynamo_plan.cli.options import ProfileDirOption, StartupOption
from dynamo_plan.errors import InputError, UsageError

if TYPE_CHECKING:  # aiohttp, pandas and the simulator load slowly: imported when serving
    from dynamo_plan.adapters.virtual_state import StateStore
    from dynamo_plan.sim.mocker.server import MockerServer

app = typer.Typer(
    help="GPU-free stand-in for a Dynamo frontend and workers (OpenAI-compatible, with /metrics).",
    no_args_is_help=True,
)


@app.command("serve")
def serve(
    profile: ProfileDirOption,
    host: Annotated[
        str, typer.Option("--host", metavar="ADDR", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", help="TCP port (0: any free port).")
    ] = 8000,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="MODEL",
            help="Served model name [default: the profile's, or mock-model].",
        ),
    ] = None,
    namespace: Annotated[
        str,
        typer.Option(
            "--namespace", metavar="NAMESPACE", help="dynamo_namespace label of the metrics."
        ),
    ] = "dynamo",
    prefill_replicas: Annotated[
        int | None,
        typer.Option("--prefill-replicas", metavar="N", help="Prefill engines [default: 1]."),
    ] = None,
    decode_replicas: Annotated[
        int | None,
        typer.Option("--decode-replicas", metavar="N", help="Decode engines [default: 1]."),
    ] = None,
    virtual_state: Annotated[
        Path | None,
        typer.Option(
            "--virtual-state",
            metavar="FILE",
            help="Follow the virtual connector's state in this file.",
        ),
    ] = None,
    etcd: Annotated[
        str | None,
        typer.Option("--etcd", metavar="URL", help="Follow the virtual connector's state in etcd."),
    ] = None,
    etcd_namespace: Annotated[
        str,
        typer.Option("--etcd-namespace", metavar="NS", help="etcd keys v1/<NS>/planner/<field>."),
    ] = "default",
    startup_s: StartupOption = 0.0,
    speedup: Annotated[
        float,
        typer.Option("--speedup", metavar="FACTOR", help="Divide every latency by this factor."),
    ] = 1.0,
    default_osl: Annotated[
        int | None,
        typer.Option(
            "--default-osl",
            metavar="TOKENS",
            help="Output tokens of a request without max_tokens [default: the profile's OSL "
            "(profile.json), else 150].",
        ),
    ] = None,
) -> None:
    """Serve /v1/chat/completions, /v1/completions, /v1/models, /health and /metrics.

    Latencies follow the profile in real time (the simulator's engine model). With
    --virtual-state or --etcd the replicas follow the planner's decisions (1 + 1 until the first
    one) and each is acknowledged once its engines serve.
    """
    follow = virtual_state is not None or etcd is not None
    if virtual_state is not None and etcd is not None:
        raise UsageError("give --virtual-state FILE or --etcd URL, not both")
    if follow and (prefill_replicas is not None or decode_replicas is not None):
        raise UsageError(
            "--prefill-replicas/--decode-replicas fix the replicas; --virtual-state/--etcd "
            "follow the planner: give one or the other"
        )
    for name, v in (
        ("--prefill-replicas", prefill_replicas),
        ("--decode-replicas", decode_replicas),
    ):
        if v is not None and v < 1:  # a role with no engine never answers a request
            raise InputError(
                f"{name} must be >= 1 (a role without engines serves nothing), got {v}"
            )
    if not speedup > 0:
        raise InputError(f"--speedup must be > 0, got {speedup:g}")
    if default_osl is not None and default_osl < 1:
        raise InputError(f"--default-osl must be >= 1, got {default_osl}")
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be in 0..65535, got {port}")
    import asyncio

    from dynamo_plan.adapters.profile_files import load_profile, loaded_profile_meta
    from dynamo_plan.sim.config import SimConfig
    from dynamo_plan.sim.mocker.openai_api import DEFAULT_OSL
    from dynamo_plan.sim.mocker.server import MockerServer

    prof = load_profile(profile)
    # profile.json is read (and a corrupt one refused, exit 1) by the one reader, before serving
    meta = loaded_profile_meta(prof, profile)
    store: StateStore | None = None
    if follow:
        from dynamo_plan.connectors.virtual_store import make_store

        store = make_store(virtual_state, etcd, etcd_namespace)
        store.check(writable=True)  # refused before serving: decisions are acknowledged in it
    name = model or meta.model or "mock-model"
    if default_osl is None:
        default_osl = osl_of(meta.sla, DEFAULT_OSL)
    server = MockerServer(
        prof,
        model=name,
        namespace=namespace,
        prefill=1 if prefill_replicas is None else prefill_replicas,
        decode=1 if decode_replicas is None else decode_replicas,
        config=SimConfig(startup_s=startup_s),
        speedup=speedup,
        store=store,
        default_osl=default_osl,
    )
    asyncio.run(_run(server, host, port))


def osl_of(sla: Mapping[str, float], fallback: int) -> int:
    """The OSL a profile records (``profile.json`` ``sla.osl``, rounded, at least 1), else
    ``fallback``: ``mocker serve``'s default ``--default-osl``."""
    recorded = sla.get("osl")
    return max(1, round(recorded)) if recorded else fallback


async def _run(server: MockerServer, host: str, port: int) -> None:
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            url = await server.start(host, port)
        except OSError as e:
            raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
        typer.echo(f"mocker serving model '{server.model}' at {url}", err=False)
        await stop.wait()
    finally:
        await server.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
