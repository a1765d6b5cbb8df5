"""Entry point of gcpipe's flex templates: run the pipeline module the image was built for.

The flex-template launcher calls ``python main.py --name=value ...`` with the template's parameters. The
image names its pipeline (``GCPIPE_PIPELINE``, a module with ``run(argv)``) and itself
(``GCPIPE_SDK_CONTAINER_IMAGE``): workers run the same image, with the SDK already in it.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys


def pipeline_args(argv: list[str], environ: dict[str, str]) -> list[str]:
    """The launcher's arguments, plus the worker image and the SDK location unless given."""
    args = list(argv)
    image = environ.get("GCPIPE_SDK_CONTAINER_IMAGE")
    if image and not any(a.startswith("--sdk_container_image") for a in args):
        args.append(f"--sdk_container_image={image}")
    if not any(a.startswith("--sdk_location") for a in args):
        args.append("--sdk_location=container")
    return args


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> None:
    environ = dict(os.environ if environ is None else environ)
    if not environ.get("GCPIPE_PIPELINE"):
        sys.exit("error: GCPIPE_PIPELINE is not set: build the image with --build-arg PIPELINE=<module>.")
    logging.getLogger().setLevel(logging.INFO)
    module = importlib.import_module(environ["GCPIPE_PIPELINE"])
    module.run(pipeline_args(sys.argv[1:] if argv is None else argv, environ))


if __name__ == "__main__":
    main()
