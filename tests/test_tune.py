"""``medigan-zoo tune``: the search space from the recipe's own hyperparameter block, categorical choices through
Optuna and back, the write-back (train.json defaults, changelog, card section) from a real Optuna study; and (slow)
a real study of 3 short trainings on PneumoniaMNIST against a SQLite storage, interrupted by a trial that raises
and resumed, each trial's MLflow run checked through MLflow's own client."""
from __future__ import annotations

import json
import shutil

import pytest
from conftest import BUNDLES, DATA_DIR, require

from medigan_zoo.core.errors import ZooError
from medigan_zoo.training.hyperparameters import read_hyperparameters
from medigan_zoo.training.tracking import root_cause
from medigan_zoo.training.tune import CARD_BEGIN, CARD_END, OBJECTIVES, decode, search_space, suggest, tune, write_back

BUNDLE = BUNDLES / "chest_xray_cdcgan"
#: every trial: 2 epochs of 2 iterations of 8 images (the searched ids vary, these do not)
FIXED = {"epoch_length": 2, "batch_size": 8, "preview_every": 1, "bn_batches": 1, "num_train": 64}
SEARCHED = ["g_learning_rate", "d_learning_rate", "betas"]


@pytest.fixture
def bundle(tmp_path):
    copy = tmp_path / "bundles" / BUNDLE.name
    shutil.copytree(BUNDLE, copy, ignore=shutil.ignore_patterns("training_output", "__pycache__"))
    return copy


def test_search_space_and_suggestions_round_trip():
    import optuna

    space = search_space(BUNDLE, {**FIXED, "max_epochs": 2})
    declared = {h.name for h in read_hyperparameters(BUNDLE)}
    assert {h.name for h in space} == declared - set(FIXED) - {"max_epochs"} and "betas" in {h.name for h in space}
    assert [h.name for h in search_space(BUNDLE, FIXED, SEARCHED)] == [
        h.name for h in read_hyperparameters(BUNDLE) if h.name in SEARCHED]
    with pytest.raises(ZooError, match="--params: lr not declared by chest_xray_cdcgan's recipe; declared: "):
        search_space(BUNDLE, {}, ["lr"])
    with pytest.raises(ZooError, match="nothing to search"):
        search_space(BUNDLE, {n: 1 for n in declared})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        values = suggest(trial, space)
        for h in space:
            assert h.contains(values[h.name]), (h.name, values[h.name])  # in range, of its type, a real choice
        assert decode(space, trial.params) == values and isinstance(values["betas"], list)


def test_write_back_sets_defaults_changelog_and_card(bundle):
    import optuna

    space = search_space(bundle, FIXED, SEARCHED)
    study = optuna.create_study(study_name="s1", direction="maximize")
    dists = {"g_learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True),
             "d_learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True),
             "betas": optuna.distributions.CategoricalDistribution(["[0.0, 0.9]", "[0.5, 0.9]", "[0.5, 0.999]"])}
    for value, g in ((0.1, 1e-4), (0.3, 3e-4)):
        study.add_trial(optuna.trial.create_trial(params={"g_learning_rate": g, "d_learning_rate": 2e-4,
                                                          "betas": "[0.5, 0.999]"}, distributions=dists, value=value))
    best = decode(space, study.best_trial.params)
    old_meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert write_back(bundle, study, study.best_trial, best, "FID_ratio", "higher") is True
    config = json.loads((bundle / "configs" / "train.json").read_text())
    assert config["g_learning_rate"] == 3e-4 and config["d_learning_rate"] == 2e-4 and config["betas"] == [0.5, 0.999]
    assert {h.name: h.default for h in read_hyperparameters(bundle)}["betas"] == [0.5, 0.999]  # still valid
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["version"] == "0.2.1" and old_meta["version"] == "0.2.0"
    entry = meta["changelog"]["0.2.1"]
    assert "study s1 (best of 2 trials, FID_ratio 0.3 on the val split" in entry and "betas [0.5, 0.999]" in entry
    assert list(meta["changelog"])[1:] == list(old_meta["changelog"])
    card = (bundle / "docs" / "README.md").read_text()
    section = card[card.index(CARD_BEGIN):card.index(CARD_END)]
    assert "Best trial 1: FID_ratio 0.3" in section
    assert "| 1 | complete | 0.0003 | 0.0002 | [0.5, 0.999] | 0.3 |" in section
    assert write_back(bundle, study, study.best_trial, best, "FID_ratio", "higher") is False  # same best
    # ... and a second tune replaces the section
    assert (bundle / "docs" / "README.md").read_text().count(CARD_BEGIN) == 1
    again = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert again == meta  # same best values: no new version or changelog entry


def test_bad_arguments_are_one_line(bundle):
    with pytest.raises(ZooError, match="--objective 'is' is not known; use one of: fid_ratio, realism_auc"):
        tune(bundle, DATA_DIR / "pneumoniamnist.npz", objective="is")
    with pytest.raises(ZooError, match="--n_trials must be at least 1"):
        tune(bundle, DATA_DIR / "pneumoniamnist.npz", n_trials=0)
    assert set(OBJECTIVES) == {"fid_ratio", "realism_auc"}


@pytest.mark.slow
def test_study_interrupted_and_resumed_with_mlflow_runs(bundle, tmp_path):
    import mlflow
    import optuna

    data = require(DATA_DIR / "pneumoniamnist.npz", "PneumoniaMNIST (../shared/data)")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    common = dict(storage=storage, study_name="cxr", params=SEARCHED, epochs=2, overrides=FIXED,
                  objective_samples=64, prune_samples=32, tracking_uri=uri, work_dir=tmp_path / "work")

    def interrupt_third(trial):
        class Interrupt:
            def attach(self, engine):
                from ignite.engine import Events

                engine.add_event_handler(Events.ITERATION_COMPLETED(once=1), self.stop)

            def stop(self, engine):
                raise RuntimeError("interrupted (test)")

        return [Interrupt()] if trial.number == 2 else []

    with pytest.raises(RuntimeError) as raised:
        tune(bundle, data, 3, extra_handlers=interrupt_third, **common)
    assert str(root_cause(raised.value)) == "interrupted (test)"
    first = optuna.load_study(study_name="cxr", storage=storage).trials
    assert [t.state.name for t in first] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert not (bundle / "configs" / "train.json").read_text().count("tune")  # nothing written yet

    result = tune(bundle, data, 3, **common)
    trials = optuna.load_study(study_name="cxr", storage=storage).trials
    assert [(t.number, t.params, t.value) for t in trials[:2]] == [(t.number, t.params, t.value) for t in first[:2]]
    assert len(trials) == 4 and trials[2].state.name == "FAIL" and trials[3].state.name in ("COMPLETE", "PRUNED")
    assert trials[3].params not in [t.params for t in trials[:3]]  # the continued study draws anew
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 3 and result.n_complete + result.n_pruned == 3 and result.n_failed == 1
    for t in finished:  # the pruning handler reported the intermediate objective after each epoch
        epochs = sorted(t.intermediate_values)
        assert epochs == [1, 2] if t.state.name == "COMPLETE" else epochs in ([1], [1, 2])

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("tune-cxr")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["trial-0", "trial-1", "trial-2", "trial-3"]
    for t in trials:
        run = runs[f"trial-{t.number}"]
        assert t.user_attrs["mlflow_run_id"] == run.info.run_id and run.data.tags["study"] == "cxr"
        for name, value in decode(search_space(BUNDLE, FIXED, SEARCHED), t.params).items():
            assert run.data.params[name] == str(value)
        if t.state.name == "COMPLETE":
            assert run.info.status == "FINISHED" and run.data.metrics["FID_ratio"] == pytest.approx(t.value)
            assert "bundle/models/model.pt" in [a.path for a in client.list_artifacts(run.info.run_id, "bundle/models")]
        else:
            assert run.info.status == "FAILED"
            reason = "RuntimeError: interrupted (test)" if t.state.name == "FAIL" else "TrialPruned"
            assert run.data.tags["failure"].startswith(reason)
        if t.state.name != "FAIL":  # a pruned trial's run keeps the value it was pruned on, too
            history = client.get_metric_history(run.info.run_id, "pruning/FID_ratio")
            assert {m.step: m.value for m in history} == pytest.approx(t.intermediate_values)
        losses = client.get_metric_history(run.info.run_id, "g_loss")  # the interrupt fires before the tracker
        assert [m.step for m in losses] == ([] if t.state.name == "FAIL" else [1, 2, 3, 4][:len(losses)]) and (
            t.state.name == "FAIL" or losses)

    best = max((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert result.best_number == best.number and result.written
    config = json.loads((bundle / "configs" / "train.json").read_text())
    for name, value in decode(search_space(BUNDLE, FIXED, SEARCHED), best.params).items():
        assert config[name] == value
    assert "study cxr" in json.loads((bundle / "configs" / "metadata.json").read_text())["changelog"]["0.2.1"]
    assert f"Best trial {best.number}" in (bundle / "docs" / "README.md").read_text()
