"""The ``cascade`` command line (entry point: :func:`pipelines.cli.main.main`)."""
