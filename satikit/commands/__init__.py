"""One module per CLI subcommand (group); `satikit.cli` adds them to the root group."""
