"""Basin semantics through raw boto3 (path-style) against the emulator on loopback."""

from __future__ import annotations

import os
import threading

import pytest
from botocore.exceptions import ClientError

from modelopsx.storage.cid import cid_of_bytes
from tests.fixtures_basin import BASIN_STORE, s3_client, start_emulator

OWNER = "0x" + "ab" * 20


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


@pytest.mark.parametrize(
    "name",
    [
        "t2" + "a" * 39,
        "t2" + "abcdefghijklmnopqrstuvwxyz234567abcdefghi",  # 41 chars after t2
        f"{OWNER}.abc",
        f"{OWNER}.my-store.v2",
        "0x" + "AB" * 20 + ".mixedcaseowner",
    ],
)
def test_create_bucket_accepts_basin_store_names(basin_s3, name: str) -> None:
    basin_s3.create_bucket(Bucket=name)
    basin_s3.head_bucket(Bucket=name)
    assert name in {b["Name"] for b in basin_s3.list_buckets()["Buckets"]}


@pytest.mark.parametrize(
    "name",
    [
        "My_Bucket",
        "ab",  # a plain alias is 3-20 chars
        "a" * 21,
        "t2" + "a" * 37,  # too short
        "t2" + "a" * 42,  # too long
        "t2" + "a" * 38 + "1",  # 1 is not base32
        f"{OWNER}.ab",  # alias too short
        f"{OWNER}." + "a" * 21,  # alias too long
        f"{OWNER}.Upper",
        "0x" + "ab" * 19 + ".alias",  # owner too short
        "0x" + "zz" * 20 + ".alias",
    ],
)
def test_create_bucket_rejects_other_names(basin_s3, name: str) -> None:
    with pytest.raises(ClientError) as exc:
        basin_s3.create_bucket(Bucket=name)
    assert _code(exc) == "InvalidBucketName" and _status(exc) == 400
    assert "0x<40 hex owner>.<alias>" in exc.value.response["Error"]["Message"]


def test_duplicate_store_is_bucket_already_exists(basin_s3) -> None:
    with pytest.raises(ClientError) as exc:
        basin_s3.create_bucket(Bucket=BASIN_STORE)
    assert _code(exc) == "BucketAlreadyExists" and _status(exc) == 409


def test_unknown_store(basin_s3) -> None:
    missing = f"{OWNER}.missing"
    with pytest.raises(ClientError) as exc:
        basin_s3.head_bucket(Bucket=missing)
    assert _status(exc) == 404
    with pytest.raises(ClientError) as exc:
        basin_s3.put_object(Bucket=missing, Key="a", Body=b"x")
    assert _code(exc) == "NoSuchBucket"
    with pytest.raises(ClientError) as exc:
        basin_s3.list_objects_v2(Bucket=missing)
    assert _code(exc) == "NoSuchBucket"


def test_bucket_location_is_us_east_1(basin_s3) -> None:
    assert basin_s3.get_bucket_location(Bucket=BASIN_STORE)["LocationConstraint"] == "us-east-1"


def test_put_get_head_carry_the_cid(basin_s3) -> None:
    body = b"pedestrians crossing\n" * 100
    cid = cid_of_bytes(body)
    put = basin_s3.put_object(
        Bucket=BASIN_STORE,
        Key="data/a.txt",
        Body=body,
        ContentType="text/plain",
        Metadata={"source": "synthetic", "cid": cid},
    )
    assert put["ETag"] == f'"{cid}"'
    got = basin_s3.get_object(Bucket=BASIN_STORE, Key="data/a.txt")
    assert got["Body"].read() == body
    assert got["ETag"] == f'"{cid}"'
    assert got["Metadata"] == {"source": "synthetic", "cid": cid}
    assert got["ContentType"] == "text/plain" and got["ContentLength"] == len(body)
    head = basin_s3.head_object(Bucket=BASIN_STORE, Key="data/a.txt")
    assert head["Metadata"] == {}  # Basin: HEAD has no user metadata
    assert head["ETag"] == f'"{cid}"' and head["ContentLength"] == len(body)


def test_cid_is_computed_when_not_declared(basin_s3) -> None:
    basin_s3.put_object(Bucket=BASIN_STORE, Key="k", Body=b"hello")
    got = basin_s3.get_object(Bucket=BASIN_STORE, Key="k")
    assert got["Metadata"]["cid"] == cid_of_bytes(b"hello")


def test_declared_cid_mismatch_is_bad_digest_and_stores_nothing(basin_emulator) -> None:
    s3 = s3_client(basin_emulator.endpoint, max_attempts=1)  # botocore retries BadDigest (transit corruption)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=BASIN_STORE, Key="k", Body=b"hello", Metadata={"cid": cid_of_bytes(b"other")})
    assert _code(exc) == "BadDigest" and _status(exc) == 400
    assert cid_of_bytes(b"hello") in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=BASIN_STORE, Key="k", Body=b"hello", Metadata={"cid": "not-a-cid"})
    assert _code(exc) == "InvalidArgument"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=BASIN_STORE, Key="k")
    assert _status(exc) == 404


def test_objects_are_immutable(basin_s3) -> None:
    basin_s3.put_object(Bucket=BASIN_STORE, Key="model/v1.json", Body=b"first")
    with pytest.raises(ClientError) as exc:
        basin_s3.put_object(Bucket=BASIN_STORE, Key="model/v1.json", Body=b"second")
    assert _code(exc) == "KeyExists" and _status(exc) == 409
    assert "key exists" in exc.value.response["Error"]["Message"]
    assert basin_s3.get_object(Bucket=BASIN_STORE, Key="model/v1.json")["Body"].read() == b"first"


def test_if_none_match_star_on_a_stored_key_is_412_as_s3_answers(basin_s3) -> None:
    basin_s3.put_object(Bucket=BASIN_STORE, Key="model/v1.json", Body=b"first")
    with pytest.raises(ClientError) as exc:
        basin_s3.put_object(Bucket=BASIN_STORE, Key="model/v1.json", Body=b"second", IfNoneMatch="*")
    assert _code(exc) == "PreconditionFailed" and _status(exc) == 412
    assert "already stored" in exc.value.response["Error"]["Message"]
    upload = basin_s3.create_multipart_upload(Bucket=BASIN_STORE, Key="big")["UploadId"]
    sent = basin_s3.upload_part(Bucket=BASIN_STORE, Key="big", UploadId=upload, PartNumber=1, Body=b"b")
    basin_s3.put_object(Bucket=BASIN_STORE, Key="big", Body=b"first")
    with pytest.raises(ClientError) as exc:
        basin_s3.complete_multipart_upload(
            Bucket=BASIN_STORE,
            Key="big",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": sent["ETag"]}]},
            IfNoneMatch="*",
        )
    assert _code(exc) == "PreconditionFailed" and _status(exc) == 412
    assert basin_s3.get_object(Bucket=BASIN_STORE, Key="model/v1.json")["Body"].read() == b"first"
    assert basin_s3.get_object(Bucket=BASIN_STORE, Key="big")["Body"].read() == b"first"


def test_if_none_match_creates_absent_key(basin_s3) -> None:
    basin_s3.put_object(Bucket=BASIN_STORE, Key="fresh", Body=b"x", IfNoneMatch="*")
    assert basin_s3.get_object(Bucket=BASIN_STORE, Key="fresh")["Body"].read() == b"x"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=2-5", 2, 5),
        ("bytes=0-0", 0, 0),
        ("bytes=7-", 7, 9),
        ("bytes=-3", 7, 9),
        ("bytes=8-100", 8, 9),  # an end past the object is clipped
    ],
)
def test_range_reads(basin_s3, header: str, start: int, end: int) -> None:
    body = b"0123456789"
    basin_s3.put_object(Bucket=BASIN_STORE, Key="r", Body=body)
    got = basin_s3.get_object(Bucket=BASIN_STORE, Key="r", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {start}-{end}/10"
    assert got["Body"].read() == body[start : end + 1]


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=10-20", "bytes=-0"])
def test_unsatisfiable_range_is_416(basin_s3, header: str) -> None:
    basin_s3.put_object(Bucket=BASIN_STORE, Key="r", Body=b"0123456789")
    with pytest.raises(ClientError) as exc:
        basin_s3.get_object(Bucket=BASIN_STORE, Key="r", Range=header)
    assert _status(exc) == 416 and _code(exc) == "InvalidRange"


def test_get_missing_key_is_no_such_key(basin_s3) -> None:
    with pytest.raises(ClientError) as exc:
        basin_s3.get_object(Bucket=BASIN_STORE, Key="absent")
    assert _code(exc) == "NoSuchKey" and _status(exc) == 404


def test_delete_and_delete_missing(basin_s3) -> None:
    basin_s3.put_object(Bucket=BASIN_STORE, Key="d", Body=b"x")
    resp = basin_s3.delete_object(Bucket=BASIN_STORE, Key="d")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        basin_s3.head_object(Bucket=BASIN_STORE, Key="d")
    assert _status(exc) == 404
    with pytest.raises(ClientError) as exc:  # unlike AWS, deleting a missing key fails
        basin_s3.delete_object(Bucket=BASIN_STORE, Key="d")
    assert _code(exc) == "NoSuchKey" and _status(exc) == 404


def _put_many(s3, keys: list[str]) -> None:
    for key in keys:
        s3.put_object(Bucket=BASIN_STORE, Key=key, Body=key.encode())


def test_listing_prefix_delimiter_and_unordered(basin_s3) -> None:
    keys = [f"ds/train/{i:03d}.jpg" for i in range(30)] + ["ds/annotations.json", "ds/val/x.jpg", "other"]
    _put_many(basin_s3, keys)
    for list_call in (basin_s3.list_objects_v2, basin_s3.list_objects):
        flat = list_call(Bucket=BASIN_STORE, Prefix="ds/train/")
        listed = [o["Key"] for o in flat["Contents"]]
        assert sorted(listed) == sorted(k for k in keys if k.startswith("ds/train/"))
        assert listed != sorted(listed)  # Basin: no lexicographic order, clients must sort
        assert flat["IsTruncated"] is False and "NextContinuationToken" not in flat
        assert all(o["ETag"] == f'"{cid_of_bytes(o["Key"].encode())}"' for o in flat["Contents"])
        tree = list_call(Bucket=BASIN_STORE, Prefix="ds/", Delimiter="/")
        assert [o["Key"] for o in tree["Contents"]] == ["ds/annotations.json"]
        assert sorted(p["Prefix"] for p in tree["CommonPrefixes"]) == ["ds/train/", "ds/val/"]
    again = [o["Key"] for o in basin_s3.list_objects_v2(Bucket=BASIN_STORE, Prefix="ds/train/")["Contents"]]
    assert again == listed  # the order is stable, just not sorted


def test_listing_keys_with_special_characters(basin_s3) -> None:
    keys = ["a b/c+d.txt", "a b/ü.txt", "a b/x%20y"]
    _put_many(basin_s3, keys)
    listed = basin_s3.list_objects_v2(Bucket=BASIN_STORE, Prefix="a b/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(keys)
    for key in keys:
        assert basin_s3.get_object(Bucket=BASIN_STORE, Key=key)["Body"].read() == key.encode()


def test_list_cap_returns_exactly_cap_without_pagination(tmp_path) -> None:
    emulator = start_emulator(tmp_path / "basin", list_cap=25)
    try:
        s3 = s3_client(emulator.endpoint)
        _put_many(s3, [f"shard-{i % 2}/{i:03d}" for i in range(40)])
        for call in (s3.list_objects_v2, s3.list_objects):
            page = call(Bucket=BASIN_STORE)
            assert len(page["Contents"]) == 25
            assert page["IsTruncated"] is False and "NextContinuationToken" not in page
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=BASIN_STORE))
        assert sum(len(p["Contents"]) for p in pages) == 25  # no hidden second page
        # sharding the prefix stays under the cap and sees everything
        shards = [s3.list_objects_v2(Bucket=BASIN_STORE, Prefix=f"shard-{s}/")["Contents"] for s in (0, 1)]
        assert sum(len(s) for s in shards) == 40
    finally:
        emulator.stop()


def test_concurrent_put_if_absent_has_exactly_one_winner(basin_emulator) -> None:
    n = 8
    barrier = threading.Barrier(n)
    results: dict[int, str] = {}

    def attempt(i: int) -> None:
        s3 = s3_client(basin_emulator.endpoint)
        barrier.wait()
        try:
            s3.put_object(
                Bucket=BASIN_STORE,
                Key="registry/models/m/00000001.json",
                Body=f"writer {i}".encode(),
                IfNoneMatch="*",
            )
            results[i] = "won"
        except ClientError as exc:
            results[i] = exc.response["Error"]["Code"]

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, r in results.items() if r == "won"]
    assert len(winners) == 1
    assert sorted(r for r in results.values() if r != "won") == ["PreconditionFailed"] * (n - 1)
    body = (
        s3_client(basin_emulator.endpoint)
        .get_object(Bucket=BASIN_STORE, Key="registry/models/m/00000001.json")["Body"]
        .read()
    )
    assert body == f"writer {winners[0]}".encode()


def test_max_object_size_is_413_with_clear_message(tmp_path) -> None:
    emulator = start_emulator(tmp_path / "basin", max_object_size=1000)
    try:
        s3 = s3_client(emulator.endpoint)
        s3.put_object(Bucket=BASIN_STORE, Key="fits", Body=b"x" * 1000)
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=BASIN_STORE, Key="big", Body=b"x" * 1001)
        assert _code(exc) == "EntityTooLarge" and _status(exc) == 413
        assert "exceeds Basin's object size limit" in exc.value.response["Error"]["Message"]
        with pytest.raises(ClientError):
            s3.head_object(Bucket=BASIN_STORE, Key="big")
    finally:
        emulator.stop()


def test_read_only_answers_writes_with_not_implemented(tmp_path) -> None:
    root = tmp_path / "basin"
    writer = start_emulator(root)
    s3 = s3_client(writer.endpoint)
    s3.put_object(Bucket=BASIN_STORE, Key="kept", Body=b"stored before")
    writer.stop()
    reader = start_emulator(root, create_store=None, read_only=True)
    try:
        s3 = s3_client(reader.endpoint)
        calls = [
            lambda: s3.put_object(Bucket=BASIN_STORE, Key="new", Body=b"x"),
            lambda: s3.delete_object(Bucket=BASIN_STORE, Key="kept"),
            lambda: s3.create_bucket(Bucket=f"{OWNER}.another"),
            lambda: s3.create_multipart_upload(Bucket=BASIN_STORE, Key="mpu"),
        ]
        for call in calls:
            with pytest.raises(ClientError) as exc:
                call()
            assert _code(exc) == "NotImplemented" and _status(exc) == 501
        assert s3.get_object(Bucket=BASIN_STORE, Key="kept")["Body"].read() == b"stored before"
    finally:
        reader.stop()


def test_data_survives_restart(tmp_path) -> None:
    root = tmp_path / "basin"
    first = start_emulator(root)
    s3 = s3_client(first.endpoint)
    s3.put_object(Bucket=BASIN_STORE, Key="a/1", Body=b"one", Metadata={"k": "v"}, ContentType="text/plain")
    s3.put_object(Bucket=BASIN_STORE, Key="a/2", Body=b"two")
    s3.put_object(Bucket=BASIN_STORE, Key="gone", Body=b"x")
    s3.delete_object(Bucket=BASIN_STORE, Key="gone")
    first.stop()
    second = start_emulator(root, create_store=None)
    try:
        s3 = s3_client(second.endpoint)
        got = s3.get_object(Bucket=BASIN_STORE, Key="a/1")
        assert got["Body"].read() == b"one" and got["Metadata"]["k"] == "v"
        assert got["ContentType"] == "text/plain"
        assert got["Metadata"]["cid"] == cid_of_bytes(b"one")
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BASIN_STORE)["Contents"])
        assert keys == ["a/1", "a/2"]
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=BASIN_STORE, Key="a/2", Body=b"overwrite?")
        assert _code(exc) == "KeyExists"
        with pytest.raises(ClientError) as exc:
            s3.create_bucket(Bucket=BASIN_STORE)
        assert _code(exc) == "BucketAlreadyExists"
    finally:
        second.stop()


def test_unsupported_operation_is_not_implemented(basin_s3) -> None:
    basin_s3.put_object(Bucket=BASIN_STORE, Key="src", Body=b"x")
    with pytest.raises(ClientError) as exc:
        basin_s3.copy_object(Bucket=BASIN_STORE, Key="dst", CopySource={"Bucket": BASIN_STORE, "Key": "src"})
    assert _code(exc) == "NotImplemented"
    with pytest.raises(ClientError) as exc:
        basin_s3.get_bucket_versioning(Bucket=BASIN_STORE)
    assert _code(exc) == "NotImplemented"


def test_key_longer_than_1024_bytes_is_rejected(basin_s3) -> None:
    with pytest.raises(ClientError) as exc:
        basin_s3.put_object(Bucket=BASIN_STORE, Key="k" * 1025, Body=b"x")
    assert _code(exc) == "KeyTooLongError"
    basin_s3.put_object(Bucket=BASIN_STORE, Key="k" * 1024, Body=b"x")


def test_restart_clears_debris_of_a_crash_but_keeps_objects(tmp_path) -> None:
    root = tmp_path / "basin"
    first = start_emulator(root)
    s3_client(first.endpoint).put_object(Bucket=BASIN_STORE, Key="kept", Body=b"kept")
    first.stop()
    objects = root / "buckets" / BASIN_STORE / "objects"
    shard = next(objects.iterdir())
    orphan = shard / ("0" * 64 + ".deadbeef.data")  # data renamed in, sidecar never linked
    orphan.write_bytes(b"half an upload")
    (root / "tmp" / "cut-off.part").write_bytes(b"partial body")
    second = start_emulator(root, create_store=None)
    try:
        assert not orphan.exists() and not list((root / "tmp").iterdir())
        (moved,) = second.quarantine.entries  # data no record names is set aside, not deleted
        assert (second.quarantine.folder / moved.files[0]).read_bytes() == b"half an upload"
        s3 = s3_client(second.endpoint)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=BASIN_STORE)["Contents"]] == ["kept"]
        assert s3.get_object(Bucket=BASIN_STORE, Key="kept")["Body"].read() == b"kept"
    finally:
        second.stop()


def test_bit_rot_on_disk_is_caught_by_the_client_cid_check(basin_emulator, basin_s3) -> None:
    from modelopsx.errors import IntegrityError
    from modelopsx.storage.cid import verify_cid

    basin_s3.put_object(Bucket=BASIN_STORE, Key="rotten", Body=b"good bytes")
    (data_file,) = (basin_emulator.root / "buckets" / BASIN_STORE / "objects").glob("*/*.data")
    data_file.write_bytes(b"bad! bytes")  # same size, different content
    got = basin_s3.get_object(Bucket=BASIN_STORE, Key="rotten")
    body = got["Body"].read()
    assert got["Metadata"]["cid"] == cid_of_bytes(b"good bytes")  # the CID recorded at write time
    with pytest.raises(IntegrityError):
        verify_cid(body, got["Metadata"]["cid"])


@pytest.mark.parametrize("key", ["../../outside.txt", "/leading/slash", "a/./b/../c", "..", "%2e%2e/x"])
def test_path_like_keys_stay_inside_the_root(basin_emulator, basin_s3, key: str) -> None:
    basin_s3.put_object(Bucket=BASIN_STORE, Key=key, Body=b"opaque key")
    assert basin_s3.get_object(Bucket=BASIN_STORE, Key=key)["Body"].read() == b"opaque key"
    root = basin_emulator.root
    outside = [p for p in root.parent.rglob("*") if root not in p.parents and p != root]
    assert outside == []  # nothing written beside the emulator's root
    listed = [o["Key"] for o in basin_s3.list_objects_v2(Bucket=BASIN_STORE)["Contents"]]
    assert listed == [key]


def test_conditional_gets(basin_s3) -> None:
    """s3transfer sends If-Match with the ETag on every ranged part of a multipart download."""
    basin_s3.put_object(Bucket=BASIN_STORE, Key="c", Body=b"conditional")
    etag = f'"{cid_of_bytes(b"conditional")}"'
    got = basin_s3.get_object(Bucket=BASIN_STORE, Key="c", IfMatch=etag, Range="bytes=0-3")
    assert got["Body"].read() == b"cond"
    with pytest.raises(ClientError) as exc:
        basin_s3.get_object(Bucket=BASIN_STORE, Key="c", IfMatch=f'"{cid_of_bytes(b"changed")}"')
    assert _status(exc) == 412 and _code(exc) == "PreconditionFailed"
    with pytest.raises(ClientError) as exc:
        basin_s3.get_object(Bucket=BASIN_STORE, Key="c", IfNoneMatch=etag)
    assert _status(exc) == 304


def test_create_bucket_with_a_plain_alias_names_the_owners_store(tmp_path) -> None:
    emulator = start_emulator(tmp_path / "basin", create_store=None)
    try:
        s3 = s3_client(emulator.endpoint)
        s3.create_bucket(Bucket="modelopsx")  # as Basin's own boto3 examples do
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BASIN_STORE]
        s3.put_object(Bucket="modelopsx", Key="k", Body=b"by alias")
        assert s3.get_object(Bucket=BASIN_STORE, Key="k")["Body"].read() == b"by alias"
        with pytest.raises(ClientError) as exc:
            s3.create_bucket(Bucket="modelopsx")
        assert _code(exc) == "BucketAlreadyExists"
    finally:
        emulator.stop()


def _abandon_upload(s3, key: str) -> str:
    upload = s3.create_multipart_upload(Bucket=BASIN_STORE, Key=key)["UploadId"]
    s3.upload_part(Bucket=BASIN_STORE, Key=key, UploadId=upload, PartNumber=1, Body=b"p" * 1000)
    return str(upload)


def test_abandoned_multipart_uploads_are_listable_and_abortable(basin_s3) -> None:
    first = _abandon_upload(basin_s3, "models/a.bin")
    second = _abandon_upload(basin_s3, "other/b.bin")
    listed = basin_s3.list_multipart_uploads(Bucket=BASIN_STORE)["Uploads"]
    assert {(u["Key"], u["UploadId"]) for u in listed} == {("models/a.bin", first), ("other/b.bin", second)}
    only = basin_s3.list_multipart_uploads(Bucket=BASIN_STORE, Prefix="models/")["Uploads"]
    assert [u["UploadId"] for u in only] == [first]
    for upload in listed:
        basin_s3.abort_multipart_upload(Bucket=BASIN_STORE, Key=upload["Key"], UploadId=upload["UploadId"])
    assert "Uploads" not in basin_s3.list_multipart_uploads(Bucket=BASIN_STORE)


def test_abandoned_uploads_are_cleaned_at_start_after_their_age(tmp_path) -> None:
    root = tmp_path / "basin"
    first = start_emulator(root)
    _abandon_upload(s3_client(first.endpoint), "crashed.bin")
    first.stop()  # as if the client died: the upload is never completed nor aborted
    young = start_emulator(root, create_store=None)  # default age (a day): a fresh upload is kept
    try:
        assert len(s3_client(young.endpoint).list_multipart_uploads(Bucket=BASIN_STORE)["Uploads"]) == 1
    finally:
        young.stop()
    cleaned = start_emulator(root, create_store=None, abandoned_upload_age=0)
    try:
        assert cleaned.abandoned_uploads_removed[0] == 1 and cleaned.abandoned_uploads_removed[1] >= 1000
        assert "Uploads" not in s3_client(cleaned.endpoint).list_multipart_uploads(Bucket=BASIN_STORE)
        assert not list((root / "uploads").iterdir())
    finally:
        cleaned.stop()


def _sidecar(root, key: str):
    import hashlib

    kh = hashlib.sha256(key.encode()).hexdigest()
    return root / "buckets" / BASIN_STORE / "objects" / kh[:2] / f"{kh}.json"


def test_a_torn_record_is_quarantined_at_start_and_its_key_is_written_again(tmp_path) -> None:
    root = tmp_path / "basin"
    first = start_emulator(root)
    s3 = s3_client(first.endpoint)
    for key in ("torn", "emptied", "kept"):
        s3.put_object(Bucket=BASIN_STORE, Key=key, Body=f"{key} bytes".encode())
    first.stop()
    torn = _sidecar(root, "torn")
    torn.write_bytes(torn.read_bytes()[:20])  # a crash mid-write on a filesystem without data journaling
    _sidecar(root, "emptied").write_text("{}")
    second = start_emulator(root, create_store=None)  # starts: neither record stops it
    try:
        s3 = s3_client(second.endpoint, max_attempts=1)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=BASIN_STORE)["Contents"]] == ["kept"]
        entries = second.quarantine.entries
        assert len(entries) == 2
        assert second.quarantine.data_bytes == len(b"torn bytes") + len(b"emptied bytes")
        moved = [second.quarantine.folder / f for e in entries for f in e.files]
        kept_data = sorted(p.read_bytes() for p in moved if p.suffix == ".data")
        assert kept_data == [b"emptied bytes", b"torn bytes"]  # nothing deleted
        for key in ("torn", "emptied"):
            for call in (s3.get_object, s3.head_object, s3.delete_object):
                with pytest.raises(ClientError) as exc:
                    call(Bucket=BASIN_STORE, Key=key)
                assert _status(exc) == 404, (key, call)
            s3.put_object(Bucket=BASIN_STORE, Key=key, Body=b"written again")
            assert s3.get_object(Bucket=BASIN_STORE, Key=key)["Body"].read() == b"written again"
        assert s3.get_object(Bucket=BASIN_STORE, Key="kept")["Body"].read() == b"kept bytes"
    finally:
        second.stop()


def test_head_with_a_matching_if_none_match_is_304(basin_s3) -> None:
    basin_s3.put_object(Bucket=BASIN_STORE, Key="h", Body=b"cached")
    etag = f'"{cid_of_bytes(b"cached")}"'
    for value in (etag, "*"):
        with pytest.raises(ClientError) as exc:
            basin_s3.head_object(Bucket=BASIN_STORE, Key="h", IfNoneMatch=value)
        assert _status(exc) == 304
    other = f'"{cid_of_bytes(b"other")}"'
    assert basin_s3.head_object(Bucket=BASIN_STORE, Key="h", IfNoneMatch=other)["ContentLength"] == 6
    with pytest.raises(ClientError) as exc:
        basin_s3.head_object(Bucket=BASIN_STORE, Key="h", IfMatch=other)
    assert _status(exc) == 412


def test_list_parts_pages_through_an_upload_in_progress(basin_s3) -> None:
    upload = basin_s3.create_multipart_upload(Bucket=BASIN_STORE, Key="resume")["UploadId"]
    sent = {}
    for number in (1, 2, 4):
        body = bytes([number]) * (100 * number)
        etag = basin_s3.upload_part(
            Bucket=BASIN_STORE, Key="resume", UploadId=upload, PartNumber=number, Body=body
        )["ETag"]
        sent[number] = (etag, len(body))
    listed = basin_s3.list_parts(Bucket=BASIN_STORE, Key="resume", UploadId=upload)
    assert {p["PartNumber"]: (p["ETag"], p["Size"]) for p in listed["Parts"]} == sent
    assert listed["IsTruncated"] is False
    paged = basin_s3.get_paginator("list_parts").paginate(
        Bucket=BASIN_STORE, Key="resume", UploadId=upload, PaginationConfig={"PageSize": 2}
    )
    pages = [[p["PartNumber"] for p in page["Parts"]] for page in paged]
    assert pages == [[1, 2], [4]]
    basin_s3.abort_multipart_upload(Bucket=BASIN_STORE, Key="resume", UploadId=upload)
    with pytest.raises(ClientError) as exc:
        basin_s3.list_parts(Bucket=BASIN_STORE, Key="resume", UploadId=upload)
    assert _code(exc) == "NoSuchUpload" and _status(exc) == 404


def test_upload_part_copy_is_not_implemented_like_copy_object(basin_emulator, basin_s3) -> None:
    basin_s3.put_object(Bucket=BASIN_STORE, Key="src", Body=b"source bytes")
    upload = basin_s3.create_multipart_upload(Bucket=BASIN_STORE, Key="dst")["UploadId"]
    with pytest.raises(ClientError) as exc:
        basin_s3.upload_part_copy(
            Bucket=BASIN_STORE,
            Key="dst",
            UploadId=upload,
            PartNumber=1,
            CopySource={"Bucket": BASIN_STORE, "Key": "src"},
        )
    assert _code(exc) == "NotImplemented" and _status(exc) == 501
    assert "UploadPartCopy" in exc.value.response["Error"]["Message"]
    assert "Parts" not in basin_s3.list_parts(Bucket=BASIN_STORE, Key="dst", UploadId=upload)  # no empty part
    basin_s3.abort_multipart_upload(Bucket=BASIN_STORE, Key="dst", UploadId=upload)


def test_managed_copy_fails_cleanly_and_leaves_no_upload(basin_s3) -> None:
    from boto3.s3.transfer import TransferConfig

    body = os.urandom((5 << 20) + 10)
    basin_s3.put_object(Bucket=BASIN_STORE, Key="big-src", Body=body)
    multipart = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    for config in (multipart, TransferConfig()):  # UploadPartCopy, then CopyObject for a single request
        with pytest.raises(ClientError) as exc:
            basin_s3.copy({"Bucket": BASIN_STORE, "Key": "big-src"}, BASIN_STORE, "big-dst", Config=config)
        assert _code(exc) == "NotImplemented"
    assert "Uploads" not in basin_s3.list_multipart_uploads(Bucket=BASIN_STORE)
    with pytest.raises(ClientError) as exc:
        basin_s3.head_object(Bucket=BASIN_STORE, Key="big-dst")
    assert _status(exc) == 404
