"""One module per CLI subcommand; imported lazily so `pysteps --help` stays instant."""
