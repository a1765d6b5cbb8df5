"""The shell: the ``gcpipe`` command line, the demo and its report, the benchmarks, the live dashboard."""
