"""``python -m labelbridge``: the same as the ``labelbridge`` command."""

from labelbridge.cli import main

if __name__ == "__main__":
    main()
