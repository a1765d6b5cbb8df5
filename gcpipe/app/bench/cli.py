"""``gcpipe bench``: a thin click wrapper around :func:`gcpipe.app.bench.main`."""

import click


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Run the benchmarks with their baselines; write BENCHMARKS.md (--help for options)."""
    from gcpipe.app.bench import main

    main(list(args))
