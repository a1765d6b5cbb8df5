"""PII policy: keyed hashes, masks, redaction; the key is read where used, never pickled or typed in code."""

import hashlib
import hmac
import pickle
import stat

import pyarrow as pa
import pytest

from gcpipe.core.schemas import table_spec
from pipelines.transforms.pii import PiiError, PiiPolicy, load_key

SCHEMA = table_spec("taxi_trips").schema


def test_columns_are_hashed_with_the_key_masked_or_redacted(tmp_path, monkeypatch):
    monkeypatch.delenv("GCPIPE_PII_KEY", raising=False)
    key_file = tmp_path / "secrets" / "pii.key"
    with pytest.raises(PiiError, match="cannot read the PII key"):  # off the local target, never made up
        PiiPolicy.parse("vendor_id", SCHEMA, str(key_file))
    policy = PiiPolicy.parse(
        "vendor_id, rate_code:mask, tip_amount:redact", SCHEMA, str(key_file), make_key=True
    )
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # generated on first use, for the owner only
    key = key_file.read_text().encode()
    table = pa.table(
        {
            "vendor_id": ["1", "2", "1", None],
            "rate_code": ["12345", "ab", "", None],
            "tip_amount": [1.5, 2.0, None, 3.0],
        }
    )
    out = policy.apply(table).to_pydict()
    assert out["vendor_id"][:3] == [hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in "121"]
    assert out["vendor_id"][3] is None
    assert out["rate_code"] == ["#2345", "##", "", None]
    assert out["tip_amount"] == [None] * 4


def test_the_key_comes_from_the_environment_first_and_is_never_pickled(tmp_path, monkeypatch):
    monkeypatch.setenv("GCPIPE_PII_KEY", "from-the-environment")
    assert load_key(str(tmp_path / "unused.key")) == b"from-the-environment"
    policy = PiiPolicy.parse("vendor_id", SCHEMA, str(tmp_path / "unused.key"))
    assert policy.key == b"from-the-environment"
    shipped = pickle.dumps(policy)
    assert b"from-the-environment" not in shipped
    assert pickle.loads(shipped).key == b"from-the-environment"  # noqa: S301 (our own bytes); read again on use


def test_rejected_records_and_reasons_keep_no_pii_value():
    policy = PiiPolicy({"rate_code": "mask"})
    columns = ("vendor_id", "rate_code", "fare_amount")
    assert policy.raw('1,"secret,code",abc', columns) == "1,#######code,abc"
    assert policy.raw("1,secret", columns) is None  # cannot tell which cell is which: withheld
    assert (
        policy.reason("rate_code: 'secret' is not a valid INTEGER")
        == "rate_code: the value is not a valid INTEGER"
    )
    assert (
        policy.reason("fare_amount: 'abc' is not a valid FLOAT") == "fare_amount: 'abc' is not a valid FLOAT"
    )


def test_settings_that_cannot_work_are_one_clear_error(tmp_path):
    with pytest.raises(PiiError, match="only STRING columns"):
        PiiPolicy.parse("fare_amount", SCHEMA, str(tmp_path / "k"))
    with pytest.raises(PiiError, match="REQUIRED"):
        PiiPolicy.parse("vendor_id:redact", SCHEMA, None)
    with pytest.raises(PiiError, match="one of hash, mask, redact"):
        PiiPolicy.parse("vendor_id:scramble", SCHEMA, None)
