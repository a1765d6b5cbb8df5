"""What both pipelines' launchers share: options read strictly (``options``), the runner chosen with its
reason (``runners``), progress while a run runs (``progress``), and the command line around a run: its
logs, its accounting line, its one-sentence errors (``launcher``)."""
