"""Tests of a whole running system: processes, crashes, load, servers, the browser, the network, hostile use, benchmarks."""
