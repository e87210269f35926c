"""Subcommands of ``kubevox-agent``; each module is one subcommand (see agent_runtime.cli)."""
