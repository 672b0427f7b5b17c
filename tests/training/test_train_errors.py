"""Clear errors for unusable data and configs, through the entry function and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from data_schemas import Manifest
from flows.commands.train import register
from training.config import ConfigError, TrainConfig
from training.data import DataError, open_split
from training.train import train


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_empty_data_dir_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="is empty"):
        train(TrainConfig(data=empty, out=tmp_path / "run", steps=1))
    with pytest.raises(DataError, match="does not exist"):
        open_split(tmp_path / "nowhere")
    result = CliRunner().invoke(_cli(), ["train", "--data", str(empty), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "is empty" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists(), "nothing is written before the data is known to be usable"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_wrong_schema_version_in_a_shard_footer(corrupt_data, tmp_path):
    data = _copy(corrupt_data, tmp_path / "data")
    shard = sorted((data / "shards").glob("train-*.parquet"))[0]
    table = pq.read_table(shard)
    meta = dict(table.schema.metadata)
    meta[b"mmpipe.schema_version"] = b"99"
    pq.write_table(table.replace_schema_metadata(meta), shard)
    with pytest.raises(DataError, match=rf"{shard.name}.*schema version 99"):
        open_split(data)
    result = CliRunner().invoke(_cli(), ["train", "--data", str(data), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and "schema version 99" in result.output


def test_wrong_manifest_version_and_missing_split(corrupt_data, tmp_path):
    data = _copy(corrupt_data, tmp_path / "data")
    manifest = json.loads((data / "_manifest.json").read_text())
    manifest["schema_version"] = "7"
    (data / "_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="schema version 7"):
        open_split(data)
    good = Manifest.read(corrupt_data)
    good.shards = [s for s in good.shards if s.split == "train"]
    only_train = _copy(corrupt_data, tmp_path / "only_train")
    good.write(only_train)
    with pytest.raises(DataError, match="no 'val' rows"):
        open_split(only_train, "val")


def test_config_yaml_overrides_and_unknown_fields(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("preset: tiny\nsteps: 7\nlr: 0.001\nmodel:\n  text_depth: 3\n")
    cfg = TrainConfig.from_yaml(path, data=tmp_path, out=tmp_path / "run", steps=9, lr=None).resolved()
    assert cfg.steps == 9 and cfg.lr == 0.001 and cfg.model.text_depth == 3 and cfg.model.patch == 16
    assert cfg.image_size == 64 and cfg.batch_size == 32
    path.write_text("stepz: 3\n")
    with pytest.raises(ConfigError, match="stepz"):
        TrainConfig.from_yaml(path, data=tmp_path, out=tmp_path)
    with pytest.raises(ConfigError, match="preset 'huge'"):
        TrainConfig(data=tmp_path, out=tmp_path, preset="huge")
    base = TrainConfig(data=tmp_path, out=tmp_path, preset="base", epochs=2).resolved()
    assert base.steps is None and base.epochs == 2 and base.image_size == 224
