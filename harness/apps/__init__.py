"""The applications built on the library: the `taiyi` command line, the demo, the data check and
the leaderboard. Nothing in the library (`harness/*.py`, `harness/readers/`) imports from here."""
