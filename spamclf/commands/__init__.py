"""The library function behind each command, with its output format."""
