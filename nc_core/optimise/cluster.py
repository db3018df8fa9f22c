"""Where Ray runs: a local cluster on this machine, or a running cluster joined by its address.

A scan's classes (:mod:`nc_core.optimise.ray_runner`) and an audit's models
(:mod:`nc_core.audit.runner`) run as Ray tasks. :class:`RayCluster` says where, written as the
command line's ``--ray`` and the dashboard's ``NC_RAY_ADDRESS`` write it; :func:`start_ray`
starts or joins it. A local cluster listens on 127.0.0.1 only and keeps Ray's token
authentication (SECURITY.md). An address is checked before Ray is asked: Ray takes minutes to
give up on one where nothing answers, and then exits the process.

    >>> RayCluster.parse("local:2")
    RayCluster(address=None, workers=2)
    >>> print(RayCluster.parse("ray://head.internal:10001"))
    ray://head.internal:10001
    >>> RayCluster.parse("head.internal")
    Traceback (most recent call last):
    nc_core.errors.InvalidParameterError: 'head.internal' is not a Ray address: use local, local:N (a cluster of N ...

Joining a cluster needs one running, so this line does not run here:

    >>> workers = start_ray("10.0.0.5:6379", None)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from nc_core.errors import InvalidParameterError

#: Ray retries a task whose worker process died this many times (on another worker, or a new one).
TASK_RETRIES = 3
#: The object store an embedded Ray starts with (a scan puts one model and its data there).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2
#: Seconds to wait for a cluster's port to answer before telling the user it does not.
CONNECT_TIMEOUT = 5.0
RAY_ADDRESS_HELP = (
    "use local, local:N (a cluster of N workers on this machine), auto (the cluster this machine "
    "belongs to), HOST:PORT (its head, port 6379 by default) or ray://HOST:PORT (Ray Client, port 10001)"
)
_ADDRESS = re.compile(r"(?P<client>ray://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(?P<port>\d{1,5})")


@dataclass(frozen=True)
class RayCluster:
    """Where Ray tasks run: a local cluster of ``workers`` (one per core when None) on 127.0.0.1,
    or, with an ``address``, the running cluster there (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``).

    >>> RayCluster.parse("local"), str(RayCluster(workers=3))
    (RayCluster(address=None, workers=None), 'local:3')
    """

    address: str | None = None
    workers: int | None = None

    @classmethod
    def parse(cls, text: str) -> RayCluster:
        """``local``, ``local:N`` or a cluster's address, as a person types it; refused with a
        sentence when it is none of these (nothing is contacted yet)."""
        text = str(text).strip()
        if text == "local":
            return cls()
        if text.startswith("local:"):
            count = text.removeprefix("local:")
            if not count.isdigit() or not 1 <= int(count) <= 1024:
                raise InvalidParameterError(f"{text[:80]!r} asks for {count[:20]!r} workers: local:N needs N from 1.")
            return cls(workers=int(count))
        if text == "auto" or _address_parts(text) is not None:
            return cls(address=text)
        raise InvalidParameterError(f"{text[:80]!r} is not a Ray address: {RAY_ADDRESS_HELP}.")

    def __str__(self) -> str:
        if self.address is not None:
            return self.address
        return "local" if self.workers is None else f"local:{self.workers}"


def start_ray(address: str | None, workers: int | None) -> int:
    """Start a local Ray of ``workers`` CPUs (default: every core) on 127.0.0.1 when ``address`` is
    None, else join the cluster at ``address``; return how many tasks it runs at once (its CPUs).

    Raises :class:`~nc_core.errors.InvalidParameterError` with a sentence for a bad or unreachable
    address, or when Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise InvalidParameterError(
            "Ray is not installed: pip install 'neural-cleanse-dashboard[audit]' (or ray>=2.60)."
        ) from None
    if workers is not None and workers < 1:
        raise InvalidParameterError(f"Workers must be at least 1, not {workers}.")
    if address is None:
        workers = workers or os.cpu_count() or 1
        with _loopback_only():  # Ray's own token authentication stays as Ray sets it
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                ignore_reinit_error=True,
            )
        return workers
    _check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False, ignore_reinit_error=True)
    except (OSError, ValueError, RuntimeError, SystemExit) as error:  # Ray exits when the head never answers
        raise InvalidParameterError(f"Cannot join the Ray cluster at {address[:80]!r}: {_first_line(error)}") from None
    return int(ray.cluster_resources().get("CPU", 1))


def _address_parts(address: str) -> tuple[str, int] | None:
    """The host and port of ``HOST:PORT`` or ``ray://HOST:PORT``; None for anything else."""
    match = _ADDRESS.fullmatch(address)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        return None
    return match["host"].strip("[]"), int(match["port"])


def _check_reachable(address: str) -> None:
    """Refuse, within seconds, an address that is malformed or where nothing accepts a connection."""
    if address == "auto":
        return  # Ray finds this machine's cluster, or says at once that there is none
    parts = _address_parts(address)
    if parts is None:
        raise InvalidParameterError(f"{address[:80]!r} is not a Ray address: {RAY_ADDRESS_HELP}.")
    try:
        socket.create_connection(parts, timeout=CONNECT_TIMEOUT).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InvalidParameterError(
            f"Cannot reach the Ray cluster at {address[:80]!r} ({reason}): is its head running "
            "(ray start --head) and its port open to this machine?"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


@contextmanager
def _loopback_only() -> Iterator[None]:
    """Start a local Ray whose servers listen on 127.0.0.1 only, not on every interface.

    Ray resolves a node IP of 127.0.0.1 to the machine's address (``_node_ip_address`` cannot ask
    for loopback) except where it treats the machine as a single-node, Windows/macOS-style setup;
    this asks for that setup while the local cluster starts. Joining a cluster is unaffected.
    """
    import ray._private.ray_constants as constants

    previous, variable = constants.ENABLE_RAY_CLUSTER, os.environ.get(constants.ENABLE_RAY_CLUSTERS_ENV_VAR)
    constants.ENABLE_RAY_CLUSTER = False
    os.environ[constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = previous
        if variable is None:
            os.environ.pop(constants.ENABLE_RAY_CLUSTERS_ENV_VAR, None)
        else:
            os.environ[constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = variable
