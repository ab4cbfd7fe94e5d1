"""One module per command group; sextant/cli.py assembles them."""
