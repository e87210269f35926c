"""What more than one test suite (and the benchmarks) use: the local stand-in servers for the
providers and LiveKit's worker endpoint (servers/), the fake knowledge stores, config and call
builders, the sample agent's voice helpers, the deploy tools and the Lua health-check runner.
A suite imports from here, never from another suite's modules."""
