"""``python -m mpretriever.service``: the service on uvicorn, configured by environment variables only (see
:mod:`mpretriever.service.settings` and ``.env.example``); ``mpr serve`` takes the same settings as options."""

from __future__ import annotations

import argparse

from mpretriever.service import ServiceSettings, run_server
from mpretriever.service.settings import listen_address_from_env


def main() -> None:
    argparse.ArgumentParser(
        prog="python -m mpretriever.service",
        description="Serve POST /query, GET /health and the web page; "
        "every setting comes from the environment (see .env.example).",
    ).parse_args()
    host, port = listen_address_from_env()
    run_server(ServiceSettings.from_env(), host=host, port=port)


if __name__ == "__main__":
    main()
