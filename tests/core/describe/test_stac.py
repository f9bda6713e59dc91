"""The STAC item: official schemas offline (STAC core, MLM, file, processing, version,
scientific) plus the project's kfm: extension; checksums; CARE additions."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto, helper

from core.candidate.load import load_candidate
from core.describe import (
    KFM_EXTENSION_URI,
    MLM_EXTENSION_URI,
    Description,
    build_item,
    check_item_assets,
    describe_candidate,
    kfm_extension_schema,
)
from core.describe.stac import model_io
from core.describe.validate import stac_problems
from core.errors import DescribeError
from core.jsonio import dumps
from tests.conftest import REPO_ROOT


def validate(item: dict[str, Any]) -> list[str]:
    """Every problem of the item against STAC core and its extensions, offline, as text."""
    return [str(p) for p in stac_problems(item)]


@pytest.fixture(scope="module")
def described(
    reference_candidate_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Description, Path]:
    out = tmp_path_factory.mktemp("described")
    description = describe_candidate(load_candidate(reference_candidate_dir))
    description.write(out)
    return description, out


def test_item_validates_against_official_schemas_offline(
    described: tuple[Description, Path],
) -> None:
    """The generated item is valid STAC 1.1 + MLM v1.4.0 + every listed extension, offline."""
    item = described[0].item
    assert validate(item) == []
    extensions = set(item["stac_extensions"])
    assert MLM_EXTENSION_URI in extensions and KFM_EXTENSION_URI in extensions
    assert "https://stac-extensions.github.io/file/v2.1.0/schema.json" in extensions


def test_validator_rejects_missing_input(described: tuple[Description, Path]) -> None:
    """A copy without mlm:input fails the MLM schema."""
    broken = copy.deepcopy(described[0].item)
    del broken["properties"]["mlm:input"]
    errors = validate(broken)
    assert any("mlm:input" in e and "mlm/v1.4.0" in e for e in errors)


def test_validator_rejects_unknown_mlm_and_kfm_fields(described: tuple[Description, Path]) -> None:
    """An mlm: field MLM does not define, or an unknown kfm: field, is refused."""
    broken = copy.deepcopy(described[0].item)
    broken["properties"]["mlm:metrics"] = {"rmse": 1.0}
    assert any("mlm/v1.4.0" in e for e in validate(broken))
    broken = copy.deepcopy(described[0].item)
    broken["properties"]["kfm:bogus"] = 1
    assert any(KFM_EXTENSION_URI in e for e in validate(broken))


def test_validator_rejects_cpu_accelerator_and_non_semver(
    described: tuple[Description, Path],
) -> None:
    """'cpu' is not an MLM accelerator and '1.23' is not semver: both fail."""
    broken = copy.deepcopy(described[0].item)
    broken["properties"]["mlm:accelerator"] = "cpu"
    broken["properties"]["mlm:framework_version"] = "1.23"
    errors = validate(broken)
    assert len([e for e in errors if "mlm/v1.4.0" in e]) >= 1


def test_mlm_io_matches_the_onnx_graph(
    described: tuple[Description, Path], reference_candidate_dir: Path
) -> None:
    """mlm:input/mlm:output carry the graph's names, shapes and dtypes; the model asset is ONNX."""
    props = described[0].item["properties"]
    graph = onnx.load(str(reference_candidate_dir / "model.onnx")).graph

    def dims(value: Any) -> list[int]:
        return [
            d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim
        ]

    assert [i["name"] for i in props["mlm:input"]] == [v.name for v in graph.input]
    assert [i["input"]["shape"] for i in props["mlm:input"]] == [dims(v) for v in graph.input]
    assert [o["result"]["shape"] for o in props["mlm:output"]] == [dims(v) for v in graph.output]
    assert props["mlm:input"][0]["input"]["data_type"] == "float32"
    assert props["mlm:input"][0]["bands"] == [b["name"] for b in props["bands"]]
    assert props["mlm:framework"] == "ONNX" and props["mlm:accelerator"] == "amd64"
    model = described[0].item["assets"]["model"]
    assert "mlm:model" in model["roles"] and model["mlm:artifact_type"] == "onnx"
    assert all(
        "mlm:artifact_type" not in a for k, a in described[0].item["assets"].items() if k != "model"
    )


def test_value_scaling_read_from_an_onnx_scaler(
    tmp_path: Path, reference_candidate_dir: Path
) -> None:
    """An input feeding an ai.onnx.ml Scaler is described as a per-band z-score."""
    metadata = load_candidate(reference_candidate_dir).metadata
    node = helper.make_node(
        "Scaler",
        ["features"],
        ["air_temperature"],
        domain="ai.onnx.ml",
        offset=[270.0, 45.0, -95.0, 0.0, 0.0],
        scale=[0.5, 0.1, 0.1, 1.0, 1.0],
    )
    graph = helper.make_graph(
        [node],
        "scaled",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 5])],
        [helper.make_tensor_value_info("air_temperature", TensorProto.FLOAT, [None, 5])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 1)]
    )
    path = tmp_path / "scaled.onnx"
    onnx.save(model, str(path))
    inputs, _ = model_io(path, metadata)
    scaling = inputs[0].to_dict()["value_scaling"]
    assert scaling[0] == {"type": "z-score", "mean": 270.0, "stddev": 2.0}
    assert len(scaling) == 5


def test_assets_are_relative_and_match_their_files(
    described: tuple[Description, Path], reference_candidate_dir: Path
) -> None:
    """Every asset href is relative and names a file with the stated size and multihash."""
    item, out = described[0].item, described[1]
    assert {"model", "xai", "provenance", "telemetry-training"} <= set(item["assets"])
    for asset in item["assets"].values():
        assert asset["href"].startswith("./")
        assert asset["file:checksum"].startswith("1220") and len(asset["file:checksum"]) == 68
    assert check_item_assets(item, [out, reference_candidate_dir]) == []
    text = described[0].texts["model.stac.json"]
    assert str(reference_candidate_dir) not in text and str(REPO_ROOT) not in text


def test_asset_check_finds_tampered_and_missing_files(
    described: tuple[Description, Path], candidate: Path
) -> None:
    """A changed XAI file and a missing provenance.json are both reported."""
    (candidate / "xai" / "shap_summary.json").write_text("{}\n", encoding="utf-8")
    findings = check_item_assets(described[0].item, [candidate])
    subjects = {f.subject for f in findings}
    assert "xai" in subjects and "provenance" in subjects
    assert any("file:checksum" in f.message for f in findings if f.subject == "xai")


def test_signature_asset_and_integrity_when_signed(candidate: Path) -> None:
    """A signed candidate's item lists model.sig with its checksum and the integrity block."""
    from core.signing.bundle import sign_model
    from core.signing.keys import generate_key_pair, load_signer

    keys = generate_key_pair("pipeline", candidate.parent / "keys", "pass")
    record = sign_model(candidate, load_signer(keys.private_key, "pass", key_id="pipeline"))
    description = describe_candidate(load_candidate(candidate))
    item = description.item
    assert item["assets"]["signature"]["file:checksum"] == record.integrity.signature.checksum
    assert item["properties"]["kfm:integrity"]["hash"] == record.integrity.hash
    assert validate(item) == []
    assert "kfm:signature/" in description.texts["provenance.json"]


def test_unsigned_candidate_has_no_signature_asset(described: tuple[Description, Path]) -> None:
    """Without model.sig there is no signature asset and no integrity block."""
    assert "signature" not in described[0].item["assets"]
    assert "kfm:integrity" not in described[0].item["properties"]


def test_care_additions_are_merged_and_validated(reference_candidate_dir: Path) -> None:
    """Sovereignty CARE fields add labels and a screening block; the item stays valid."""
    candidate = load_candidate(reference_candidate_dir)
    extra = {
        "kfm:care": {
            "labels": ["tk_non_commercial"],
            "scope": "restricted",
            "masking": "h3-climate-generalized",
            "screening": {
                "authority_to_control": [
                    {
                        "region_id": "r1",
                        "nation": "n1",
                        "steward_id": "s1",
                        "tier": "restricted",
                        "consent": "granted",
                        "published": True,
                        "resolution": 4,
                        "cells_published": 3,
                    },
                ],
                "min_count": 11,
                "withheld_buffer_rings": 1,
            },
        }
    }
    item = build_item(candidate, provenance_json=b"{}\n", care_extra=extra)
    care = item["properties"]["kfm:care"]
    assert care["labels"] == [*candidate.metadata.care.labels, "tk_non_commercial"]
    assert care["scope"] == "restricted"
    assert care["screening"]["authority_to_control"][0]["region_id"] == "r1"
    assert validate(item) == []


@pytest.mark.parametrize(
    "extra",
    [
        {"kfm:care": {"scope": "public"}},
        {"kfm:care": {"masking": "x"}},
        {"kfm:care": {"screening": {"authority_to_control": [{"region_id": "r1"}]}}},
        {"kfm:care": {"unknown_field": 1}},
        {"kfm:sovereignty": {}},
    ],
)
def test_invalid_care_additions_are_refused(
    reference_candidate_dir: Path, extra: dict[str, Any]
) -> None:
    """CARE additions that break the kfm: schema raise a DescribeError naming the field."""
    with pytest.raises(DescribeError):
        build_item(
            load_candidate(reference_candidate_dir), provenance_json=b"{}\n", care_extra=extra
        )


def test_exported_extension_schema_is_current() -> None:
    """schemas/stac-kfm-extension.schema.json is what the code generates, with its $id."""
    path = REPO_ROOT / "schemas" / "stac-kfm-extension.schema.json"
    assert path.read_text(encoding="utf-8") == dumps(kfm_extension_schema())
    assert json.loads(path.read_text(encoding="utf-8"))["$id"] == KFM_EXTENSION_URI
