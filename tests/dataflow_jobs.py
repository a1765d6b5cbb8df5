"""The Dataflow job requests Beam builds in a test (``--dry_run=True``: built, never sent)."""

from __future__ import annotations


def keep_dataflow_jobs(monkeypatch) -> list:
    """The list every job request the DataflowRunner builds from now on is appended to."""
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    jobs = []
    real = DataflowRunner.run_pipeline

    def keep_job(self, pipeline, options):
        result = real(self, pipeline, options)
        jobs.append(result.job)  # a dry run's result carries the job it did not send
        return result

    monkeypatch.setattr(DataflowRunner, "run_pipeline", keep_job)
    return jobs
