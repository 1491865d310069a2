"""Entry point of the sluice python runtime: `python3 -s sluice_runtime.py`, started with cwd = the
function bundle, stdin and fd 3 connected to sluice (docs/function-protocol.md).

The runtime itself is the module sluice_instance, imported rather than run as this script: only an
imported module is loaded from a precompiled __pycache__ (`python3 -m compileall runtimes/python`), and
compiling it afresh would cost a noticeable part of a cold start.
"""

import os
import sys

if __name__ == "__main__":
    _here = os.path.dirname(os.path.abspath(__file__))
    if _here not in sys.path:  # -I and -P leave the script's directory off sys.path
        sys.path.insert(0, _here)
    from sluice_instance import main

    main()
