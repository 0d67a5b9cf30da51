"""test.py's library: its inputs and outputs, what it measures with, and its run."""

PROG = "test.py"  # the program whose messages these are
