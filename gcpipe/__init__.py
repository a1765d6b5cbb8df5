"""gcpipe: the support package and CLI, in layers that import downwards only.

    app/            the shell: the ``gcpipe`` CLI, the demo, the benchmarks, the live dashboard
    orchestration/  the Airflow side: the operator factory the DAGs import, each step per target
    flows/          the flows, declared once with their steps (demo, DAGs and README follow them)
    warehouse/ spark/ deploy/ datagen/
                    the capabilities: BigQuery SQL and local BigQuery ML, Spark jobs, deployment to
                    GCP, seeded data generators
    local/          the local stack: the emulators, their supervisor, the metadata stand-in
    core/           config, errors, schemas, clients, secrets, terminal output: imports nothing above

``tests/unit/test_layers.py`` holds the rule (and the table of allowed directions).
"""
