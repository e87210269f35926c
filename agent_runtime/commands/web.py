"""``kubevox-agent web``: the web gateway of a VoiceAgent with ``spec.web`` (its call page and
the endpoint that starts calls), run by the operator as the agent's ``<name>-web`` Deployment."""

from __future__ import annotations

import argparse
import os

from aiohttp import web
from kubevox_api import contract
from kubevox_api.runtime_config import LIVEKIT_URL_ENV

from ..errors import ConfigError
from ..logs import setup_json_logging
from ..web.gateway import Gateway, build_app
from ._common import add_config_arguments, livekit_credentials, load_from_args

NAME = "web"
HELP = "Serve a VoiceAgent's call page and the endpoint that starts browser calls (spec.web)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--host", default="0.0.0.0")  # the pod's every address
    parser.add_argument("--port", type=int, default=contract.WEB_PORT)
    parser.add_argument("--log-level", default="INFO")


def gateway_from_env(args: argparse.Namespace) -> Gateway:
    config = load_from_args(args)
    spec = config.spec
    if spec.web is None:
        raise ConfigError("spec.web is not set: this agent takes no browser calls")
    api_key, api_secret = livekit_credentials(config)
    shared_key = None
    if (ref := spec.web.auth.shared_key_secret_ref) is not None:
        shared_key = os.environ.get(contract.WEB_SHARED_KEY_ENV)
        if not shared_key:
            raise ConfigError(
                f"{contract.WEB_SHARED_KEY_ENV}: not set (from spec.web.auth.sharedKeySecretRef "
                f"{ref.name!r})"
            )
    return Gateway(
        agent_name=config.agent_name,
        title=spec.web.title or config.name,
        livekit_url=spec.web.livekit_url or os.environ.get(LIVEKIT_URL_ENV) or spec.livekit.url,
        api_key=api_key,
        api_secret=api_secret,
        web=spec.web,
        shared_key=shared_key,
    )


def run(args: argparse.Namespace) -> int:
    setup_json_logging(args.log_level)
    gateway = gateway_from_env(args)
    # No access log: the kubelet's probes would fill it; calls started and refused are logged.
    web.run_app(build_app(gateway), host=args.host, port=args.port, print=None, access_log=None)
    return 0
