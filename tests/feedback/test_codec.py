"""The portable encoding: arrays read without pickle and within size limits, and content hashes."""

import io
import json
import warnings
import zipfile

import numpy as np
import pytest

from rlhf_gym.feedback import codec
from rlhf_gym.feedback.codec import MAX_ARRAY_BYTES, content_hash, decode_record, encode_record, load_npz
from tests.feedback.test_store import assert_same, valid_samples


def npz_of(members, compression: int = zipfile.ZIP_STORED, date_time=(2024, 1, 1, 0, 0, 0)) -> bytes:
    """A zip of the given members (a dict, or a list of pairs), as numpy.savez writes one."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a duplicate name
        for name, data in dict(members).items() if isinstance(members, dict) else members:
            archive.writestr(zipfile.ZipInfo(name, date_time), data, compression)
    return buf.getvalue()


def npy_header(shape: tuple[int, ...], descr: object = "<f8") -> bytes:
    """The npy header alone of an array of ``shape`` (no data follows)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def test_arrays_round_trip_with_dtype_shape_and_order():
    arrays = {
        "f": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "big": np.arange(3, dtype=">i4"),
        "s": np.array(["ab", "ünï"]),
        "empty": np.zeros((0, 4), np.float32),
        "scalar": np.array(True),
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    back = load_npz(buf.getvalue())
    assert list(back) == list(arrays)
    for name, array in arrays.items():
        assert (back[name].dtype, back[name].shape) == (array.dtype, array.shape), name
        np.testing.assert_array_equal(back[name], array)
    back["f"][0, 0] = 1.0  # writable, as numpy's own loader gives them


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        # the npy header of one array claims 2.9 TiB: refused before any allocation
        (
            npz_of({"a0.npy": npy_header((400_000_000_000,))}),
            r"claims shape \(400000000000,\) of float64 \(2\.9 TiB\)",
        ),
        (npz_of({"a0.npy": npy_header((200_000_000,))}), r"\(1\.5 GiB\); the limit is 256\.0 MiB per array"),
        (
            npz_of({"a0.npy": npy_header((2**40, 2**40))}),
            r"claims shape \(1099511627776, 1099511627776\) of float64 \(8796093022208\.0 TiB\)",
        ),
        (
            npz_of({"a0.npy": npy_header((10,)) + b"\0" * 8}),
            r"array 'a0' holds 8 bytes of data; its header claims 80",
        ),
        (npz_of({"a0.npy": npy_header((1,), "|O")}), r"array 'a0' has dtype object; expected bool, numbers"),
        (npz_of({"a0.npy": npy_header((1,), [("x", "<f8")])}), r"has dtype .*; expected bool, numbers"),
        (npz_of({"a0.npy": b"\x93NUMPY\x03\x00" + b"\0" * 20}), r"npy format version \(3, 0\)"),
        (npz_of({"a0.npy": b"plain text"}), r"array 'a0' is not an npy array"),
        (npz_of({"a0.txt": npy(np.zeros(2))}), r"member 'a0\.txt'; expected distinct NAME\.npy arrays"),
        (npz_of([("a0.npy", npy(np.zeros(2))), ("a0.npy", npy(np.ones(2)))]), r"expected distinct NAME\.npy"),
        (b"PK\x03\x04 not a zip", r"not an \.npz archive"),
    ],
)
def test_bad_or_oversized_arrays_are_refused_by_their_header(blob, message):
    with pytest.raises(ValueError, match=message):
        load_npz(blob)


def test_a_zip_bomb_is_refused_before_it_expands():
    """8 MiB of zeros deflate to 8 KiB: over 100x the blob, so refused from its header."""
    blob = npz_of({"a0.npy": npy(np.zeros(2**20))}, zipfile.ZIP_DEFLATED)
    assert len(blob) < 2**14
    with pytest.raises(ValueError, match=r"the arrays of a .* KiB blob claim 8\.0 MiB or more; the limit is"):
        load_npz(blob)
    many = npz_of({f"a{i}.npy": npy(np.zeros(2**14)) for i in range(80)}, zipfile.ZIP_DEFLATED)
    with pytest.raises(ValueError, match=r"claim .* or more"):  # each small, together a bomb
        load_npz(many)


def test_arrays_at_the_limits_load(monkeypatch):
    monkeypatch.setattr(codec, "MAX_ARRAY_BYTES", 800)
    assert load_npz(npz_of({"a0.npy": npy(np.zeros(100))}))["a0"].shape == (100,)
    with pytest.raises(
        ValueError, match=r"claims shape \(101,\) of float64 \(808 bytes\); the limit is 800 bytes"
    ):
        load_npz(npz_of({"a0.npy": npy(np.zeros(101))}))
    monkeypatch.setattr(codec, "MAX_ARRAYS", 2)
    with pytest.raises(ValueError, match="holds 3 arrays; the limit is 2"):
        load_npz(npz_of({f"a{i}.npy": npy(np.zeros(1)) for i in range(3)}))
    assert MAX_ARRAY_BYTES == 256 * 2**20


def test_a_record_nested_too_deep_does_not_decode():
    text, blob = encode_record(valid_samples()["rating"])
    tree = json.loads(text)
    node: dict = {"list": []}
    tree["fields"]["teacher"] = node
    for _ in range(100):
        node["list"].append({"list": []})
        node = node["list"][0]
    with pytest.raises(ValueError, match=r"rating\.teacher(\[0\])+: the record nests more than 64 deep"):
        decode_record("rating", json.dumps(tree), blob)
    with pytest.raises(RecursionError):  # the store and the export reader turn this into a named error
        decode_record("rating", "[" * 100_000 + "]" * 100_000, blob)


def test_content_hash_names_the_content_not_the_archive():
    record = valid_samples()["comparison"]
    row = {"kind": "comparison", "created": 1.5, "teacher": "oracle", "effort_seconds": 2.0, "info": {"a": 1}}
    text, blob = encode_record(record)
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:  # the same arrays, written another day
        blob2 = npz_of(
            [(i.filename, archive.read(i)) for i in archive.infolist()], date_time=(1999, 1, 1, 0, 0, 0)
        )
    text2 = text
    assert blob != blob2
    assert content_hash(row, text, blob) == content_hash(row, text2, blob2)
    assert_same(decode_record("comparison", text2, blob2), record)
    for change in ({"created": 1.6}, {"effort_seconds": 2.5}, {"info": {"a": 2}}, {"teacher": "ada"}):
        assert content_hash(row | change, text, blob) != content_hash(row, text, blob), change
    _, other_blob = encode_record(valid_samples()["estop"])
    assert content_hash(row, text, other_blob) != content_hash(row, text, blob)
