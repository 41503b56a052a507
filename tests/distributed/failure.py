"""One rank fails while the others wait in a collective: the job must end, showing why.

    mpiexec -n 2 python tests/distributed/failure.py raise   # an uncaught exception
    mpiexec -n 2 python tests/distributed/failure.py exit    # sys.exit("...") in main()

Rank 1 fails; rank 0 has gone on into an all_reduce that rank 1 will never join. Without
the process group's error hook rank 0 would wait there for ever.
"""
import sys

import numpy as np

import tinygan.distributed as dist


def main(how: str) -> None:
    if dist.get_rank() == 1:
        if how == "raise":
            raise RuntimeError("rank 1 fails on purpose")
        sys.exit("error: rank 1 exits on purpose")
    dist.all_reduce(np.ones(3))
    print("rank 0 got through the all-reduce: the failure did not stop it", flush=True)


if __name__ == "__main__":
    dist.init_process_group("mpi")
    if sys.argv[1] == "raise":
        main("raise")  # uncaught: the group's sys.excepthook ends every rank
    else:
        with dist.abort_on_error():  # sys.exit never reaches sys.excepthook
            main("exit")
