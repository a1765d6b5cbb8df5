"""The demo runs end to end on the local stack, small, and every stage reports what it made."""

import pytest

from gcpipe.demo import STAGES, run_demo

pytestmark = pytest.mark.stack


def test_demo_runs_every_stage(local_stack, bq, postgres, tmp_path):
    ctx, results = run_demo(local_stack, scale=0.01, lake=tmp_path)
    assert [name for name, _, _ in results] == [stage.name for stage in STAGES]
    assert all(summary for _, _, summary in results)
    assert ctx.facts["trips"].rows == 2000
    assert (tmp_path / "landing" / "taxi_trips" / "2019-03-01" / "trips.csv").exists()
    ingest = ctx.facts["ingest"]
    assert ingest.rows_read == 2000 == ingest.rows_loaded + ingest.rows_dead_lettered
    tables = {t.table_id for t in bq.list_tables(local_stack.dataset("taxi"))}
    assert {"taxi_trips", "ride_events", "rides_per_minute"} <= tables
    assert ctx.facts["rides"]["events_stored"] > 0 and ctx.facts["rides"]["windows"] > 0
    kdd = ctx.facts["kdd_analysis"]
    assert (kdd["valid"], kdd["malformed"]) == (ctx.facts["kdd"].valid, ctx.facts["kdd"].malformed)
    assert (tmp_path / "kdd" / "analysis" / "report" / "attack_stats.png").exists()
    assert ctx.facts["als_recommend"]["recommendations"] == 5 * ctx.facts["rentals"].users
    assert {"precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc"} <= set(
        ctx.facts["purchase_model"]
    )
    predictions = f"{local_stack.project}.{local_stack.dataset('ecommerce')}.purchase_predictions"
    assert bq.get_table(predictions).num_rows > 0
    assert ctx.facts["dag_run"]["moved"].exists()  # batch_ingest ran, its checks passed, the file moved
