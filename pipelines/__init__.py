"""Apache Beam pipelines: one module per pipeline with run(argv); shared PTransforms in transforms/."""
