"""Where Ray runs, as a person writes it: local, local:N or a cluster's address; a bad or unreachable
address is refused with a sentence, within seconds, before Ray is asked."""

from __future__ import annotations

import socket

import pytest

from nc_core.errors import InvalidParameterError
from nc_core.optimise.cluster import RayCluster, start_ray


@pytest.mark.parametrize(
    ("text", "cluster"),
    [
        ("local", RayCluster()),
        ("local:3", RayCluster(workers=3)),
        ("auto", RayCluster(address="auto")),
        ("127.0.0.1:6379", RayCluster(address="127.0.0.1:6379")),
        ("head-node.internal:6379", RayCluster(address="head-node.internal:6379")),
        ("ray://10.0.0.5:10001", RayCluster(address="ray://10.0.0.5:10001")),
        ("[fd00::5]:6379", RayCluster(address="[fd00::5]:6379")),
    ],
)
def test_where_ray_runs_reads_as_it_is_written(text, cluster):
    assert RayCluster.parse(text) == cluster and str(cluster) == text


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("local:0", "local:N needs N from 1"),
        ("local:two", "local:N needs N from 1"),
        ("head-node", "is not a Ray address"),
        ("http://head:8265", "is not a Ray address"),
        ("head:99999", "is not a Ray address"),
        ("", "is not a Ray address"),
    ],
)
def test_a_bad_ray_address_is_refused_with_a_sentence(text, sentence):
    with pytest.raises(InvalidParameterError, match=sentence):
        RayCluster.parse(text)


def test_an_address_where_nothing_listens_is_refused_before_ray_is_asked():
    """Ray itself waits minutes on such an address and then exits the process."""
    ray = pytest.importorskip("ray")
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(InvalidParameterError, match="Cannot reach the Ray cluster at '127.0.0.1:"):
        start_ray(f"127.0.0.1:{port}", None)
    assert not ray.is_initialized()
