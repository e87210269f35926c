"""The operator process's own settings (no cluster needed)."""

from __future__ import annotations

import gc

import pytest
from kubevox_operator.__main__ import GC_THRESHOLDS, gc_thresholds, parse_args, tune_gc


def test_gc_thresholds_default_and_override() -> None:
    assert gc_thresholds(None) == GC_THRESHOLDS
    assert gc_thresholds("") == GC_THRESHOLDS
    assert gc_thresholds("700,10,10") == (700, 10, 10)


@pytest.mark.parametrize("bad", ["700,10", "a,b,c", "700,10,-1", "1,2,3,4"])
def test_gc_thresholds_refuse_what_is_not_three_counts(bad: str) -> None:
    with pytest.raises(SystemExit, match="KUBEVOX_GC must be three integers"):
        gc_thresholds(bad)


def test_tune_gc_freezes_what_start_up_left_and_sets_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_gc((12_345, 20, 30))
        assert gc.get_threshold() == (12_345, 20, 30)
        assert gc.get_freeze_count() > 0  # modules, classes, schemas: out of every collection
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_prometheus_url_from_the_flag_or_the_env_and_only_an_http_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBEVOX_PROMETHEUS_URL", raising=False)
    assert parse_args([]).prometheus_url == ""  # none: keda agents report AutoscalerUnavailable
    monkeypatch.setenv("KUBEVOX_PROMETHEUS_URL", "http://prometheus.monitoring:9090")
    assert parse_args([]).prometheus_url == "http://prometheus.monitoring:9090"
    assert parse_args(["--prometheus-url", "https://p:9091"]).prometheus_url == "https://p:9091"
    for bad in ("prometheus:9090", "ftp://p", "http://"):
        with pytest.raises(SystemExit):
            parse_args(["--prometheus-url", bad])
        assert "not an http(s) URL" in capsys.readouterr().err
