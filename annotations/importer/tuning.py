"""Runtime tuning: the interpreter's settings while imports run (garbage collection, GIL
handovers)."""

import contextlib
import gc
import sys
import threading
from collections.abc import Iterator

# Seconds between GIL handovers during a run (see ImportRuntime).
IMPORT_SWITCH_INTERVAL = 0.0005


class ImportRuntime:
    """The interpreter's settings while runs go on, put back when the last one ends (a process
    may hold several at once: the tests do). They are the whole process's: a worker runs one job
    at a time, and the command one run.

    - The objects the process holds already are left out of the garbage collector's passes. A
      run allocates a few dicts per record, which starts a collection every few hundred records;
      the full ones walked the whole heap (Django's, a worker's models): a third of the time
      spent reading a file. Records hold no reference cycles: what the run leaves behind is
      still collected.
    - Threads hand the GIL over every 0.5 ms instead of 5: the writing thread waits for
      PostgreSQL and then for the GIL, which the reading thread, busy parsing, held for up to
      5 ms after each of a batch's round trips (a fifth of a run's time at 1,000,000 records).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs = 0
        self.interval = sys.getswitchinterval()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            if not self.runs:
                self.interval = sys.getswitchinterval()
                gc.freeze()
                sys.setswitchinterval(IMPORT_SWITCH_INTERVAL)
            self.runs += 1
        try:
            yield
        finally:
            with self.lock:
                self.runs -= 1
                if not self.runs:
                    sys.setswitchinterval(self.interval)
                    gc.unfreeze()


import_runtime = ImportRuntime()
