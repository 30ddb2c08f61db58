"""Command-line entry point: `starling stack|init|worker|api|run|demo|token`."""
