"""Registry on S3-compatible storage: a moto server on loopback, started by the tests."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import RegistryError
from core.registry.layout import MODELS
from core.registry.stores import FsspecStore, ObjectExists
from core.registry.versions import Registry
from core.testing import new_signer, push_version, write_version_dir

pytest.importorskip("moto.server", reason="moto[server] is needed for the S3 tests")
PIPELINE = new_signer("pipeline")


@pytest.fixture(scope="module")
def s3_options() -> Iterator[dict[str, Any]]:
    """A moto S3 server on 127.0.0.1 with a free port, and s3fs options pointing at it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    yield {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "skip_instance_cache": True,
    }
    server.stop()


@pytest.fixture
def s3_store(s3_options: dict[str, Any]) -> FsspecStore:
    """A fresh bucket per test."""
    import boto3

    bucket = f"kfm-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_options["client_kwargs"]["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    return FsspecStore(f"s3://{bucket}/registry", storage_options=s3_options)


def test_s3_push_list_show_verify(s3_store: FsspecStore, tmp_path: Path) -> None:
    """A version pushed to S3 is listed, shown and verified like a local one."""
    registry = Registry(s3_store, pipeline_key=PIPELINE.public_key)
    record = push_version(registry, "1.0.0", write_version_dir(tmp_path / "a"), PIPELINE)
    push_version(registry, "1.1.0", write_version_dir(tmp_path / "b", seed="b"), PIPELINE)
    assert registry.list() == ["1.0.0", "1.1.0"]
    assert registry.show("1.0.0") == record
    assert registry.verify("1.1.0").ok


def test_s3_create_is_conditional(s3_store: FsspecStore) -> None:
    """On S3 the commit marker is a conditional put: a second create of a key fails."""
    s3_store.create("climate/index/x.json", b"1")
    with pytest.raises(ObjectExists):
        s3_store.create("climate/index/x.json", b"2")
    assert s3_store.read("climate/index/x.json") == b"1"


def test_s3_second_push_refused_and_fsck(s3_store: FsspecStore, tmp_path: Path) -> None:
    """Second push is refused; uncommitted leftovers are hidden and removed by fsck."""
    registry = Registry(s3_store, pipeline_key=PIPELINE.public_key)
    push_version(registry, "1.0.0", write_version_dir(tmp_path / "a"), PIPELINE)
    with pytest.raises(RegistryError, match="written once"):
        push_version(registry, "1.0.0", write_version_dir(tmp_path / "b", seed="b"), PIPELINE)
    s3_store.create(f"{MODELS}/2.0.0/model.onnx", b"half")
    assert registry.list() == ["1.0.0"]
    assert registry.fsck().leftovers == ("2.0.0",)
    assert not s3_store.exists(f"{MODELS}/2.0.0/model.onnx")


def test_s3_missing_bucket_is_a_registry_error(s3_options: dict[str, Any]) -> None:
    """A bucket that does not exist gives a RegistryError naming the location."""
    store = FsspecStore("s3://no-such-bucket-kfm/registry", storage_options=s3_options)
    with pytest.raises(RegistryError) as info:
        store.create("climate/x", b"1")
    assert "no-such-bucket-kfm" in (info.value.file or "")
