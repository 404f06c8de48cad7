"""The learned model: training recovers a planted pattern, the artefact round-trips and a
corrupt one is refused, explanations sum to the logit, the registry's champion and shadow,
the evaluation command on a small file in the handbook's format."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from checkout.fraud import evaluate, registry, train
from checkout.fraud.dataset import Window, collect
from checkout.fraud.entity_state import DAY, StateConfig
from checkout.fraud.handbook import parse_day
from checkout.fraud.learned import ArtefactError, LearnedModel, write_artefact
from checkout.fraud.metrics import auc_roc
from checkout.fraud.model import DEFAULT_MODEL_PATH, Decision
from checkout.fraud.pipeline import FEATURES, FeaturePipeline
from checkout.fraud.registry import Registry, RegistryError
from checkout.fraud.simulate import as_transactions, simulate, write_csv

CFG = StateConfig(delay_days=7, maturity_days=7)
START = "2018-04-01"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """Customers with steady spending; a compromised customer's fraud is a payment at 5x its
    usual amount (no terminal fraud). Trained on days 20-39, tested on days 47-59."""
    rows = simulate(
        days=60,
        customers=150,
        terminals=100,
        seed=11,
        compromised_terminals_per_day=0.0,
        compromised_customers_per_day=1.0,
    )
    t0 = parse_day(START)
    got = collect(
        as_transactions(rows),
        FeaturePipeline(config=CFG),
        CFG.delay_days,
        [
            Window("train", t0 + 20 * DAY, t0 + 40 * DAY),
            Window("test", t0 + 47 * DAY, t0 + 60 * DAY),
        ],
    )
    tr = got.windows["train"]
    labels = tr.labels_as_of(t0 + 47 * DAY, CFG.maturity_days)
    fitted = train.fit(
        tr,
        labels,
        t0 + 35 * DAY,
        state_config=CFG,
        window=(t0 + 20 * DAY, t0 + 40 * DAY, t0 + 47 * DAY),
    )
    out = tmp_path_factory.mktemp("model") / "artefact"
    write_artefact(out, fitted.model_text, fitted.manifest)
    return out, got.windows["test"]


def test_training_recovers_the_planted_pattern(planted: tuple[Path, object]) -> None:
    path, test = planted
    model = LearnedModel.load(path)
    scores = model.scores(test.X)  # type: ignore[attr-defined]
    assert auc_roc(test.fraud, scores) > 0.9  # type: ignore[attr-defined]
    # what explains the frauds is the amount against the payer's own history
    frauds = np.flatnonzero(test.fraud == 1)[:20]  # type: ignore[attr-defined]
    assert len(frauds) >= 10
    top = []
    for i in frauds:
        _, _, parts = model.explain(test.X[i].tolist())  # type: ignore[attr-defined]
        top.append(FEATURES[int(np.argmax(parts))])
    assert sum("amount" in name for name in top) >= 0.8 * len(top), top


def test_explanation_sums_to_the_logit_and_matches_batch_scoring(
    planted: tuple[Path, object],
) -> None:
    path, test = planted
    model = LearnedModel.load(path)
    X = test.X[:50]  # type: ignore[attr-defined]
    batch = model.scores(X)
    for i in range(len(X)):
        vec = X[i].tolist()
        logit, bias, parts = model.explain(vec)
        assert bias + math.fsum(parts) == pytest.approx(logit, abs=1e-9)
        from checkout.fraud.facts import PaymentFacts

        a = model.assess(PaymentFacts("p", 0.0, 1, "usd"), vec)
        assert a.score == pytest.approx(float(batch[i]), abs=1e-9)
        assert a.model_version == model.version
        assert [c.name for c in a.contributions] == list(FEATURES)
        assert a.decision is model.thresholds.decision(a.score)
        json.dumps([c.value for c in a.contributions], allow_nan=False)  # storable as JSON


def test_artefact_round_trips(planted: tuple[Path, object], tmp_path: Path) -> None:
    path, test = planted
    model = LearnedModel.load(path)
    copy_dir = tmp_path / "copy"
    write_artefact(
        copy_dir, (path / "model.txt").read_text(), json.loads((path / "manifest.json").read_text())
    )
    again = LearnedModel.load(copy_dir)
    assert again.version == model.version
    assert again.manifest == model.manifest
    X = test.X[:200]  # type: ignore[attr-defined]
    assert np.array_equal(again.scores(X), model.scores(X))
    m = model.manifest
    assert m["features"] == list(FEATURES) and m["thresholds"]["review"] > 0
    assert m["calibration"]["method"] == "platt" and m["calibration"]["table"]
    assert m["training"]["from"].startswith("2018-04-21")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("model_byte", "model.txt: sha256 mismatch"),
        ("model_missing", "cannot read the artefact"),
        ("manifest_threshold", "manifest.json: sha256 mismatch"),
        ("manifest_garbage", "not JSON"),
        ("features", "feature set"),
    ],
)
def test_a_corrupt_artefact_is_refused(
    planted: tuple[Path, object], tmp_path: Path, damage: str, message: str
) -> None:
    src, _ = planted
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    model_file, manifest_file = bad / "model.txt", bad / "manifest.json"
    if damage == "model_byte":
        data = bytearray(model_file.read_bytes())
        data[len(data) // 2] ^= 0x01
        model_file.write_bytes(bytes(data))
    elif damage == "model_missing":
        model_file.unlink()
    elif damage == "manifest_threshold":
        m = json.loads(manifest_file.read_text())
        m["thresholds"]["block"] = 0.99
        manifest_file.write_text(json.dumps(m))
    elif damage == "manifest_garbage":
        manifest_file.write_text("{not json")
    else:  # re-signed, but for another feature list: a model that would read wrong columns
        m = json.loads(manifest_file.read_text())
        m["features"] = m["features"][::-1]
        write_artefact(bad, model_file.read_text(), m)
    with pytest.raises(ArtefactError, match=message):
        LearnedModel.load(bad)


def test_registry_shadow_then_promote_is_audited(
    planted: tuple[Path, object], tmp_path: Path
) -> None:
    path, _ = planted
    reg_file = tmp_path / "registry.json"
    reg = Registry.new()
    assert reg.champion.kind == "logistic" and reg.shadow is None
    with pytest.raises(RegistryError, match="actor and a reason"):
        reg.set_shadow(path, "", "")
    reg.set_shadow(path, "alice", "beats the hand-set model on the backtest", at=1_000.0)
    reg.save(reg_file)
    loaded = Registry.load(reg_file)
    assert loaded.shadow is not None and loaded.shadow.kind == "gbdt"
    assert isinstance(loaded.shadow.load(), LearnedModel)
    champ = loaded.promote("bob", "two weeks of shadow decisions reviewed", at=2_000.0)
    loaded.save(reg_file)
    final = Registry.load(reg_file)
    assert final.champion == champ and final.shadow is None
    assert [(a["actor"], a["action"]) for a in final.audit] == [
        ("alice", "shadow"),
        ("bob", "promote"),
    ]
    assert final.audit[1]["previous"] == Registry.new().champion.version
    with pytest.raises(RegistryError, match="no shadow"):
        final.promote("bob", "again")


def test_registry_refuses_a_corrupt_or_changed_model(
    planted: tuple[Path, object], tmp_path: Path
) -> None:
    src, _ = planted
    art = tmp_path / "art"
    shutil.copytree(src, art)
    reg = Registry.new(DEFAULT_MODEL_PATH)
    reg.set_shadow(art, "alice", "candidate")
    # replaced after registration by another valid artefact: promotion refuses it
    m = json.loads((art / "manifest.json").read_text())
    m["thresholds"]["block"] = 0.99
    write_artefact(art, (art / "model.txt").read_text(), m)
    with pytest.raises(RegistryError, match="changed since it was registered"):
        reg.promote("bob", "go")
    (art / "model.txt").write_text("garbage")
    with pytest.raises(RegistryError, match="refused"):
        reg.set_shadow(art, "alice", "again")


def test_registry_command(
    planted: tuple[Path, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = planted
    reg_file = str(tmp_path / "r.json")
    assert registry.main([reg_file, "shadow", str(path), "--actor", "a", "--reason", "r"]) == 0
    assert registry.main([reg_file, "promote", "--actor", "b", "--reason", "ok"]) == 0
    out = capsys.readouterr().out
    assert "champion: gbdt-" in out and "b: promote" in out


def test_evaluate_runs_on_a_small_file_in_the_handbook_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = write_csv(
        tmp_path / "tx.csv.gz", simulate(days=45, customers=120, terminals=120, seed=2)
    )
    code = evaluate.main(
        [
            "--transactions",
            str(csv_path),
            "--train-from",
            "2018-04-24",
            "--train-to",
            "2018-04-30",
            "--test-from",
            "2018-05-08",
            "--test-to",
            "2018-05-14",
            "--extra-train-from",
            "2018-04-15",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "| handbook: random forest | 0.867 | 0.658 | 0.287 |" in out
    for label in (
        "payplane hand-set logistic",
        "payplane gbdt gbdt-2018-04-30",
        "payplane gbdt + verification",
        "extra, not the protocol",
    ):
        line = next(x for x in out.splitlines() if label in x)
        auc, ap, cp = (float(v) for v in line.strip("| ").split(" | ")[1:])
        assert 0 <= auc <= 1 and 0 <= ap <= 1 and 0 <= cp <= 1
    assert "decision CPU per payment" in out
    LearnedModel.load(tmp_path / "out" / "protocol")  # the artefact the run used is kept
    # the same artefact, evaluated again without training, gives the same table
    code = evaluate.main(
        [
            "--transactions",
            str(csv_path),
            "--train-from",
            "2018-04-24",
            "--train-to",
            "2018-04-30",
            "--test-from",
            "2018-05-08",
            "--test-to",
            "2018-05-14",
            "--model",
            str(tmp_path / "out" / "protocol"),
        ]
    )
    again = capsys.readouterr().out
    pick = [x for x in out.splitlines() if x.startswith("| payplane")]
    assert pick == [x for x in again.splitlines() if x.startswith("| payplane")]


def test_train_command_writes_a_loadable_artefact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = write_csv(
        tmp_path / "tx.csv", simulate(days=40, customers=100, terminals=80, seed=4)
    )
    out = tmp_path / "m"
    assert (
        train.main(
            [
                "--transactions",
                str(csv_path),
                "--train-from",
                "2018-04-15",
                "--train-to",
                "2018-04-30",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    model = LearnedModel.load(out)
    assert "wrote" in capsys.readouterr().out
    assert model.manifest["training"]["labels_as_of"].startswith("2018-05-08")
    assert model.thresholds.decision(0.95) is Decision.BLOCK
