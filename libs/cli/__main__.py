"""`python -m libs.cli` is the `ordersync` command (the venv's bin/ordersync runs this)."""

from libs.cli.app import main

if __name__ == "__main__":
    main()
