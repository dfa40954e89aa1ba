"""Command line: thin argument parsing that calls app, sim and client."""
