"""The foundation every layer uses: configuration (``config``), errors, the schema catalog, Google Cloud
clients for the configured target, secrets, option words, Pub/Sub names, terminal output.

It imports nothing else of gcpipe: the target's environment (the emulators' addresses) comes from
``Config``, never from the local stack.
"""
