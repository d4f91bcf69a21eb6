"""The ``orchestrion`` command line: it parses arguments, calls `App` (or a server's API, through
`Remote`) and prints the result for people or as JSON. `orchestrion.cli.main` is the entry point."""
