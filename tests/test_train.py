"""The results script runs end to end (tiny epochs) and tabulates mean ± std per method."""

from qfx.train import RunResult, run, table


def test_run_produces_every_method() -> None:
    results = run("mlp", seed=0, widths=[6], epochs=4, qat_epochs=1, khot=2)
    methods = [(r.method, r.width) for r in results]
    assert methods == [("float", None), ("PTQ", 6), ("QFX-QAT", 6), ("QFX K-hot K=2", 6)]
    assert all(0.0 <= r.accuracy <= 100.0 for r in results)
    assert results[0].accuracy > 70.0  # four epochs of float training already learn digits


def test_table_reports_mean_and_std() -> None:
    rows = [RunResult("mlp", "PTQ", 4, s, acc) for s, acc in enumerate([90.0, 92.0, 94.0])]
    text = table(rows)
    assert "| mlp | PTQ | 4 | 92.00 ± 2.00 | 3 |" in text
