"""Issue 24's defects that can be checked offline: each test failed on the code before its fix.

Real: the batch driver writes real Parquet files from real CDC rows; settings are the real
validators. Nothing here reaches Azure.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from deploy.azure.config import ConfigError, DeploySettings
from tests.conftest import REAL_CDC_FILE


def test_cpu_limit_equal_to_the_instance_type_is_refused() -> None:
    """Microsoft: a deployment's limits must be below its instance type's (defaultinstancetype: cpu 2)."""
    with pytest.raises(ConfigError, match=r"cpu_limit 2 must be below instance type 'defaultinstancetype'"):
        DeploySettings(cpu_limit="2")
    with pytest.raises(ConfigError, match="cpu_limit 2500m must be below"):
        DeploySettings(cpu_limit="2500m")
    assert DeploySettings(cpu_limit="1999m").cpu_limit == "1999m"


def test_batch_outputs_of_similar_names_never_overwrite_each_other(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dotted names (cases.2020.csv / cases.2021.csv) and same names in two folders get four outputs."""
    from model.serving import batch_driver

    rows = pd.read_csv(REAL_CDC_FILE, dtype=str, keep_default_na=False, nrows=157)
    inputs = {
        tmp_path / "in" / "cases.2020.csv": rows.iloc[:100],
        tmp_path / "in" / "cases.2021.csv": rows.iloc[100:130],
        tmp_path / "in" / "a" / "x.csv": rows.iloc[130:150],
        tmp_path / "in" / "b" / "x.csv": rows.iloc[150:157],
    }
    for path, frame in inputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
    output = tmp_path / "job-output"
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("RISK_BATCH_OUTPUT", "files")
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(output))
    monkeypatch.delenv("RISK_BATCH_THRESHOLD", raising=False)
    batch_driver.init()
    # Two mini batches, as two workers of one node would run them.
    summary = pd.concat(
        [batch_driver.run([str(p) for p in list(inputs)[:2]]), batch_driver.run(list(map(str, inputs))[2:])]
    )
    assert summary["output"].nunique() == 4
    for (path, frame), out in zip(inputs.items(), summary["output"], strict=True):
        rejects = Path(out).with_name(Path(out).name.replace(".scored.", ".rejects."))
        assert pq.read_metadata(out).num_rows + pq.read_metadata(rejects).num_rows == len(frame), path
    assert sorted(p.name.split("-")[0] for p in output.glob("*.scored.parquet")) == [
        "cases.2020",
        "cases.2021",
        "x",
        "x",
    ]
    assert batch_driver.output_stem(Path("/m/cases.2020.csv.gz")).startswith("cases.2020-")
    assert batch_driver.output_stem(Path("/m/a/x.parquet")) != batch_driver.output_stem(Path("/m/b/x.parquet"))
