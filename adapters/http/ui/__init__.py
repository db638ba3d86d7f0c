"""The external verifier's desk: server-rendered pages under /ui/ over the same queries,
policy table and time-travel parameters as the API."""
