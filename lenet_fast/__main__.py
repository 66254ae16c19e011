"""python -m lenet_fast and the lenet-fast console script (which calls main): the command line, lenet_fast.cli."""
import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
