"""The load-test and profiling harness: servers, scenarios, load, loop lag, profiles, results."""
