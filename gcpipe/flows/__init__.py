"""The platform's flows, each declared once with its steps (``registry``); the demo, the DAGs and the
README's flow table are built from or checked against it."""
